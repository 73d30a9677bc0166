"""word_language_model's default configuration, trained by its own main.py and by `purelm train`.

Both sides train the same model on the same files for the same number of epochs: an LSTM, 2 layers,
embedding and hidden size 200, tied decoder, dropout 0.2, SGD at lr 20 with gradient clipping 0.25,
the lr divided by 4 when validation stops improving, 20 streams of 35-word windows, word tokens as
their data.py builds them. The table gives the validation perplexity each side reports after the last
epoch and the wall time of each whole command (start-up, data loading, compilation, training,
evaluation; their main.py also scores the test file at the end, and its own epoch time is shown too).

Their main.py comes from a checkout of pytorch/examples (`--wlm` names its word_language_model folder)
and runs in a subprocess with this interpreter, which needs torch. A partial copy of their repository
may lack the large wikitext-2 train.txt: then both sides train on a copy of valid.txt, and the table says
so (the validation number is then not a wikitext-2 result, only a like-for-like comparison).

An epoch is each side's own: theirs ends with a partial window, purelm's (`steps per epoch` in its
output) stops at the last full one. The commands alternate over `--rounds` rounds, so a shared machine
slows both alike; compare wall times within one run of this script.

    python benchmarks/word_language_model.py --wlm ~/examples/word_language_model
    python benchmarks/word_language_model.py --wlm DIR --data DIR/data/wikitext-2 --epochs 1 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# word_language_model's defaults (their main.py's argparse defaults, with --tied).
EMBED, HIDDEN, LAYERS, DROPOUT, LR, CLIP, SEQ_LEN, BATCH, ANNEAL = 200, 200, 2, 0.2, 20.0, 0.25, 35, 20, 4.0
THEIR_FILES = ("main.py", "data.py", "model.py")
THEIR_EPOCH = re.compile(r"\| end of epoch\s+\d+ \| time:\s*([\d.]+)s \| valid loss\s+[\d.]+ \| valid ppl\s+([\d.]+)")
PURELM_EPOCH = re.compile(r"([\d,]+) steps per epoch")


class BenchmarkError(Exception):
    """A problem with the inputs or a failed command, reported as one line."""


@dataclass(frozen=True)
class Outcome:
    perplexity: float
    wall_s: float
    epoch_s: float | None = None  # their main.py's own "time:" for the last epoch (training + validation)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def check_checkout(wlm: Path) -> None:
    missing = [name for name in THEIR_FILES if not (wlm / name).is_file()]
    if missing:
        raise BenchmarkError(
            f"--wlm {wlm}: not a word_language_model checkout (no {', '.join(missing)}); fetch pytorch/examples "
            "and pass its word_language_model folder"
        )


def prepare_data(data: Path, scratch: Path) -> tuple[Path, str]:
    """The data directory both sides read, and a note on what it holds."""
    for name in ("valid.txt", "test.txt"):
        if not (data / name).is_file():
            raise BenchmarkError(f"--data {data}: no {name} (wikitext-2's layout: train.txt, valid.txt, test.txt)")
    if (data / "train.txt").is_file():
        return data, f"trained on {data / 'train.txt'}"
    # Their data.py reads exactly train.txt, valid.txt and test.txt from one folder.
    copy = scratch / "data"
    copy.mkdir()
    shutil.copyfile(data / "valid.txt", copy / "train.txt")
    for name in ("valid.txt", "test.txt"):
        shutil.copyfile(data / name, copy / name)
    return copy, f"{data} has no train.txt: both trained on a copy of valid.txt (not a wikitext-2 result)"


def count_words(path: Path) -> int:
    """Tokens as their data.py counts them: whitespace-split words plus one <eos> per line."""
    with path.open(encoding="utf8") as f:
        return sum(len(line.split()) + 1 for line in f)


def run(name: str, command: list[str], cwd: Path | None = None) -> tuple[str, float]:
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise BenchmarkError(f"cannot run {name}: no {command[0]}") from None
    wall = time.perf_counter() - start
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise BenchmarkError(f"{name} exited with {done.returncode}: {lines[-1]}")
    return done.stdout, wall


def run_theirs(wlm: Path, data: Path, epochs: int, scratch: Path) -> Outcome:
    command = [
        sys.executable,
        "-u",
        str(wlm / "main.py"),
        "--data",
        str(data),
        "--model",
        "LSTM",
        "--emsize",
        str(EMBED),
        "--nhid",
        str(HIDDEN),
        "--nlayers",
        str(LAYERS),
        "--dropout",
        str(DROPOUT),
        "--tied",
        "--lr",
        str(LR),
        "--clip",
        str(CLIP),
        "--bptt",
        str(SEQ_LEN),
        "--batch_size",
        str(BATCH),
        "--epochs",
        str(epochs),
        "--save",
        str(scratch / "model.pt"),
    ]
    # cwd: main.py imports its data.py and model.py as top-level modules.
    output, wall = run("their main.py", command, cwd=wlm)
    epochs_seen = THEIR_EPOCH.findall(output)
    if not epochs_seen:
        raise BenchmarkError("their main.py printed no '| end of epoch' line")
    epoch_s, perplexity = epochs_seen[-1]
    return Outcome(float(perplexity), wall, float(epoch_s))


def run_purelm(data: Path, epochs: int, steps_per_epoch: int, out: Path) -> Outcome:
    command = [
        str(Path(sys.executable).with_name("purelm")),
        "train",
        str(data),
        "--tokenizer",
        "word",
        "--cell",
        "lstm",
        "--layers",
        str(LAYERS),
        "--embed-dim",
        str(EMBED),
        "--hidden-dim",
        str(HIDDEN),
        "--dropout",
        str(DROPOUT),
        "--tied",
        "--optimizer",
        "sgd",
        "--lr",
        str(LR),
        "--grad-clip",
        str(CLIP),
        "--anneal",
        str(ANNEAL),
        "--seq-len",
        str(SEQ_LEN),
        "--batch-size",
        str(BATCH),
        "--steps",
        str(epochs * steps_per_epoch),
        "--eval-every",
        str(steps_per_epoch),
        "--out",
        str(out),
    ]
    output, wall = run("purelm train", command)
    printed = PURELM_EPOCH.search(output)
    if printed is None or int(printed.group(1).replace(",", "")) != steps_per_epoch:
        raise BenchmarkError(f"purelm train's epoch is not {steps_per_epoch} steps: {printed and printed.group(0)}")
    evals = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "val_perplexity" in r]
    if not evals:
        raise BenchmarkError(f"purelm train wrote no validation record to {out / 'metrics.jsonl'}")
    return Outcome(evals[-1]["val_perplexity"], wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--wlm",
        type=Path,
        required=True,
        metavar="DIR",
        help="pytorch/examples' word_language_model folder (their main.py, data.py, model.py)",
    )
    parser.add_argument("--data", type=Path, metavar="DIR", help="train/valid/test.txt (default: DIR/data/wikitext-2)")
    parser.add_argument("--epochs", type=positive_int, default=1, help="epochs on both sides (1)")
    parser.add_argument("--rounds", type=positive_int, default=1, help="alternating rounds of both commands (1)")
    args = parser.parse_args(argv)
    try:
        check_checkout(args.wlm)
        with tempfile.TemporaryDirectory(prefix="wlm_bench_") as scratch:
            scratch = Path(scratch)
            data, note = prepare_data(args.data or args.wlm / "data" / "wikitext-2", scratch)
            # purelm's epoch: every stream's full windows (`purelm._data._corpus.num_windows`).
            steps_per_epoch = count_words(data / "train.txt") // BATCH // SEQ_LEN
            theirs, ours = [], []
            for round_ in range(args.rounds):
                # Alternate who goes first, so neither side always runs on the warmer (or busier) machine.
                for side in ("theirs", "purelm") if round_ % 2 == 0 else ("purelm", "theirs"):
                    if side == "theirs":
                        theirs.append(run_theirs(args.wlm.resolve(), data, args.epochs, scratch))
                    else:
                        ours.append(run_purelm(data, args.epochs, steps_per_epoch, scratch / f"run{round_}"))
    except BenchmarkError as error:
        print(f"word_language_model.py: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the commands got the same Ctrl-C; the scratch directory is already gone
        print("word_language_model.py: interrupted", file=sys.stderr)
        return 130
    print(f"{args.epochs} epoch(s) of word_language_model's default configuration; {note}")
    print(f"{'':28} {'valid ppl':>10} {'wall s (median)':>16} {'their epoch s':>14}")
    for name, outcomes in (("their main.py (torch)", theirs), ("purelm train", ours)):
        epoch = [o.epoch_s for o in outcomes if o.epoch_s is not None]
        print(
            f"{name:28} {outcomes[-1].perplexity:10.2f} {statistics.median(o.wall_s for o in outcomes):16.1f} "
            f"{f'{statistics.median(epoch):.1f}' if epoch else '':>14}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
