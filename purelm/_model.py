"""The LSTM language model as a pure Equinox pytree (torch's weight layout, gate order i, f, g, o)."""

import math
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

State = tuple[Float[Array, "layers hidden"], Float[Array, "layers hidden"]]


class LSTMCell(eqx.Module):
    """One LSTM step with torch's layout, so converting a torch cell is a plain copy.

    Example:
        >>> cell = LSTMCell(3, 5, key=jax.random.key(0))
        >>> h, c = cell(jnp.ones(3), (jnp.zeros(5), jnp.zeros(5)))
        >>> h.shape
        (5,)
    """

    weight_ih: Float[Array, "4*hidden input"]
    weight_hh: Float[Array, "4*hidden hidden"]
    bias: Float[Array, "4*hidden"]
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, *, key: PRNGKeyArray, dtype=None):
        # torch.nn.LSTM's initialisation: U(-1/sqrt(hidden), 1/sqrt(hidden)) for every weight.
        bound = 1.0 / hidden_size**0.5
        gates = 4 * hidden_size
        shapes = ((gates, input_size), (gates, hidden_size), (gates,))
        self.weight_ih, self.weight_hh, self.bias = _uniform_pieces(key, shapes, (bound,) * 3, _dtype(dtype))
        self.input_size = input_size
        self.hidden_size = hidden_size

    def recur(
        self, pre: Float[Array, "4*hidden"], state: tuple[Float[Array, "hidden"], Float[Array, "hidden"]]
    ) -> tuple[Float[Array, "hidden"], Float[Array, "hidden"]]:
        """The recurrent half of a step, given the input projection `weight_ih @ x + bias`."""
        h, c = state
        i, f, g, o = jnp.split(pre + self.weight_hh @ h, 4)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return h, c

    def __call__(
        self, x: Float[Array, "input"], state: tuple[Float[Array, "hidden"], Float[Array, "hidden"]]
    ) -> tuple[Float[Array, "hidden"], Float[Array, "hidden"]]:
        return self.recur(self.weight_ih @ x + self.bias, state)

    def scan(
        self, xs: Float[Array, "seq input"], state: tuple[Float[Array, "hidden"], Float[Array, "hidden"]]
    ) -> tuple[Float[Array, "seq hidden"], tuple[Float[Array, "hidden"], Float[Array, "hidden"]]]:
        """Run the cell over a whole sequence; returns every output `h` and the final state."""
        # The input projection does not depend on the state: one matmul for all steps.
        pres = xs @ self.weight_ih.T + self.bias

        def step(carry, pre):
            carry = self.recur(pre, carry)
            return carry, carry[0]

        state, hs = jax.lax.scan(step, state, pres)
        return hs, state


class LSTMLM(eqx.Module):
    """An LSTM language model: embedding, stacked LSTM cells, a learnable initial state and a head.

    With `tie_embeddings=True` the output projection is the embedding matrix itself (the tutorial's
    `logits = E @ h`, which needs `embed_dim == hidden_dim`); otherwise a separate `eqx.nn.Linear`.
    The initial state is learnable: `c0` per layer, and `h0 = tanh(c0)`.

    Example:
        >>> model = LSTMLM(43, 17, 17, tie_embeddings=True, key=jax.random.key(0))
        >>> logits, state = model(jnp.array([4, 8, 15]), model.initial_state())
        >>> logits.shape, state[0].shape
        ((3, 43), (1, 17))
    """

    embedding: Float[Array, "vocab embed"]
    cells: tuple[LSTMCell, ...]
    c0: Float[Array, "layers hidden"]
    head: eqx.nn.Linear | None
    vocab_size: int = eqx.field(static=True)
    embed_dim: int = eqx.field(static=True)
    hidden_dim: int = eqx.field(static=True)
    num_layers: int = eqx.field(static=True)
    tie_embeddings: bool = eqx.field(static=True)

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_dim: int,
        *,
        num_layers: int = 1,
        tie_embeddings: bool = False,
        key: PRNGKeyArray,
        dtype=None,
    ):
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if tie_embeddings and embed_dim != hidden_dim:
            raise ValueError(f"tie_embeddings needs embed_dim == hidden_dim, got {embed_dim} and {hidden_dim}")
        dtype = _dtype(dtype)
        gates, bound = 4 * hidden_dim, 1.0 / hidden_dim**0.5
        inputs = [embed_dim] + [hidden_dim] * (num_layers - 1)
        shapes, bounds = [(vocab_size, embed_dim)], [3.0**0.5]  # unit-variance embeddings
        for n_in in inputs:
            shapes += [(gates, n_in), (gates, hidden_dim), (gates,)]
            bounds += [bound] * 3
        if not tie_embeddings:
            shapes += [(vocab_size, hidden_dim), (vocab_size,)]  # eqx.nn.Linear's own bounds
            bounds += [bound] * 2
        # One random draw for the whole model: each separate draw costs a compilation.
        pieces = _uniform_pieces(key, tuple(shapes), tuple(bounds), dtype)
        self.embedding = pieces[0]
        self.cells = tuple(
            _with_arrays(LSTMCell, (n_in, hidden_dim), pieces[1 + 3 * layer : 4 + 3 * layer])
            for layer, n_in in enumerate(inputs)
        )
        self.c0 = jnp.zeros((num_layers, hidden_dim), dtype)
        head_pieces = pieces[1 + 3 * num_layers :]
        self.head = None if tie_embeddings else _with_arrays(eqx.nn.Linear, (hidden_dim, vocab_size), head_pieces)
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.tie_embeddings = tie_embeddings

    def initial_state(self) -> State:
        """The learnable initial state `(tanh(c0), c0)`."""
        return jnp.tanh(self.c0), self.c0

    def project(self, h_top: Float[Array, "hidden"]) -> Float[Array, "vocab"]:
        """Next-token scores from the top layer's `h` (tied: `embedding @ h`)."""
        if self.head is None:
            return self.embedding @ h_top
        return self.head(h_top)

    def next_logits(self, state: State) -> Float[Array, "vocab"]:
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

    def __call__(self, tokens: Int[Array, "seq"], state: State) -> tuple[Float[Array, "seq vocab"], State]:
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


def batch_initial_state(model: LSTMLM, batch_size: int) -> tuple[
    Float[Array, "batch layers hidden"], Float[Array, "batch layers hidden"]
]:
    """The model's initial state repeated for `batch_size` sequences.

    Example:
        >>> h, c = batch_initial_state(model, 8)   # each (8, layers, hidden)
    """
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (batch_size, *x.shape)), model.initial_state())


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


def _with_arrays(module_type, sizes: tuple, arrays: tuple):
    """A `module_type(*sizes)` whose array leaves (in order) are `arrays`, without drawing weights."""
    dtype = arrays[0].dtype
    skeleton = eqx.filter_eval_shape(module_type, *sizes, key=jax.random.key(0), dtype=dtype)
    return jax.tree.unflatten(jax.tree.structure(skeleton), arrays)
