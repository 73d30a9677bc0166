"""The `purelm` command: train on text, sample, evaluate, and import PyTorch weights.

    purelm train [DATA...] --out DIR      # no DATA: the Python standard library of this interpreter
    purelm train --resume DIR             # continue DIR's run exactly, to its stored target
    purelm sample DIR --prompt "def " --length 300 --temperature 0.8 --top-k 40 --seed 0
    purelm eval DIR [FILE... | DATA_DIR]
    purelm convert-torch MODEL.pt [--vocab DATA_DIR] --out DIR

The command line is argument parsing on top of `purelm.training` (the run, its configuration and loop)
and the core; train and convert-torch are in `purelm._cli_train`, which sample and eval never import. Bad input (missing or empty data, a bad checkpoint, impossible options) ends with one line
on stderr and exit status 2; nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import codecs
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from purelm import _compile_cache, _signals
from purelm._data import DataSpec, load_corpus, read_tokens
from purelm._tokenizer import EOS, TOKENIZERS, ByteTokenizer, WordTokenizer

# The errors reported as one line: (module, class, exit status). Each is looked up only if its module was
# loaded, so that `purelm sample` need not import the training loop (and equinox) to recognise its errors: a
# command that never loaded a module cannot have raised its error.
_ONE_LINE_ERRORS = (
    ("purelm._cli", "UsageError", 2), ("purelm._data", "DataError", 2), ("purelm._checkpoint", "CheckpointError", 2),
    ("purelm._parallel", "DeviceError", 2), ("purelm.training._config", "ConfigError", 2),
    ("purelm._tokenizer", "TokenizerError", 2), ("purelm.interop", "StateDictError", 2),
    # Training could not go on (diverged); the last checkpoint is intact.
    ("purelm.training._run", "TrainingError", 1),
)


class UsageError(ValueError):
    """A bad command line or input, reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """One-line errors; with `add_arguments`, the arguments are added only when the command is used (or its
    help shown): the train options need `purelm.training` and `purelm._parallel`, which sample and eval never
    load."""

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


def _add_train_arguments(train: argparse.ArgumentParser) -> None:
    from purelm._parallel import add_distributed_arguments
    from purelm.training._config import CELLS, DTYPES, OPTIMIZERS, SCHEDULES

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
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--no-compile-cache", dest="no_compile_cache", action="store_true",
                        help="do not use JAX's persistent compilation cache (also: PURELM_CACHE_DIR=off)")

    def add_parser(name, **kwargs):
        return commands.add_parser(name, parents=[common], **kwargs)

    add_parser("train", help="train a model (default data: the Python standard library)",
               add_arguments=_add_train_arguments)

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
    # Before the first compilation: a second run of the same command loads XLA's output from disk.
    _compile_cache.enable("off" if args.no_compile_cache else None)
    try:
        if args.command in ("train", "convert-torch"):
            from purelm import _cli_train

            return (_cli_train.train if args.command == "train" else _cli_train.convert)(args)
        return {"sample": _sample, "eval": _eval}[args.command](args)
    except BrokenPipeError:
        raise  # `purelm sample ... | head`: the console entry ends quietly, as a tool killed by SIGPIPE
    except Exception as err:
        status = _one_line_status(err)
        if status is not None:
            print(f"purelm {args.command}: error: {_one_line(err)}", file=sys.stderr)
            return status
        if isinstance(err, OSError):  # an unwritable --out, a full disk: still one line, not a traceback
            print(f"purelm {args.command}: error: {err.strerror or err}: {err.filename or ''}", file=sys.stderr)
            return 2
        raise


def _one_line_status(err: Exception) -> int | None:
    if isinstance(err, UsageError):  # this module's own, also when it runs as `python -m purelm._cli`
        return 2
    for module, name, status in _ONE_LINE_ERRORS:
        if module in sys.modules and isinstance(err, getattr(sys.modules[module], name)):
            return status
    return None


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _one_line(err: BaseException) -> str:
    text = _ANSI.sub("", str(err)).strip()
    return " ".join(text.split()) if text else type(err).__name__


# ------------------------------------------------------------------------------------- sample and eval


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
    # Programs compiled ahead of time (purelm._aot): a warm run loads them instead of tracing the model. The
    # tokens are those of purelm.sample(model, jax.random.key(seed), ids, length, temperature, top_k).
    from purelm import _aot

    run = _aot.Checkpoint(args.dir)
    tokenizer = run.tokenizer
    prompt = args.prompt if args.prompt is not None else ("def " if isinstance(tokenizer, ByteTokenizer) else "")
    ids = _prompt_ids(tokenizer, prompt)
    if args.top_k is None:
        top_k = min(40, run.vocab_size)  # the default, on a vocabulary smaller than 40 too
    else:
        top_k = args.top_k or None
        if top_k is not None and top_k > run.vocab_size:
            raise UsageError(f"--top-k {top_k} exceeds the model's vocabulary of {run.vocab_size:,}")
    _signals.phase("sample")
    chunks = _aot.sample_chunks(run, ids, args.length, seed=args.seed, temperature=args.temperature, top_k=top_k)
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
    from purelm import _aot
    from purelm._columns import checked_stream
    from purelm.training._config import TrainingConfig

    run = _aot.Checkpoint(args.dir)
    tokenizer = run.tokenizer
    config = run.meta.get("config")
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
    # As purelm.training.score: fewer columns for a short text; the numbers are purelm.evaluate's.
    tokens, batch_size = checked_stream(tokens, run.vocab_size, batch_size)
    result = _aot.score(run, tokens, batch_size=batch_size, seq_len=seq_len)
    unit = tokenizer.unit
    print(f"evaluated {result.count:,} {unit}s (all {tokens.size:,} but the first, which is context): {what}")
    if unit == "byte":
        print(f"bits per byte: {result.bits_per_token:.4f}")
        print(f"perplexity:    {result.perplexity:.4f}  (per byte; loss {result.nats:.4f} nats)")
    else:
        print(f"perplexity: {result.perplexity:.4f}  (per word; loss {result.nats:.6f} nats; batch {batch_size}, "
              f"seq-len {seq_len})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
