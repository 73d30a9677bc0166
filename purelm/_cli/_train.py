"""The `purelm train` and `purelm convert-torch` commands (`purelm._cli._parser` parses their command lines).

They live apart from `purelm._cli._main` so that `purelm sample` and `purelm eval` never import what training
needs (`purelm.training`'s loop, equinox, optax, matplotlib): a warm `purelm sample` is mostly `import jax`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from purelm._cli._console import Console, summarize
from purelm._cli._parser import UsageError
from purelm._rundir._format import holds_checkpoint
from purelm._rundir._ownership import owning
from purelm._rundir._run import Run
from purelm._runtime import _signals
from purelm._runtime._compile_cache import is_off
from purelm._runtime._host_memory import ENV_VAR as KEEP_FREED_MEMORY_ENV
from purelm._runtime._host_memory import keep_freed_memory
from purelm._runtime._parallel import initialize_distributed, is_main_process
from purelm.training._config import TrainingConfig
from purelm.training._loop import Result

# argparse destination -> (config section, field). Options left out on the command line stay None, so a
# resumed run keeps what its checkpoint stores and only what was given is compared.
_FIELDS = {
    "embed_dim": ("model", "embed_dim"),
    "hidden_dim": ("model", "hidden_dim"),
    "num_layers": ("model", "num_layers"),
    "cell": ("model", "cell"),
    "dropout": ("model", "dropout"),
    "dtype": ("model", "dtype"),
    "tokenizer": ("data", "tokenizer"),
    "include": ("data", "include"),
    "batch_size": ("data", "batch_size"),
    "seq_len": ("data", "seq_len"),
    "eval_tokens": ("data", "eval_tokens"),
    "eval_batch_size": ("data", "eval_batch_size"),
    "optimizer": ("optim", "optimizer"),
    "lr": ("optim", "lr"),
    "weight_decay": ("optim", "weight_decay"),
    "grad_clip": ("optim", "grad_clip"),
    "schedule": ("schedule", "kind"),
    "warmup": ("schedule", "warmup"),
    "min_lr_ratio": ("schedule", "min_ratio"),
    "anneal": ("schedule", "anneal"),
    "steps": ("run", "steps"),
    "eval_every": ("run", "eval_every"),
    "log_every": ("run", "log_every"),
    "checkpoint_every": ("run", "checkpoint_every"),
    "steps_per_call": ("run", "steps_per_call"),
    "seed": ("run", "seed"),
    "devices": ("run", "devices"),
    "early_stop": ("run", "early_stop"),
    "keep_best": ("run", "keep_best"),
    "divergence": ("run", "divergence"),
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


def train(args) -> int:
    # First, before any JAX computation: joining a multi-process run must precede backend initialisation.
    initialize_distributed(
        coordinator=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
        auto=args.distributed,
    )
    # Reuse freed host memory instead of page-faulting fresh buffers every step (purelm._runtime._host_memory);
    # a training process reaches its peak memory every step anyway.
    if not is_off(os.environ.get(KEEP_FREED_MEMORY_ENV, "on")):
        keep_freed_memory()
    changes = _given(args)
    console = Console(sys.stdout if is_main_process() else open(os.devnull, "w"))  # noqa: SIM115
    _signals.phase("data")
    if args.resume is None and args.out is None:
        raise UsageError("train needs --out DIR (or --resume DIR)")
    out = _out_dir(args.out) if args.out is not None else Path(args.resume)
    # A directory that exists is locked before its data is read, so that a second run into it ends at once;
    # a new one is locked when the run starts writing (Run.train), so that a bad input leaves nothing behind.
    with owning(out) if out.is_dir() and is_main_process() else contextlib.nullcontext():
        run = _start(args, changes, out, console)
        result = run.train()
        return _report(run, result, console)


def _start(args, changes: dict[str, dict], out: Path, console: Console) -> Run:
    """The run `args` asks for (`changes`: its options given, by section): a new one in `out`, or the one
    in `--resume DIR` going on in `out`."""
    if args.resume is None:
        if holds_checkpoint(out) and not args.overwrite:
            raise UsageError(
                f"{out} already holds a checkpoint; continue it with --resume {out}, pick another --out, "
                "or replace it with --overwrite"
            )
        return Run.create(TrainingConfig.new(**changes), out, callbacks=[console], overwrite=args.overwrite)
    resume = Path(args.resume)
    if out.resolve() != resume.resolve() and holds_checkpoint(out) and not args.overwrite:
        raise UsageError(
            f"{out} already holds a checkpoint of another run; pick another --out or replace it with --overwrite"
        )
    return Run.resume(resume, changes=changes, out=out, callbacks=[console], overwrite=args.overwrite)


def _report(run: Run, result: Result, console: Console) -> int:
    """How `purelm train` ends after `run.train()` returned `result`."""
    if result.status == "diverged":
        print(f"purelm train: error: {result.message}", file=sys.stderr)
        return 1
    if result.status in ("nothing", "stopped"):
        console.say(
            result.message
            if result.status == "nothing"
            else f"{result.message}; continue: {_signals.resume_command(run.out)}"
        )
        return 0
    # The run is complete and saved: a signal during the summary (the loss plot takes seconds) says so.
    _signals.exit_message(lambda signal: run.ended_line(result, signal))
    summarize(run, result, console)
    return 0


def convert(args) -> int:
    from purelm._rundir._convert import convert_torch

    path = Path(args.state_dict)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    out = _out_dir(args.out)
    if holds_checkpoint(out):
        raise UsageError(f"{out} already holds a checkpoint; pick another --out")
    hp, tokenizer, checkpoint = convert_torch(
        path, out, vocab=args.vocab, cell=args.cell, allow_pickle=args.allow_pickle
    )
    print(
        f"converted {path} -> {checkpoint}: {hp.cell}, vocabulary {hp.vocab_size:,} "
        f"({tokenizer.kind}s), embed {hp.embed_dim}, hidden {hp.hidden_dim}, {hp.num_layers} layer(s), "
        f"tied head: {hp.tie_embeddings}" + (" with bias" if hp.output_bias else "")
    )
    return 0
