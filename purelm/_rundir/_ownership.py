"""Who may write a run directory: one run at a time, and a new run only where no other run's files are.

A run holds `DIR/.lock` (`purelm._runtime._files.locked`: the kernel releases it when the process ends,
however it ends) while it writes DIR; only process 0 of a multi-process run writes, so only it takes the
lock. A second run into the same directory gets `RunDirectoryError` at once. A new run does not replace
another run's checkpoint, metrics or best model unless asked to (`overwrite`); it then removes them, so
that nothing of the old run is mistaken for the new one's. Whoever holds the lock also removes the
temporary files of writes a SIGKILL cut short (`.checkpoint.safetensors.XXXXXXXX.tmp`, ...).

>>> with owning("runs/x"):           # doctest: +SKIP
...     refuse_existing("runs/x")      # or clear("runs/x") to replace the run there
...     remove_leftovers_of_run("runs/x")
...     train_and_save()
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from purelm._rundir._checkpoint import CHECKPOINT_FILE, HPARAMS_FILE
from purelm._rundir._format import BEST_DIR, METRICS_FILE, PLOT_FILE
from purelm._runtime._files import Locked, locked, remove_leftovers

LOCK_FILE = ".lock"
# A run's files, in DIR and in DIR/best/ (which holds a checkpoint and its hparams.json).
RUN_FILES = (CHECKPOINT_FILE, HPARAMS_FILE, METRICS_FILE, PLOT_FILE)


class RunDirectoryError(RuntimeError):
    """A run directory another run is writing, or that holds a run that is not to be replaced."""


@contextlib.contextmanager
def owning(directory: str | os.PathLike[str]) -> Iterator[None]:
    """Hold `directory`'s lock (creating the directory) for the block, or raise `RunDirectoryError` naming
    the process that holds it. Re-entrant within a process."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        with locked(directory / LOCK_FILE):
            yield
    except Locked as err:
        holder = f" (process {err.holder})" if err.holder is not None else ""
        raise RunDirectoryError(
            f"{directory} is in use by another purelm run{holder}: one run writes a directory at a time"
        ) from None


def existing_run(directory: str | os.PathLike[str]) -> str | None:
    """What of a run `directory` holds (its checkpoint, its best model, its metrics), or None."""
    directory = Path(directory)
    for path in (directory / CHECKPOINT_FILE, directory / BEST_DIR / CHECKPOINT_FILE):
        if path.exists():
            return str(path)
    metrics = directory / METRICS_FILE
    if metrics.is_file() and metrics.stat().st_size > 0:
        return str(metrics)
    return None


def refuse_existing(directory: str | os.PathLike[str]) -> None:
    """Raise `RunDirectoryError` if `directory` holds a run (see `existing_run`)."""
    found = existing_run(directory)
    if found is not None:
        raise RunDirectoryError(
            f"{directory} already holds a run ({found}); resume it, write elsewhere, or replace it with "
            "overwrite=True (purelm train --overwrite)"
        )


def clear(directory: str | os.PathLike[str]) -> None:
    """Remove the run in `directory`: its files, its best model's, and their temporary leftovers."""
    directory = Path(directory)
    for folder in (directory, directory / BEST_DIR):
        for name in RUN_FILES:
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
    remove_leftovers_of_run(directory)
    with contextlib.suppress(OSError):
        (directory / BEST_DIR).rmdir()  # if empty


def remove_leftovers_of_run(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files writes cut short by SIGKILL left in `directory` and its best/ (under
    `owning`: no writer can be running); returns them."""
    directory = Path(directory)
    return [path for folder in (directory, directory / BEST_DIR) for path in remove_leftovers(folder, RUN_FILES)]
