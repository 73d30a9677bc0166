"""A fast batched LSTM layer over a whole window, with a hand-written backward pass.

The per-sequence model (`LSTMCell` under `jax.vmap` and `jax.lax.scan`) is the readable definition;
this module computes exactly the same numbers for a whole batch at once, laid out time-major
(`[seq, batch, ...]`) so that every step of the recurrence is one matmul for the whole batch. Its
backward pass is the one cuDNN uses: the reverse scan only carries `(dh, dc)` and emits the gate
gradients of every step; the weight gradients are then a few large matmuls outside the loop, instead
of one small outer product per step as plain autodiff of the scan produces. GRU and Elman RNN layers
(`gru_recurrence`, `rnn_recurrence`) are built the same way.

Usage:

    >>> import jax, jax.numpy as jnp
    >>> from purelm._model._fused import lstm_layer
    >>> seq, batch, inp, hid = 5, 3, 4, 6
    >>> k = jax.random.split(jax.random.key(0), 3)
    >>> w_ih = jax.random.normal(k[0], (4 * hid, inp))
    >>> w_hh = jax.random.normal(k[1], (4 * hid, hid))
    >>> xs = jax.random.normal(k[2], (seq, batch, inp))
    >>> h0 = c0 = jnp.zeros((batch, hid))
    >>> hs, (h, c) = lstm_layer(w_ih, w_hh, jnp.zeros(4 * hid), xs, h0, c0)
    >>> hs.shape, h.shape
    ((5, 3, 6), (3, 6))
"""

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from purelm._model._xent import head_log_probs

__all__ = [
    "batch_token_log_probs",
    "dropout_masks",
    "gru_recurrence",
    "lstm_layer",
    "lstm_layers",
    "lstm_lm_window",
    "lstm_recurrence",
    "rnn_recurrence",
    "scan_lm_window",
]

# What a layer returns: the hidden state after every step, and the final `(h, c)`.
LayerOutput = tuple[Float[Array, "seq batch hidden"], tuple[Float[Array, "batch hidden"], Float[Array, "batch hidden"]]]


def _sigmoid(x):
    # The same function as jax.nn.sigmoid, written with tanh: XLA's CPU tanh is a short rational
    # approximation, cheaper than the exp and divide that `logistic` becomes.
    return 0.5 * jnp.tanh(0.5 * x) + 0.5


def _gates(pre: Float[Array, "4*hidden batch"]) -> tuple[Array, Array, Array, Array]:
    i, f, g, o = jnp.split(pre, 4)
    return _sigmoid(i), _sigmoid(f), jnp.tanh(g), _sigmoid(o)


# Inside the recurrence every array is feature-major (`[..., features, batch]`), so each step's matmul
# is `weight [4H, H] @ h [H, batch]`: the weight is the large, contiguous left operand, which XLA's
# CPU dot runs markedly faster than `h [batch, H] @ weight.T` on a 2-core x86 CPU, and no slower
# elsewhere (docs/purelm-performance.md).
# The public functions take and return the usual `[seq, batch, features]`. The transposes between the
# two layouts happen one step at a time inside the loops' fusions (reading the step's projection, storing
# `h` and the gate gradients as rows), not as copies of whole windows: on CPU every window-sized buffer
# costs a pass over fresh memory on each call, more than the strided per-step accesses do.


def _forward(weight_hh, inputs, h0_t, c0_t, project):
    """The recurrence, keeping what the backward pass needs.

    `project(inputs[t])` gives step t's input projection as rows (`[batch, 4*hidden]`); it is read
    transposed inside the step's fusion, so no feature-major copy of the whole window is ever made.
    Stacked per step: `h` as rows (the layer's output), the cell state *entering* the step, and the gate
    activations.
    """

    def step(carry, x):
        h, c = carry
        i, f, g, o = _gates(weight_hh @ h + project(x).T)
        c_out = f * c + i * g
        h_out = o * jnp.tanh(c_out)
        return (h_out, c_out), (h_out.T, c, jnp.concatenate([i, f, g, o]))

    (h, c), (hs, c_ins, acts_t) = jax.lax.scan(step, (h0_t, c0_t), inputs)
    return hs, (h, c), (weight_hh, h0_t, hs, c, c_ins, acts_t)


def _backward(residuals, cotangents):
    """The reverse scan: carries `(dh, dc)` and the cell state, emits each step's gate gradients as rows.

    Returns the gradients of `weight_hh`, of every step's input projection (`[seq, batch, 4*hidden]`,
    rows, as `project` produced them), of `h0` and of `c0`.
    """
    weight_hh, h0_t, hs, c_last, c_ins, acts_t = residuals
    dhs, (dh_last, dc_last) = cotangents
    # Transposed once here, outside the loop, so that every step's matmul has a contiguous left operand.
    weight_hh_t = weight_hh.T

    def step(carry, inputs):
        dh_next, dc_next, c = carry
        dh_out, c_prev, act = inputs
        i, f, g, o = jnp.split(act, 4)
        dh = dh_out.T + dh_next
        tanh_c = jnp.tanh(c)
        dc = dc_next + dh * o * (1 - tanh_c * tanh_c)
        dpre = jnp.concatenate(
            [
                dc * g * i * (1 - i),
                dc * c_prev * f * (1 - f),
                dc * i * (1 - g * g),
                dh * tanh_c * o * (1 - o),
            ]
        )
        # The cell state entering this step is the one leaving the step before: carried, not re-read.
        return (weight_hh_t @ dpre, dc * f, c_prev), dpre.T

    (dh0_t, dc0_t, _), dxproj = jax.lax.scan(step, (dh_last.T, dc_last.T, c_last), (dhs, c_ins, acts_t), reverse=True)
    dweight_hh = _weight_hh_gradient(dxproj, _previous_states(h0_t, hs))
    return dweight_hh, dxproj, dh0_t.T, dc0_t.T


def _previous_states(h0_t, hs):
    """The hidden state entering each step (`[seq, batch, hidden]`): `h0` then every output but the last."""
    return jnp.concatenate([h0_t.T[None], hs[:-1]])


def _weight_hh_gradient(drec, h_prev):
    """`weight_hh`'s gradient from each step's gradient with respect to `weight_hh @ h` (`drec`, `[seq, batch,
    rows]`) and the states it multiplied (`h_prev`)."""
    # One big matmul over all steps and batch rows instead of a small outer product per step, written
    # as a plain 2-D product over the flattened (step, batch) rows, which XLA's CPU dot runs without
    # first transposing either operand.
    rows = drec.shape[0] * drec.shape[1]
    return jax.lax.dot_general(
        drec.reshape(rows, -1), h_prev.reshape(rows, -1), dimension_numbers=(((0,), (0,)), ((), ()))
    )


@jax.custom_vjp
def _recurrence(weight_hh, source, tokens, h0, c0):
    """The recurrence over `source` rows: the projections themselves (`tokens=None`, `[seq, batch, 4H]`),
    or a table of them (`[vocab, 4H]`) gathered by `tokens` inside the loop, one step at a time."""
    (hs, final), _ = _recurrence_fwd(weight_hh, source, tokens, h0, c0)
    return hs, final


def _recurrence_fwd(weight_hh, source, tokens, h0, c0):
    if tokens is None:
        inputs, project = source, lambda rows: rows
    else:
        inputs, project = tokens, lambda step_tokens: source[step_tokens]
    hs, (h, c), residuals = _forward(weight_hh, inputs, h0.T, c0.T, project)
    return (hs, (h.T, c.T)), (residuals, tokens, source.shape[0])


def _recurrence_bwd(saved, cotangents):
    residuals, tokens, vocab = saved
    dweight_hh, dxproj, dh0, dc0 = _backward(residuals, cotangents)
    if tokens is None:
        return dweight_hh, dxproj, None, dh0, dc0
    # The gradient of a gather is a scatter-add: one row per vocabulary entry.
    rows = dxproj.reshape(-1, dxproj.shape[-1])
    dtable = jnp.zeros((vocab, rows.shape[-1]), rows.dtype).at[tokens.reshape(-1)].add(rows)
    return dweight_hh, dtable, None, dh0, dc0


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def lstm_recurrence(
    weight_hh: Float[Array, "4*hidden hidden"],
    xproj: Float[Array, "seq batch 4*hidden"],
    h0: Float[Array, "batch hidden"],
    c0: Float[Array, "batch hidden"],
) -> LayerOutput:
    """The LSTM recurrence given the input projections `xproj[t] = weight_ih @ x[t] + bias`.

    Returns the hidden state after every step and the final `(h, c)`.
    """
    return _recurrence(weight_hh, xproj, None, h0, c0)


def lstm_layer(
    weight_ih: Float[Array, "4*hidden input"],
    weight_hh: Float[Array, "4*hidden hidden"],
    bias: Float[Array, " 4*hidden"],
    xs: Float[Array, "seq batch input"],
    h0: Float[Array, "batch hidden"],
    c0: Float[Array, "batch hidden"],
) -> LayerOutput:
    """One LSTM layer over a window for a batch (torch layout, gates i, f, g, o).

    The input projection of every step is one matmul before the loop, so its gradients
    (`weight_ih`, `bias`, `xs`) are single large matmuls as well.
    """
    return lstm_recurrence(weight_hh, xs @ weight_ih.T + bias, h0, c0)


def lstm_layers(
    params: Sequence[tuple[Array, Array, Array]],
    xs: Float[Array, "seq batch input"],
    h0: Float[Array, "batch layers hidden"],
    c0: Float[Array, "batch layers hidden"],
    masks: Sequence[Array] | None = None,
) -> tuple[
    Float[Array, "seq batch hidden"], tuple[Float[Array, "batch layers hidden"], Float[Array, "batch layers hidden"]]
]:
    """A stack of layers; `params[k] = (weight_ih, weight_hh, bias)` of layer k.

    States use the batched layout of `purelm.State` (`[batch, layers, hidden]`). `masks[k]`, if given,
    multiplies layer k's input (dropout, see `dropout_masks`).
    """
    finals_h, finals_c = [], []
    for k, (weight_ih, weight_hh, bias) in enumerate(params):
        if masks is not None:
            xs = xs * masks[k]
        xs, (h, c) = lstm_layer(weight_ih, weight_hh, bias, xs, h0[:, k], c0[:, k])
        finals_h.append(h)
        finals_c.append(c)
    return xs, (jnp.stack(finals_h, axis=1), jnp.stack(finals_c, axis=1))


def lstm_lm_window(
    embedding: Float[Array, "vocab embed"],
    params: Sequence[tuple[Array, Array, Array]],
    tokens: Int[Array, "batch seq"],
    h0: Float[Array, "batch layers hidden"],
    c0: Float[Array, "batch layers hidden"],
    masks: Sequence[Array] | None = None,
) -> tuple[
    Float[Array, "seq batch hidden"], tuple[Float[Array, "batch layers hidden"], Float[Array, "batch layers hidden"]]
]:
    """Embed a batch of windows and run the layer stack: the top layer's hidden state after each token.

    When the window holds at least as many tokens as the vocabulary has entries (byte-level models),
    the first layer's input projection is gathered from `embedding @ weight_ih.T + bias`, one row per
    vocabulary entry, instead of being computed per token. Dropout on the embeddings (`masks[0]`, one
    mask per layer input as in `lstm_layers`) makes every token's input its own, so it turns that off.
    """
    (weight_ih, weight_hh, bias), rest = params[0], params[1:]
    if masks is None and embedding.shape[0] <= tokens.size:
        # Each step gathers its rows inside the loop, so the window's projections are never materialised,
        # nor their gradient: it is scattered straight into the table's.
        table = embedding @ weight_ih.T + bias
        hs, (h, c) = _recurrence(weight_hh, table, tokens.T, h0[:, 0], c0[:, 0])
    else:
        xs = embedding[tokens.T]
        if masks is not None:
            xs = xs * masks[0]
        hs, (h, c) = lstm_recurrence(weight_hh, xs @ weight_ih.T + bias, h0[:, 0], c0[:, 0])
    if not rest:
        return hs, (h[:, None], c[:, None])
    hs, (hr, cr) = lstm_layers(rest, hs, h0[:, 1:], c0[:, 1:], None if masks is None else masks[1:])
    return hs, (jnp.concatenate([h[:, None], hr], axis=1), jnp.concatenate([c[:, None], cr], axis=1))


def scan_lm_window(
    model,
    tokens: Int[Array, "batch seq"],
    h0: Float[Array, "batch layers hidden"],
    c0: Float[Array, "batch layers hidden"],
    masks: Sequence[Array] | None = None,
) -> tuple[
    Float[Array, "seq batch hidden"], tuple[Float[Array, "batch layers hidden"], Float[Array, "batch layers hidden"]]
]:
    """`lstm_lm_window` for GRU and RNN models: each layer's input projection is one matmul, then
    `gru_recurrence` or `rnn_recurrence` (hand-written backward passes, like the LSTM's). Same arguments
    and layout as `lstm_lm_window`; `c` is carried through unchanged, as the cells do."""
    xs = model.embedding[tokens.T]
    finals = []
    for k, cell in enumerate(model.cells):
        if masks is not None:
            xs = xs * masks[k]
        xproj = xs @ cell.weight_ih.T + cell.bias
        if model.cell == "gru":
            xs, h = gru_recurrence(cell.weight_hh, cell.bias_hn, xproj, h0[:, k])
        else:
            xs, h = rnn_recurrence(cell.nonlinearity, cell.weight_hh, xproj, h0[:, k])
        finals.append(h)
    return xs, (jnp.stack(finals, axis=1), c0)


def dropout_masks(model, key, shape: tuple[int, ...]) -> tuple[Float[Array, "seq batch features"], ...] | None:
    """word_language_model's dropout as multiplicative masks for a `[batch, seq]` window of tokens.

    One mask per layer input (the embeddings, then each layer's output feeding the next) and a last one
    for the top layer's output before the head, each `[seq, batch, features]` holding 0 or `1 / (1 -
    rate)` (inverted dropout, as torch's). `None` when `key` is None or `model.dropout` is 0: evaluation,
    scoring and sampling pass no key.
    """
    if key is None or model.dropout == 0:
        return None
    batch, seq = shape
    keep = 1.0 - model.dropout
    dtype = model.embedding.dtype
    widths = [model.embed_dim] + [model.hidden_dim] * model.num_layers
    keys = jax.random.split(key, len(widths))
    return tuple(
        jax.random.bernoulli(k, keep, (seq, batch, width)).astype(dtype) / keep for k, width in zip(keys, widths)
    )


# GRU and Elman RNN layers, the same way: the reverse scan carries only `dh` and emits each step's gradient
# with respect to `weight_hh @ h` as rows; `weight_hh`'s gradient is one matmul after the loop.


def _gru_forward(weight_hh, bias_hn, xproj, h0_t):
    def step(h, x):
        pre_r, pre_z, pre_n = jnp.split(x.T, 3)
        rec_r, rec_z, rec_n = jnp.split(weight_hh @ h, 3)
        r = _sigmoid(pre_r + rec_r)
        z = _sigmoid(pre_z + rec_z)
        m = rec_n + bias_hn[:, None]
        n = jnp.tanh(pre_n + r * m)
        h_out = n + z * (h - n)
        return h_out, (h_out.T, jnp.concatenate([r, z, n, m]))

    h, (hs, acts) = jax.lax.scan(step, h0_t, xproj)
    return hs, h, acts


def _gru_backward(weight_hh, h0_t, hs, acts, dhs, dh_last):
    weight_hh_t = weight_hh.T
    h_prev = _previous_states(h0_t, hs)

    def step(dh_next, inputs):
        dh_out, act, h_in = inputs
        r, z, n, m = jnp.split(act, 4)
        dh = dh_out.T + dh_next
        dpn = dh * (1 - z) * (1 - n * n)
        dm = dpn * r
        dpr = dpn * m * r * (1 - r)
        dpz = dh * (h_in.T - n) * z * (1 - z)
        drec = jnp.concatenate([dpr, dpz, dm])
        return weight_hh_t @ drec + dh * z, (drec.T, jnp.concatenate([dpr, dpz, dpn]).T)

    dh0_t, (drec, dxproj) = jax.lax.scan(step, dh_last.T, (dhs, acts, h_prev), reverse=True)
    hidden = h0_t.shape[0]
    dbias_hn = jnp.sum(drec.reshape(-1, drec.shape[-1])[:, 2 * hidden :], axis=0)
    return _weight_hh_gradient(drec, h_prev), dbias_hn, dxproj, dh0_t.T


@jax.custom_vjp
def gru_recurrence(
    weight_hh: Float[Array, "3*hidden hidden"],
    bias_hn: Float[Array, " hidden"],
    xproj: Float[Array, "seq batch 3*hidden"],
    h0: Float[Array, "batch hidden"],
) -> tuple[Float[Array, "seq batch hidden"], Float[Array, "batch hidden"]]:
    """The GRU recurrence (nn.GRU's gates r, z, n) given the input projections `xproj[t] = weight_ih @ x[t] +
    bias`: the hidden state after every step and the final one."""
    hs, h, _ = _gru_forward(weight_hh, bias_hn, xproj, h0.T)
    return hs, h.T


def _gru_fwd(weight_hh, bias_hn, xproj, h0):
    hs, h, acts = _gru_forward(weight_hh, bias_hn, xproj, h0.T)
    return (hs, h.T), (weight_hh, h0.T, hs, acts)


def _gru_bwd(saved, cotangents):
    weight_hh, h0_t, hs, acts = saved
    dhs, dh_last = cotangents
    return _gru_backward(weight_hh, h0_t, hs, acts, dhs, dh_last)


gru_recurrence.defvjp(_gru_fwd, _gru_bwd)


def _activation(nonlinearity: str):
    if nonlinearity == "tanh":
        return jnp.tanh, lambda h: 1 - h * h
    # relu's derivative from its output: 1 where the output is positive.
    return jax.nn.relu, lambda h: (h > 0).astype(h.dtype)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def rnn_recurrence(
    nonlinearity: str,
    weight_hh: Float[Array, "hidden hidden"],
    xproj: Float[Array, "seq batch hidden"],
    h0: Float[Array, "batch hidden"],
) -> tuple[Float[Array, "seq batch hidden"], Float[Array, "batch hidden"]]:
    """The Elman recurrence `h' = act(xproj[t] + weight_hh @ h)` (nn.RNN, `nonlinearity` "tanh" or "relu"):
    the hidden state after every step and the final one."""
    hs, h = _rnn_forward(nonlinearity, weight_hh, xproj, h0.T)
    return hs, h.T


def _rnn_forward(nonlinearity, weight_hh, xproj, h0_t):
    act, _ = _activation(nonlinearity)

    def step(h, x):
        h_out = act(x.T + weight_hh @ h)
        return h_out, h_out.T

    h, hs = jax.lax.scan(step, h0_t, xproj)
    return hs, h


def _rnn_fwd(nonlinearity, weight_hh, xproj, h0):
    hs, h = _rnn_forward(nonlinearity, weight_hh, xproj, h0.T)
    return (hs, h.T), (weight_hh, h0.T, hs)


def _rnn_bwd(nonlinearity, saved, cotangents):
    weight_hh, h0_t, hs = saved
    dhs, dh_last = cotangents
    _, derivative = _activation(nonlinearity)
    weight_hh_t = weight_hh.T

    def step(dh_next, inputs):
        dh_out, h_out = inputs
        dpre = (dh_out.T + dh_next) * derivative(h_out.T)
        return weight_hh_t @ dpre, dpre.T

    dh0_t, dxproj = jax.lax.scan(step, dh_last.T, (dhs, hs), reverse=True)
    return _weight_hh_gradient(dxproj, _previous_states(h0_t, hs)), dxproj, dh0_t.T


rnn_recurrence.defvjp(_rnn_fwd, _rnn_bwd)


def batch_token_log_probs(
    model,
    tokens: Int[Array, "batch seq"],
    states: tuple[Array, Array],
    *,
    key=None,
    targets: Int[Array, "batch seq"] | None = None,
) -> tuple[Float[Array, "batch seq"], tuple[Float[Array, "batch layers hidden"], Float[Array, "batch layers hidden"]]]:
    """`jax.vmap(purelm.token_log_probs)` for an `LSTMLM`, computed by the fused layers.

    `states` are batched (`[batch, layers, hidden]` each). As in the per-sequence model, `tokens[:, t]`
    is scored from the top layer's state *before* reading it; the returned states have read every token.
    With `targets`, `targets[:, t]` is scored instead, from the state *after* reading `tokens[:, t]`
    (word_language_model's alignment: `targets` are the tokens shifted by one, so every scored token
    backpropagates through the whole window). LSTMs take `lstm_lm_window`, GRU and RNN models
    `scan_lm_window`. With a `key` (and `model.dropout > 0`) dropout is applied where word_language_model
    applies it (`dropout_masks`).

    Example:
        >>> log_probs, states = batch_token_log_probs(model, tokens, batch_initial_state(model, 8))
        >>> next_log_probs, _ = batch_token_log_probs(model, window[:, :-1], states, targets=window[:, 1:])
    """
    h0, c0 = states
    masks = dropout_masks(model, key, tokens.shape)
    layer_masks = None if masks is None else masks[:-1]
    if model.cell == "lstm":
        params = [(cell.weight_ih, cell.weight_hh, cell.bias) for cell in model.cells]
        hs, final = lstm_lm_window(model.embedding, params, tokens, h0, c0, layer_masks)
    else:
        hs, final = scan_lm_window(model, tokens, h0, c0, layer_masks)
    h_in = hs if targets is not None else jnp.concatenate([h0[None, :, -1], hs[:-1]])
    if masks is not None:
        h_in = h_in * masks[-1]
    # The output layer and log-softmax, chunked so that [tokens, vocab] logits never exist (purelm/_model/_xent.py).
    picked = head_log_probs(model, h_in, (tokens if targets is None else targets).T)
    return picked.T, final
