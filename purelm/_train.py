"""Losses and the compiled training step (truncated backpropagation through time)."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from purelm._fused import batch_token_log_probs
from purelm._jit import filter_jit
from purelm._model import LSTMLM, State, batch_initial_state


def token_log_probs(
    model: LSTMLM, tokens: Int[Array, "seq"], state: State | None = None
) -> tuple[Float[Array, "seq"], State]:
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


def sequence_loss(model: LSTMLM, tokens: Int[Array, "seq"], state: State | None = None) -> tuple[Float[Array, ""], State]:
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
    total = -jnp.sum(log_probs, dtype=jnp.promote_types(log_probs.dtype, jnp.float32))
    if reduction == "sum":
        return total, states
    if reduction == "mean":
        return total / tokens.size, states
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def _update(optimizer: optax.GradientTransformation, loss: Callable) -> Callable:
    """One training step, uncompiled: loss and gradients, optimizer update, states with gradients stopped."""

    def update(model, opt_state, batch, states, key=None):
        # Custom losses without dropout keep the three-argument signature: the key is passed only if given.
        kwargs = {} if key is None else {"key": key}
        (value, states), grads = eqx.filter_value_and_grad(loss, has_aux=True)(model, batch, states, **kwargs)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        model = eqx.apply_updates(model, updates)
        return model, opt_state, jax.lax.stop_gradient(states), value

    return update


def make_train_step(
    optimizer: optax.GradientTransformation,
    *,
    loss: Callable[..., tuple[Float[Array, ""], State]] = batch_loss,
) -> Callable:
    """Build `step(model, opt_state, batch, states, key=None) -> (model, opt_state, states, loss)`, compiled once.

    The returned states went through `jax.lax.stop_gradient`: the next window continues from them
    without backpropagating into this one (truncated BPTT). Pass `states=None` to start from the
    model's learnable initial state, and a PRNG `key` (a fresh one per step) to train with dropout;
    the key reaches `loss` as `loss(model, batch, states, key=key)`.

    Example:
        >>> optimizer = optax.adam(1e-3)
        >>> opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
        >>> step = make_train_step(optimizer)
        >>> model, opt_state, states, loss = step(model, opt_state, batch, None)
    """
    return filter_jit(_update(optimizer, loss))


def make_train_steps(
    optimizer: optax.GradientTransformation,
    *,
    loss: Callable[..., tuple[Float[Array, ""], State]] = batch_loss,
) -> Callable:
    """Build `steps(model, opt_state, batches, states, restart=None, key=None) -> (model, opt_state, states, losses)`:
    one compiled call that makes `batches.shape[0]` consecutive training steps, a `jax.lax.scan` over the
    windows.

    It computes exactly what calling `make_train_step`'s step on `batches[0]`, `batches[1]`, ... in turn
    computes (the tests compare them bit for bit on CPU), with one dispatch from Python instead of one per
    window. For small models that per-call overhead (flattening the arguments, dispatch, allocating the
    step's buffers) is a large share of a step; this is how `purelm train --steps-per-call` runs.

    Window `k` starts from the model's learnable initial state where `restart[k]` is true (a new epoch,
    say; `c0` then gets its gradient, as with `states=None` in a single step), and from the state the
    window before left otherwise. `states=None` restarts the first window. `restart` is an ordinary
    input, so every call with the same number of windows reuses one compilation.

    With a PRNG `key` (dropout), window `k` uses `jax.random.split(key, batches.shape[0])[k]`, so the
    call still equals single steps given those keys.

    Example:
        >>> steps = make_train_steps(optax.adam(1e-3))
        >>> batches = jnp.stack([batch_0, batch_1, batch_2])                # [windows, batch, seq]
        >>> model, opt_state, states, losses = steps(model, opt_state, batches, None)
        >>> losses.shape
        (3,)
    """

    @filter_jit
    def compiled(model, opt_state, batches, states, restart, key):
        params, static = eqx.partition(model, eqx.is_array)
        keys = None if key is None else jax.random.split(key, batches.shape[0])

        def one(carry, window):
            params, opt_state, carried = carry
            batch, fresh, window_key = window

            def restarted_loss(model, batch, carried, **kwargs):
                # A select, not a branch: where `fresh`, the state is the model's own initial state, so
                # the loss (and c0's gradient) is what `states=None` gives.
                initial = batch_initial_state(model, batch.shape[0])
                return loss(model, batch, jax.tree.map(lambda a, b: jnp.where(fresh, a, b), initial, carried), **kwargs)

            step = _update(optimizer, restarted_loss)
            model, opt_state, states, value = step(eqx.combine(params, static), opt_state, batch, carried, window_key)
            return (eqx.filter(model, eqx.is_array), opt_state, states), value

        (params, opt_state, states), values = jax.lax.scan(
            one, (params, opt_state, states), (batches, restart, keys)
        )
        return eqx.combine(params, static), opt_state, states, values

    def steps(model, opt_state, batches, states, restart=None, key=None):
        windows = batches.shape[0]
        restart = jnp.zeros(windows, bool) if restart is None else jnp.asarray(restart, bool)
        if states is None:
            states = batch_initial_state(model, batches.shape[1])
            restart = restart.at[0].set(True)
        return compiled(model, opt_state, batches, states, restart, key)

    return steps


def train_tutorial(
    model: LSTMLM, data, *, window: int = 3, learning_rate: float = 0.1, epochs: int = 101
) -> tuple[LSTMLM, list[float]]:
    """The tutorial's loop: plain SGD on summed loss, windows of `window` tokens, state carried
    between windows (gradient stopped) and reset to the learnable initial state every epoch.

    Returns the trained model and each epoch's total loss.

    Example:
        >>> model, losses = train_tutorial(model, jnp.array([4, 8, 15, 16, 23, 42]))
    """
    optimizer = optax.sgd(learning_rate)
    step = make_train_step(optimizer, loss=_summed_batch_loss)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    data = jnp.asarray(data)
    epoch_losses = []
    for _ in range(epochs):
        states = None
        total = jnp.zeros(())
        for start in range(0, data.shape[0], window):
            batch = data[None, start : start + window]
            model, opt_state, states, loss = step(model, opt_state, batch, states)
            total = total + loss
        epoch_losses.append(total)
    # One host transfer at the end instead of a sync per step.
    return model, [float(x) for x in jax.device_get(epoch_losses)]


def _summed_batch_loss(model, tokens, states):
    return batch_loss(model, tokens, states, reduction="sum")
