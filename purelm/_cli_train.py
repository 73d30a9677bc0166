"""The `purelm train` and `purelm convert-torch` commands (`purelm._cli` parses their command lines).

They live apart from `purelm._cli` so that `purelm sample` and `purelm eval` never import what training
needs (`purelm.training`'s loop, equinox, optax, matplotlib): a warm `purelm sample` is mostly `import jax`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from purelm import _signals
from purelm._checkpoint import CHECKPOINT_FILE, save_checkpoint
from purelm._cli import UsageError
from purelm._compile_cache import is_off
from purelm._data import DataSpec, layout_dir
from purelm._host_memory import ENV_VAR as KEEP_FREED_MEMORY_ENV, keep_freed_memory
from purelm._parallel import initialize_distributed, is_main_process
from purelm._plot import plot_losses
from purelm._progress import Progress, format_rate
from purelm._tokenizer import ByteTokenizer
from purelm.training import (
    BEST_DIR,
    METRICS_FILE,
    PLOT_FILE,
    RUN_FORMAT,
    Callback,
    ModelConfig,
    Run,
    TrainingConfig,
    read_metrics,
)


# argparse destination -> (config section, field). Options left out on the command line stay None, so a
# resumed run keeps what its checkpoint stores and only what was given is compared.
_FIELDS = {
    "embed_dim": ("model", "embed_dim"), "hidden_dim": ("model", "hidden_dim"), "num_layers": ("model", "num_layers"),
    "cell": ("model", "cell"), "dropout": ("model", "dropout"), "dtype": ("model", "dtype"),
    "tokenizer": ("data", "tokenizer"), "include": ("data", "include"), "batch_size": ("data", "batch_size"),
    "seq_len": ("data", "seq_len"), "eval_tokens": ("data", "eval_tokens"),
    "eval_batch_size": ("data", "eval_batch_size"),
    "optimizer": ("optim", "optimizer"), "lr": ("optim", "lr"), "weight_decay": ("optim", "weight_decay"),
    "grad_clip": ("optim", "grad_clip"),
    "schedule": ("schedule", "kind"), "warmup": ("schedule", "warmup"), "min_lr_ratio": ("schedule", "min_ratio"),
    "anneal": ("schedule", "anneal"),
    "steps": ("run", "steps"), "eval_every": ("run", "eval_every"), "log_every": ("run", "log_every"),
    "checkpoint_every": ("run", "checkpoint_every"), "steps_per_call": ("run", "steps_per_call"),
    "seed": ("run", "seed"), "devices": ("run", "devices"), "early_stop": ("run", "early_stop"),
    "keep_best": ("run", "keep_best"), "divergence": ("run", "divergence"),
}



def _out_dir(text: str) -> Path:
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    return out


def _given(args) -> dict[str, dict]:
    """The options given on the command line, as config changes by section."""
    changes: dict[str, dict] = {}
    for dest, (section, field) in _FIELDS.items():
        value = getattr(args, dest, None)
        if value is not None:
            changes.setdefault(section, {})[field] = value
    if args.tied:
        # word_language_model's tied decoder keeps its bias.
        changes.setdefault("model", {}).update(tie_embeddings=True, output_bias=True)
    if args.data:
        changes.setdefault("data", {})["paths"] = tuple(str(Path(p).absolute()) for p in args.data)
    return changes


def _new_config(changes: dict[str, dict]) -> TrainingConfig:
    data = changes.get("data", {})
    if data.get("tokenizer") == "word" and "eval_tokens" not in data:
        # word_language_model validates on the whole validation file.
        changes["data"] = data | {"eval_tokens": None}
    return TrainingConfig().replace(**changes)


class _Console(Callback):
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
        self.progress = Progress(config.run.steps, run.step_count, config.data.batch_size * config.data.seq_len,
                                 log_every=config.run.log_every, stream=self.stream, unit=unit)

    def on_steps(self, run, step, loss):
        self.progress.update(step, loss_fn=loss)

    def on_log(self, run, record):
        self.progress.update(record["step"], loss=record["train_loss"])
        record["tokens_per_s"] = self.progress.tokens_per_s(record["step"])

    def on_pause(self, run, seconds):
        if self.progress is not None:
            self.progress.exclude(seconds)

    def on_eval(self, run, record):
        unit = run.tokenizer.unit
        step = record["step"]
        if unit == "byte":
            text = (f"eval  step {step}: validation {record['val_bpb']:.4f} bits/byte, perplexity "
                    f"{record['val_perplexity']:.3f} ({record['val_tokens']:,} bytes)")
        else:
            text = (f"eval  step {step}: validation perplexity {record['val_perplexity']:.2f} "
                    f"(loss {record['val_loss']:.4f}, {record['val_tokens']:,} words)")
        if record.get("improved") and run.config.run.keep_best:
            text += ", best so far"
        elif "lr" in record:
            text += f", no improvement: lr now {record['lr']:g}"
        self.say(text)

    def on_end(self, run, result):
        if self.progress is not None:
            self.progress.close()
            self.progress = None


def train(args) -> int:
    # First, before any JAX computation: joining a multi-process run must precede backend initialisation.
    initialize_distributed(coordinator=args.coordinator, num_processes=args.num_processes,
                           process_id=args.process_id, auto=args.distributed)
    # Reuse freed host memory instead of page-faulting fresh buffers every step (purelm/_host_memory.py);
    # a training process reaches its peak memory every step anyway.
    if not is_off(os.environ.get(KEEP_FREED_MEMORY_ENV, "on")):
        keep_freed_memory()
    changes = _given(args)
    console = _Console(sys.stdout if is_main_process() else open(os.devnull, "w"))  # noqa: SIM115
    _signals.phase("data")
    if args.resume is None:
        if args.out is None:
            raise UsageError("train needs --out DIR (or --resume DIR)")
        out = _out_dir(args.out)
        if (out / CHECKPOINT_FILE).exists():
            raise UsageError(f"{out} already holds a checkpoint; continue it with --resume {out} or pick another --out")
        run = Run.create(_new_config(changes), out, callbacks=[console])
    else:
        resume = Path(args.resume)
        out = None if args.out is None else _out_dir(args.out)
        if out is not None and out.resolve() != resume.resolve() and (out / CHECKPOINT_FILE).exists():
            raise UsageError(f"{out} already holds a checkpoint of another run; pick another --out")
        run = Run.resume(resume, changes=changes, out=out, callbacks=[console])
    result = run.train()
    if result.status == "diverged":
        print(f"purelm train: error: {result.message}", file=sys.stderr)
        return 1
    if result.status in ("nothing", "stopped"):
        console.say(result.message if result.status == "nothing" else
                    f"{result.message}; continue: {_signals.resume_command(run.out)}")
        return 0
    _summary(run, result, console)
    return 0


def _summary(run: Run, result, console: _Console) -> None:
    unit = run.tokenizer.unit
    summary = result.message
    if result.train:
        if unit == "byte":
            summary += f", train {result.train['train_bpb']:.4f} bits/byte"
        else:
            summary += f", train perplexity {result.train['train_perplexity']:.2f}"
    if result.eval:
        if unit == "byte":
            summary += f", validation {result.eval['val_bpb']:.4f} bits/byte"
        else:
            summary += f", validation perplexity {result.eval['val_perplexity']:.2f}"
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


def convert(args) -> int:
    path = Path(args.state_dict)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    out = _out_dir(args.out)
    if (out / CHECKPOINT_FILE).exists():
        raise UsageError(f"{out} already holds a checkpoint; pick another --out")
    tokenizer = None
    if args.vocab is not None:
        root = layout_dir(DataSpec(paths=(args.vocab,)))
        if root is None:
            raise UsageError(f"--vocab {args.vocab} is not a data directory with train.txt and valid.txt")
        from purelm._data import build_tokenizer

        tokenizer = build_tokenizer(DataSpec(paths=(str(root),)), "word")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UsageError("convert-torch needs PyTorch: pip install 'purelm[torch]'") from None
    from purelm.interop import from_torch_state_dict, load_torch_file

    state_dict, info = load_torch_file(path, allow_pickle=args.allow_pickle)
    cell = args.cell or (info or {}).get("cell")
    model = from_torch_state_dict(state_dict, cell=cell)
    if tokenizer is None:
        if model.vocab_size != 256:
            raise UsageError(
                f"{path} has a vocabulary of {model.vocab_size:,} tokens, not 256 bytes: give --vocab DATA_DIR "
                "(the directory with the train.txt, valid.txt and test.txt it was trained on)"
            )
        tokenizer = ByteTokenizer()
    elif tokenizer.vocab_size != model.vocab_size:
        raise UsageError(
            f"--vocab {args.vocab} has {tokenizer.vocab_size:,} words but {path} a vocabulary of "
            f"{model.vocab_size:,}: not the data it was trained on"
        )
    hp = ModelConfig.of(model)
    meta = {"kind": "model", "run_format": RUN_FORMAT, "model": hp.to_json(),
            "tokenizer": tokenizer.to_json(), "step": 0, "source": str(path.absolute()), **_versions()}
    save_checkpoint(out, {"model": model}, meta)
    print(
        f"converted {path} -> {out / CHECKPOINT_FILE}: {hp.cell}, vocabulary {model.vocab_size:,} "
        f"({tokenizer.kind}s), embed {hp.embed_dim}, hidden {hp.hidden_dim}, {hp.num_layers} layer(s), "
        f"tied head: {hp.tie_embeddings}" + (" with bias" if hp.output_bias else "")
    )
    return 0


def _versions() -> dict[str, Any]:
    from purelm import __version__

    return {"purelm_version": __version__, "jax_version": jax.__version__}
