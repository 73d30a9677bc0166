"""The recurrent language model as a pure Equinox pytree, with torch's weight layouts.

Cells: `LSTMCell` (gates i, f, g, o, as nn.LSTM), `GRUCell` (gates r, z, n, as nn.GRU) and `RNNCell`
(nn.RNN's tanh or relu). Every cell takes and returns a state `(h, c)`: cells without a cell state carry
`c` through unchanged, so training loops, sharding and checkpoints never branch on the cell type.
"""

import math
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

State = tuple[Float[Array, "layers hidden"], Float[Array, "layers hidden"]]
CellState = tuple[Float[Array, " hidden"], Float[Array, " hidden"]]

CELL_TYPES = ("lstm", "gru", "rnn_tanh", "rnn_relu")
# How a new model's weights are drawn (`LSTMLM(init=...)`).
INITS = ("purelm", "word_language_model")
# word_language_model's `initrange`: its embedding and decoder start U(-0.1, 0.1).
WLM_INIT_RANGE = 0.1


class _RecurrentCell(eqx.Module):
    """What every cell shares: the input projection `weight_ih @ x + bias` is hoisted out of the
    recurrence, which each cell defines in `recur(pre, state)`."""

    weight_ih: eqx.AbstractVar[Float[Array, "gates input"]]
    bias: eqx.AbstractVar[Float[Array, " gates"]]

    @staticmethod
    def shapes(input_size: int, hidden_size: int) -> tuple[tuple[int, ...], ...]:
        """The shapes of the cell's arrays, in field order."""
        raise NotImplementedError

    def recur(self, pre: Float[Array, " gates"], state: CellState) -> CellState:
        raise NotImplementedError

    def __call__(self, x: Float[Array, " input"], state: CellState) -> CellState:
        return self.recur(self.weight_ih @ x + self.bias, state)

    def scan(self, xs: Float[Array, "seq input"], state: CellState) -> tuple[Float[Array, "seq hidden"], CellState]:
        """Run the cell over a whole sequence; returns every output `h` and the final state."""
        # The input projection does not depend on the state: one matmul for all steps.
        pres = xs @ self.weight_ih.T + self.bias

        def step(carry, pre):
            carry = self.recur(pre, carry)
            return carry, carry[0]

        state, hs = jax.lax.scan(step, state, pres)
        return hs, state


class LSTMCell(_RecurrentCell):
    """One LSTM step with torch's layout, so converting a torch cell is a plain copy.

    Example:
        >>> cell = LSTMCell(3, 5, key=jax.random.key(0))
        >>> h, c = cell(jnp.ones(3), (jnp.zeros(5), jnp.zeros(5)))
        >>> h.shape
        (5,)
    """

    weight_ih: Float[Array, "4*hidden input"]
    weight_hh: Float[Array, "4*hidden hidden"]
    bias: Float[Array, " 4*hidden"]
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, *, key: PRNGKeyArray, dtype=None):
        # torch.nn.LSTM's initialisation: U(-1/sqrt(hidden), 1/sqrt(hidden)) for every weight.
        shapes = self.shapes(input_size, hidden_size)
        bounds = (1.0 / hidden_size**0.5,) * len(shapes)
        self.weight_ih, self.weight_hh, self.bias = _uniform_pieces(key, shapes, bounds, _dtype(dtype))
        self.input_size = input_size
        self.hidden_size = hidden_size

    @staticmethod
    def shapes(input_size: int, hidden_size: int) -> tuple[tuple[int, ...], ...]:
        """The shapes of the cell's arrays, in field order."""
        gates = 4 * hidden_size
        return (gates, input_size), (gates, hidden_size), (gates,)

    def recur(self, pre: Float[Array, " 4*hidden"], state: CellState) -> CellState:
        """The recurrent half of a step, given the input projection `weight_ih @ x + bias`."""
        h, c = state
        i, f, g, o = jnp.split(pre + self.weight_hh @ h, 4)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return h, c


class GRUCell(_RecurrentCell):
    """One GRU step with nn.GRU's equations and layout (gate rows r, z, n).

    `bias` is torch's `bias_ih` plus `bias_hh` for r and z, and `bias_ih` alone for n; `bias_hn` is kept
    apart because it sits inside the reset gate: `n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`, then
    `h' = (1 - z) * n + z * h`. The `c` of the state is carried unchanged.

    Example:
        >>> cell = GRUCell(3, 5, key=jax.random.key(0))
        >>> h, c = cell(jnp.ones(3), (jnp.zeros(5), jnp.zeros(5)))
        >>> cell.weight_hh.shape, h.shape
        ((15, 5), (5,))
    """

    weight_ih: Float[Array, "3*hidden input"]
    weight_hh: Float[Array, "3*hidden hidden"]
    bias: Float[Array, " 3*hidden"]
    bias_hn: Float[Array, " hidden"]
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, *, key: PRNGKeyArray, dtype=None):
        shapes = self.shapes(input_size, hidden_size)
        bounds = (1.0 / hidden_size**0.5,) * len(shapes)
        self.weight_ih, self.weight_hh, self.bias, self.bias_hn = _uniform_pieces(key, shapes, bounds, _dtype(dtype))
        self.input_size = input_size
        self.hidden_size = hidden_size

    @staticmethod
    def shapes(input_size: int, hidden_size: int) -> tuple[tuple[int, ...], ...]:
        """The shapes of the cell's arrays, in field order."""
        gates = 3 * hidden_size
        return (gates, input_size), (gates, hidden_size), (gates,), (hidden_size,)

    def recur(self, pre: Float[Array, " 3*hidden"], state: CellState) -> CellState:
        """The recurrent half of a step, given the input projection `weight_ih @ x + bias`."""
        h, c = state
        pre_r, pre_z, pre_n = jnp.split(pre, 3)
        rec_r, rec_z, rec_n = jnp.split(self.weight_hh @ h, 3)
        r = jax.nn.sigmoid(pre_r + rec_r)
        z = jax.nn.sigmoid(pre_z + rec_z)
        n = jnp.tanh(pre_n + r * (rec_n + self.bias_hn))
        return (1 - z) * n + z * h, c


class RNNCell(_RecurrentCell):
    """One Elman step as nn.RNN: `h' = tanh(W_ih x + W_hh h + bias)` (or relu), `bias` torch's two summed.

    The `c` of the state is carried unchanged.

    Example:
        >>> cell = RNNCell(3, 5, nonlinearity="relu", key=jax.random.key(0))
        >>> h, c = cell(jnp.ones(3), (jnp.zeros(5), jnp.zeros(5)))
        >>> bool(jnp.all(h >= 0))
        True
    """

    weight_ih: Float[Array, "hidden input"]
    weight_hh: Float[Array, "hidden hidden"]
    bias: Float[Array, " hidden"]
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)
    nonlinearity: str = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, *, nonlinearity: str = "tanh", key: PRNGKeyArray, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        shapes = self.shapes(input_size, hidden_size)
        bounds = (1.0 / hidden_size**0.5,) * len(shapes)
        self.weight_ih, self.weight_hh, self.bias = _uniform_pieces(key, shapes, bounds, _dtype(dtype))
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.nonlinearity = nonlinearity

    @staticmethod
    def shapes(input_size: int, hidden_size: int) -> tuple[tuple[int, ...], ...]:
        """The shapes of the cell's arrays, in field order."""
        return (hidden_size, input_size), (hidden_size, hidden_size), (hidden_size,)

    def recur(self, pre: Float[Array, " hidden"], state: CellState) -> CellState:
        """The recurrent half of a step, given the input projection `weight_ih @ x + bias`."""
        h, c = state
        pre = pre + self.weight_hh @ h
        return (jnp.tanh(pre) if self.nonlinearity == "tanh" else jax.nn.relu(pre)), c


def _cell_type(cell: str) -> tuple[type[_RecurrentCell], dict]:
    """The cell class for a `cell` name and the keyword arguments it needs."""
    if cell == "lstm":
        return LSTMCell, {}
    if cell == "gru":
        return GRUCell, {}
    if cell in ("rnn_tanh", "rnn_relu"):
        return RNNCell, {"nonlinearity": cell.removeprefix("rnn_")}
    raise ValueError(f"cell must be one of {', '.join(CELL_TYPES)}; got {cell!r}")


class LSTMLM(eqx.Module):
    """A recurrent language model: embedding, stacked cells, a learnable initial state and a head.

    `cell` picks the recurrence: "lstm" (default), "gru", "rnn_tanh" or "rnn_relu", each with torch's
    equations and weight layout. The state is `(h, c)` for every cell (`c` is carried unchanged by cells
    that have none). The initial state is learnable: `c0` per layer, and `h0 = tanh(c0)`.

    With `tie_embeddings=True` the output projection is the embedding matrix itself (`logits = E @ h`,
    which needs `embed_dim == hidden_dim`); `output_bias=True` adds a learnable bias to it (what
    word_language_model's `--tied` decoder has; it starts at zero). Otherwise the head is a separate
    `eqx.nn.Linear`, always with a bias. `head_params()` gives the output layer in either case.

    `init` picks how the weights are drawn: "purelm" (unit-variance embeddings; recurrent weights and an
    untied head as torch's defaults) or "word_language_model" (their `init_weights`: embedding and head
    U(-0.1, 0.1), head bias 0, and each cell's folded bias the sum of the two draws torch's `bias_ih` and
    `bias_hh` start from). `init_range=r` draws the embedding U(-r, r) instead (their `initrange`; with their
    init, the untied head too). `learn_initial_state=False` keeps the initial state at zero, as their
    `init_hidden`: `c0` gets no gradient.

    `dropout` is the rate of word_language_model's dropout (on the embeddings, between layers, and on the
    top layer's output before the head). It is applied only by the batched losses, and only when they are
    given a PRNG key (`batch_loss(..., key=key)`); scoring and sampling never drop anything.

    Example:
        >>> model = LSTMLM(43, 17, 17, tie_embeddings=True, key=jax.random.key(0))
        >>> logits, state = model(jnp.array([4, 8, 15]), model.initial_state())
        >>> logits.shape, state[0].shape
        ((3, 43), (1, 17))
        >>> gru = LSTMLM(43, 17, 17, cell="gru", tie_embeddings=True, output_bias=True, dropout=0.2,
        ...              key=jax.random.key(0))
    """

    embedding: Float[Array, "vocab embed"]
    cells: tuple[LSTMCell | GRUCell | RNNCell, ...]
    c0: Float[Array, "layers hidden"]
    head: eqx.nn.Linear | None
    head_bias: Float[Array, " vocab"] | None
    vocab_size: int = eqx.field(static=True)
    embed_dim: int = eqx.field(static=True)
    hidden_dim: int = eqx.field(static=True)
    num_layers: int = eqx.field(static=True)
    tie_embeddings: bool = eqx.field(static=True)
    cell: str = eqx.field(static=True)
    dropout: float = eqx.field(static=True)
    learn_initial_state: bool = eqx.field(static=True)

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_dim: int,
        *,
        num_layers: int = 1,
        tie_embeddings: bool = False,
        output_bias: bool | None = None,
        cell: str = "lstm",
        dropout: float = 0.0,
        init: str = "purelm",
        init_range: float | None = None,
        learn_initial_state: bool = True,
        key: PRNGKeyArray,
        dtype=None,
    ):
        cell_type, cell_kwargs = _cell_type(cell)
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
        theirs = init == "word_language_model"
        if init_range is None:
            init_range = WLM_INIT_RANGE if theirs else 3.0**0.5  # theirs, or unit-variance embeddings
        elif not (math.isfinite(init_range) and init_range > 0):
            raise ValueError(f"init_range must be a finite positive number, got {init_range}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if tie_embeddings and embed_dim != hidden_dim:
            raise ValueError(f"tie_embeddings needs embed_dim == hidden_dim, got {embed_dim} and {hidden_dim}")
        if output_bias is False and not tie_embeddings:
            raise ValueError("output_bias=False needs tie_embeddings=True: an untied head always has a bias")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        dtype = _dtype(dtype)
        bound = 1.0 / hidden_dim**0.5
        inputs = [embed_dim] + [hidden_dim] * (num_layers - 1)
        shapes: list[tuple[int, ...]] = [(vocab_size, embed_dim)]
        bounds = [init_range]
        per_layer = [cell_type.shapes(n_in, hidden_dim) for n_in in inputs]
        for layer_shapes in per_layer:
            shapes += layer_shapes
            bounds += [bound] * len(layer_shapes)
        if not tie_embeddings:
            shapes += [(vocab_size, hidden_dim), (vocab_size,)]
            # eqx.nn.Linear's own bounds, or their decoder: U(-initrange, initrange) and a zero bias.
            bounds += [init_range, 0.0] if theirs else [bound] * 2
        # torch draws `bias_hh` apart from `bias_ih`: the folded bias gets a second draw (appended, so the
        # other arrays are cut from the same places as with purelm's init).
        second = [(torch_bias_pair_size(cell, hidden_dim),) for _ in inputs] if theirs else []
        # One random draw for the whole model: each separate draw costs a compilation.
        pieces = _uniform_pieces(key, tuple(shapes + second), tuple(bounds + [bound] * len(second)), dtype)
        cells, start = [], 1
        for layer, (n_in, layer_shapes) in enumerate(zip(inputs, per_layer)):
            arrays = list(pieces[start : start + len(layer_shapes)])
            if theirs:
                extra = pieces[len(shapes) + layer]
                arrays[2] = arrays[2].at[: extra.size].add(extra)  # field order: weight_ih, weight_hh, bias
            cells.append(_with_arrays(cell_type, (n_in, hidden_dim), tuple(arrays), **cell_kwargs))
            start += len(layer_shapes)
        self.embedding = pieces[0]
        self.cells = tuple(cells)
        self.c0 = jnp.zeros((num_layers, hidden_dim), dtype)
        head = pieces[start : len(shapes)]
        self.head = None if tie_embeddings else _with_arrays(eqx.nn.Linear, (hidden_dim, vocab_size), head)
        # word_language_model starts its decoder bias at zero; zeros also leave the random draw above
        # (and so every existing model's initial weights) unchanged.
        self.head_bias = jnp.zeros((vocab_size,), dtype) if tie_embeddings and output_bias else None
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.tie_embeddings = tie_embeddings
        self.cell = cell
        self.dropout = float(dropout)
        self.learn_initial_state = bool(learn_initial_state)

    @property
    def output_bias(self) -> bool:
        """Whether the head adds a bias (always for an untied head); the constructor's `output_bias`."""
        return self.head is not None or self.head_bias is not None

    def head_params(self) -> tuple[Float[Array, "vocab hidden"], Float[Array, " vocab"] | None]:
        """The output layer `(weight, bias)`: `logits = weight @ h (+ bias)`, tied or not; `bias` may be None."""
        if self.head is None:
            return self.embedding, self.head_bias
        return self.head.weight, self.head.bias

    def initial_state(self) -> State:
        """The initial state `(tanh(c0), c0)`: learnable, or with `learn_initial_state=False` held where it
        is (zero for a new model) by a stopped gradient."""
        c0 = self.c0 if self.learn_initial_state else jax.lax.stop_gradient(self.c0)
        return jnp.tanh(c0), c0

    def project(self, h_top: Float[Array, " hidden"]) -> Float[Array, " vocab"]:
        """Next-token scores from the top layer's `h` (tied: `embedding @ h`, plus the bias if any)."""
        weight, bias = self.head_params()
        logits = weight @ h_top
        return logits if bias is None else logits + bias

    def next_logits(self, state: State) -> Float[Array, " vocab"]:
        """Scores for the next token given a state."""
        return self.project(state[0][-1])

    def step(self, token: Int[Array, ""], state: State) -> State:
        """Feed one token through every layer."""
        x = self.embedding[token]
        hs, cs = [], []
        for layer, cell in enumerate(self.cells):
            h, c = cell(x, (state[0][layer], state[1][layer]))
            hs.append(h)
            cs.append(c)
            x = h
        return jnp.stack(hs), jnp.stack(cs)

    def __call__(self, tokens: Int[Array, " seq"], state: State) -> tuple[Float[Array, "seq vocab"], State]:
        """`logits[t]` scores `tokens[t]` given `state` and `tokens[:t]`; the new state has read all tokens."""
        xs = self.embedding[tokens]
        hs, cs = [], []
        # Layer by layer over the whole sequence, so each layer's input projection is one matmul.
        for layer, cell in enumerate(self.cells):
            xs, (h, c) = cell.scan(xs, (state[0][layer], state[1][layer]))
            hs.append(h)
            cs.append(c)
        # Position t is scored from the top state *before* reading tokens[t].
        h_in = jnp.concatenate([state[0][-1][None], xs])[:-1]
        return jax.vmap(self.project)(h_in), (jnp.stack(hs), jnp.stack(cs))


def batch_initial_state(
    model: LSTMLM, batch_size: int
) -> tuple[Float[Array, "batch layers hidden"], Float[Array, "batch layers hidden"]]:
    """The model's initial state repeated for `batch_size` sequences.

    Example:
        >>> h, c = batch_initial_state(model, 8)   # each (8, layers, hidden)
    """
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (batch_size, *x.shape)), model.initial_state())


def torch_bias_pair_size(cell: str, hidden: int) -> int:
    """How many leading entries of a cell's folded bias are torch's `bias_ih + bias_hh` (a GRU's n rows
    hold `bias_ih` alone: its `bias_hh` part is `bias_hn`)."""
    return {"lstm": 4 * hidden, "gru": 2 * hidden}.get(cell, hidden)


def _dtype(dtype):
    return jnp.float32 if dtype is None else dtype


@partial(jax.jit, static_argnums=(1, 2, 3))
def _uniform_pieces(key: PRNGKeyArray, shapes: tuple, bounds: tuple, dtype) -> tuple[Array, ...]:
    """Arrays of the given shapes, each U(-bound, bound), cut from one draw."""
    sizes = [math.prod(shape) for shape in shapes]
    flat = jax.random.uniform(key, (sum(sizes),), dtype, -1.0, 1.0)
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    return tuple(
        bound * flat[start : start + size].reshape(shape)
        for start, size, shape, bound in zip(offsets, sizes, shapes, bounds)
    )


def _with_arrays(module_type, sizes: tuple, arrays: tuple, **kwargs):
    """A `module_type(*sizes, **kwargs)` whose array leaves (in order) are `arrays`, without drawing weights."""
    dtype = arrays[0].dtype
    skeleton = eqx.filter_eval_shape(module_type, *sizes, key=jax.random.key(0), dtype=dtype, **kwargs)
    return jax.tree.unflatten(jax.tree.structure(skeleton), arrays)
