"""The `purelm train` and `purelm convert-torch` commands (`purelm._cli._parser` parses their command lines).

They live apart from `purelm._cli._main` so that `purelm sample` and `purelm eval` never import what training
needs (`purelm.training`'s loop, equinox, optax, matplotlib): a warm `purelm sample` is mostly `import jax`.

The library names settings by their place in the configuration (`model.embed_dim=32`); `spell_options`
turns those names in a message into what the user typed: the option (`--embed-dim 32`), or the config
file's setting.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
from pathlib import Path

from purelm._cli._parser import UsageError, train_options
from purelm._data._metrics import format_loss
from purelm._rundir._checkpoint import CHECKPOINT_FILE
from purelm._rundir._format import BEST_DIR, METRICS_FILE, PLOT_FILE, holds_checkpoint
from purelm._rundir._loggers import CSV_FILE, TENSORBOARD_DIR
from purelm._rundir._ownership import owning
from purelm._rundir._run import Run
from purelm._runtime import _platforms, _signals
from purelm._runtime._compile_cache import is_off
from purelm._runtime._host_memory import ENV_VAR as KEEP_FREED_MEMORY_ENV
from purelm._runtime._host_memory import keep_freed_memory
from purelm._runtime._parallel import initialize_distributed, is_main_process
from purelm.training._config import RECIPES, TrainingConfig, with_changes
from purelm.training._config_file import read_config_file
from purelm.training._console import Console
from purelm.training._loop import Result
from purelm.training._progress import format_rate

# argparse destination -> (config section, field). Options left out on the command line stay None, so a
# resumed run keeps what its checkpoint stores and only what was given is compared.
_FIELDS = {
    "embed_dim": ("model", "embed_dim"),
    "hidden_dim": ("model", "hidden_dim"),
    "num_layers": ("model", "num_layers"),
    "cell": ("model", "cell"),
    "dropout": ("model", "dropout"),
    "dtype": ("model", "dtype"),
    "init": ("model", "init"),
    "init_range": ("model", "init_range"),
    "learn_initial_state": ("model", "learn_initial_state"),
    "tokenizer": ("data", "tokenizer"),
    "include": ("data", "include"),
    "batch_size": ("data", "batch_size"),
    "seq_len": ("data", "seq_len"),
    "eval_tokens": ("data", "eval_tokens"),
    "eval_batch_size": ("data", "eval_batch_size"),
    "windows": ("data", "windows"),
    "eval_layout": ("data", "eval_layout"),
    "optimizer": ("optim", "optimizer"),
    "lr": ("optim", "lr"),
    "weight_decay": ("optim", "weight_decay"),
    "grad_clip": ("optim", "grad_clip"),
    "torch_bias_grad": ("optim", "torch_bias_grad"),
    "schedule": ("schedule", "kind"),
    "warmup": ("schedule", "warmup"),
    "min_lr_ratio": ("schedule", "min_ratio"),
    "anneal": ("schedule", "anneal"),
    "steps": ("run", "steps"),
    "epochs": ("run", "epochs"),
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
    """The options given on the command line, as config changes by section (over those of `--config`)."""
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


def _settings(args) -> dict[str, dict]:
    """The settings of `--recipe NAME`, then those of `--config FILE` over them, then the command line's
    options over both (a new run's; a resumed run keeps its stored settings and takes only the last two)."""
    flags = _given(args)
    if {"steps", "epochs"} <= flags.get("run", {}).keys():
        raise UsageError("--steps and --epochs both set the target; give one of them")
    from_file = read_config_file(args.config) if args.config else {}
    # Remembered for spell_options: a message about a setting names the file where the file gave it.
    args.config_fields = {f"{section}.{name}" for section, fields in from_file.items() for name in fields}
    recipe = RECIPES[args.recipe] if getattr(args, "recipe", None) and args.resume is None else {}
    return with_changes(with_changes(recipe, from_file), flags)


# A setting in a library message (`model.embed_dim`, `optim.lr=0.5`), and a Python keyword with its value.
_SETTING = re.compile(r"\b(model|data|optim|schedule|run)\.([a-z_]+)(?:=(\S+))?")
_KEYWORD = re.compile(r"\b(cell|allow_pickle)=('?)([\w.]+)\2")
_KEYWORD_OPTIONS = {"cell": "--cell", "allow_pickle": "--allow-pickle"}


def spell_options(message: str, args) -> str:
    """`message` with each setting named as the command line gave it: `model.embed_dim=32` becomes
    `--embed-dim 32`, or `model.embed_dim=32 in run.toml` where `--config run.toml` set it; Python keywords
    of `purelm.interop` (`cell='rnn_tanh'`) become options (`--cell rnn_tanh`)."""
    options = {f"{section}.{name}": option for (section, name), option in _field_options().items()}
    given = _given(args) if args.command == "train" else {}
    by_flag = {f"{section}.{name}" for section, fields in given.items() for name in fields}
    in_file: set[str] = getattr(args, "config_fields", set()) - by_flag

    def setting(match: re.Match) -> str:
        field, value = f"{match[1]}.{match[2]}", match[3]
        if field in in_file:
            return f"{match[0]} in {args.config}"
        option = options.get(field)
        if option is None:
            return match[0]
        # Switches take no value.
        return option if value is None or option in _SWITCHES else f"{option} {value}"

    def keyword(match: re.Match) -> str:
        option = _KEYWORD_OPTIONS[match[1]]
        return option if match[3] == "True" else f"{option} {match[3]}"

    return _KEYWORD.sub(keyword, _SETTING.sub(setting, message))


_SWITCHES = ("--tied", "--no-best", "--fixed-initial-state", "--torch-bias-grad")


def _field_options() -> dict[tuple[str, str], str]:
    """The option that sets each configuration field."""
    flags = train_options()
    options = {field: flags[dest] for dest, field in _FIELDS.items()}
    return options | {
        ("model", "tie_embeddings"): "--tied",
        ("model", "output_bias"): "--tied",
        ("data", "paths"): "DATA",
    }


def train(args) -> int:
    # First, before any JAX computation: joining a multi-process run must precede backend initialisation.
    initialize_distributed(
        coordinator=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
        auto=args.distributed,
    )
    _platforms.check(args.device)
    # Reuse freed host memory instead of page-faulting fresh buffers every step (purelm._runtime._host_memory);
    # a training process reaches its peak memory every step anyway.
    if not is_off(os.environ.get(KEEP_FREED_MEMORY_ENV, "on")):
        keep_freed_memory()
    changes = _settings(args)
    log_to = args.log_to or ("jsonl",)
    if "tensorboard" in log_to and importlib.util.find_spec("tensorboardX") is None:
        raise UsageError("--log-to tensorboard needs tensorboardX: pip install 'purelm[tensorboard]'")
    console = Console(sys.stdout if is_main_process() else open(os.devnull, "w"))  # noqa: SIM115
    _signals.phase("data")
    if args.resume is None and args.out is None:
        raise UsageError("train needs --out DIR (or --resume DIR)")
    if args.resume is not None and args.recipe:
        raise UsageError("--recipe starts a new run; a resumed run keeps the settings it was created with")
    out = _out_dir(args.out) if args.out is not None else Path(args.resume)
    # A directory that exists is locked before its data is read, so that a second run into it ends at once;
    # a new one is locked when the run starts writing (Run.train), so that a bad input leaves nothing behind.
    with owning(out) if out.is_dir() and is_main_process() else contextlib.nullcontext():
        run = _start(args, changes, out, console, log_to)
        result = run.train()
        return _report(args, run, result, console)


def _start(args, changes: dict[str, dict], out: Path, console: Console, log_to: tuple[str, ...]) -> Run:
    """The run `args` asks for (`changes`: its settings, by section): a new one in `out`, or the one
    in `--resume DIR` going on in `out`."""
    if args.resume is None:
        if holds_checkpoint(out) and not args.overwrite:
            raise UsageError(
                f"{out} already holds a checkpoint; continue it with --resume {out}, pick another --out, "
                "or replace it with --overwrite"
            )
        return Run.create(
            TrainingConfig.new(**changes), out, callbacks=[console], log_to=log_to, overwrite=args.overwrite
        )
    resume = Path(args.resume)
    if out.resolve() != resume.resolve() and holds_checkpoint(out) and not args.overwrite:
        raise UsageError(
            f"{out} already holds a checkpoint of another run; pick another --out or replace it with --overwrite"
        )
    return Run.resume(resume, changes=changes, out=out, callbacks=[console], log_to=log_to, overwrite=args.overwrite)


def _report(args, run: Run, result: Result, console: Console) -> int:
    """How `purelm train` ends after `run.train()` returned `result`."""
    if result.status == "diverged":
        print(f"purelm train: error: {spell_options(result.message, args)}", file=sys.stderr)
        return 1
    if result.status in ("nothing", "stopped"):
        console.say(
            spell_options(result.message, args)
            if result.status == "nothing"
            else f"{result.message}; continue: {_signals.resume_command(run.out)}"
        )
        return 0
    # The run is complete and saved: a signal during the summary (the loss plot takes seconds) says so.
    _signals.exit_message(lambda signal: run.ended_line(result, signal))
    summarize(run, result, console)
    return 0


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
    extra = [run.out / name for name in (CSV_FILE, TENSORBOARD_DIR) if (run.out / name).exists()]
    console.say(f"metrics: {', '.join(str(path) for path in [run.out / METRICS_FILE, *extra])}")
    if run.writer:
        _signals.phase("plot")
        problem = run.plot()
        console.say(problem if problem else f"loss plot: {run.out / PLOT_FILE}")


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
