"""A training run as an object: create or resume it, step it, evaluate it, save it; the loop with its
intervals, keep-best, plateau annealing, early stopping and divergence detection; callbacks for output.

The loop is `purelm.training._trainer.Trainer`'s; a `Run` is a trainer bound to a run directory, whose
format (`purelm._rundir._format`) decides what is written there and how a run is read back.

>>> run = Run.create(TrainingConfig(data=DataConfig(paths=("notes.txt",))), "runs/notes")  # doctest: +SKIP
>>> result = run.train()                                                                    # doctest: +SKIP
>>> run = Run.resume("runs/notes", changes={"run": {"steps": 2000}})                        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from purelm._data._corpus import load_corpus
from purelm._rundir._checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint
from purelm._rundir._format import (
    BEST_DIR,
    METRICS_FILE,
    PLOT_FILE,
    append_metrics,
    read_metrics,
    read_training,
    run_meta,
    write_metrics,
)
from purelm._rundir._loggers import loggers
from purelm._rundir._ownership import RunDirectoryError, clear, owning, refuse_existing, remove_leftovers_of_run
from purelm._rundir._plot import plot_losses
from purelm._runtime import _signals
from purelm._runtime._errors import check_fits
from purelm.training._callback import Callback
from purelm.training._config import TrainingConfig
from purelm.training._loop import SaveError
from purelm.training._optimizer import make_optimizer, with_learning_rate
from purelm.training._trainer import Trainer


class Run(Trainer):
    """A training run: its configuration, tokenizer, data, model, optimizer state, carried states and step.

    Create with `Run.create(config, out)` or `Run.resume(directory)`; then `train()` runs the loop to the
    target step (intervals, keep-best, annealing, early stop, divergence checks), or drive it yourself
    with `step(n)`, `evaluate()` and `save()`. `request_stop()` (e.g. from a signal handler) ends
    `train()` between two compiled calls with a saved checkpoint. Only process 0 of a multi-host run
    writes files. One run writes a directory at a time (`RunDirectoryError` for a second one), and a new
    run replaces another run's files only with `overwrite=True`.

    Both print progress as `purelm train` does (a `Console`) unless given `progress=False`; `log_to`
    names where metrics go besides `metrics.jsonl`, which is always written: "csv" (`metrics.csv`),
    "tensorboard" (event files in `tensorboard/`, with tensorboardX). `plot()` draws the loss plot.

    >>> run = Run.create(config, "runs/x")  # doctest: +SKIP
    >>> losses = run.step(5)                # five training steps in one compiled call  # doctest: +SKIP
    >>> run.evaluate().perplexity           # doctest: +SKIP
    """

    resumed_from: Path | None = None
    overwrite = False  # replace the run `out` holds, if any, when this one starts writing
    _claimed = False  # `out` was checked (and cleared, with `overwrite`) for this run

    @classmethod
    def create(
        cls,
        config: TrainingConfig,
        out: str | Path,
        *,
        callbacks: Sequence[Callback] = (),
        overwrite: bool = False,
        **options,
    ) -> Run:
        """A new run writing to `out` (nothing is written before `train()` or `save()`): reads the data, builds
        the tokenizer, initialises the model from `run.seed`. A directory that holds another run (a checkpoint,
        a best model, metrics) raises `RunDirectoryError`, unless `overwrite`: then that run's files are
        removed when this one starts writing."""
        if not overwrite:
            refuse_existing(out)  # before reading the data; checked again, under the lock, before writing
        run = super().create(config, out, callbacks=callbacks, **options)
        run.overwrite = overwrite
        return run

    def __init__(self, *args, log_to: Sequence[str] = ("jsonl",), **kwargs):
        super().__init__(*args, **kwargs)
        self.callbacks += loggers(log_to)

    @classmethod
    def resume(
        cls,
        directory: str | Path,
        *,
        changes: dict[str, dict] | None = None,
        out: str | Path | None = None,
        callbacks: Sequence[Callback] = (),
        overwrite: bool = False,
        **options,
    ) -> Run:
        """Continue the run saved in `directory` exactly, with its stored configuration.

        `changes` (by section, e.g. `{"run": {"steps": 2000}, "optim": {"lr": 5.0}}`) may change what a
        resume allows (target step, intervals, devices, early stopping, the learning rate, where the data
        is); anything else that differs raises `ConfigError` naming the option. The data must be the same
        tokens (a fingerprint is stored). `out` (default: `directory`) is where the run goes on; one that
        holds another run needs `overwrite`, as in `create`. `callbacks` and `options` (`progress`, `log_to`)
        are as for `Run.create`.
        """
        directory = Path(directory)
        if out is not None and not overwrite and not _same(out, directory):
            refuse_existing(out)
        _signals.phase("data")
        stored, tokenizer, meta = read_training(directory)
        config = stored.replace(**(changes or {}))
        changed = stored.changes(config)
        corpus = load_corpus(config.data.spec(), tokenizer=tokenizer)
        check_fits(config.model.template(), optimizer=make_optimizer(config.optim, config.schedule), training=True)
        run = cls(config, tokenizer, corpus, directory if out is None else Path(out), callbacks=callbacks, **options)
        run._check_data(directory, meta["data"])
        trees, meta = load_checkpoint(directory, run.state_templates())
        run.model, run.opt_state, run.states, run.key = (trees[k] for k in ("model", "opt_state", "states", "key"))
        if "lr" in changed.get("optim", {}):
            run.opt_state = with_learning_rate(run.opt_state, config.optim.lr)
        run.step_count = run._saved_step = int(meta["step"])
        run.best = meta.get("best")
        run.evals_since_best = int(meta.get("evals_since_best", 0))
        run.validation_due = bool(meta.get("validation_due", False))
        run.records = read_metrics(directory / METRICS_FILE, up_to_step=run.step_count)
        run.resumed_from = directory
        run.overwrite = overwrite
        return run

    def _check_data(self, directory: Path, stored: dict) -> None:
        """Refuse data other than the tokens the checkpoint was trained on."""
        if stored["fingerprint"] == self.data_meta["fingerprint"]:
            return
        unit, ours = self.tokenizer.unit, self.data_meta
        raise CheckpointError(
            f"the data does not match the checkpoint in {directory}: it has {ours['train_tokens']:,}"
            f"+{ours['val_tokens']:,} {unit}s (fingerprint {ours['fingerprint']}), the "
            f"checkpoint was trained on {stored['train_tokens']:,}+{stored['val_tokens']:,} {unit}s "
            f"(fingerprint {stored['fingerprint']})"
        )

    def checkpoint_meta(self) -> dict:
        """The metadata of this run's training checkpoint at its current step."""
        epoch, window = divmod(self.step_count, self.windows_per_epoch)
        return run_meta(
            "train",
            self.config.model,
            self.tokenizer,
            step=self.step_count,
            config=self.config,
            position={"epoch": epoch, "window": window, "windows_per_epoch": self.windows_per_epoch},
            data=self.config.data.spec().to_json() | self.data_meta,
            best=self.best,
            evals_since_best=self.evals_since_best,
            lr=self.lr,
            # Only when set, so that checkpoints read as before: the step's validation is to be done.
            **({"validation_due": True} if self.validation_due else {}),
        )

    # ------------------------------------------------------------------------------ the run directory

    @contextlib.contextmanager
    def _owned(self) -> Iterator[None]:
        """Hold `out`'s lock for the block (process 0 of a multi-process run holds it for all), and the first
        time, check that `out` is this run's to write."""
        if not self.writer:
            yield
            return
        with owning(self.out):
            if not self._claimed:
                self._claim()
            yield

    def _claim(self) -> None:
        if self.resumed_from is not None and _same(self.resumed_from, self.out):
            stored = read_meta(self.out).get("step")
            if stored != self._saved_step:
                raise RunDirectoryError(
                    f"{self.out} changed after this run was read from it: its checkpoint is at step {stored}, "
                    f"not {self._saved_step} (another process wrote it); resume it again"
                )
        elif self.overwrite:
            clear(self.out)
        else:
            refuse_existing(self.out)
        # Whatever a SIGKILL cut short (a `.checkpoint.npz.*.tmp`): no writer of this directory is running now.
        remove_leftovers_of_run(self.out)
        self._claimed = True

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn a failed write (a full disk: ENOSPC) into a `SaveError` naming the file and what is intact."""
        try:
            yield
        except OSError as err:
            if isinstance(err, SaveError):
                raise
            try:
                intact = f"the checkpoint of step {read_meta(self.out)['step']} in {self.out} is intact"
            except CheckpointError:
                intact = f"{self.out} holds no checkpoint yet"
            where = err.filename if err.filename is not None else self.out
            raise SaveError(f"cannot write {where}: {err.strerror or err}; {intact}") from err

    def _write_checkpoint(self, directory: Path, trees: dict) -> None:
        with self._writing():
            save_checkpoint(directory, trees, self.checkpoint_meta())

    def _write_model(self, directory: Path, trees: dict) -> None:
        with self._writing():
            save_checkpoint(directory, trees, self.checkpoint_meta() | {"kind": "model"})

    def plot(self, path: str | Path | None = None, *, title: str | None = None) -> str | None:
        """Draw the loss plot of the run's metrics to `path` (default: `DIR/loss.png`). Returns None, or a
        one-line reason there is no plot (matplotlib is not installed, nothing is recorded yet)."""
        if title is None:
            title = f"purelm: hidden {self.config.model.hidden_dim}, {self.corpus.description.split(':')[0]}"
        return plot_losses(self.records, self.out / PLOT_FILE if path is None else path, title=title)

    def _save_best(self) -> None:
        self.save_model(self.out / BEST_DIR)

    def _start_records(self) -> None:
        with self._writing():
            self.out.mkdir(parents=True, exist_ok=True)
            write_metrics(self.out, self.records)

    def _write_record(self, record: dict) -> None:
        with self._writing():
            append_metrics(self.out, record)


def _same(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)
