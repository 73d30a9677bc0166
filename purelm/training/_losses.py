"""Losses: the log-probability of each token, summed per sequence, and averaged (or summed) over a batch."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from purelm._model._fused import batch_token_log_probs
from purelm._model._lstmlm import LSTMLM, State, batch_initial_state


def token_log_probs(
    model: LSTMLM, tokens: Int[Array, " seq"], state: State | None = None
) -> tuple[Float[Array, " seq"], State]:
    """Log-probability of each token given the ones before it, and the state after the last one.

    `state=None` starts from the model's learnable initial state (so `c0` receives gradients).

    Example:
        >>> log_probs, state = token_log_probs(model, jnp.array([4, 8, 15]))
    """
    if state is None:
        state = model.initial_state()
    logits, state = model(tokens, state)
    log_probs = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(log_probs, tokens[:, None], axis=1)[:, 0], state


def sequence_loss(
    model: LSTMLM, tokens: Int[Array, " seq"], state: State | None = None
) -> tuple[Float[Array, ""], State]:
    """Summed negative log-likelihood in nats (the tutorial's `loss -= log_softmax(E @ h)[token]`).

    Example:
        >>> loss, state = sequence_loss(model, jnp.array([4, 8, 15]), model.initial_state())
    """
    log_probs, state = token_log_probs(model, tokens, state)
    return -jnp.sum(log_probs), state


def batch_loss(
    model: LSTMLM,
    tokens: Int[Array, "batch seq"],
    states: State | None = None,
    *,
    key: PRNGKeyArray | None = None,
    reduction: str = "mean",
) -> tuple[Float[Array, ""], State]:
    """Negative log-likelihood over a batch: mean per token (nats), or `reduction="sum"`.

    `states` are batched (`(batch, layers, hidden)` each); `None` starts every row from the
    model's initial state. Dropout (`model.dropout`) is applied if and only if a PRNG `key` is given.
    The sum is accumulated in float32 (or the model's dtype if wider), so bfloat16 models get a
    float32 loss.

    Example:
        >>> loss, states = batch_loss(model, tokens, batch_initial_state(model, tokens.shape[0]))
        >>> loss, states = batch_loss(model, tokens, states, key=jax.random.key(0))   # with dropout
    """
    if states is None:
        states = batch_initial_state(model, tokens.shape[0])
    # Same numbers as `jax.vmap(sequence_loss)` (tested), computed by the fused batched layers, whose
    # hand-written backward pass is several times faster on CPU (docs/purelm-performance.md).
    log_probs, states = batch_token_log_probs(model, tokens, states, key=key)
    return _reduce(log_probs, reduction), states


def next_token_loss(
    model: LSTMLM,
    window: Int[Array, "batch seq+1"],
    states: State | None = None,
    *,
    key: PRNGKeyArray | None = None,
    reduction: str = "mean",
) -> tuple[Float[Array, ""], State]:
    """`batch_loss` with word_language_model's alignment: read `window[:, :-1]`, score `window[:, 1:]`, each
    token from the state after reading the one before it (their `get_batch` gives `data`, `target` so).

    Both losses score `seq` tokens per row; here the window's first token is read inside the window, so
    every scored token backpropagates through the whole window, while `batch_loss` scores the first one from
    the carried (gradient-stopped) state. The returned states have read `window[:, :-1]`: the next window
    starts with the last token of this one, as theirs does.

    Example:
        >>> loss, states = next_token_loss(model, streams[:, 0:36], None)     # 35 scored tokens per row
    """
    if states is None:
        states = batch_initial_state(model, window.shape[0])
    log_probs, states = batch_token_log_probs(model, window[:, :-1], states, key=key, targets=window[:, 1:])
    return _reduce(log_probs, reduction), states


def _reduce(log_probs: Float[Array, "batch seq"], reduction: str) -> Float[Array, ""]:
    """The negative log-likelihood summed in float32 (or wider), or its mean per token."""
    total = -jnp.sum(log_probs, dtype=jnp.promote_types(log_probs.dtype, jnp.float32))
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / log_probs.size
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
