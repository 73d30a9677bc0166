"""The optimizer a run's settings describe (`make_optimizer`), with the learning rate as saved state that
plateau annealing and a resume may change (`learning_rate`, `with_learning_rate`)."""

from __future__ import annotations

import jax.numpy as jnp

from purelm.training._config import OptimConfig, ScheduleConfig


def make_optimizer(optim: OptimConfig, schedule: ScheduleConfig):
    """The optax transformation for these settings, with the learning rate as injected (saved) state.

    >>> opt = make_optimizer(OptimConfig(optimizer="sgd", lr=20.0), ScheduleConfig())
    >>> state = opt.init({"w": jnp.zeros(3)})
    >>> float(state.hyperparams["learning_rate"])
    20.0
    """
    import optax  # here, not at the top: sample and eval never need it, and it costs 0.4 s of every command

    return optax.inject_hyperparams(_transformation(optim, schedule))(learning_rate=optim.lr)


def _transformation(optim: OptimConfig, schedule: ScheduleConfig):
    import optax

    decay = optim.decay()

    def transformation(learning_rate):
        parts = []
        # torch's two biases: both in the clipped norm (sqrt 2 before), and their sum moves by both (after).
        bias_pairs = [_scale_bias_pairs(2**0.5)] if optim.torch_bias_grad else []
        parts += bias_pairs
        if optim.grad_clip > 0:
            parts.append(optax.clip_by_global_norm(optim.grad_clip))
        parts += bias_pairs
        if optim.optimizer == "adamw":
            parts.append(optax.adamw(learning_rate, weight_decay=decay))
        else:
            # torch's SGD and Adam add weight_decay * param to the gradient (L2), unlike AdamW.
            if decay:
                parts.append(optax.add_decayed_weights(decay))
            parts.append(optax.sgd(learning_rate) if optim.optimizer == "sgd" else optax.adam(learning_rate))
        if schedule.warmup or schedule.kind != "constant":
            parts.append(optax.scale_by_schedule(schedule.multiplier))
        return optax.chain(*parts)

    return transformation


def _scale_bias_pairs(factor: float):
    """An optax transformation multiplying the gradient of the part of each cell's folded bias that stands
    for torch's `bias_ih + bias_hh` (`torch_bias_pair_size`) by `factor`; updates of any other shape pass."""
    import equinox as eqx
    import optax

    from purelm._model._lstmlm import LSTMLM, torch_bias_pair_size

    def scale(updates, params=None):
        if not isinstance(updates, LSTMLM):
            return updates
        size = torch_bias_pair_size(updates.cell, updates.hidden_dim)
        biases = [cell.bias.at[:size].multiply(factor) for cell in updates.cells]
        return eqx.tree_at(lambda model: [cell.bias for cell in model.cells], updates, biases)

    return optax.stateless(scale)


def learning_rate(opt_state) -> float:
    """The (annealed) learning rate stored in an optimizer state from `make_optimizer`."""
    return float(opt_state.hyperparams["learning_rate"])


def with_learning_rate(opt_state, value: float):
    """`opt_state` with its learning rate replaced (plateau annealing, or a new `--lr` on resume)."""
    old = opt_state.hyperparams["learning_rate"]
    hyperparams = dict(opt_state.hyperparams, learning_rate=jnp.asarray(value, old.dtype))
    return opt_state._replace(hyperparams=hyperparams)
