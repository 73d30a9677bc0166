"""word_language_model's recipe, trained by its own main.py and by `purelm train`, over sizes and seeds.

Every side trains word_language_model's configuration (an LSTM, 2 layers, tied decoder, dropout 0.2, SGD at
lr 20 with gradient clipping 0.25, the lr divided by 4 when validation stops improving, 20 streams of
35-word windows) at each `--sizes` (embedding = hidden size) and `--seeds`, for `--epochs` epochs:

- `theirs`: their main.py (a subprocess with this interpreter, which needs torch; `--threads` torch
  threads, since their result depends on the summation order);
- `recipe`: `purelm train --recipe word_language_model --tied` (their recipe: init, zero initial state,
  torch's two biases, their windows and evaluation set);
- `init`: purelm's own training (learned initial state, its windows, one bias per cell) with their
  initialisation (`--init word_language_model`) and their optimiser, schedule and validation;
- `embed`: the same with purelm's initialisation but their embedding range (`--init-range 0.1`);
- `purelm`: the same with purelm's own initialisation.

The table gives the validation perplexity each side reports after the last epoch, on their evaluation
token set, and the wall time of each whole command. Their main.py comes from a checkout of pytorch/examples (`--wlm` names its
word_language_model folder). A partial copy of their repository may lack the large wikitext-2
train.txt: then every side trains on a copy of valid.txt, and the table says so (the numbers are then
not wikitext-2 results, only a like-for-like comparison).

    python benchmarks/word_language_model.py --wlm ~/examples/word_language_model
    python benchmarks/word_language_model.py --wlm DIR --sizes 32 100 200 --seeds 1 2 3 --sides recipe,init --jobs 2
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
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
LAYERS, DROPOUT, LR, CLIP, SEQ_LEN, BATCH, ANNEAL = 2, 0.2, 20.0, 0.25, 35, 20, 4.0
THEIR_FILES = ("main.py", "data.py", "model.py")
THEIR_EPOCH = re.compile(r"\| end of epoch\s+\d+ \| time:\s*[\d.]+s \| valid loss\s+[\d.]+ \| valid ppl\s+([\d.]+)")


class BenchmarkError(Exception):
    """A problem with the inputs or a failed command, reported as one line."""


@dataclass(frozen=True)
class Outcome:
    perplexity: float
    wall_s: float


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
    return copy, f"{data} has no train.txt: every side trained on a copy of valid.txt (not a wikitext-2 result)"


def count_words(path: Path) -> int:
    """Tokens as their data.py counts them: whitespace-split words plus one <eos> per line."""
    with path.open(encoding="utf8") as f:
        return sum(len(line.split()) + 1 for line in f)


def run(name: str, command: list[str], cwd: Path | None = None, threads: int | None = None) -> tuple[str, float]:
    env = None if threads is None else os.environ | {"OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise BenchmarkError(f"cannot run {name}: no {command[0]}") from None
    wall = time.perf_counter() - start
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise BenchmarkError(f"{name} exited with {done.returncode}: {lines[-1]}")
    return done.stdout, wall


def run_theirs(wlm: Path, data: Path, size: int, seed: int, epochs: int, threads: int, out: Path) -> Outcome:
    command = [sys.executable, "-u", str(wlm / "main.py"), "--data", str(data), "--model", "LSTM"]
    command += ["--emsize", str(size), "--nhid", str(size), "--nlayers", str(LAYERS), "--dropout", str(DROPOUT)]
    command += ["--tied", "--lr", str(LR), "--clip", str(CLIP), "--bptt", str(SEQ_LEN), "--batch_size", str(BATCH)]
    command += ["--epochs", str(epochs), "--seed", str(seed), "--save", str(out.with_suffix(".pt"))]
    # cwd: main.py imports its data.py and model.py as top-level modules.
    output, wall = run("their main.py", command, cwd=wlm, threads=threads)
    epochs_seen = THEIR_EPOCH.findall(output)
    if not epochs_seen:
        raise BenchmarkError("their main.py printed no '| end of epoch' line")
    return Outcome(float(epochs_seen[-1]), wall)


# purelm's own training with word_language_model's settings (and their validation token set).
_OWN = [
    "--tokenizer", "word", "--layers", str(LAYERS), "--dropout", str(DROPOUT), "--tied", "--optimizer", "sgd",
    "--lr", str(LR), "--grad-clip", str(CLIP), "--anneal", str(ANNEAL), "--seq-len", str(SEQ_LEN),
    "--batch-size", str(BATCH), "--eval-every", "epoch", "--checkpoint-every", "epoch",
    "--eval-layout", "word_language_model",
]  # fmt: skip
# purelm's flags per side (besides data, size, seed, epochs and --out).
PURELM_SIDES = {
    "recipe": ["--recipe", "word_language_model", "--tied"],
    "init": [*_OWN, "--init", "word_language_model"],
    "embed": [*_OWN, "--init-range", "0.1"],
    "purelm": _OWN,
}
SIDES = ("theirs", *PURELM_SIDES)


def run_purelm(side: str, data: Path, size: int, seed: int, epochs: int, out: Path) -> Outcome:
    command = [str(Path(sys.executable).with_name("purelm")), "train", str(data), *PURELM_SIDES[side]]
    command += ["--embed-dim", str(size), "--hidden-dim", str(size), "--seed", str(seed), "--epochs", str(epochs)]
    _, wall = run(f"purelm train ({side})", [*command, "--out", str(out)])
    evals = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "val_perplexity" in r]
    if not evals:
        raise BenchmarkError(f"purelm train wrote no validation record to {out / 'metrics.jsonl'}")
    return Outcome(evals[-1]["val_perplexity"], wall)


def sides(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in SIDES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: name one or more of {', '.join(SIDES)}, comma-separated")
    return names


def summary(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f} ({min(values):.1f}-{max(values):.1f})"


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
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[200], help="embedding = hidden sizes (200)")
    parser.add_argument("--seeds", type=positive_int, nargs="+", default=[1], help="seeds, each side the same (1)")
    parser.add_argument("--epochs", type=positive_int, default=1, help="epochs on every side (1)")
    parser.add_argument("--sides", type=sides, default=SIDES, help=f"comma-separated, of {', '.join(SIDES)} (all)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads for their main.py (1)")
    parser.add_argument("--jobs", type=positive_int, default=1, help="commands at once; wall times then overlap (1)")
    args = parser.parse_args(argv)
    results: dict[tuple[str, int, int], Outcome] = {}
    try:
        if "theirs" in args.sides:
            check_checkout(args.wlm)
        with tempfile.TemporaryDirectory(prefix="wlm_bench_") as scratch:
            scratch = Path(scratch)
            data, note = prepare_data(args.data or args.wlm / "data" / "wikitext-2", scratch)

            def one(job: tuple[str, int, int]) -> None:
                side, size, seed = job
                out = scratch / f"{side}_{size}_{seed}"
                if side == "theirs":
                    results[job] = run_theirs(args.wlm.resolve(), data, size, seed, args.epochs, args.threads, out)
                else:
                    results[job] = run_purelm(side, data, size, seed, args.epochs, out)
                print(f"{side:8} size {size:4} seed {seed}: valid ppl {results[job].perplexity:.2f}", file=sys.stderr)

            jobs = [(side, size, seed) for side in args.sides for size in args.sizes for seed in args.seeds]
            with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
                list(pool.map(one, jobs))
    except BenchmarkError as error:
        print(f"word_language_model.py: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the commands got the same Ctrl-C; the scratch directory is already gone
        print("word_language_model.py: interrupted", file=sys.stderr)
        return 130
    print(f"{args.epochs} epoch(s) of word_language_model's configuration (tied); {note}")
    header = " | ".join(f"{side} ppl | {side} wall s" for side in args.sides)
    print(f"| size | seed | {header} |")
    print("|" + "---|" * (2 + 2 * len(args.sides)))
    for size in args.sizes:
        for seed in args.seeds:
            cells = " | ".join(
                f"{results[side, size, seed].perplexity:.2f} | {results[side, size, seed].wall_s:.0f}"
                for side in args.sides
            )
            print(f"| {size} | {seed} | {cells} |")
    print(f"\n| size | {' | '.join(f'{side}: mean (min-max)' for side in args.sides)} |")
    print("|" + "---|" * (1 + len(args.sides)))
    for size in args.sizes:
        means = " | ".join(
            summary([results[side, size, seed].perplexity for seed in args.seeds]) for side in args.sides
        )
        print(f"| {size} | {means} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
