"""The `purelm` command: train on text, sample, evaluate, and import PyTorch weights.

    purelm train [DATA...] --out DIR      # no DATA: the Python standard library of this interpreter
    purelm train --resume DIR             # continue DIR's run exactly, to its stored target
    purelm sample DIR --prompt "def " --length 300 --temperature 0.8 --top-k 40 --seed 0
    purelm eval DIR [FILE... | DATA_DIR]
    purelm convert-torch MODEL.pt [--vocab DATA_DIR] --out DIR
    purelm export-torch DIR --out MODEL.pt      # word_language_model's RNNModel
    purelm config DIR > run.toml                # the run's settings, for train --config run.toml

The command line is argument parsing (`purelm._cli._parser`) on top of the library: `purelm.training` and
the run directory for train and convert-torch (`purelm._cli._train`, which sample and eval never import),
the inference layer for sample and eval. Bad input (missing or empty data, a bad checkpoint, impossible
options) ends with one line on stderr and exit status 2; nothing half-written is left behind.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence

from purelm._cli._parser import UsageError, build_parser
from purelm._runtime import _compile_cache, _platforms, _signals

# The errors reported as one line: (module, class, exit status). Each is looked up only if its module was
# loaded, so that `purelm sample` need not import the training loop (and equinox) to recognise its errors: a
# command that never loaded a module cannot have raised its error.
_ONE_LINE_ERRORS = (
    ("purelm._cli._parser", "UsageError", 2),
    ("purelm._data._corpus", "DataError", 2),
    ("purelm._rundir._checkpoint", "CheckpointError", 2),
    ("purelm._rundir._ownership", "RunDirectoryError", 2),
    ("purelm._runtime._platforms", "DeviceError", 2),
    ("purelm.training._config", "ConfigError", 2),
    ("purelm._data._tokenizer", "TokenizerError", 2),
    ("purelm.interop", "StateDictError", 2),
    # Training could not go on (diverged, or a full disk); the message says which checkpoint is intact.
    ("purelm.training._loop", "TrainingError", 1),
    ("purelm.training._loop", "SaveError", 1),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `purelm` command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    # Before the first compilation: a second run of the same command loads XLA's output from disk.
    _compile_cache.enable("off" if args.no_compile_cache else None)
    try:
        # Before JAX starts a backend. `train` checks it once a multi-process run is joined; `config` computes
        # nothing.
        _platforms.use(args.device)
        if args.command not in ("train", "config"):
            _platforms.check(args.device)
        if args.command in ("train", "convert-torch"):
            from purelm._cli import _train

            return (_train.train if args.command == "train" else _train.convert)(args)
        if args.command in ("export-torch", "config"):
            from purelm._cli import _runs

            return (_runs.export if args.command == "export-torch" else _runs.config)(args)
        return {"sample": _sample, "eval": _eval}[args.command](args)
    except BrokenPipeError:
        raise  # `purelm sample ... | head`: the console entry ends quietly, as a tool killed by SIGPIPE
    except Exception as err:
        status = _one_line_status(err)
        if status is not None:
            message = _one_line(err)
            if args.command in ("train", "convert-torch"):
                from purelm._cli._train import spell_options

                message = spell_options(message, args)
            print(f"purelm {args.command}: error: {message}", file=sys.stderr)
            return status
        if isinstance(err, OSError):  # an unwritable --out, a full disk: still one line, not a traceback
            print(f"purelm {args.command}: error: {err.strerror or err}: {err.filename or ''}", file=sys.stderr)
            return 2
        raise


def _one_line_status(err: Exception) -> int | None:
    for module, name, status in _ONE_LINE_ERRORS:
        if module in sys.modules and isinstance(err, getattr(sys.modules[module], name)):
            return status
    return None


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _one_line(err: BaseException) -> str:
    text = _ANSI.sub("", str(err)).strip()
    return " ".join(text.split()) if text else type(err).__name__


# ------------------------------------------------------------------------------------- sample and eval


def _sample(args) -> int:
    # Programs compiled ahead of time (purelm._inference._aot): a warm run loads them instead of tracing the
    # model. The tokens are those of purelm.sample(model, jax.random.key(seed), ids, length, temperature, top_k).
    from purelm._inference._aot import Checkpoint
    from purelm._inference._commands import sample_text

    run = Checkpoint(args.dir)
    top_k: int | None
    if args.top_k is None:
        top_k = min(40, run.vocab_size)  # the default, on a vocabulary smaller than 40 too
    else:
        top_k = args.top_k or None
        if top_k is not None and top_k > run.vocab_size:
            raise UsageError(f"--top-k {top_k} exceeds the model's vocabulary of {run.vocab_size:,}")
    # Written as it is drawn (the prompt with the first tokens): a long --length shows progress, and Ctrl-C
    # stops within one chunk.
    for text in sample_text(
        run, args.prompt, args.length, seed=args.seed, temperature=args.temperature, top_k=top_k, source="--prompt"
    ):
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0


def _eval(args) -> int:
    from purelm._data._metrics import format_loss
    from purelm._inference._aot import Checkpoint
    from purelm._inference._commands import evaluate_tokens, held_out_tokens
    from purelm._rundir._format import eval_layout

    run = Checkpoint(args.dir)
    _signals.phase("data")
    tokens, what = held_out_tokens(run, args.data, args.include)
    tokens = tokens[: args.max_tokens]
    batch_size, seq_len, layout = eval_layout(run.directory, run.meta, run.tokenizer)
    batch_size, seq_len, layout = args.batch_size or batch_size, args.seq_len or seq_len, args.layout or layout
    _signals.phase("eval")
    result, batch_size = evaluate_tokens(run, tokens, batch_size=batch_size, seq_len=seq_len, layout=layout)
    unit = run.tokenizer.unit
    if not (math.isfinite(result.nats) and math.isfinite(result.perplexity)):
        # A wrong number is never a result: broken weights, or a model converted with the wrong settings.
        print(
            f"purelm eval: error: the loss is not finite ({result.nats:g} nats per {unit}, perplexity "
            f"{result.perplexity:g}): the model in {run.directory} is broken (diverged weights, or converted "
            "with settings it was not trained with, such as another --cell)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        fields = {"data": what, "count": result.count, "nats": result.nats, "perplexity": result.perplexity}
        fields |= {"bits_per_token": result.bits_per_token, "batch_size": batch_size, "seq_len": seq_len}
        print(json.dumps(fields | {"layout": layout}))
        return 0
    if layout == "word_language_model":
        which = f"word_language_model's evaluate() set of {tokens.size:,}: {batch_size} columns, each but its first"
    else:
        which = f"all {tokens.size:,} but the first, which is context"
    print(f"evaluated {result.count:,} {unit}s ({which}): {what}")
    print(format_loss(result.nats, unit, "report", batch_size=batch_size, seq_len=seq_len))
    return 0
