"""Held-out loss: the core's `batch_loss` over consecutive windows, the state carried, in one jit."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from purelm._model import LSTMLM, batch_initial_state
from purelm._train import batch_loss


@eqx.filter_jit
def mean_loss(model: LSTMLM, windows: Int[Array, "windows batch seq"]) -> Float[Array, ""]:
    """Mean negative log-likelihood per token (nats) of `windows`, each row one contiguous stream.

    Window `w + 1` of a row continues from the state after window `w` (as in training), so the number
    matches what a truncated-BPTT-trained model sees.

    >>> mean_loss(model, eval_windows(corpus.val, 32, 64))  # doctest: +SKIP
    """

    def body(states, batch):
        total, states = batch_loss(model, batch, states, reduction="sum")
        return states, total

    _, totals = jax.lax.scan(body, batch_initial_state(model, windows.shape[1]), windows)
    return jnp.sum(totals) / windows.size


def bits_per_byte(nats: float) -> float:
    """Convert a per-byte loss in nats to bits.

    >>> round(bits_per_byte(math.log(256)), 6)  # a uniform guess over 256 bytes
    8.0
    """
    return nats / math.log(2)
