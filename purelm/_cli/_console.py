"""What `purelm train` prints: a description of the run, progress, evaluations and the summary."""

from __future__ import annotations

import equinox as eqx
import jax

from purelm._cli._plot import plot_losses
from purelm._cli._progress import Progress, format_rate
from purelm._data._metrics import format_loss
from purelm._rundir._checkpoint import CHECKPOINT_FILE
from purelm._rundir._format import BEST_DIR, METRICS_FILE, PLOT_FILE, read_metrics
from purelm._rundir._run import Run
from purelm._runtime import _signals
from purelm.training._loop import Result
from purelm.training._state import Callback


class Console(Callback):
    """What `purelm train` prints: a description, progress, evaluations and the summary."""

    def __init__(self, stream):
        self.stream = stream
        self.progress: Progress | None = None

    def say(self, text: str) -> None:
        if self.progress is not None:
            self.progress.message(text)
        else:
            print(text, file=self.stream, flush=True)

    def on_message(self, run, text):
        self.say(text)

    def on_start(self, run):
        config, unit = run.config, run.tokenizer.unit
        hp = config.model
        n_params = sum(x.size for x in jax.tree.leaves(eqx.filter(run.model, eqx.is_array)))
        plural = "s" if run.n_devices > 1 else ""
        extras = [f"{hp.num_layers} layer{'s' if hp.num_layers > 1 else ''}"]
        extras += [f"cell {hp.cell}"] if hp.cell != "lstm" else []
        extras += ["tied"] if hp.tie_embeddings else []
        extras += [f"dropout {hp.dropout:g}"] if hp.dropout else []
        extras += [hp.dtype] if hp.dtype != "float32" else []
        vocab = f"vocabulary {hp.vocab_size:,} {unit}s" if unit == "word" else ""
        self.say(f"data: {run.corpus.description}" + (f"; {vocab}" if vocab else ""))
        self.say(
            f"model: {n_params:,} parameters (embed {hp.embed_dim}, hidden {hp.hidden_dim}, {', '.join(extras)}); "
            f"batch {config.data.batch_size} x {config.data.seq_len} {unit}s on {run.n_devices} "
            f"{jax.devices()[0].platform} device{plural}; {run.windows_per_epoch:,} steps per epoch"
        )
        optim, schedule = config.optim, config.schedule
        parts = [f"{optim.optimizer} lr {run.lr:g}"]
        parts += [f"weight decay {optim.decay():g}"] if optim.decay() else []
        parts += [f"grad clip {optim.grad_clip:g}"] if optim.grad_clip else []
        parts += [f"warmup {schedule.warmup}"] if schedule.warmup else []
        if schedule.kind == "cosine":
            parts.append(f"cosine to {schedule.min_ratio:g} x lr at step {schedule.decay_steps}")
        parts += [f"anneal /{schedule.anneal:g} on no improvement"] if schedule.anneal else []
        self.say("optimizer: " + ", ".join(parts))
        if run.val_note:
            self.say(run.val_note)
        resumed = getattr(run, "resumed_from", None)
        if resumed is not None and run.step_count < config.run.steps:
            self.say(f"resuming {resumed} at step {run.step_count} (target {config.run.steps})")
        self.progress = Progress(
            config.run.steps,
            run.step_count,
            config.data.batch_size * config.data.seq_len,
            log_every=config.run.log_every,
            stream=self.stream,
            unit=unit,
        )

    def on_steps(self, run, step, loss):
        self.progress.update(step, loss_fn=loss)

    def on_log(self, run, record):
        self.progress.update(record["step"], loss=record["train_loss"])
        record["tokens_per_s"] = self.progress.tokens_per_s(record["step"])

    def on_pause(self, run, seconds):
        if self.progress is not None:
            self.progress.exclude(seconds)

    def on_eval(self, run, record):
        loss = format_loss(record["val_loss"], run.tokenizer.unit, "eval", count=record["val_tokens"])
        text = f"eval  step {record['step']}: validation {loss}"
        if record.get("improved") and run.config.run.keep_best:
            text += ", best so far"
        elif "lr" in record:
            text += f", no improvement: lr now {record['lr']:g}"
        self.say(text)

    def on_end(self, run, result):
        if self.progress is not None:
            self.progress.close()
            self.progress = None


def summarize(run: Run, result: Result, console: Console) -> None:
    """The lines that end a finished run: its losses and speed, where its files are, and the loss plot."""
    unit = run.tokenizer.unit
    summary = result.message
    if result.train:
        summary += f", train {format_loss(result.train['train_loss'], unit)}"
    if result.eval:
        summary += f", validation {format_loss(result.eval['val_loss'], unit)}"
    rate = result.train.get("tokens_per_s") if result.train else None
    if rate:
        summary += f", {format_rate(rate)} tokens/s"
    console.say(summary)
    console.say(f"checkpoint: {run.out / CHECKPOINT_FILE}")
    if run.best is not None and run.config.run.keep_best:
        console.say(f"best: {run.out / BEST_DIR} (step {run.best['step']})")
    console.say(f"metrics: {run.out / METRICS_FILE}")
    if run.writer:
        _signals.phase("plot")
        title = f"purelm: hidden {run.config.model.hidden_dim}, {run.corpus.description.split(':')[0]}"
        problem = plot_losses(read_metrics(run.out / METRICS_FILE), run.out / PLOT_FILE, title=title)
        console.say(problem if problem else f"loss plot: {run.out / PLOT_FILE}")
