"""Training a model to a target step: the loop, with its intervals, keep-best, plateau annealing, early
stopping and divergence checks, calling the callbacks for output.

`purelm.training.Run` is a `Trainer` bound to a run directory (`purelm._rundir._run`): the loop decides
when to save and what, the run directory how.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time

import jax
import numpy as np

from purelm._data._metrics import unit_metric
from purelm._runtime import _signals
from purelm._runtime._parallel import agreed_stop_signal, replicate, shard_states
from purelm.training._loop import Losses, Result, TrainingError, diverged, steps_in_next_call
from purelm.training._optimizer import with_learning_rate
from purelm.training._state import TrainingState


class Trainer(TrainingState):
    """A training run's state (`TrainingState`) and the loop that takes it to its target step (`train`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # What one train() keeps: its losses, its clock, its last records (each train() starts them afresh).
        self._losses = Losses()
        self._began = 0.0
        self._last: dict[str, dict] = {}

    # --------------------------------------------------------------------------------------- the loop

    def train(self) -> Result:
        """Train to the target step (`config.run.steps`), logging, evaluating and saving at the run's
        intervals. Returns how it ended; files: `out/checkpoint.safetensors`, `metrics.jsonl`, `best/`."""
        with self._owned():
            self._emit("on_start")
            if not self._unfinished():
                return self._end(
                    Result(
                        "nothing",
                        self.step_count,
                        f"nothing to do: the run is already at step {self.step_count} "
                        f"(run.steps={self.config.run.steps})",
                    )
                )
            self._begin()
            result = None
            # Inside deferred() a signal only sets a flag: the loop ends between two compiled calls, never with
            # the arrays, the step count or the metrics file half-updated. Processes of a multi-process run
            # agree on the flag (agreed_stop_signal), so all stop after the same step and save together.
            with _signals.deferred():
                while result is None and self._unfinished():
                    self._stop_if_signalled()
                    result = self._stop_if_requested() or self._advance()
                result = result or self._result("done", f"done: step {self.step_count}")
                self._stop_if_signalled(result)
            return self._end(result)

    def _unfinished(self) -> bool:
        """Whether the run has steps to take, or the validation of its last step to do (a signal cut it short)."""
        return self.step_count < self.config.run.steps or self.validation_due

    def _begin(self) -> None:
        """Start the output, put the state on the device mesh, and start this `train()`'s bookkeeping."""
        if self.writer:
            self._start_records()
        self.model, self.opt_state = replicate(self.model, self.mesh), replicate(self.opt_state, self.mesh)
        self.states = shard_states(self.states, self.mesh)
        self._losses = Losses()
        self._began = time.perf_counter()
        self._last = {}

    def _advance(self) -> Result | None:
        """One compiled call, then what is due at the step it reaches: logging, validation, a checkpoint."""
        run, eval_every = self.config.run, self._eval_every()
        checkpoint_every = run.interval("checkpoint_every")
        if self.validation_due:
            # A signal cut this step's validation short and the run was resumed: do it first, as it would have.
            return self._validate() or (self._checkpoint() if self._due(checkpoint_every) else None)
        _signals.phase("step" if self._losses.calls else "compile")
        self._losses.add(
            self.step(
                steps_in_next_call(
                    self.step_count, run.steps, run.steps_per_call, [run.log_every, checkpoint_every, eval_every]
                )
            )
        )
        log, validate, save = (self._due(every) for every in (run.log_every, eval_every, checkpoint_every))
        if not (log or validate or save):
            self._emit("on_steps", self.step_count, self._losses.pending_mean())
            return None
        values = self._losses.collect()
        problem = diverged(values, run.divergence, self.tokenizer.vocab_size, self.tokenizer.unit)
        if problem:
            return self._divergence(problem)
        self._log(values, log)
        if validate:
            result = self._validate()
            if result is not None:
                return result
        return self._checkpoint() if save else None

    def _eval_every(self) -> int:
        """The validation interval; 0 when there is nothing to validate on."""
        return self.config.run.interval("eval_every") if self.val is not None else 0

    def _due(self, every: int) -> bool:
        """Whether something done every `every` steps (0: never) is due at the step reached: at each
        multiple, and at the end."""
        return bool(every) and (self.step_count % every == 0 or self.step_count == self.config.run.steps)

    def _log(self, values: np.ndarray, due: bool) -> None:
        """Record the mean training loss since the last log line, if one is due."""
        self._losses.keep(values)
        if not due:
            self._emit("on_steps", self.step_count, functools.partial(float, np.mean(values)))
            return
        nats = self._losses.logged_mean()
        key, value = unit_metric(nats, self.tokenizer.unit)
        record = {
            "step": self.step_count,
            "train_loss": nats,
            f"train_{key}": value,
            "lr": self.lr,
            "elapsed_s": time.perf_counter() - self._began,
        }
        self._last["train"] = record
        self._emit("on_log", record)
        self._record(record)

    def _validate(self) -> Result | None:
        """Evaluate, keep the best model or anneal the learning rate; stop on a non-finite loss, or early."""
        _signals.phase("eval")
        self.validation_due = True
        try:
            # A signal abandons the validation (it can take minutes) instead of waiting for its end: the
            # checkpoint then records it as due, and a resumed run does it first. Only alone: the processes of
            # a multi-process run would have to agree after every batch.
            alone = jax.process_count() == 1
            with self._paused(), _signals.interruptible() if alone else contextlib.nullcontext():
                result = self.evaluate()
        except _signals.Interrupted:
            return None  # the loop saves and stops
        self.validation_due = False
        # Byte runs add their bits per byte; for word runs the unit's metric is the perplexity itself.
        key, value = unit_metric(result.nats, self.tokenizer.unit)
        record = {
            "step": self.step_count,
            "val_loss": result.nats,
            "val_perplexity": result.perplexity,
            "val_tokens": result.count,
            f"val_{key}": value,
        }
        record |= self._track_best(result.nats)
        self._record(record)
        self._emit("on_eval", record)
        self._last["eval"] = record
        if not math.isfinite(result.nats):
            return self._divergence(f"validation loss {result.nats} (non-finite)")
        early_stop = self.config.run.early_stop
        if early_stop and self.evals_since_best >= early_stop:
            self.save()
            return self._result(
                "early_stop",
                f"early stop at step {self.step_count}: {self.evals_since_best} "
                f"validations without improvement (best: step {self.best['step']})",
            )
        return None

    def _track_best(self, nats: float) -> dict:
        """Keep-best and plateau annealing after a validation of `nats`; what the record adds."""
        if self.best is None or nats < self.best["val_loss"]:
            self.best = {"step": self.step_count, "val_loss": nats}
            self.evals_since_best = 0
            if self.config.run.keep_best:
                self._save_best()
            return {"improved": True}
        self.evals_since_best += 1
        anneal = self.config.schedule.anneal
        if not anneal:
            return {"improved": False}
        self.opt_state = replicate(with_learning_rate(self.opt_state, self.lr / anneal), self.mesh)
        return {"lr": self.lr, "improved": False}

    def _checkpoint(self) -> Result | None:
        try:
            self.save()
        except TrainingError as err:  # finite losses, non-finite weights: diverged all the same
            return self._divergence(str(err))
        return None

    def _stop_if_signalled(self, ended: Result | None = None) -> None:
        """A signal arrived: save what was trained since the last checkpoint, then end with the resume command;
        or, after the loop `ended` by itself, end with how it ended."""
        signum = agreed_stop_signal()
        if signum is None:
            return
        if ended is not None:
            message = self.ended_line(ended, _signals.signal_name(signum))
            self._emit("on_end", ended)
            _signals.stop(message)
        if self._saved_step < 0 and self.step_count == 0:
            message = "interrupted before the first step; nothing saved"
        else:
            if self.step_count > self._saved_step:
                self.save()  # still inside deferred(): a second Ctrl-C cannot break the save
            # Saved now or already at this step: either way the checkpoint holds this step.
            message = (
                f"interrupted at step {self.step_count}: checkpoint saved; continue: "
                f"{_signals.resume_command(self.out)}"
            )
        self._emit("on_end", Result("stopped", self.step_count, message))
        _signals.stop(message)

    def ended_line(self, result: Result, signal: str) -> str:
        """The line a command ends with when `signal` arrives after the loop ended with `result`: a finished
        run (done, early stop) is complete and saved, whatever comes after; nothing is left to resume."""
        if result.status in ("done", "early_stop"):
            return f"{result.message}; the run is complete and saved in {self.out} ({signal} came as it ended)"
        return result.message

    def _stop_if_requested(self) -> Result | None:
        if not self._stop:
            return None
        if self.step_count > self._saved_step:
            self.save()
            return Result("stopped", self.step_count, f"stop requested at step {self.step_count}: checkpoint saved")
        return Result("stopped", self.step_count, f"stop requested at step {self.step_count}: nothing new to save")

    def _divergence(self, problem: str) -> Result:
        saved = self._saved_step
        kept = f"the last checkpoint (step {saved}) is untouched" if saved >= 0 else "nothing saved"
        return Result(
            "diverged",
            self.step_count,
            f"training diverged by step {self.step_count}: {problem}; {kept}; try a smaller optim.lr or optim.grad_clip",
        )

    def _result(self, status: str, message: str) -> Result:
        return Result(status, self.step_count, message, self._last.get("train"), self._last.get("eval"))

    def _end(self, result: Result) -> Result:
        self._emit("on_end", result)
        return result
