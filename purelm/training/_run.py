"""A training run as an object: create or resume it, step it, evaluate it, save it; the loop with its
intervals, keep-best, plateau annealing, early stopping and divergence detection; callbacks for output.

>>> run = Run.create(TrainingConfig(data=DataConfig(paths=("notes.txt",))), "runs/notes")  # doctest: +SKIP
>>> result = run.train()                                                                    # doctest: +SKIP
>>> run = Run.resume("runs/notes", changes={"run": {"steps": 2000}})                        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from purelm import _signals
from purelm._checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint
from purelm._data import DataError, build_tokenizer, load_corpus, num_windows, training_streams, windows
from purelm._files import atomic_write_bytes
from purelm._model import batch_initial_state
from purelm._parallel import (
    agreed_stop_signal,
    choose_devices,
    is_main_process,
    make_mesh,
    replicate,
    shard_batch,
    shard_states,
    to_host,
)
from purelm._columns import checked_stream
from purelm._errors import check_fits
from purelm._evaluate import Evaluation, evaluate
from purelm._tokenizer import ByteTokenizer, Tokenizer, TokenizerError, tokenizer_from_json
from purelm.training._config import (
    ConfigError,
    ModelConfig,
    TrainingConfig,
    learning_rate,
    make_optimizer,
    with_learning_rate,
)

RUN_FORMAT = 2
METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss.png"
BEST_DIR = "best"


class TrainingError(RuntimeError):
    """Training cannot go on (the loss diverged); the last good checkpoint is left as it was."""


def score(model, tokens: np.ndarray, *, batch_size: int, seq_len: int) -> Evaluation:
    """Score every token of `tokens` but the first with `purelm.evaluate` (word_language_model's layout:
    `batch_size` contiguous columns, `seq_len` windows, the tail included). Short texts use fewer columns."""
    tokens, batch_size = checked_stream(tokens, model.vocab_size, batch_size)
    return evaluate(model, tokens, batch_size=batch_size, seq_len=seq_len)


@dataclasses.dataclass(frozen=True)
class Result:
    """How `Run.train` ended: `status` is "done", "nothing" (already at the target), "early_stop",
    "stopped" (a stop was requested, or Ctrl-C) or "diverged"; `message` says it in one line."""

    status: str
    step: int
    message: str = ""
    train: dict | None = None
    eval: dict | None = None


class Callback:
    """Hooks `Run.train` calls; override what you need. Every method gets the run first.

    >>> class Printer(Callback):
    ...     def on_log(self, run, record):
    ...         print(record["step"], record["train_loss"])
    """

    def on_start(self, run: Run) -> None: ...
    def on_steps(self, run: Run, step: int, loss: Callable[[], float]) -> None: ...
    def on_log(self, run: Run, record: dict) -> None: ...
    def on_eval(self, run: Run, record: dict) -> None: ...
    def on_save(self, run: Run, step: int, path: Path) -> None: ...
    def on_message(self, run: Run, text: str) -> None: ...
    def on_pause(self, run: Run, seconds: float) -> None: ...
    def on_end(self, run: Run, result: Result) -> None: ...


def _train_steps(optim, schedule):
    """The core's compiled multi-window step for these settings; cached, so repeated runs in one process
    (resumes, tests, notebooks) reuse the compilations. The lr is state, not part of the program."""
    return _cached_train_steps(dataclasses.replace(optim, lr=1.0), schedule)


@functools.lru_cache(maxsize=8)
def _cached_train_steps(optim, schedule):
    from purelm._train import make_train_steps  # training only: sample and eval need not import it

    return make_train_steps(make_optimizer(optim, schedule))


@eqx.filter_jit
def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))]
    return jnp.all(jnp.stack(leaves))


def read_metrics(path: Path, up_to_step: int | None = None) -> list[dict]:
    """The records of a metrics.jsonl file (a broken last line, from a killed run, is dropped)."""
    records = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line)
                if isinstance(record, dict) and (up_to_step is None or record.get("step", 0) <= up_to_step):
                    records.append(record)
    return records


def _check_resumable(directory: Path, meta: dict) -> None:
    if meta.get("kind") == "model":
        raise CheckpointError(f"{directory} holds a model without training state (from convert-torch or a best/ "
                              "copy); cannot resume it")
    if meta.get("kind") == "train" and "run_format" not in meta:
        raise CheckpointError(f"{directory} is a run from an older purelm (run format 1): sample and eval read it, "
                              "but it cannot be resumed; start a new run")
    if meta.get("kind") != "train" or meta.get("run_format") != RUN_FORMAT:
        raise CheckpointError(f"{directory}'s checkpoint is not a purelm training checkpoint of run format {RUN_FORMAT}")


class Run:
    """A training run: its configuration, tokenizer, data, model, optimizer state, carried states and step.

    Create with `Run.create(config, out)` or `Run.resume(directory)`; then `train()` runs the loop to the
    target step (intervals, keep-best, annealing, early stop, divergence checks), or drive it yourself
    with `step(n)`, `evaluate()` and `save()`. `request_stop()` (e.g. from a signal handler) ends
    `train()` between two compiled calls with a saved checkpoint. Only process 0 of a multi-host run
    writes files.

    >>> run = Run.create(config, "runs/x")  # doctest: +SKIP
    >>> losses = run.step(5)                # five training steps in one compiled call  # doctest: +SKIP
    >>> run.evaluate().perplexity           # doctest: +SKIP
    """

    def __init__(self, config: TrainingConfig, tokenizer: Tokenizer, corpus, out: Path, *, callbacks=()):
        # Use Run.create / Run.resume; this sets up what both share.
        self.config, self.tokenizer, self.corpus, self.out = config, tokenizer, corpus, Path(out)
        self.callbacks: list[Callback] = list(callbacks)
        data = config.data
        self.streams = training_streams(corpus.train, data.batch_size, data.seq_len, tokenizer.unit)
        self.windows_per_epoch = num_windows(self.streams, data.seq_len)
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
        self.best: dict | None = None
        self.evals_since_best = 0
        self.records: list[dict] = []
        self._stop = False
        self._saved_step = -1
        self.model = self.opt_state = self.states = self.key = None

    # ------------------------------------------------------------------------------------------ set-up

    @classmethod
    def create(cls, config: TrainingConfig, out: str | Path, *, callbacks: Sequence[Callback] = ()) -> Run:
        """A new run writing to `out` (nothing is written before the first save): reads the data, builds
        the tokenizer (a word vocabulary comes from the data), initialises the model from `run.seed`."""
        out = Path(out)
        spec = config.data.spec()
        _signals.phase("data")
        tokenizer = build_tokenizer(spec, config.data.tokenizer)
        corpus = load_corpus(spec, tokenizer=tokenizer)
        config = config.replace(model={"vocab_size": tokenizer.vocab_size})
        if config.schedule.kind == "cosine" and config.schedule.decay_steps is None:
            config = config.replace(schedule={"decay_steps": config.run.steps})
        optimizer = make_optimizer(config.optim, config.schedule)
        # From shapes alone: a model too large for the device is one line, not an allocation failure.
        check_fits(config.model.template(), optimizer=optimizer, training=True)
        run = cls(config, tokenizer, corpus, out, callbacks=callbacks)
        init_key, run.key = jax.random.split(jax.random.key(config.run.seed))
        run.model = config.model.build(init_key)
        run.opt_state = optimizer.init(eqx.filter(run.model, eqx.is_array))
        run.states = batch_initial_state(run.model, config.data.batch_size)
        return run

    @classmethod
    def resume(
        cls,
        directory: str | Path,
        *,
        changes: dict[str, dict] | None = None,
        out: str | Path | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> Run:
        """Continue the run saved in `directory` exactly, with its stored configuration.

        `changes` (by section, e.g. `{"run": {"steps": 2000}, "optim": {"lr": 5.0}}`) may change what a
        resume allows (target step, intervals, devices, early stopping, the learning rate, where the data
        is); anything else that differs raises `ConfigError` naming the option. The data must be the same
        tokens (a fingerprint is stored). `out` (default: `directory`) is where the run goes on.
        """
        directory = Path(directory)
        _signals.phase("data")
        meta = read_meta(directory)
        _check_resumable(directory, meta)
        try:
            stored = TrainingConfig.from_json(meta["config"])
            tokenizer = tokenizer_from_json(meta.get("tokenizer"))
        except (ConfigError, TokenizerError, TypeError) as err:
            raise CheckpointError(f"{directory}: {err}") from None
        config = stored.replace(**(changes or {}))
        changed = stored.changes(config)
        corpus = load_corpus(config.data.spec(), tokenizer=tokenizer)
        check_fits(config.model.template(), optimizer=make_optimizer(config.optim, config.schedule), training=True)
        run = cls(config, tokenizer, corpus, directory if out is None else Path(out), callbacks=callbacks)
        data = meta["data"]
        if data["fingerprint"] != run.data_meta["fingerprint"]:
            unit = tokenizer.unit
            raise CheckpointError(
                f"the data does not match the checkpoint in {directory}: it has {run.data_meta['train_tokens']:,}"
                f"+{run.data_meta['val_tokens']:,} {unit}s (fingerprint {run.data_meta['fingerprint']}), the "
                f"checkpoint was trained on {data['train_tokens']:,}+{data['val_tokens']:,} {unit}s "
                f"(fingerprint {data['fingerprint']})"
            )
        trees, meta = load_checkpoint(directory, run._templates())
        run.model, run.opt_state, run.states, run.key = (trees[k] for k in ("model", "opt_state", "states", "key"))
        if "lr" in changed.get("optim", {}):
            run.opt_state = with_learning_rate(run.opt_state, config.optim.lr)
        run.step_count = run._saved_step = int(meta["step"])
        run.best = meta.get("best")
        run.evals_since_best = int(meta.get("evals_since_best", 0))
        run.records = read_metrics(directory / METRICS_FILE, up_to_step=run.step_count)
        run.resumed_from = directory
        return run

    def _templates(self) -> dict:
        """Shapes and dtypes of everything a training checkpoint holds, without computing any of it."""
        model = self.config.model.template()
        params = eqx.filter(model, lambda x: isinstance(x, jax.ShapeDtypeStruct))
        opt_state = jax.eval_shape(make_optimizer(self.config.optim, self.config.schedule).init, params)
        data, hp = self.config.data, self.config.model
        state = jax.ShapeDtypeStruct((data.batch_size, hp.num_layers, hp.hidden_dim), jnp.dtype(hp.dtype))
        return {"model": model, "opt_state": opt_state, "states": (state, state), "key": jax.eval_shape(jax.random.key, 0)}

    # ---------------------------------------------------------------------------------------- stepping

    @property
    def lr(self) -> float:
        """The current learning rate (before the schedule's per-step factor)."""
        return learning_rate(self.opt_state)

    def request_stop(self) -> None:
        """Ask `train()` to stop after the compiled call in progress (saving a checkpoint); signal-safe."""
        self._stop = True

    def _placed(self) -> None:
        """Put the model, optimizer state and carried states on the device mesh (no-op on one device)."""
        self.model, self.opt_state = replicate(self.model, self.mesh), replicate(self.opt_state, self.mesh)
        self.states = shard_states(self.states, self.mesh)

    def step(self, count: int = 1) -> jax.Array:
        """Make `count` training steps in one compiled call; returns their losses (nats per token)."""
        positions = [step % self.windows_per_epoch for step in range(self.step_count, self.step_count + count)]
        batches = shard_batch(windows(self.streams, positions, self.config.data.seq_len), self.mesh, axis=1)
        # A new epoch starts from the learnable initial state, taken inside the step so c0 gets gradients.
        restart = [position == 0 for position in positions]
        extra = {}
        if self.config.model.dropout:
            # Keyed by the step, so an interrupted and resumed run draws the same dropout masks.
            extra["key"] = jax.random.fold_in(self.key, self.step_count)
        train_steps = _train_steps(self.config.optim, self.config.schedule)
        out = train_steps(self.model, self.opt_state, batches, self.states, restart, **extra)
        # One statement, so an interrupt never leaves the step count out of step with the arrays.
        (self.model, self.opt_state, self.states, losses), self.step_count = out, self.step_count + count
        return losses

    def evaluate(self, tokens: np.ndarray | None = None, *, batch_size: int | None = None,
                 seq_len: int | None = None) -> Evaluation:
        """Score `tokens` (default: the validation tokens used during training), every token counted."""
        tokens = self.val if tokens is None else tokens
        if tokens is None:
            raise DataError(self.val_note or "this run evaluates nothing (eval_every = 0)")
        default_batch, default_seq = self.config.data.eval_layout()
        model = self.model if self.mesh is None else jax.device_get(self.model)
        return score(model, tokens, batch_size=batch_size or default_batch, seq_len=seq_len or default_seq)

    def checkpoint_meta(self) -> dict:
        from purelm import __version__

        epoch, window = divmod(self.step_count, self.windows_per_epoch)
        return {
            "kind": "train",
            "run_format": RUN_FORMAT,
            "config": self.config.to_json(),
            "model": self.config.model.to_json(),
            "tokenizer": self.tokenizer.to_json(),
            "step": self.step_count,
            "position": {"epoch": epoch, "window": window, "windows_per_epoch": self.windows_per_epoch},
            "data": self.config.data.spec().to_json() | self.data_meta,
            "best": self.best,
            "evals_since_best": self.evals_since_best,
            "lr": self.lr,
            "purelm_version": __version__,
            "jax_version": jax.__version__,
        }

    def save(self, directory: str | Path | None = None) -> Path:
        """Write the full training state (resumable) to `directory` (default: the run's `out`)."""
        directory = self.out if directory is None else Path(directory)
        _signals.phase("save")
        with self._paused():
            if not bool(_all_finite((self.model, self.opt_state))):
                raise TrainingError(f"the model has non-finite values at step {self.step_count}; nothing saved")
            host = to_host({"model": self.model, "opt_state": self.opt_state, "states": self.states})
            if self.writer:
                save_checkpoint(directory, host | {"key": self.key}, self.checkpoint_meta())
        self._saved_step = self.step_count
        self._emit("on_save", self.step_count, directory)
        return directory

    def save_model(self, directory: str | Path) -> Path:
        """Write the model alone (what `sample` and `eval` read; not resumable), e.g. the best one."""
        directory = Path(directory)
        meta = self.checkpoint_meta() | {"kind": "model"}
        with self._paused():
            host = to_host({"model": self.model})
            if self.writer:
                save_checkpoint(directory, host, meta)
        return directory

    # --------------------------------------------------------------------------------------- the loop

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
            with (self.out / METRICS_FILE).open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def _cadences(self) -> list[int]:
        run = self.config.run
        return [run.log_every, run.checkpoint_every] + ([run.eval_every] if self.val is not None else [])

    def _next_call(self, total: int) -> int:
        """Steps in the next compiled call: `steps_per_call`, cut short so that every step that logs,
        evaluates or saves is the last step of a call."""
        done = self.step_count
        return min(self.config.run.steps_per_call, total - done, *(e - done % e for e in self._cadences()))

    def _diverged(self, values: np.ndarray) -> str | None:
        if not np.all(np.isfinite(values)):
            bad = values[~np.isfinite(values)][0]
            return f"loss {bad} (non-finite)"
        limit = self.config.run.divergence * math.log(self.tokenizer.vocab_size)
        mean = float(np.mean(values))
        if self.config.run.divergence and mean > limit:
            return (f"mean loss {mean:.4g} nats per {self.tokenizer.unit}, over {self.config.run.divergence:g} x "
                    f"a uniform guess ({limit:.4g})")
        return None

    def _evaluate_and_track(self) -> dict:
        _signals.phase("eval")
        with self._paused():
            result = self.evaluate()
        step = self.step_count
        record = {"step": step, "val_loss": result.nats, "val_perplexity": result.perplexity, "val_tokens": result.count}
        if self.tokenizer.unit == "byte":
            record["val_bpb"] = result.bits_per_token
        improved = self.best is None or result.nats < self.best["val_loss"]
        if improved:
            self.best = {"step": step, "val_loss": result.nats}
            self.evals_since_best = 0
            if self.config.run.keep_best:
                self.save_model(self.out / BEST_DIR)
        else:
            self.evals_since_best += 1
            anneal = self.config.schedule.anneal
            if anneal:
                old = self.lr
                self.opt_state = with_learning_rate(self.opt_state, old / anneal)
                if self.mesh is not None:
                    self.opt_state = replicate(self.opt_state, self.mesh)
                record["lr"] = self.lr
        record["improved"] = improved
        self._record(record)
        self._emit("on_eval", record)
        return record

    def train(self) -> Result:
        """Train to the target step (`config.run.steps`), logging, evaluating and saving at the run's
        intervals. Returns how it ended; files: `out/checkpoint.npz`, `metrics.jsonl`, `best/`."""
        run = self.config.run
        total = run.steps
        self._emit("on_start")
        if self.step_count >= total:
            result = Result("nothing", self.step_count, f"nothing to do: the run is already at step "
                            f"{self.step_count} (--steps {total})")
            self._emit("on_end", result)
            return result
        if self.writer:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.out / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in self.records).encode())
        self._placed()
        begin = time.perf_counter()
        pending: list[jax.Array] = []
        logged: list[np.ndarray] = []
        last: dict[str, dict] = {}
        result: Result | None = None
        first = True
        # Inside deferred() a signal only sets a flag: the loop ends between two compiled calls, never with
        # the arrays, the step count or the metrics file half-updated. Processes of a multi-process run
        # agree on the flag (agreed_stop_signal), so all stop after the same step and save together.
        with _signals.deferred():
            while self.step_count < total and result is None:
                if agreed_stop_signal() is not None:
                    self._interrupted()
                if self._stop:
                    result = self._stopped("stop requested")
                    break
                _signals.phase("compile" if first else "step")
                first = False
                pending.append(self.step(self._next_call(total)))
                # Steps are dispatched asynchronously: wait for the call before this one, so that at most two
                # are in flight (Python prepares the next batch while one runs) and a signal, a stop request
                # or the final save never waits behind a queue of dispatched steps.
                if len(pending) > 1:
                    pending[-2].block_until_ready()
                done = self.step_count
                log = done % run.log_every == 0 or done == total
                evaluate = self.val is not None and (done % run.eval_every == 0 or done == total)
                save = done % run.checkpoint_every == 0 or done == total
                if not (log or evaluate or save):
                    self._emit("on_steps", done, functools.partial(_mean, pending + []))
                    continue
                values = np.concatenate([np.asarray(x, np.float32) for x in jax.device_get(pending)])
                pending = []
                problem = self._diverged(values)
                if problem:
                    result = self._divergence(problem)
                    break
                logged.append(values)
                if log:
                    nats = float(np.mean(np.concatenate(logged)))
                    logged = []
                    last["train"] = self._train_record(done, nats, time.perf_counter() - begin)
                    self._emit("on_log", last["train"])
                    self._record(last["train"])
                else:
                    self._emit("on_steps", done, functools.partial(float, np.mean(values)))
                if evaluate:
                    last["eval"] = self._evaluate_and_track()
                    if not math.isfinite(last["eval"]["val_loss"]):
                        result = self._divergence(f"validation loss {last['eval']['val_loss']} (non-finite)")
                        break
                    if run.early_stop and self.evals_since_best >= run.early_stop:
                        self.save()
                        result = Result("early_stop", done, f"early stop at step {done}: {self.evals_since_best} "
                                        f"validations without improvement (best: step {self.best['step']})",
                                        last.get("train"), last.get("eval"))
                        break
                if save:
                    try:
                        self.save()
                    except TrainingError as err:  # finite losses, non-finite weights: diverged all the same
                        result = self._divergence(str(err))
            if agreed_stop_signal() is not None:
                self._interrupted()
        if result is None:
            result = Result("done", self.step_count, f"done: step {self.step_count}", last.get("train"),
                            last.get("eval"))
        self._emit("on_end", result)
        return result

    def _train_record(self, step: int, nats: float, elapsed: float) -> dict:
        record = {"step": step, "train_loss": nats}
        if self.tokenizer.unit == "byte":
            record["train_bpb"] = nats / math.log(2)
        else:
            record["train_perplexity"] = math.exp(min(nats, 700))
        return record | {"lr": self.lr, "elapsed_s": elapsed}

    def _interrupted(self) -> None:
        """A signal arrived: save what was trained since the last checkpoint, then end with the resume command."""
        if self._saved_step < 0 and self.step_count == 0:
            message = "interrupted before the first step; nothing saved"
        else:
            if self.step_count > self._saved_step:
                self.save()  # still inside deferred(): a second Ctrl-C cannot break the save
            # Saved now or already at this step: either way the checkpoint holds this step.
            message = (f"interrupted at step {self.step_count}: checkpoint saved; continue: "
                       f"{_signals.resume_command(self.out)}")
        self._emit("on_end", Result("stopped", self.step_count, message))
        _signals.stop(message)

    def _stopped(self, why: str) -> Result:
        if self.step_count > self._saved_step:
            self.save()
            return Result("stopped", self.step_count, f"{why} at step {self.step_count}: checkpoint saved")
        return Result("stopped", self.step_count, f"{why} at step {self.step_count}: nothing new to save")

    def _divergence(self, problem: str) -> Result:
        kept = f"the last checkpoint (step {self._saved_step}) is untouched" if self._saved_step >= 0 else "nothing saved"
        return Result("diverged", self.step_count, f"training diverged by step {self.step_count}: {problem}; {kept}; "
                      "try a smaller --lr or --grad-clip")


def _mean(values: list) -> float:
    """The mean of every loss in a list of per-call loss arrays."""
    return float(np.mean(np.concatenate([np.asarray(x, np.float32) for x in jax.device_get(values)])))


def load_run_model(directory: str | Path) -> tuple[Any, Tokenizer, dict]:
    """The model saved in a run directory (train, convert-torch or best/), its tokenizer and metadata.

    >>> model, tokenizer, meta = load_run_model("runs/demo")  # doctest: +SKIP
    """
    from purelm._checkpoint import load_model

    model, meta = load_model(directory)
    try:
        tokenizer = tokenizer_from_json(meta.get("tokenizer"))
    except TokenizerError as err:
        raise CheckpointError(f"{directory}: {err}") from None
    if tokenizer.vocab_size != model.vocab_size:
        if isinstance(tokenizer, ByteTokenizer):
            raise CheckpointError(
                f"{directory} holds a model with a vocabulary of {model.vocab_size:,} but no word list, so its ids "
                "cannot be read or written as text; convert it again with --vocab DATA_DIR"
            )
        raise CheckpointError(f"{directory}: the word list has {tokenizer.vocab_size:,} words but the model a "
                              f"vocabulary of {model.vocab_size:,}")
    return model, tokenizer, meta


def model_config_of(meta: dict) -> ModelConfig:
    """The model settings in a checkpoint's metadata (any run format)."""
    data = (meta.get("config") or {}).get("model") or meta.get("model")
    if not isinstance(data, dict):
        raise ConfigError("the checkpoint records no model settings")
    return ModelConfig.from_json(data)
