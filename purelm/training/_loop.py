"""How the training loop ends (`Result`, `TrainingError`) and its pieces that hold no state of the run:
the losses of the calls in flight, the divergence test, the length of the next call."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence

import jax
import numpy as np


class TrainingError(RuntimeError):
    """Training cannot go on (the loss diverged); the last good checkpoint is left as it was."""


class SaveError(OSError):
    """A file of the run could not be written (a full disk, a lost permission): the message names the file
    and the checkpoint that is intact; the `OSError` met is the `__cause__`."""


@dataclasses.dataclass(frozen=True)
class Result:
    """How `Run.train` ended: `status` is "done", "nothing" (already at the target), "early_stop",
    "stopped" (a stop was requested, or Ctrl-C) or "diverged"; `message` says it in one line."""

    status: str
    step: int
    message: str = ""
    train: dict | None = None
    eval: dict | None = None


def _on_host(losses: list) -> np.ndarray:
    """Every loss of a list of per-call loss arrays, as one float32 host array."""
    return np.concatenate([np.asarray(x, np.float32) for x in jax.device_get(losses)])


def _mean(losses: list) -> float:
    return float(np.mean(_on_host(losses)))


class Losses:
    """The losses of one `train()`'s compiled calls: those of the calls since the last logging, validation
    or checkpoint step (`pending`, on the device), and those collected since the last log line."""

    def __init__(self):
        self.calls = 0
        self.pending: list[jax.Array] = []
        self.unlogged: list[np.ndarray] = []

    def add(self, losses: jax.Array) -> None:
        """A call was dispatched. Steps are dispatched asynchronously: this waits for the call before it, so
        that at most two are in flight (Python prepares the next batch while one runs) and a signal, a stop
        request or the final save never waits behind a queue of dispatched steps."""
        self.calls += 1
        self.pending.append(losses)
        if len(self.pending) > 1:
            self.pending[-2].block_until_ready()

    def pending_mean(self) -> Callable[[], float]:
        """The mean of the pending losses, computed (waiting for them) only when called."""
        return functools.partial(_mean, list(self.pending))

    def collect(self) -> np.ndarray:
        """The pending losses, on the host; none is pending afterwards."""
        values, self.pending = _on_host(self.pending), []
        return values

    def keep(self, values: np.ndarray) -> None:
        self.unlogged.append(values)

    def logged_mean(self) -> float:
        """The mean of the losses kept since the last log line, which this one is."""
        nats, self.unlogged = float(np.mean(np.concatenate(self.unlogged))), []
        return nats


def diverged(values: np.ndarray, divergence: float, vocab_size: int, unit: str) -> str | None:
    """What is wrong with the training losses `values`, or None: a non-finite loss, or (with `divergence`
    set) a mean above `divergence` times a uniform guess's."""
    if not np.all(np.isfinite(values)):
        bad = values[~np.isfinite(values)][0]
        return f"loss {bad} (non-finite)"
    limit = divergence * math.log(vocab_size)
    mean = float(np.mean(values))
    if divergence and mean > limit:
        return f"mean loss {mean:.4g} nats per {unit}, over {divergence:g} x a uniform guess ({limit:.4g})"
    return None


def steps_in_next_call(done: int, total: int, steps_per_call: int, cadences: Sequence[int]) -> int:
    """Steps in the next compiled call: `steps_per_call`, cut short so that every step that logs, evaluates
    or saves (a multiple of one of `cadences`; 0: never) is the last step of a call, and the run ends at
    `total`."""
    return min(steps_per_call, total - done, *(every - done % every for every in cadences if every))
