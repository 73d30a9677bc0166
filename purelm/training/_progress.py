"""Training progress: a one-line bar on a terminal, plain log lines everywhere else (logs, CI, pipes)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from purelm._data._metrics import format_loss


def format_duration(seconds: float) -> str:
    """`75.4` -> `"1:15"`, `3725` -> `"1:02:05"`."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_rate(tokens_per_s: float) -> str:
    """`12345.6` -> `"12.3k"`."""
    if tokens_per_s >= 1e6:
        return f"{tokens_per_s / 1e6:.2f}M"
    if tokens_per_s >= 1e3:
        return f"{tokens_per_s / 1e3:.1f}k"
    return f"{tokens_per_s:.0f}"


class Progress:
    """Reports steps, loss, tokens/s and ETA.

    On a TTY it redraws one bar in place (at most 10 times a second); otherwise it prints a plain line every
    `log_every` steps. `unit="byte"` shows the loss in bits per byte, anything else as a perplexity.
    Throughput counts from the `warmup`-th step on, so compilation does not skew it.

    >>> progress = Progress(total=100, start=0, tokens_per_step=2048)  # doctest: +SKIP
    >>> progress.update(1, loss=3.2)                                   # doctest: +SKIP
    """

    def __init__(
        self,
        total: int,
        start: int,
        tokens_per_step: int,
        *,
        log_every: int = 10,
        stream: TextIO | None = None,
        tty: bool | None = None,
        width: int = 24,
        warmup: int = 2,
        unit: str = "byte",
    ):
        self.total = total
        self.start = start
        self.tokens_per_step = tokens_per_step
        self.log_every = max(1, log_every)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.width = width
        self.warmup = warmup
        self.unit = unit
        self._clock_step: int | None = None
        self._clock_time = 0.0
        self._last_draw = 0.0
        self._bar_visible = False

    def tokens_per_s(self, step: int) -> float:
        """Throughput since the first step was reported (0 until two steps have been seen)."""
        if self._clock_step is None or step <= self._clock_step:
            return 0.0
        return (step - self._clock_step) * self.tokens_per_step / max(time.perf_counter() - self._clock_time, 1e-9)

    def eta(self, step: int) -> float | None:
        rate = self.tokens_per_s(step)
        return (self.total - step) * self.tokens_per_step / rate if rate else None

    def line(self, step: int, loss: float) -> str:
        eta = self.eta(step)
        rate = self.tokens_per_s(step)
        width = len(str(self.total))
        return (
            f"step {step:>{width}}/{self.total}  loss {loss:.4f} ({format_loss(loss, self.unit, 'short')})  "
            f"{format_rate(rate) if rate else '-'} tok/s  ETA {format_duration(eta) if eta is not None else '-'}"
        )

    def update(self, step: int, loss: float | None = None, *, loss_fn=None) -> None:
        """Report that `step` steps are done; `loss_fn()` is called only when the loss is displayed."""
        now = time.perf_counter()
        if self._clock_step is None and step - self.start >= min(self.warmup, self.total - self.start):
            self._clock_step, self._clock_time = step, now
        if self.tty:
            if now - self._last_draw < 0.1 and step < self.total:
                return
            self._last_draw = now
            loss = loss if loss is not None else loss_fn()
            filled = int(self.width * (step - self.start) / max(1, self.total - self.start))
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r[{bar}] {self.line(step, loss)}\x1b[K")
            self._bar_visible = True
        elif step % self.log_every == 0 or step == self.total:
            loss = loss if loss is not None else loss_fn()
            self.stream.write(self.line(step, loss) + "\n")
        self.stream.flush()

    def exclude(self, seconds: float) -> None:
        """Leave `seconds` (spent evaluating or saving) out of the throughput and ETA."""
        self._clock_time += seconds

    def message(self, text: str) -> None:
        """Print a full line (e.g. an evaluation result) without breaking the bar."""
        if self._bar_visible:
            self.stream.write("\r\x1b[K")
            self._bar_visible = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._bar_visible:
            self.stream.write("\n")
            self._bar_visible = False
        self.stream.flush()
