"""The hooks a training run calls (`Run.train`): subclass `Callback` and override what you need."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from purelm.training._loop import Result


class Callback:
    """Hooks `Run.train` calls; override what you need. Every method gets the run (a `Run`) first. `on_record` gets
    every metrics record once it is complete and written to metrics.jsonl (a tracker's hook); `on_log` and
    `on_eval` get the log and validation records as they are made.

    >>> class Printer(Callback):
    ...     def on_log(self, run, record):
    ...         print(record["step"], record["train_loss"])
    """

    def on_start(self, run) -> None: ...
    def on_steps(self, run, step: int, loss: Callable[[], float]) -> None: ...
    def on_log(self, run, record: dict) -> None: ...
    def on_eval(self, run, record: dict) -> None: ...
    def on_record(self, run, record: dict) -> None: ...
    def on_save(self, run, step: int, path: Path) -> None: ...
    def on_message(self, run, text: str) -> None: ...
    def on_pause(self, run, seconds: float) -> None: ...
    def on_end(self, run, result: Result) -> None: ...
