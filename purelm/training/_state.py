"""The state of a training run in memory: its configuration, tokenizer, data and device mesh, the model,
optimizer state, carried states and step; one compiled training call (`step`), validation (`evaluate`)
and saving (`save`, `save_model`), whose writing a run directory does (`purelm._rundir._run`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from purelm._data._corpus import DataError, build_tokenizer, load_corpus, num_windows, training_streams, windows
from purelm._data._metrics import Evaluation
from purelm._data._tokenizer import Tokenizer
from purelm._model._lstmlm import batch_initial_state
from purelm._runtime import _signals
from purelm._runtime._errors import check_fits
from purelm._runtime._parallel import choose_devices, is_main_process, make_mesh, shard_batch, to_host
from purelm.training._callback import Callback
from purelm.training._config import TrainingConfig
from purelm.training._evaluate import score
from purelm.training._loop import TrainingError
from purelm.training._losses import batch_loss, next_token_loss
from purelm.training._optimizer import learning_rate, make_optimizer
from purelm.training._steps import make_train_steps


def _train_steps(config: TrainingConfig):
    """The core's compiled multi-window step for these settings; cached, so repeated runs in one process
    (resumes, tests, notebooks) reuse the compilations. The lr is state, not part of the program."""
    return _cached_train_steps(dataclasses.replace(config.optim, lr=1.0), config.schedule, config.data.windows)


@functools.lru_cache(maxsize=8)
def _cached_train_steps(optim, schedule, windows: str):
    loss = next_token_loss if windows == "word_language_model" else batch_loss
    return make_train_steps(make_optimizer(optim, schedule), loss=loss)


@eqx.filter_jit
def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))]
    return jnp.all(jnp.stack(leaves))


class TrainingState:
    """A model in training: its configuration, tokenizer, data, model, optimizer state, carried states and
    step. Writing files is left to a subclass (`purelm.training.Run`, through the `_write_*` methods)."""

    def __init__(
        self, config: TrainingConfig, tokenizer: Tokenizer, corpus, out: Path, *, callbacks=(), progress: bool = True
    ):
        # Use Run.create / Run.resume; this sets up what both share.
        self.config, self.tokenizer, self.corpus, self.out = config, tokenizer, corpus, Path(out)
        self.callbacks: list[Callback] = list(callbacks)
        from purelm.training._console import Console  # equinox and jax, as this module; no cost

        if progress and not any(isinstance(callback, Console) for callback in self.callbacks):
            # Printed as `purelm train` prints it, by the main process only.
            self.callbacks.insert(0, Console(None if is_main_process() else open(os.devnull, "w")))  # noqa: SIM115
        data = config.data
        self.streams = training_streams(
            corpus.train, data.batch_size, data.seq_len, tokenizer.unit, data.window_overlap
        )
        self.windows_per_epoch = num_windows(self.streams, data.seq_len, data.window_overlap)
        # Budgets given in epochs become steps here, where the epoch's length is known.
        self.config = config = dataclasses.replace(config, run=config.run.in_steps(self.windows_per_epoch))
        self.n_devices = choose_devices(config.run.devices, data.batch_size)
        self.mesh = make_mesh(self.n_devices)
        self.val = None
        self.val_note = ""
        if config.run.eval_every:
            val = corpus.val[: data.eval_tokens] if data.eval_tokens else corpus.val
            if val.size < 2:
                self.val_note = f"no validation: the validation split has {val.size} {tokenizer.unit}(s)"
            else:
                self.val = val
        self.data_meta = {
            "fingerprint": corpus.fingerprint(),
            "train_tokens": int(corpus.train.size),
            "val_tokens": int(corpus.val.size),
            "description": corpus.description,
        }
        self.writer = is_main_process()
        self.step_count = 0
        self.best: Any = None  # the best validation's record, once there is one
        self.evals_since_best = 0
        self.records: list[dict] = []
        self._stop = False
        self._saved_step = -1
        # The validation of step `step_count` is yet to be done: a signal cut it short (saved in checkpoints).
        self.validation_due = False
        # Set by `create` or `resume` (or a subclass's loader) before the first step.
        self.model: Any = None
        self.opt_state: Any = None
        self.states: Any = None
        self.key: Any = None

    # ------------------------------------------------------------------------------------------ set-up

    @classmethod
    def create(cls, config: TrainingConfig, out: str | Path, *, callbacks: Sequence[Callback] = (), **options):
        """A new run writing to `out` (nothing is written before the first save): reads the data, builds
        the tokenizer (a word vocabulary comes from the data), initialises the model from `run.seed`.

        `callbacks` get the run's events; unless `progress=False`, a `Console` prints them as `purelm train`
        does. `options` are the run's own (`Run`: `log_to`)."""
        out = Path(out)
        spec = config.data.spec()
        _signals.phase("data")
        tokenizer = build_tokenizer(spec, config.data.tokenizer)
        corpus = load_corpus(spec, tokenizer=tokenizer)
        config = config.replace(model={"vocab_size": tokenizer.vocab_size})
        optimizer = make_optimizer(config.optim, config.schedule)
        # From shapes alone: a model too large for the device is one line, not an allocation failure.
        check_fits(config.model.template(), optimizer=optimizer, training=True)
        run = cls(config, tokenizer, corpus, out, callbacks=callbacks, **options)
        if run.config.schedule.kind == "cosine" and run.config.schedule.decay_steps is None:
            # The decay ends at the target step, known once epochs are steps (the program reads it, the
            # optimizer's state does not).
            run.config = run.config.replace(schedule={"decay_steps": run.config.run.steps})
        init_key, run.key = jax.random.split(jax.random.key(config.run.seed))
        run.model = config.model.build(init_key)
        run.opt_state = optimizer.init(eqx.filter(run.model, eqx.is_array))
        run.states = batch_initial_state(run.model, config.data.batch_size)
        return run

    def state_templates(self) -> dict:
        """Shapes and dtypes of the training state (what a training checkpoint holds), computing none of it."""
        model = self.config.model.template()
        params = eqx.filter(model, lambda x: isinstance(x, jax.ShapeDtypeStruct))
        opt_state = jax.eval_shape(make_optimizer(self.config.optim, self.config.schedule).init, params)
        data, hp = self.config.data, self.config.model
        state = jax.ShapeDtypeStruct((data.batch_size, hp.num_layers, hp.hidden_dim), jnp.dtype(hp.dtype))
        key = jax.eval_shape(jax.random.key, 0)
        return {"model": model, "opt_state": opt_state, "states": (state, state), "key": key}

    # ---------------------------------------------------------------------------------------- stepping

    @property
    def lr(self) -> float:
        """The current learning rate (before the schedule's per-step factor)."""
        return learning_rate(self.opt_state)

    def request_stop(self) -> None:
        """Ask `train()` to stop after the compiled call in progress (saving a checkpoint); signal-safe."""
        self._stop = True

    def step(self, count: int = 1) -> jax.Array:
        """Make `count` training steps in one compiled call; returns their losses (nats per token)."""
        positions = [step % self.windows_per_epoch for step in range(self.step_count, self.step_count + count)]
        data = self.config.data
        batches = shard_batch(windows(self.streams, positions, data.seq_len, data.window_overlap), self.mesh, axis=1)
        # A new epoch starts from the learnable initial state, taken inside the step so c0 gets gradients.
        restart = [position == 0 for position in positions]
        extra = {}
        if self.config.model.dropout:
            # Keyed by the step, so an interrupted and resumed run draws the same dropout masks.
            extra["key"] = jax.random.fold_in(self.key, self.step_count)
        train_steps = _train_steps(self.config)
        out = train_steps(self.model, self.opt_state, batches, self.states, restart, **extra)
        # One statement, so an interrupt never leaves the step count out of step with the arrays.
        (self.model, self.opt_state, self.states, losses), self.step_count = out, self.step_count + count
        return losses

    def evaluate(
        self, tokens: np.ndarray | None = None, *, batch_size: int | None = None, seq_len: int | None = None
    ) -> Evaluation:
        """Score `tokens` (default: the validation tokens used during training) in the run's validation
        layout (`data.eval_layout`)."""
        tokens = self.val if tokens is None else tokens
        if tokens is None:
            raise DataError(self.val_note or "this run evaluates nothing (eval_every = 0)")
        data = self.config.data
        default_batch, default_seq = data.eval_shape()
        model = self.model if self.mesh is None else jax.device_get(self.model)
        return score(
            model,
            tokens,
            batch_size=batch_size or default_batch,
            seq_len=seq_len or default_seq,
            layout=data.eval_layout,
        )

    # ------------------------------------------------------------------------------------------ saving

    def save(self, directory: str | Path | None = None) -> Path:
        """Write the full training state (resumable) to `directory` (default: the run's `out`)."""
        directory = self.out if directory is None else Path(directory)
        _signals.phase("save")
        with self._owned() if directory == self.out else contextlib.nullcontext(), self._paused():
            if not bool(_all_finite((self.model, self.opt_state))):
                raise TrainingError(f"the model has non-finite values at step {self.step_count}; nothing saved")
            host = to_host({"model": self.model, "opt_state": self.opt_state, "states": self.states})
            if self.writer:
                self._write_checkpoint(directory, host | {"key": self.key})
        self._saved_step = self.step_count
        self._emit("on_save", self.step_count, directory)
        return directory

    def save_model(self, directory: str | Path) -> Path:
        """Write the model alone (what `sample` and `eval` read; not resumable), e.g. the best one."""
        directory = Path(directory)
        with self._paused():
            host = to_host({"model": self.model})
            if self.writer:
                self._write_model(directory, host)
        return directory

    def _owned(self) -> contextlib.AbstractContextManager:
        """Hold the output for the block (a run directory is written by one run at a time)."""
        return contextlib.nullcontext()

    def _write_checkpoint(self, directory: Path, trees: dict) -> None:
        """Store the training state `trees` (host arrays) in `directory`."""
        raise NotImplementedError

    def _write_model(self, directory: Path, trees: dict) -> None:
        """Store the model alone (`trees["model"]`, host arrays) in `directory`."""
        raise NotImplementedError

    def _save_best(self) -> None:
        """Keep the model that has just improved on the best validation."""
        raise NotImplementedError

    def _start_records(self) -> None:
        """Before the loop: make the output directory and its metrics file hold `self.records`."""
        raise NotImplementedError

    def _write_record(self, record: dict) -> None:
        """Add a metrics record to the output."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------ output hooks

    def _emit(self, name: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, name)(self, *args)

    def say(self, text: str) -> None:
        if self.writer:
            self._emit("on_message", text)

    @contextlib.contextmanager
    def _paused(self) -> Iterator[None]:
        """Keep evaluation and checkpoint time out of the training throughput."""
        begin = time.perf_counter()
        try:
            yield
        finally:
            self._emit("on_pause", time.perf_counter() - begin)

    def _record(self, record: dict) -> None:
        self.records.append(record)
        if self.writer:
            self._write_record(record)
        self._emit("on_record", record)
