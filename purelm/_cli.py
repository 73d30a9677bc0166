"""The `purelm` command: train on text, sample, evaluate, and import PyTorch weights.

    purelm train [DATA...] --out DIR      # no DATA: the Python standard library of this interpreter
    purelm train --resume DIR --steps N   # continue exactly where DIR's checkpoint stopped
    purelm sample DIR --prompt "def " --length 300 --temperature 0.8 --top-k 40 --seed 0
    purelm eval DIR [DATA...]
    purelm convert-torch STATE_DICT.pt --out DIR

Bad input (missing or empty data, a bad checkpoint, impossible options) ends with one line on stderr and
exit status 2; nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax

from purelm import __version__
from purelm._checkpoint import (
    CHECKPOINT_FILE,
    CheckpointError,
    build_model,
    load_checkpoint,
    load_model,
    model_hparams,
    read_meta,
    save_checkpoint,
)
from purelm._data import (
    VOCAB_SIZE,
    DataError,
    DataSpec,
    eval_windows,
    load_corpus,
    num_windows,
    read_bytes,
    training_streams,
    windows,
)
from purelm._evaluate import bits_per_byte, mean_loss
from purelm._files import atomic_write_bytes
from purelm._model import batch_initial_state
from purelm._parallel import (
    DeviceError,
    choose_devices,
    initialize_distributed,
    is_main_process,
    make_mesh,
    replicate,
    shard_batch,
    shard_states,
    to_host,
)
from purelm._plot import plot_losses
from purelm._progress import Progress, format_rate
from purelm._sample import sample
from purelm._train import make_train_steps
from purelm.interop import StateDictError, from_torch_state_dict

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss.png"

# Model and optimisation settings a run is defined by; stored in the checkpoint, fixed across resumes.
MODEL_DEFAULTS = {"embed_dim": 64, "hidden_dim": 256, "num_layers": 1}
TRAIN_DEFAULTS = {"batch_size": 32, "seq_len": 64, "lr": 3e-3, "grad_clip": 1.0, "seed": 0}
_OPTION_OF = {
    "embed_dim": "--embed-dim",
    "hidden_dim": "--hidden-dim",
    "num_layers": "--layers",
    "batch_size": "--batch-size",
    "seq_len": "--seq-len",
    "lr": "--lr",
    "grad_clip": "--grad-clip",
    "seed": "--seed",
}


class UsageError(ValueError):
    """A bad command line or input, reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line instead of argparse's usage block: the contract for every bad input.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(kind: type, *, allow_zero: bool):
    """An argparse type: a positive (or, with `allow_zero`, non-negative) int or float."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0 or (value == 0 and not allow_zero) or math.isnan(value):
            raise argparse.ArgumentTypeError(f"must be {'non-negative' if allow_zero else 'positive'}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


_positive_int = _number(int, allow_zero=False)
_positive_float = _number(float, allow_zero=False)
_count = _number(int, allow_zero=True)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="purelm", description="Train, sample and evaluate byte-level LSTM language models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model (default data: the Python standard library)")
    train.add_argument("data", nargs="*", metavar="DATA", help="files or directories (default: the stdlib)")
    train.add_argument("--out", metavar="DIR", help="run directory (checkpoint, metrics.jsonl, loss.png)")
    train.add_argument("--resume", metavar="DIR", help="continue the run in DIR exactly")
    train.add_argument("--include", metavar="GLOB", help="files to take from directories (default '*'; "
                       "'*.py' for the default corpus)")
    train.add_argument("--steps", type=_positive_int, metavar="N", default=1000, help="total steps to reach (1000)")
    train.add_argument("--batch-size", dest="batch_size", type=_positive_int, metavar="N", help="parallel streams (32)")
    train.add_argument("--seq-len", dest="seq_len", type=_positive_int, metavar="N", help="window length in bytes (64)")
    train.add_argument("--embed-dim", dest="embed_dim", type=_positive_int, metavar="N", help="embedding size (64)")
    train.add_argument("--hidden-dim", dest="hidden_dim", type=_positive_int, metavar="N", help="LSTM size (256)")
    train.add_argument("--layers", dest="num_layers", type=_positive_int, metavar="N", help="LSTM layers (1)")
    train.add_argument("--lr", type=_positive_float, metavar="X", help="Adam learning rate (0.003)")
    train.add_argument("--grad-clip", dest="grad_clip", type=_number(float, allow_zero=True), metavar="X",
                       help="clip the gradient's global norm; 0 turns it off (1.0)")
    train.add_argument("--seed", type=_count, metavar="N", help="initialisation seed (0)")
    train.add_argument("--eval-every", type=_count, metavar="N", default=200,
                       help="validate every N steps and at the end; 0: never (200)")
    train.add_argument("--eval-bytes", type=_positive_int, metavar="N", default=128 * 1024,
                       help="validation bytes used during training (131072)")
    train.add_argument("--checkpoint-every", type=_positive_int, metavar="N", default=200,
                       help="save every N steps, and always at the end (200)")
    train.add_argument("--log-every", type=_positive_int, metavar="N", default=10,
                       help="steps per metrics record / plain log line (10)")
    train.add_argument("--steps-per-call", dest="steps_per_call", type=_positive_int, metavar="N", default=10,
                       help="training steps per compiled call; same result, less Python overhead. A call "
                       "stops early at log, eval and checkpoint steps (10)")
    train.add_argument("--devices", type=_positive_int, metavar="N", help="data-parallel devices (default: all that "
                       "divide the batch)")
    train.add_argument("--distributed", action="store_true",
                       help="multi-host: call jax.distributed.initialize() first")

    sampling = commands.add_parser("sample", help="generate text from a trained model")
    sampling.add_argument("dir", metavar="DIR", help="a run directory (from train or convert-torch)")
    sampling.add_argument("--prompt", default="def ", help="text to continue (default 'def ')")
    sampling.add_argument("--length", type=_positive_int, metavar="N", default=300, help="bytes to generate (300)")
    sampling.add_argument("--temperature", type=_positive_float, metavar="X", default=0.8,
                          help="divide the scores by X: lower is safer, higher wilder (0.8)")
    sampling.add_argument("--top-k", dest="top_k", type=_count, metavar="N", default=40,
                          help="sample among the k likeliest bytes; 0: all (40)")
    sampling.add_argument("--seed", type=_count, metavar="N", default=0, help="sampling seed (0)")

    evaluate = commands.add_parser("eval", help="bits per byte and perplexity on held-out text")
    evaluate.add_argument("dir", metavar="DIR", help="a run directory (from train or convert-torch)")
    evaluate.add_argument("data", nargs="*", metavar="DATA",
                          help="text to score, all of it (default: the run's validation split)")
    evaluate.add_argument("--include", metavar="GLOB", help="files to take from directories")
    evaluate.add_argument("--max-bytes", type=_positive_int, metavar="N", help="score only the first N bytes")
    evaluate.add_argument("--devices", type=_positive_int, metavar="N", help="data-parallel devices")

    convert = commands.add_parser("convert-torch", help="import a PyTorch LSTM language model's state_dict")
    convert.add_argument("state_dict", metavar="STATE_DICT.pt")
    convert.add_argument("--out", metavar="DIR", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `purelm` command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    handlers = {"train": _train, "sample": _sample, "eval": _eval, "convert-torch": _convert}
    try:
        return handlers[args.command](args)
    except (UsageError, DataError, CheckpointError, DeviceError) as err:
        print(f"purelm {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # an unwritable --out, a full disk: still one line, not a traceback
        print(f"purelm {args.command}: error: {err.strerror or err}: {err.filename or ''}", file=sys.stderr)
        return 2


# ----------------------------------------------------------------------------------------------- runs


def _optimizer(train_hp: dict):
    adam = optax.adam(train_hp["lr"])
    if train_hp["grad_clip"] > 0:
        return optax.chain(optax.clip_by_global_norm(train_hp["grad_clip"]), adam)
    return adam


@functools.lru_cache(maxsize=4)
def _train_steps(lr: float, grad_clip: float):
    """The core's compiled multi-window step for these settings; cached, so repeated runs in one process
    (resumes, tests, notebooks) reuse the compilations."""
    return make_train_steps(_optimizer({"lr": lr, "grad_clip": grad_clip}))


def _templates(meta: dict) -> dict:
    """Shapes and dtypes of everything a training checkpoint holds, without allocating it."""
    model = eqx.filter_eval_shape(build_model, meta["model"], jax.random.key(0))
    params = eqx.filter(model, lambda x: isinstance(x, jax.ShapeDtypeStruct))
    opt_state = jax.eval_shape(_optimizer(meta["train"]).init, params)
    shape = (meta["train"]["batch_size"], meta["model"]["num_layers"], meta["model"]["hidden_dim"])
    state = jax.ShapeDtypeStruct(shape, jax.numpy.dtype(meta["model"].get("dtype", "float32")))
    return {
        "model": model,
        "opt_state": opt_state,
        "states": (state, state),
        "key": jax.eval_shape(jax.random.key, 0),
    }


def _out_dir(text: str) -> Path:
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    return out


def _data_spec(paths: Sequence[str], include: str | None):
    if not paths:
        return DataSpec(paths=None, include=include)
    return DataSpec(paths=tuple(str(Path(p).absolute()) for p in paths), include=include)


def _resolve_run(args) -> tuple[dict, Any, Path, Path | None]:
    """Settle the run's metadata (fresh or from `--resume`), its data spec, output and resume directories."""
    given = {name: getattr(args, name) for name in (*MODEL_DEFAULTS, *TRAIN_DEFAULTS)}
    if args.resume is None:
        if args.out is None:
            raise UsageError("train needs --out DIR (or --resume DIR)")
        out = _out_dir(args.out)
        if (out / CHECKPOINT_FILE).exists():
            raise UsageError(f"{out} already holds a checkpoint; continue it with --resume {out} or pick another --out")
        model_hp = {"vocab_size": VOCAB_SIZE, "tie_embeddings": False, "dtype": "float32"}
        model_hp |= {k: v if given[k] is None else given[k] for k, v in MODEL_DEFAULTS.items()}
        train_hp = {k: v if given[k] is None else given[k] for k, v in TRAIN_DEFAULTS.items()}
        meta = {"kind": "train", "model": model_hp, "train": train_hp, "step": 0}
        return meta, _data_spec(args.data, args.include), out, None

    resume = Path(args.resume)
    meta = read_meta(resume)
    if meta.get("kind") == "model":
        raise CheckpointError(f"{resume} holds a model without training state (from convert-torch); cannot resume it")
    missing = [k for k in ("model", "train", "data", "step") if k not in meta]
    if meta.get("kind") != "train" or missing:
        lacks = f" (it lacks {', '.join(missing)})" if missing else ""
        raise CheckpointError(f"{resume}'s checkpoint is not a purelm training checkpoint{lacks}")
    stored = meta["model"] | meta["train"]
    for name, value in given.items():
        if value is not None and value != stored[name]:
            raise CheckpointError(
                f"{_OPTION_OF[name]} {value} does not match the checkpoint in {resume} ({name} = {stored[name]})"
            )
    out = resume if args.out is None else _out_dir(args.out)
    if out.resolve() != resume.resolve() and (out / CHECKPOINT_FILE).exists():
        raise UsageError(f"{out} already holds a checkpoint of another run; pick another --out")
    if args.data or args.include is not None:
        spec = _data_spec(args.data, args.include)
    else:
        spec = DataSpec.from_json(meta["data"])
    return meta, spec, out, resume


def _read_metrics(path: Path, up_to_step: int | None = None) -> list[dict]:
    records = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            # A run killed mid-append leaves at most one broken last line; it is dropped.
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line)
                if isinstance(record, dict) and (up_to_step is None or record.get("step", 0) <= up_to_step):
                    records.append(record)
    return records


class _Trainer:
    """One `purelm train` invocation: set-up (fresh or resumed), the step loop, and what it writes.

    Only process 0 of a multi-host run writes files and prints.
    """

    def __init__(self, args, meta: dict, spec, out: Path, resume: Path | None):
        self.args, self.out, self.resume = args, out, resume
        self.model_hp, self.train_hp = meta["model"], meta["train"]
        batch_size, seq_len = self.train_hp["batch_size"], self.train_hp["seq_len"]
        self.corpus = load_corpus(spec)
        self.streams = training_streams(self.corpus.train, batch_size, seq_len)
        self.windows_per_epoch = num_windows(self.streams, seq_len)
        self.n_devices = choose_devices(args.devices, batch_size)
        self.mesh = make_mesh(self.n_devices)
        self.val, self.val_note = None, ""
        if args.eval_every:
            try:
                self.val = eval_windows(self.corpus.val[: args.eval_bytes], batch_size, seq_len,
                                        multiple_of=self.n_devices)
            except DataError as err:
                self.val_note = f"no validation: {err}"
        self.data_meta = spec.to_json() | {
            "fingerprint": self.corpus.fingerprint(),
            "train_bytes": int(self.corpus.train.size),
            "val_bytes": int(self.corpus.val.size),
            "description": self.corpus.description,
        }
        if resume is None:
            init_key, self.key = jax.random.split(jax.random.key(self.train_hp["seed"]))
            self.model = build_model(self.model_hp, init_key)
            self.opt_state = _optimizer(self.train_hp).init(eqx.filter(self.model, eqx.is_array))
            self.states = batch_initial_state(self.model, batch_size)
            self.start, self.records = 0, []
        else:
            stored = meta["data"]
            if stored["fingerprint"] != self.data_meta["fingerprint"]:
                raise CheckpointError(
                    f"the data does not match the checkpoint in {resume}: it has {self.data_meta['train_bytes']:,}"
                    f"+{self.data_meta['val_bytes']:,} bytes (fingerprint {self.data_meta['fingerprint']}), the "
                    f"checkpoint was trained on {stored['train_bytes']:,}+{stored['val_bytes']:,} bytes "
                    f"(fingerprint {stored['fingerprint']})"
                )
            trees, meta = load_checkpoint(resume, _templates(meta))
            self.model, self.opt_state, self.states, self.key = (
                trees[k] for k in ("model", "opt_state", "states", "key")
            )
            self.start = meta["step"]
            self.records = _read_metrics(resume / METRICS_FILE, up_to_step=self.start)
        self.meta = meta
        self.writer = is_main_process()

    def say(self, text: str) -> None:
        if self.writer:
            print(text, flush=True)

    def describe(self) -> None:
        hp = self.model_hp
        n_params = sum(x.size for x in jax.tree.leaves(eqx.filter(self.model, eqx.is_array)))
        plural = "s" if self.n_devices > 1 else ""
        self.say(f"data: {self.corpus.description}")
        self.say(
            f"model: {n_params:,} parameters (embed {hp['embed_dim']}, hidden {hp['hidden_dim']}, "
            f"{hp['num_layers']} layer{'s' if hp['num_layers'] > 1 else ''}); batch {self.train_hp['batch_size']} x "
            f"{self.train_hp['seq_len']} bytes on {self.n_devices} {jax.devices()[0].platform} device{plural}; "
            f"{self.windows_per_epoch:,} steps per epoch"
        )
        if self.val_note:
            self.say(self.val_note)

    def checkpoint_meta(self, step: int) -> dict:
        epoch, position = divmod(step, self.windows_per_epoch)
        return self.meta | {
            "step": step,
            "position": {"epoch": epoch, "window": position, "windows_per_epoch": self.windows_per_epoch},
            "data": self.data_meta,
            "purelm_version": __version__,
            "jax_version": jax.__version__,
        }

    def record(self, record: dict) -> None:
        if self.writer:
            with (self.out / METRICS_FILE).open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def save(self, step: int) -> None:
        with _paused(self.progress):
            host = to_host({"model": self.model, "opt_state": self.opt_state, "states": self.states})
            if self.writer:
                save_checkpoint(self.out, host | {"key": self.key}, self.checkpoint_meta(step))

    def evaluate(self, step: int) -> dict:
        with _paused(self.progress):
            nats = float(mean_loss(self.model, self.val))
        bpb, perplexity = bits_per_byte(nats), math.exp(nats)
        record = {"step": step, "val_loss": nats, "val_bpb": bpb, "val_perplexity": perplexity}
        self.record(record)
        if self.writer:
            self.progress.message(
                f"eval  step {step}: validation {bpb:.4f} bits/byte, perplexity {perplexity:.3f} "
                f"({self.val.size:,} bytes)"
            )
        return record

    def steps_in_next_call(self, done: int, total: int) -> int:
        """How many steps the next compiled call makes: `--steps-per-call`, cut short so that every step
        that logs, evaluates or saves is the last step of a call."""
        args = self.args
        cadences = [args.log_every, args.checkpoint_every] + ([args.eval_every] if self.val is not None else [])
        return min(args.steps_per_call, total - done, *(every - done % every for every in cadences))

    def run(self) -> int:
        args, total, seq_len = self.args, self.args.steps, self.train_hp["seq_len"]
        self.describe()
        if self.start >= total:
            self.say(f"nothing to do: {self.resume} is already at step {self.start} (--steps {total})")
            return 0
        if self.resume is not None:
            self.say(f"resuming {self.resume} at step {self.start}")
        if self.writer:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.out / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in self.records).encode())
        self.model, self.opt_state = replicate(self.model, self.mesh), replicate(self.opt_state, self.mesh)
        self.states = shard_states(self.states, self.mesh)
        if self.val is not None:
            self.val = shard_batch(self.val, self.mesh, axis=1)
        train_steps = _train_steps(self.train_hp["lr"], self.train_hp["grad_clip"])
        stream = sys.stdout if self.writer else open(os.devnull, "w")  # noqa: SIM115
        self.progress = Progress(total, self.start, self.streams.shape[0] * seq_len, log_every=args.log_every,
                                 stream=stream)
        pending: list = []
        last: dict = {}
        begin = time.perf_counter()
        done = self.start
        try:
            while done < total:
                count = self.steps_in_next_call(done, total)
                positions = [step % self.windows_per_epoch for step in range(done, done + count)]
                batches = shard_batch(windows(self.streams, positions, seq_len), self.mesh, axis=1)
                # A new epoch starts from the learnable initial state, taken inside the step so c0 gets gradients.
                restart = [position == 0 for position in positions]
                self.model, self.opt_state, self.states, losses = train_steps(
                    self.model, self.opt_state, batches, self.states, restart
                )
                done += count
                pending.append(losses)
                if done % args.log_every == 0 or done == total:
                    nats = _mean(pending)
                    pending = []
                    last["train"] = {
                        "step": done,
                        "train_loss": nats,
                        "train_bpb": bits_per_byte(nats),
                        "tokens_per_s": self.progress.tokens_per_s(done),
                        "elapsed_s": time.perf_counter() - begin,
                    }
                    self.record(last["train"])
                    self.progress.update(done, loss=nats)
                else:
                    self.progress.update(done, loss_fn=functools.partial(_mean, pending))
                if self.val is not None and (done % args.eval_every == 0 or done == total):
                    last["eval"] = self.evaluate(done)
                if done % args.checkpoint_every == 0 or done == total:
                    self.save(done)
        except KeyboardInterrupt:
            self.progress.close()
            if done > self.start:
                self.save(done)
                self.say(f"interrupted at step {done}: checkpoint saved; continue: purelm train --resume {self.out}")
            else:
                self.say("interrupted before the first step; nothing saved")
            return 130
        self.progress.close()
        self.finish(done, last)
        return 0

    def finish(self, done: int, last: dict) -> None:
        summary = f"done: step {done}"
        if "train" in last:
            summary += f", train {last['train']['train_bpb']:.4f} bits/byte"
        if "eval" in last:
            summary += f", validation {last['eval']['val_bpb']:.4f} bits/byte"
        rate = self.progress.tokens_per_s(done)
        if rate:
            summary += f", {format_rate(rate)} tokens/s"
        self.say(summary)
        self.say(f"checkpoint: {self.out / 'checkpoint.npz'}")
        self.say(f"metrics: {self.out / METRICS_FILE}")
        if self.writer:
            title = f"purelm: hidden {self.model_hp['hidden_dim']}, {self.corpus.description.split(':')[0]}"
            problem = plot_losses(_read_metrics(self.out / METRICS_FILE), self.out / PLOT_FILE, title=title)
            self.say(problem if problem else f"loss plot: {self.out / PLOT_FILE}")


def _mean(values: list) -> float:
    """The mean of every loss in a list of per-call loss arrays."""
    return float(np.mean(np.concatenate(jax.device_get(values))))


@contextlib.contextmanager
def _paused(progress) -> Iterator[None]:
    """Keep evaluation and checkpoint time out of the training throughput."""
    begin = time.perf_counter()
    try:
        yield
    finally:
        progress.exclude(time.perf_counter() - begin)


def _train(args) -> int:
    if args.distributed:
        initialize_distributed()
    return _Trainer(args, *_resolve_run(args)).run()


# ------------------------------------------------------------------------------------- sample and eval


def _sample(args) -> int:
    model, _ = load_model(args.dir)
    prompt = args.prompt.encode("utf-8")
    if prompt and max(prompt) >= model.vocab_size:
        raise UsageError(f"the prompt has byte {max(prompt)}, outside the model's vocabulary of {model.vocab_size}")
    top_k = args.top_k or None
    if top_k is not None and top_k > model.vocab_size:
        raise UsageError(f"--top-k {top_k} exceeds the model's vocabulary of {model.vocab_size}")
    tokens = sample(
        model,
        jax.random.key(args.seed),
        jax.numpy.asarray(list(prompt), dtype=jax.numpy.int32),
        args.length,
        temperature=args.temperature,
        top_k=top_k,
    )
    text = (prompt + bytes(int(t) % 256 for t in jax.device_get(tokens))).decode("utf-8", errors="replace")
    print(text)
    return 0


def _eval(args) -> int:
    model, meta = load_model(args.dir)
    if model.vocab_size < VOCAB_SIZE:
        raise CheckpointError(
            f"{args.dir} holds a model with a vocabulary of {model.vocab_size}; eval scores bytes (256 tokens)"
        )
    train_hp = meta.get("train", {})
    batch_size = train_hp.get("batch_size", TRAIN_DEFAULTS["batch_size"])
    seq_len = train_hp.get("seq_len", TRAIN_DEFAULTS["seq_len"])
    if args.data:
        # Explicit DATA is held-out text: all of it is scored.
        tokens, what = read_bytes(_data_spec(args.data, args.include))
        what = what.split(":")[0]
    else:
        if "data" not in meta:
            raise UsageError(f"{args.dir} records no training data (a converted model); give DATA to score")
        corpus = load_corpus(DataSpec.from_json(meta["data"]))
        tokens, what = corpus.val, f"validation split of {corpus.description.split(':')[0]}"
    tokens = tokens[: args.max_bytes]
    n_devices = choose_devices(args.devices, batch_size)
    mesh = make_mesh(n_devices)
    windows = eval_windows(tokens, batch_size, seq_len, multiple_of=n_devices)
    nats = float(mean_loss(replicate(model, mesh), shard_batch(windows, mesh, axis=1)))
    print(f"evaluated {windows.size:,} bytes: {what}")
    print(f"bits per byte: {bits_per_byte(nats):.4f}")
    print(f"perplexity:    {math.exp(nats):.4f}  (per byte; loss {nats:.4f} nats)")
    return 0


# ----------------------------------------------------------------------------------------- convert


def _convert(args) -> int:
    path = Path(args.state_dict)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    out = _out_dir(args.out)
    if (out / CHECKPOINT_FILE).exists():
        raise UsageError(f"{out} already holds a checkpoint; pick another --out")
    try:
        import torch
    except ImportError:
        raise UsageError("convert-torch needs PyTorch: pip install 'purelm[torch]'") from None
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    # torch.load raises UnpicklingError for anything beyond plain tensors and containers, and assorted
    # RuntimeError/EOFError/zip errors for damaged files.
    except Exception as err:  # noqa: BLE001
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"cannot load {path} with torch.load(weights_only=True): {first}") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state_dict, Mapping) and isinstance(state_dict.get(wrapper), Mapping):
            state_dict = state_dict[wrapper]
    if not isinstance(state_dict, Mapping):
        raise UsageError(f"{path} holds a {type(state_dict).__name__}, not a state_dict")
    try:
        model = from_torch_state_dict(state_dict)
    except StateDictError as err:
        raise UsageError(f"{path}: {err}") from None
    meta = {"kind": "model", "model": model_hparams(model), "step": 0, "source": str(path.absolute()),
            "purelm_version": __version__}
    save_checkpoint(out, {"model": model}, meta)
    print(
        f"converted {path} -> {out / CHECKPOINT_FILE}: vocabulary {model.vocab_size}, embed {model.embed_dim}, "
        f"hidden {model.hidden_dim}, {model.num_layers} layer(s), tied head: {model.tie_embeddings}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
