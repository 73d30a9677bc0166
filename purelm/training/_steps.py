"""The compiled training step (truncated backpropagation through time), one window or several per call,
and the tutorial's training loop."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float

from purelm._model._lstmlm import LSTMLM, State, batch_initial_state
from purelm._runtime._jit import filter_jit
from purelm.training._losses import batch_loss


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

        (params, opt_state, states), values = jax.lax.scan(one, (params, opt_state, states), (batches, restart, keys))
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
