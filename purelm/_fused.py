"""A fast batched LSTM layer over a whole window, with a hand-written backward pass.

The per-sequence model (`LSTMCell` under `jax.vmap` and `jax.lax.scan`) is the readable definition;
this module computes exactly the same numbers for a whole batch at once, laid out time-major
(`[seq, batch, ...]`) so that every step of the recurrence is one matmul for the whole batch. Its
backward pass is the one cuDNN uses: the reverse scan only carries `(dh, dc)` and emits the gate
gradients of every step; the weight gradients are then a few large matmuls outside the loop, instead
of one small outer product per step as plain autodiff of the scan produces.

Usage:

    >>> import jax, jax.numpy as jnp
    >>> from purelm._fused import lstm_layer
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

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

__all__ = ["batch_token_log_probs", "lstm_layer", "lstm_layers", "lstm_lm_window", "lstm_recurrence"]


def _gates(pre: Float[Array, "4*hidden batch"]) -> tuple[Array, Array, Array, Array]:
    i, f, g, o = jnp.split(pre, 4)
    return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


# Inside the recurrence every array is feature-major (`[..., features, batch]`), so each step's matmul
# is `weight [4H, H] @ h [H, batch]`: the weight is the large, contiguous left operand, which XLA's
# CPU dot handled markedly faster than `h [batch, H] @ weight.T` on this project's machine, and no
# slower elsewhere (docs/purelm-performance.md).
# The public functions take and return the usual `[seq, batch, features]` and transpose at the edges.


def _forward(weight_hh, xproj_t, h0_t, c0_t):
    """The recurrence, keeping what the backward pass needs: gate activations and cell states."""

    def step(carry, xp):
        h, c = carry
        i, f, g, o = _gates(xp + weight_hh @ h)
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), (h, c, jnp.concatenate([i, f, g, o]))

    (h, c), (hs_t, cs_t, acts_t) = jax.lax.scan(step, (h0_t, c0_t), xproj_t)
    return hs_t, (h, c), cs_t, acts_t


def _batch_major(x: Float[Array, "... features batch"]) -> Float[Array, "... batch features"]:
    return jnp.swapaxes(x, -1, -2)


@jax.custom_vjp
def lstm_recurrence(
    weight_hh: Float[Array, "4*hidden hidden"],
    xproj: Float[Array, "seq batch 4*hidden"],
    h0: Float[Array, "batch hidden"],
    c0: Float[Array, "batch hidden"],
) -> tuple[Float[Array, "seq batch hidden"], tuple[Float[Array, "batch hidden"], Float[Array, "batch hidden"]]]:
    """The LSTM recurrence given the input projections `xproj[t] = weight_ih @ x[t] + bias`.

    Returns the hidden state after every step and the final `(h, c)`.
    """
    (hs, final), _ = _recurrence_fwd(weight_hh, xproj, h0, c0)
    return hs, final


def _recurrence_fwd(weight_hh, xproj, h0, c0):
    h0_t, c0_t = h0.T, c0.T
    hs_t, (h, c), cs_t, acts_t = _forward(weight_hh, _batch_major(xproj), h0_t, c0_t)
    return (_batch_major(hs_t), (h.T, c.T)), (weight_hh, h0_t, c0_t, hs_t, cs_t, acts_t)


def _recurrence_bwd(residuals, cotangents):
    weight_hh, h0_t, c0_t, hs_t, cs_t, acts_t = residuals
    dhs, (dh_last, dc_last) = cotangents
    c_prev = jnp.concatenate([c0_t[None], cs_t[:-1]])
    # Transposed once here, outside the loop, so that every step's matmul has a contiguous left operand.
    weight_hh_t = weight_hh.T

    def step(carry, inputs):
        dh_next, dc_next = carry
        dh_out, c, cp, act = inputs
        i, f, g, o = jnp.split(act, 4)
        dh = dh_out + dh_next
        tanh_c = jnp.tanh(c)
        dc = dc_next + dh * o * (1 - tanh_c * tanh_c)
        dpre = jnp.concatenate(
            [
                dc * g * i * (1 - i),
                dc * cp * f * (1 - f),
                dc * i * (1 - g * g),
                dh * tanh_c * o * (1 - o),
            ]
        )
        return (weight_hh_t @ dpre, dc * f), dpre

    (dh0_t, dc0_t), dpres_t = jax.lax.scan(
        step, (dh_last.T, dc_last.T), (_batch_major(dhs), cs_t, c_prev, acts_t), reverse=True
    )
    h_prev = jnp.concatenate([h0_t[None], hs_t[:-1]])
    # One big matmul over all steps and batch rows instead of a small outer product per step.
    dweight_hh = jnp.einsum("tgb,thb->gh", dpres_t, h_prev)
    return dweight_hh, _batch_major(dpres_t), dh0_t.T, dc0_t.T


lstm_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def lstm_layer(
    weight_ih: Float[Array, "4*hidden input"],
    weight_hh: Float[Array, "4*hidden hidden"],
    bias: Float[Array, "4*hidden"],
    xs: Float[Array, "seq batch input"],
    h0: Float[Array, "batch hidden"],
    c0: Float[Array, "batch hidden"],
) -> tuple[Float[Array, "seq batch hidden"], tuple[Float[Array, "batch hidden"], Float[Array, "batch hidden"]]]:
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
) -> tuple[Float[Array, "seq batch hidden"], tuple[Float[Array, "batch layers hidden"], Float[Array, "batch layers hidden"]]]:
    """A stack of layers; `params[k] = (weight_ih, weight_hh, bias)` of layer k.

    States use the batched layout of `purelm.State` (`[batch, layers, hidden]`).
    """
    finals_h, finals_c = [], []
    for k, (weight_ih, weight_hh, bias) in enumerate(params):
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
) -> tuple[Float[Array, "seq batch hidden"], tuple[Float[Array, "batch layers hidden"], Float[Array, "batch layers hidden"]]]:
    """Embed a batch of windows and run the layer stack: the top layer's hidden state after each token.

    When the window holds at least as many tokens as the vocabulary has entries (byte-level models),
    the first layer's input projection is gathered from `embedding @ weight_ih.T + bias`, one row per
    vocabulary entry, instead of being computed per token.
    """
    (weight_ih, weight_hh, bias), rest = params[0], params[1:]
    if embedding.shape[0] <= tokens.size:
        xproj = (embedding @ weight_ih.T + bias)[tokens.T]
    else:
        xproj = embedding[tokens.T] @ weight_ih.T + bias
    hs, (h, c) = lstm_recurrence(weight_hh, xproj, h0[:, 0], c0[:, 0])
    if not rest:
        return hs, (h[:, None], c[:, None])
    hs, (hr, cr) = lstm_layers(rest, hs, h0[:, 1:], c0[:, 1:])
    return hs, (jnp.concatenate([h[:, None], hr], axis=1), jnp.concatenate([c[:, None], cr], axis=1))


def batch_token_log_probs(
    model, tokens: Int[Array, "batch seq"], states: tuple[Array, Array]
) -> tuple[Float[Array, "batch seq"], tuple[Float[Array, "batch layers hidden"], Float[Array, "batch layers hidden"]]]:
    """`jax.vmap(purelm.token_log_probs)` for an `LSTMLM`, computed by the fused layers.

    `states` are batched (`[batch, layers, hidden]` each). As in the per-sequence model, `tokens[:, t]`
    is scored from the top layer's state *before* reading it; the returned states have read every token.

    Example:
        >>> log_probs, states = batch_token_log_probs(model, tokens, batch_initial_state(model, 8))
    """
    h0, c0 = states
    params = [(cell.weight_ih, cell.weight_hh, cell.bias) for cell in model.cells]
    hs, final = lstm_lm_window(model.embedding, params, tokens, h0, c0)
    h_in = jnp.concatenate([h0[None, :, -1], hs[:-1]])
    if model.head is None:
        logits = h_in @ model.embedding.T
    else:
        logits = h_in @ model.head.weight.T
        if model.head.bias is not None:
            logits = logits + model.head.bias
    log_probs = jax.nn.log_softmax(logits)
    picked = jnp.take_along_axis(log_probs, tokens.T[..., None], axis=-1)[..., 0]
    return picked.T, final
