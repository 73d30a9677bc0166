"""A training run as an object: create or resume it, step it, evaluate it, save it; the loop with its
intervals, keep-best, plateau annealing, early stopping and divergence detection; callbacks for output.

The loop is `purelm.training._trainer.Trainer`'s; a `Run` is a trainer bound to a run directory, whose
format (`purelm._rundir._format`) decides what is written there and how a run is read back.

>>> run = Run.create(TrainingConfig(data=DataConfig(paths=("notes.txt",))), "runs/notes")  # doctest: +SKIP
>>> result = run.train()                                                                    # doctest: +SKIP
>>> run = Run.resume("runs/notes", changes={"run": {"steps": 2000}})                        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from purelm._data._corpus import load_corpus
from purelm._rundir._checkpoint import CheckpointError, load_checkpoint, save_checkpoint
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
from purelm._rundir._plot import plot_losses
from purelm._runtime import _signals
from purelm._runtime._errors import check_fits
from purelm.training._callback import Callback
from purelm.training._config import make_optimizer, with_learning_rate
from purelm.training._trainer import Trainer


class Run(Trainer):
    """A training run: its configuration, tokenizer, data, model, optimizer state, carried states and step.

    Create with `Run.create(config, out)` or `Run.resume(directory)`; then `train()` runs the loop to the
    target step (intervals, keep-best, annealing, early stop, divergence checks), or drive it yourself
    with `step(n)`, `evaluate()` and `save()`. `request_stop()` (e.g. from a signal handler) ends
    `train()` between two compiled calls with a saved checkpoint. Only process 0 of a multi-host run
    writes files.

    Both print progress as `purelm train` does (a `Console`) unless given `progress=False`; `log_to`
    names where metrics go besides `metrics.jsonl`, which is always written: "csv" (`metrics.csv`),
    "tensorboard" (event files in `tensorboard/`, with tensorboardX). `plot()` draws the loss plot.

    >>> run = Run.create(config, "runs/x")  # doctest: +SKIP
    >>> losses = run.step(5)                # five training steps in one compiled call  # doctest: +SKIP
    >>> run.evaluate().perplexity           # doctest: +SKIP
    """

    resumed_from: Path | None = None

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
        **options,
    ) -> Run:
        """Continue the run saved in `directory` exactly, with its stored configuration.

        `changes` (by section, e.g. `{"run": {"steps": 2000}, "optim": {"lr": 5.0}}`) may change what a
        resume allows (target step, intervals, devices, early stopping, the learning rate, where the data
        is); anything else that differs raises `ConfigError` naming the option. The data must be the same
        tokens (a fingerprint is stored). `out` (default: `directory`) is where the run goes on. `callbacks`
        and `options` (`progress`, `log_to`) are as for `Run.create`.
        """
        directory = Path(directory)
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
        run.records = read_metrics(directory / METRICS_FILE, up_to_step=run.step_count)
        run.resumed_from = directory
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
        )

    def _write_checkpoint(self, directory: Path, trees: dict) -> None:
        save_checkpoint(directory, trees, self.checkpoint_meta())

    def _write_model(self, directory: Path, trees: dict) -> None:
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
        self.out.mkdir(parents=True, exist_ok=True)
        write_metrics(self.out, self.records)

    def _write_record(self, record: dict) -> None:
        append_metrics(self.out, record)
