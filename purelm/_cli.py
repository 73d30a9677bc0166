"""The `purelm` command: train on text, sample, evaluate, and import PyTorch weights.

    purelm train [DATA...] --out DIR      # no DATA: the Python standard library of this interpreter
    purelm train --resume DIR             # continue DIR's run exactly, to its stored target
    purelm sample DIR --prompt "def " --length 300 --temperature 0.8 --top-k 40 --seed 0
    purelm eval DIR [FILE... | DATA_DIR]
    purelm convert-torch MODEL.pt [--vocab DATA_DIR] --out DIR

The command line is argument parsing on top of `purelm.training` (the run, its configuration and loop)
and the core. Bad input (missing or empty data, a bad checkpoint, impossible options) ends with one line
on stderr and exit status 2; nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import codecs
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

from purelm import _compile_cache, _signals
from purelm._checkpoint import CHECKPOINT_FILE, CheckpointError, save_checkpoint
from purelm._data import DataError, DataSpec, layout_dir, load_corpus, read_tokens
from purelm._parallel import DeviceError, add_distributed_arguments, initialize_distributed
from purelm._plot import plot_losses
from purelm._progress import Progress, format_rate
from purelm._tokenizer import EOS, TOKENIZERS, ByteTokenizer, TokenizerError, WordTokenizer
from purelm.interop import StateDictError
from purelm.training import (
    BEST_DIR,
    METRICS_FILE,
    PLOT_FILE,
    RUN_FORMAT,
    Callback,
    ConfigError,
    ModelConfig,
    Run,
    TrainingConfig,
    TrainingError,
    load_run_model,
    read_metrics,
    score,
)
from purelm.training._config import CELLS, DTYPES, OPTIMIZERS, SCHEDULES


class UsageError(ValueError):
    """A bad command line or input, reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line instead of argparse's usage block: the contract for every bad input.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(kind: type, *, allow_zero: bool):
    """An argparse type: a finite positive (or, with `allow_zero`, non-negative) int or float."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(
                f"must be a finite {'non-negative' if allow_zero else 'positive'} number, got {text}"
            )
        return value

    parse.__name__ = kind.__name__
    return parse


_positive_int = _number(int, allow_zero=False)
_positive_float = _number(float, allow_zero=False)
_count = _number(int, allow_zero=True)
_nonneg_float = _number(float, allow_zero=True)


def _dropout(text: str) -> float:
    value = _nonneg_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


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


def _add_train_arguments(train: argparse.ArgumentParser) -> None:
    add = train.add_argument
    add("data", nargs="*", metavar="DATA", help="files or directories; a directory holding train.txt and "
        "valid.txt (and test.txt) is read as those splits (default: the stdlib)")
    add("--out", metavar="DIR", help="run directory (checkpoint, metrics.jsonl, loss.png, best/)")
    add("--resume", metavar="DIR", help="continue the run in DIR exactly, to its stored target; options given "
        "with it may change the target, intervals, devices, early stopping and --lr, nothing else")
    add("--include", metavar="GLOB", help="files to take from directories (default '*'; '*.py' for the stdlib)")
    add("--tokenizer", choices=TOKENIZERS, help="byte: every byte a token; word: whitespace-split words and "
        "<eos> per line, as word_language_model's data.py (byte)")
    group = train.add_argument_group("model")
    group.add_argument("--embed-dim", dest="embed_dim", type=_positive_int, metavar="N", help="embedding size (64)")
    group.add_argument("--hidden-dim", dest="hidden_dim", type=_positive_int, metavar="N", help="recurrent size (256)")
    group.add_argument("--layers", dest="num_layers", type=_positive_int, metavar="N", help="recurrent layers (1)")
    group.add_argument("--cell", choices=CELLS, help="recurrent cell, torch's equations (lstm)")
    group.add_argument("--tied", action="store_true", default=None,
                       help="output layer = embedding matrix, plus an output bias (word_language_model's --tied; "
                       "needs --embed-dim = --hidden-dim)")
    group.add_argument("--dropout", type=_dropout, metavar="P", help="dropout on embeddings, between layers and "
                       "before the output layer, in training only (0)")
    group.add_argument("--dtype", choices=DTYPES, help="parameter and activation dtype; losses accumulate in float32 "
                       "(float32)")
    group = train.add_argument_group("optimisation")
    group.add_argument("--optimizer", choices=OPTIMIZERS, help="sgd (word_language_model's update), adam or adamw (adam)")
    group.add_argument("--lr", type=_positive_float, metavar="X", help="learning rate (0.003)")
    group.add_argument("--weight-decay", dest="weight_decay", type=_nonneg_float, metavar="X",
                       help="L2 for sgd/adam (torch's weight_decay), decoupled for adamw (0; adamw: 0.01)")
    group.add_argument("--grad-clip", dest="grad_clip", type=_nonneg_float, metavar="X",
                       help="clip the gradient's global norm; 0 turns it off (1.0)")
    group.add_argument("--schedule", choices=SCHEDULES, help="lr multiplier per step: constant, or cosine down to "
                       "--min-lr-ratio at --steps (constant)")
    group.add_argument("--warmup", type=_count, metavar="N", help="linear lr warmup over N steps (0)")
    group.add_argument("--min-lr-ratio", dest="min_lr_ratio", type=_nonneg_float, metavar="X",
                       help="the cosine schedule's final lr / lr (0.1)")
    group.add_argument("--anneal", type=_nonneg_float, metavar="X", help="divide the lr by X after every "
                       "validation that does not improve on the best (word_language_model: 4); 0: off (0)")
    group = train.add_argument_group("batches")
    group.add_argument("--batch-size", dest="batch_size", type=_positive_int, metavar="N", help="parallel streams (32)")
    group.add_argument("--seq-len", dest="seq_len", type=_positive_int, metavar="N", help="window length in tokens (64)")
    group = train.add_argument_group("the run")
    group.add_argument("--steps", type=_positive_int, metavar="N", help="target step (1000; stored, so --resume "
                       "continues to it)")
    group.add_argument("--seed", type=_count, metavar="N", help="initialisation and dropout seed (0)")
    group.add_argument("--eval-every", dest="eval_every", type=_count, metavar="N",
                       help="validate every N steps and at the end; 0: never (200)")
    group.add_argument("--eval-tokens", "--eval-bytes", dest="eval_tokens", type=_positive_int, metavar="N",
                       help="validation tokens scored during training (131072 bytes; word runs: all)")
    group.add_argument("--eval-batch-size", dest="eval_batch_size", type=_positive_int, metavar="N",
                       help="validation columns (--batch-size; word runs: 10, as word_language_model)")
    group.add_argument("--checkpoint-every", dest="checkpoint_every", type=_positive_int, metavar="N",
                       help="save every N steps, and always at the end (200)")
    group.add_argument("--log-every", dest="log_every", type=_positive_int, metavar="N",
                       help="steps per metrics record / plain log line (10)")
    group.add_argument("--steps-per-call", dest="steps_per_call", type=_positive_int, metavar="N",
                       help="training steps per compiled call; same result, less Python overhead. A call stops "
                       "early at log, eval and checkpoint steps (10)")
    group.add_argument("--early-stop", dest="early_stop", type=_count, metavar="N",
                       help="stop after N validations without improvement; 0: never (0)")
    group.add_argument("--no-best", dest="keep_best", action="store_false", default=None,
                       help="do not keep the best model by validation in DIR/best/")
    group.add_argument("--divergence", type=_nonneg_float, metavar="X", help="stop when the mean loss exceeds X "
                       "times a uniform guess's, or is not finite; 0: only non-finite (3)")
    group.add_argument("--devices", type=_positive_int, metavar="N", help="data-parallel devices (default: all that "
                       "divide the batch)")
    add_distributed_arguments(train)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="purelm", description="Train, sample and evaluate LSTM (GRU, RNN) language models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--no-compile-cache", dest="no_compile_cache", action="store_true",
                        help="do not use JAX's persistent compilation cache (also: PURELM_CACHE_DIR=off)")

    def add_parser(name, **kwargs):
        return commands.add_parser(name, parents=[common], **kwargs)

    train = add_parser("train", help="train a model (default data: the Python standard library)")
    _add_train_arguments(train)

    sampling = add_parser("sample", help="generate text from a trained model")
    sampling.add_argument("dir", metavar="DIR", help="a run directory (from train or convert-torch)")
    sampling.add_argument("--prompt", help="text to continue (byte runs: 'def '; word runs: none, i.e. a new line)")
    sampling.add_argument("--length", type=_positive_int, metavar="N", default=300, help="tokens to generate (300)")
    sampling.add_argument("--temperature", type=_positive_float, metavar="X", default=0.8,
                          help="divide the scores by X: lower is safer, higher wilder (0.8)")
    sampling.add_argument("--top-k", dest="top_k", type=_count, metavar="N",
                          help="sample among the k likeliest tokens; 0: all (40)")
    sampling.add_argument("--seed", type=_count, metavar="N", default=0, help="sampling seed (0)")

    evaluate = add_parser("eval", help="perplexity (and bits per byte) on held-out text, every token")
    evaluate.add_argument("dir", metavar="DIR", help="a run directory (from train or convert-torch)")
    evaluate.add_argument("data", nargs="*", metavar="DATA", help="files to score, all of them, or a data "
                          "directory (its test.txt); default: the run's validation split")
    evaluate.add_argument("--include", metavar="GLOB", help="files to take from directories")
    evaluate.add_argument("--max-tokens", "--max-bytes", dest="max_tokens", type=_positive_int, metavar="N",
                          help="score only the first N tokens")
    evaluate.add_argument("--batch-size", dest="batch_size", type=_positive_int, metavar="N",
                          help="contiguous columns (the run's validation layout; word runs: 10)")
    evaluate.add_argument("--seq-len", dest="seq_len", type=_positive_int, metavar="N",
                          help="window length (the run's --seq-len; word_language_model: 35)")

    convert = add_parser("convert-torch", help="import a PyTorch language model (word_language_model's "
                                  "RNNModel, purelm.reference)")
    convert.add_argument("state_dict", metavar="MODEL.pt", help="a state_dict saved with torch.save")
    convert.add_argument("--out", metavar="DIR", required=True)
    convert.add_argument("--vocab", metavar="DATA_DIR", help="the data directory the model was trained on "
                         "(train.txt, valid.txt, test.txt): its words, in word_language_model's order")
    convert.add_argument("--cell", choices=("rnn_tanh", "rnn_relu"), help="the nonlinearity of an nn.RNN model "
                         "(a state_dict cannot tell)")
    convert.add_argument("--allow-pickle", action="store_true",
                         help="also read a whole pickled model (what word_language_model's main.py saves). "
                         "Unpickling runs code from the file: only for files you trust")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `purelm` command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    handlers = {"train": _train, "sample": _sample, "eval": _eval, "convert-torch": _convert}
    # Before the first compilation: a second run of the same command loads XLA's output from disk.
    _compile_cache.enable("off" if args.no_compile_cache else None)
    try:
        return handlers[args.command](args)
    except (UsageError, DataError, CheckpointError, DeviceError, ConfigError, TokenizerError, StateDictError) as err:
        print(f"purelm {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except TrainingError as err:  # training could not go on (diverged); the last checkpoint is intact
        print(f"purelm {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # `purelm sample ... | head`: the console entry ends quietly, as a tool killed by SIGPIPE
    except OSError as err:  # an unwritable --out, a full disk: still one line, not a traceback
        print(f"purelm {args.command}: error: {err.strerror or err}: {err.filename or ''}", file=sys.stderr)
        return 2


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _one_line(err: BaseException) -> str:
    text = _ANSI.sub("", str(err)).strip()
    return " ".join(text.split()) if text else type(err).__name__


# ----------------------------------------------------------------------------------------------- train


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


def _train(args) -> int:
    # First, before any JAX computation: joining a multi-process run must precede backend initialisation.
    initialize_distributed(coordinator=args.coordinator, num_processes=args.num_processes,
                           process_id=args.process_id, auto=args.distributed)
    changes = _given(args)
    console = _Console(sys.stdout if _main_process() else open(os.devnull, "w"))  # noqa: SIM115
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


def _main_process() -> bool:
    return jax.process_index() == 0


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


# ------------------------------------------------------------------------------------- sample and eval


def _load(directory: str):
    model, tokenizer, meta = load_run_model(directory)
    return model, tokenizer, meta


def _prompt_ids(tokenizer, text: str) -> np.ndarray:
    if isinstance(tokenizer, WordTokenizer):
        # A word prompt is words; a line break in it is <eos>, and generation starts after the last word.
        lines = text.split("\n")
        ids = [tokenizer.encode_lines([line], source="--prompt")[:-1] for line in lines]
        parts = []
        for i, part in enumerate(ids):
            parts.append(part)
            if i < len(ids) - 1:
                parts.append(tokenizer.encode_lines([""], source="--prompt"))
        out = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        # Nothing to read: start as after a line end.
        return out if out.size else tokenizer.encode_lines([""], source="--prompt")
    return tokenizer.encode_text(text).astype(np.int32)


def _sample(args) -> int:
    from purelm._streaming import sample_stream

    model, tokenizer, _ = _load(args.dir)
    prompt = args.prompt if args.prompt is not None else ("def " if isinstance(tokenizer, ByteTokenizer) else "")
    ids = _prompt_ids(tokenizer, prompt)
    if args.top_k is None:
        top_k = min(40, model.vocab_size)  # the default, on a vocabulary smaller than 40 too
    else:
        top_k = args.top_k or None
        if top_k is not None and top_k > model.vocab_size:
            raise UsageError(f"--top-k {top_k} exceeds the model's vocabulary of {model.vocab_size:,}")
    _signals.phase("sample")
    chunks = sample_stream(model, jax.random.key(args.seed), jax.numpy.asarray(ids), args.length,
                           temperature=args.temperature, top_k=top_k)
    # Written as it is drawn (the prompt with the first tokens): a long --length shows progress, and Ctrl-C
    # stops within one chunk.
    pending = prompt
    if isinstance(tokenizer, WordTokenizer):
        line_start = not prompt or prompt.endswith("\n")
        for chunk in chunks:
            for i in chunk:
                word = tokenizer.words[int(i)]
                pending += "\n" if word == EOS else (word if line_start else " " + word)
                line_start = word == EOS
            sys.stdout.write(pending)
            sys.stdout.flush()
            pending = ""
        pending += "" if line_start else "\n"
    else:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = decoder.decode(prompt.encode("utf-8"))
        for chunk in chunks:
            sys.stdout.write(pending + decoder.decode(bytes(int(i) for i in chunk)))
            sys.stdout.flush()
            pending = ""
        pending += decoder.decode(b"", final=True) + "\n"
    sys.stdout.write(pending)
    sys.stdout.flush()
    return 0


def _eval(args) -> int:
    model, tokenizer, meta = _load(args.dir)
    config = meta.get("config")
    stored = TrainingConfig.from_json(config) if config else None
    _signals.phase("data")
    if args.data:
        spec = DataSpec(paths=tuple(str(Path(p).absolute()) for p in args.data), include=args.include)
        tokens, what = read_tokens(spec, tokenizer)
    else:
        if stored is None:
            raise UsageError(f"{args.dir} records no training data (a converted model); give the text to score")
        corpus = load_corpus(stored.data.spec(), tokenizer=tokenizer)
        tokens, what = corpus.val, f"validation split of {corpus.description.split(':')[0]}"
    tokens = tokens[: args.max_tokens]
    if stored is not None:
        batch_size, seq_len = stored.data.eval_layout()
    elif isinstance(tokenizer, WordTokenizer):
        batch_size, seq_len = 10, 35  # word_language_model's evaluation layout
    else:
        batch_size, seq_len = 32, 64
    batch_size, seq_len = args.batch_size or batch_size, args.seq_len or seq_len
    _signals.phase("eval")
    result = score(model, tokens, batch_size=batch_size, seq_len=seq_len)
    unit = tokenizer.unit
    print(f"evaluated {result.count:,} {unit}s (all {tokens.size:,} but the first, which is context): {what}")
    if unit == "byte":
        print(f"bits per byte: {result.bits_per_token:.4f}")
        print(f"perplexity:    {result.perplexity:.4f}  (per byte; loss {result.nats:.4f} nats)")
    else:
        print(f"perplexity: {result.perplexity:.4f}  (per word; loss {result.nats:.6f} nats; batch {batch_size}, "
              f"seq-len {seq_len})")
    return 0


# ----------------------------------------------------------------------------------------- convert


def _convert(args) -> int:
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
    meta = {"kind": "model", "run_format": RUN_FORMAT, "model": ModelConfig.of(model).to_json(),
            "tokenizer": tokenizer.to_json(), "step": 0, "source": str(path.absolute()), **_versions()}
    save_checkpoint(out, {"model": model}, meta)
    hp = ModelConfig.of(model)
    print(
        f"converted {path} -> {out / CHECKPOINT_FILE}: {hp.cell}, vocabulary {model.vocab_size:,} "
        f"({tokenizer.kind}s), embed {hp.embed_dim}, hidden {hp.hidden_dim}, {hp.num_layers} layer(s), "
        f"tied head: {hp.tie_embeddings}" + (" with bias" if hp.output_bias else "")
    )
    return 0


def _versions() -> dict[str, Any]:
    from purelm import __version__

    return {"purelm_version": __version__, "jax_version": jax.__version__}


if __name__ == "__main__":
    sys.exit(main())
