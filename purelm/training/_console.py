"""What a training run prints, `purelm train` and `Run.train()` alike: a description of the run, progress and
evaluations."""

from __future__ import annotations

import sys
from typing import TextIO

import equinox as eqx
import jax

from purelm._data._metrics import format_loss
from purelm.training._callback import Callback
from purelm.training._progress import Progress


class Console(Callback):
    """Prints a run's description, its progress (a bar on a terminal, a line every `log_every` steps
    elsewhere) and its evaluations to `stream` (default: standard output).

    `Run.create` and `Run.resume` add one unless given `progress=False` or a `Console` of their own.

    >>> run = Run.create(config, "runs/x", callbacks=[Console(sys.stderr)])  # doctest: +SKIP
    """

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stdout
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
        extras += [f"{hp.init} init"] if hp.init != "purelm" else []
        extras += ["zero initial state"] if not hp.learn_initial_state else []
        vocab = f"vocabulary {hp.vocab_size:,} {unit}s" if unit == "word" else ""
        self.say(f"data: {run.corpus.description}" + (f"; {vocab}" if vocab else ""))
        self.say(
            f"model: {n_params:,} parameters (embed {hp.embed_dim}, hidden {hp.hidden_dim}, {', '.join(extras)}); "
            f"batch {config.data.batch_size} x {config.data.seq_len} {unit}s on {run.n_devices} "
            f"{jax.devices()[0].platform} device{plural}; {run.windows_per_epoch:,} steps per epoch"
            + (" (word_language_model's windows)" if config.data.windows != "purelm" else "")
        )
        optim, schedule = config.optim, config.schedule
        parts = [f"{optim.optimizer} lr {run.lr:g}"]
        parts += [f"weight decay {optim.decay():g}"] if optim.decay() else []
        parts += [f"grad clip {optim.grad_clip:g}"] if optim.grad_clip else []
        parts += ["torch's two biases per cell"] if optim.torch_bias_grad else []
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
