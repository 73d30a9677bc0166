"""The `purelm` command line, parsed: the options of every command, checked as they are read (a number
out of range is one line and exit status 2, as any bad input)."""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import platform

from purelm._data._columns import LAYOUTS as EVAL_LAYOUTS
from purelm._data._tokenizer import TOKENIZERS
from purelm._runtime._version import __version__

# What `--log-to` may name; metrics.jsonl is always written (a resumed run reads it back).
LOGGERS = ("jsonl", "csv", "tensorboard")


class UsageError(ValueError):
    """A bad command line or input, reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """One-line errors; with `add_arguments`, the arguments are added only when the command is used (or its
    help shown): the train options need `purelm.training`, which sample and eval never load."""

    def __init__(self, *args, add_arguments=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._add_arguments = add_arguments

    def _complete(self) -> None:
        if self._add_arguments is not None:
            add, self._add_arguments = self._add_arguments, None
            add(self)

    def parse_known_args(self, args=None, namespace=None):
        self._complete()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._complete()
        return super().format_help()

    def format_usage(self) -> str:
        self._complete()
        return super().format_usage()

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


def _interval(text: str) -> int | str:
    """A number of steps, or `epoch` (one pass over the training windows)."""
    return text if text == "epoch" else _count(text)


_interval.__name__ = "interval"


def _loggers(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in LOGGERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: name one or more of {', '.join(LOGGERS)}, comma-separated")
    return names


def _add_train_arguments(train: argparse.ArgumentParser) -> None:
    from purelm.training._config import CELLS, DTYPES, INITS, OPTIMIZERS, RECIPES, SCHEDULES, WINDOWS

    add = train.add_argument
    add(
        "data",
        nargs="*",
        metavar="DATA",
        help="files or directories; a directory holding train.txt and "
        "valid.txt (and test.txt) is read as those splits (default: the stdlib)",
    )
    add("--out", metavar="DIR", help="run directory (checkpoint, metrics.jsonl, loss.png, best/)")
    add(
        "--recipe",
        choices=tuple(RECIPES),
        help="start from a preset: word_language_model = pytorch/examples' main.py with its defaults (its "
        "init, zero initial state, SGD lr 20, clip 0.25, 20 x 35 windows read as its get_batch, 40 epochs, "
        "its validation); --config and options override it (docs/purelm-recipes.md)",
    )
    add(
        "--config",
        metavar="FILE",
        help="a TOML file of settings, by section ([model], [data], [optim], [schedule], [run]; `purelm config "
        "DIR` prints a run's); options given on the command line override it",
    )
    add(
        "--log-to",
        dest="log_to",
        type=_loggers,
        metavar="LIST",
        help="where metrics go besides the console: jsonl (DIR/metrics.jsonl, always written), csv "
        "(DIR/metrics.csv), tensorboard (event files in DIR/tensorboard/; pip install 'purelm[tensorboard]'), "
        "comma-separated (jsonl)",
    )
    add(
        "--resume",
        metavar="DIR",
        help="continue the run in DIR exactly, to its stored target; options given "
        "with it may change the target, intervals, devices, early stopping and --lr, nothing else",
    )
    add(
        "--overwrite",
        action="store_true",
        help="replace the run DIR already holds (its checkpoint, metrics, loss plot and best/), "
        "once this one starts writing",
    )
    add("--include", metavar="GLOB", help="files to take from directories (default '*'; '*.py' for the stdlib)")
    add(
        "--tokenizer",
        choices=TOKENIZERS,
        help="byte: every byte a token; word: whitespace-split words and "
        "<eos> per line, as word_language_model's data.py (byte)",
    )
    group = train.add_argument_group("model")
    group.add_argument("--embed-dim", dest="embed_dim", type=_positive_int, metavar="N", help="embedding size (64)")
    group.add_argument("--hidden-dim", dest="hidden_dim", type=_positive_int, metavar="N", help="recurrent size (256)")
    group.add_argument("--layers", dest="num_layers", type=_positive_int, metavar="N", help="recurrent layers (1)")
    group.add_argument("--cell", choices=CELLS, help="recurrent cell, torch's equations (lstm)")
    group.add_argument(
        "--tied",
        action="store_true",
        default=None,
        help="output layer = embedding matrix, plus an output bias (word_language_model's --tied; "
        "needs --embed-dim = --hidden-dim)",
    )
    group.add_argument(
        "--dropout",
        type=_dropout,
        metavar="P",
        help="dropout on embeddings, between layers and before the output layer, in training only (0)",
    )
    group.add_argument(
        "--dtype", choices=DTYPES, help="parameter and activation dtype; losses accumulate in float32 (float32)"
    )
    group.add_argument(
        "--init",
        choices=INITS,
        help="how weights start: purelm (unit-variance embeddings) or word_language_model (embedding and "
        "output layer U(-0.1, 0.1), torch's two biases per cell) (purelm)",
    )
    group.add_argument(
        "--init-range",
        dest="init_range",
        type=_positive_float,
        metavar="X",
        help="draw the embedding U(-X, X) (word_language_model's initrange: 0.1; purelm: sqrt 3, unit variance)",
    )
    group.add_argument(
        "--fixed-initial-state",
        dest="learn_initial_state",
        action="store_false",
        default=None,
        help="keep the initial state at zero, as word_language_model (default: learned)",
    )
    group = train.add_argument_group("optimisation")
    group.add_argument(
        "--optimizer", choices=OPTIMIZERS, help="sgd (word_language_model's update), adam or adamw (adam)"
    )
    group.add_argument("--lr", type=_positive_float, metavar="X", help="learning rate (0.003)")
    group.add_argument(
        "--weight-decay",
        dest="weight_decay",
        type=_nonneg_float,
        metavar="X",
        help="L2 for sgd/adam (torch's weight_decay), decoupled for adamw (0; adamw: 0.01)",
    )
    group.add_argument(
        "--grad-clip",
        dest="grad_clip",
        type=_nonneg_float,
        metavar="X",
        help="clip the gradient's global norm; 0 turns it off (1.0)",
    )
    group.add_argument(
        "--torch-bias-grad",
        dest="torch_bias_grad",
        action="store_true",
        default=None,
        help="train each cell's bias as torch trains its two (bias_ih, bias_hh): in the clipped norm twice, "
        "moving twice as far",
    )
    group.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="lr multiplier per step: constant, or cosine down to --min-lr-ratio at --steps (constant)",
    )
    group.add_argument("--warmup", type=_count, metavar="N", help="linear lr warmup over N steps (0)")
    group.add_argument(
        "--min-lr-ratio",
        dest="min_lr_ratio",
        type=_nonneg_float,
        metavar="X",
        help="the cosine schedule's final lr / lr (0.1)",
    )
    group.add_argument(
        "--anneal",
        type=_nonneg_float,
        metavar="X",
        help="divide the lr by X after every "
        "validation that does not improve on the best (word_language_model: 4); 0: off (0)",
    )
    group = train.add_argument_group("batches")
    group.add_argument("--batch-size", dest="batch_size", type=_positive_int, metavar="N", help="parallel streams (32)")
    group.add_argument(
        "--seq-len", dest="seq_len", type=_positive_int, metavar="N", help="window length in tokens (64)"
    )
    group.add_argument(
        "--windows",
        choices=WINDOWS,
        help="purelm: a window's tokens are read and scored, the first from the carried state; "
        "word_language_model: read seq-len tokens, score the next seq-len, as its get_batch (purelm)",
    )
    group = train.add_argument_group("the run")
    group.add_argument(
        "--steps", type=_positive_int, metavar="N", help="target step (1000; stored, so --resume continues to it)"
    )
    group.add_argument(
        "--epochs", type=_positive_int, metavar="N", help="target step in passes over the training windows"
    )
    group.add_argument("--seed", type=_count, metavar="N", help="initialisation and dropout seed (0)")
    group.add_argument(
        "--eval-every",
        dest="eval_every",
        type=_interval,
        metavar="N",
        help="validate every N steps (or every epoch: --eval-every epoch) and at the end; 0: never (200)",
    )
    group.add_argument(
        "--eval-layout",
        dest="eval_layout",
        choices=EVAL_LAYOUTS,
        help="which validation tokens count: purelm (all but the first) or word_language_model (exactly "
        "those its evaluate() averages over) (purelm)",
    )
    group.add_argument(
        "--eval-tokens",
        "--eval-bytes",
        dest="eval_tokens",
        type=_positive_int,
        metavar="N",
        help="validation tokens scored during training (131072 bytes; word runs: all)",
    )
    group.add_argument(
        "--eval-batch-size",
        dest="eval_batch_size",
        type=_positive_int,
        metavar="N",
        help="validation columns (--batch-size; word runs: 10, as word_language_model)",
    )
    group.add_argument(
        "--checkpoint-every",
        dest="checkpoint_every",
        type=_interval,
        metavar="N",
        help="save every N steps (or every epoch), and always at the end (200)",
    )
    group.add_argument(
        "--log-every",
        dest="log_every",
        type=_positive_int,
        metavar="N",
        help="steps per metrics record / plain log line (10)",
    )
    group.add_argument(
        "--steps-per-call",
        dest="steps_per_call",
        type=_positive_int,
        metavar="N",
        help="training steps per compiled call; same result, less Python overhead. A call stops "
        "early at log, eval and checkpoint steps (10)",
    )
    group.add_argument(
        "--early-stop",
        dest="early_stop",
        type=_count,
        metavar="N",
        help="stop after N validations without improvement; 0: never (0)",
    )
    group.add_argument(
        "--no-best",
        dest="keep_best",
        action="store_false",
        default=None,
        help="do not keep the best model by validation in DIR/best/",
    )
    group.add_argument(
        "--divergence",
        type=_nonneg_float,
        metavar="X",
        help="stop when the mean loss exceeds X times a uniform guess's, or is not finite; 0: only non-finite (3)",
    )
    group.add_argument(
        "--devices", type=_positive_int, metavar="N", help="data-parallel devices (default: all that divide the batch)"
    )
    _add_distributed_arguments(train)


def _add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    """`--coordinator`, `--num-processes`, `--process-id` and `--distributed` (`purelm._runtime._parallel`)."""
    group = parser.add_argument_group("multi-process (one process per host; see docs/purelm-cli.md)")
    group.add_argument(
        "--coordinator", metavar="HOST:PORT", help="address of process 0's coordinator (env JAX_COORDINATOR_ADDRESS)"
    )
    group.add_argument(
        "--num-processes",
        dest="num_processes",
        type=int,
        metavar="N",
        help="number of processes (env JAX_NUM_PROCESSES)",
    )
    group.add_argument(
        "--process-id",
        dest="process_id",
        type=int,
        metavar="I",
        help="this process's id, 0 .. N-1 (env JAX_PROCESS_ID)",
    )
    group.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-process run found in the environment (Slurm, Open MPI, Cloud TPU)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The `purelm` command line: one subcommand each for train, sample, eval and convert-torch."""
    parser = _Parser(prog="purelm", description="Train, sample and evaluate LSTM (GRU, RNN) language models.")
    parser.add_argument("--version", action="version", version=version_line())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--no-compile-cache",
        dest="no_compile_cache",
        action="store_true",
        help="do not use JAX's persistent compilation cache (also: PURELM_CACHE_DIR=off)",
    )
    common.add_argument(
        "--device",
        choices=("cpu", "gpu", "tpu"),
        help="the kind of device to compute on (default: JAX's choice, a GPU or TPU where there is one; "
        "also: JAX_PLATFORMS)",
    )

    def add_parser(name, **kwargs):
        return commands.add_parser(name, parents=[common], **kwargs)

    add_parser(
        "train", help="train a model (default data: the Python standard library)", add_arguments=_add_train_arguments
    )

    sampling = add_parser("sample", help="generate text from a trained model")
    sampling.add_argument("dir", metavar="DIR", help="a run directory (from train or convert-torch)")
    sampling.add_argument("--prompt", help="text to continue (byte runs: 'def '; word runs: none, i.e. a new line)")
    sampling.add_argument("--length", type=_positive_int, metavar="N", default=300, help="tokens to generate (300)")
    sampling.add_argument(
        "--temperature",
        type=_positive_float,
        metavar="X",
        default=0.8,
        help="divide the scores by X: lower is safer, higher wilder (0.8)",
    )
    sampling.add_argument(
        "--top-k", dest="top_k", type=_count, metavar="N", help="sample among the k likeliest tokens; 0: all (40)"
    )
    sampling.add_argument("--seed", type=_count, metavar="N", default=0, help="sampling seed (0)")

    evaluate = add_parser("eval", help="perplexity (and bits per byte) on held-out text, every token")
    evaluate.add_argument("dir", metavar="DIR", help="a run directory (from train or convert-torch)")
    evaluate.add_argument(
        "data",
        nargs="*",
        metavar="DATA",
        help="files to score, all of them, or a data directory (its test.txt); default: the run's validation split",
    )
    evaluate.add_argument("--include", metavar="GLOB", help="files to take from directories")
    evaluate.add_argument(
        "--max-tokens",
        "--max-bytes",
        dest="max_tokens",
        type=_positive_int,
        metavar="N",
        help="score only the first N tokens",
    )
    evaluate.add_argument(
        "--batch-size",
        dest="batch_size",
        type=_positive_int,
        metavar="N",
        help="contiguous columns (the run's validation layout; word runs: 10)",
    )
    evaluate.add_argument(
        "--seq-len",
        dest="seq_len",
        type=_positive_int,
        metavar="N",
        help="window length (the run's --seq-len; word_language_model: 35)",
    )
    evaluate.add_argument(
        "--layout",
        choices=EVAL_LAYOUTS,
        help="which tokens count: purelm (every one but the first) or word_language_model (exactly those "
        "their evaluate() averages over: each column but its first token, without the tail; a model with a "
        "zero initial state then gets their printed perplexity) (the run's --eval-layout; purelm)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the result as one JSON object, at full precision")

    convert = add_parser(
        "convert-torch", help="import a PyTorch language model (word_language_model's RNNModel, purelm.reference)"
    )
    convert.add_argument(
        "state_dict",
        metavar="MODEL.pt",
        help="a file written by torch.save: a state_dict, or (with --allow-pickle) a whole pickled model, such "
        "as word_language_model's main.py saves",
    )
    convert.add_argument("--out", metavar="DIR", required=True, help="the model directory to write (a new one)")
    convert.add_argument(
        "--vocab",
        metavar="DATA_DIR",
        help="the data directory the model was trained on "
        "(train.txt, valid.txt, test.txt): its words, in word_language_model's order",
    )
    convert.add_argument(
        "--cell",
        choices=("rnn_tanh", "rnn_relu"),
        help="the nonlinearity of an nn.RNN model (a state_dict cannot tell)",
    )
    convert.add_argument(
        "--allow-pickle",
        action="store_true",
        help="also read a whole pickled model (what word_language_model's main.py saves). "
        "Unpickling runs code from the file: only for files you trust",
    )

    export = add_parser(
        "export-torch",
        help="write a model as word_language_model's RNNModel, which their main.py and generate.py load",
    )
    export.add_argument("dir", metavar="DIR", help="a run directory (from train or convert-torch)")
    export.add_argument("--out", metavar="MODEL.pt", required=True, help="the file to write (a new one)")
    export.add_argument(
        "--state-dict",
        dest="state_dict",
        action="store_true",
        help="write the state_dict alone (RNNModel's names: encoder.weight, rnn.weight_ih_l0, ..., decoder.bias), "
        "loaded with torch.load(weights_only=True) and model.load_state_dict",
    )

    config = add_parser("config", help="print a run's configuration as a TOML file for train --config")
    config.add_argument("dir", metavar="DIR", help="a run directory (from train)")
    return parser


def train_options() -> dict[str, str]:
    """`purelm train`'s options by their argparse destination (`num_layers` -> `--layers`)."""
    train = _Parser(prog="purelm train", add_help=False)
    _add_train_arguments(train)
    return {action.dest: action.option_strings[0] for action in train._actions if action.option_strings}


def version_line() -> str:
    """`purelm 0.1.0 (jax 0.4.38, jaxlib 0.4.38, Python 3.11.9)`, without importing JAX."""
    versions = []
    for name in ("jax", "jaxlib"):
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} not installed")
    return f"purelm {__version__} ({', '.join(versions)}, Python {platform.python_version()})"
