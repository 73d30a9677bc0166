"""How fast purelint lints a large corpus nobody here wrote, next to Ruff and Fixit, in one run.

The corpus is the interpreter's standard library plus the Python sources of the installed `jax` and
`torch` packages. Every tool gets the same explicit file list and runs as its command-line tool
(startup included). Fixit is slow, so it runs on a deterministic sample (every k-th file, copied
outside any git repository because Fixit skips gitignored files) and its lines/s is taken from that
sample. purelint runs cold (`--no-cache`), then fills its cache and runs
warm over the whole corpus and over the standard library alone.

    python benchmarks/lint_throughput.py                    # everything, all cores
    python benchmarks/lint_throughput.py --corpus stdlib --fixit-sample 50 --jobs 2

    python benchmarks/lint_throughput.py --corpus stdlib jax --baseline ../old-checkout   # before/after

With `--baseline DIR` (a checkout, e.g. a `git worktree` of an older commit) the purelint rows are
measured for both versions in alternating rounds of the same run, so machine load hits both alike.
Ruff and Fixit rows are skipped when they are not installed.

Targets: purelint cold >= 5x Fixit's lines/s; warm over the stdlib < 1 s; with `--baseline`, cold
throughput no more than 20% below the baseline's.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

BIN = pathlib.Path(sys.executable).parent


def corpus(names: list[str]) -> dict[str, list[pathlib.Path]]:
    """name -> sorted .py files: `stdlib` (minus site-packages), and installed packages by name."""
    site = pathlib.Path(sysconfig.get_paths()["purelib"])
    roots = {"stdlib": pathlib.Path(sysconfig.get_paths()["stdlib"]), "jax": site / "jax", "torch": site / "torch"}
    found = {}
    for name in names:
        root = roots[name]
        files = [p for p in root.rglob("*.py") if "site-packages" not in p.relative_to(root).parts]
        found[name] = sorted(files)
    return found


def line_count(files: list[pathlib.Path]) -> int:
    return sum(p.read_bytes().count(b"\n") for p in files)


def timed(command: list[str], cwd: str) -> float:
    """Seconds the command took (its output is discarded; findings are not failures here)."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        print(f"  warning: {command[0]} exited {done.returncode}: {' | '.join(tail)}", file=sys.stderr)
    return elapsed


def sample(files: list[pathlib.Path], count: int) -> list[pathlib.Path]:
    """Every k-th file of the sorted list: deterministic and spread over the whole corpus."""
    if count >= len(files):
        return files
    step = len(files) / count
    return [files[int(i * step)] for i in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="+", default=["stdlib", "jax", "torch"], choices=["stdlib", "jax", "torch"])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="purelint workers (default: all cores)")
    parser.add_argument("--fixit-sample", type=int, default=40, metavar="N", help="files Fixit lints (default 40)")
    parser.add_argument("--baseline", metavar="DIR", help="also time the purelint of this checkout (side by side)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds with --baseline (default 1)")
    args = parser.parse_args(argv)
    if args.baseline:
        return compare(args)
    missing = [tool for tool in ("ruff", "fixit", "purelint") if not (BIN / tool).exists()]
    if missing:
        print(
            f"lint_throughput: {', '.join(missing)} not installed next to {sys.executable}; "
            "run `pip install -e .[bench]`",
            file=sys.stderr,
        )
        return 2

    parts = corpus(args.corpus)
    files = [f for name in args.corpus for f in parts[name]]
    lines = line_count(files)
    print(
        f"corpus: {len(files)} files, {lines} lines ("
        + ", ".join(f"{n} {len(parts[n])} files" for n in args.corpus)
        + ")"
    )
    paths = [str(f) for f in files]
    rows: list[tuple[str, int, int, float]] = []
    with tempfile.TemporaryDirectory() as work:
        # A bare directory: no project configuration or cache applies to anyone.
        purelint = [str(BIN / "purelint"), "--exit-zero", "--output-format", "json", "--jobs", str(args.jobs)]
        rows.append(
            (
                "ruff check --no-cache",
                len(files),
                lines,
                timed([str(BIN / "ruff"), "check", "--no-cache", "--isolated", "--exit-zero", *paths], work),
            )
        )
        picked = sample(files, args.fixit_sample)
        # Fixit skips files that a .gitignore above them lists (pyenv's tree and our .venv are), so it
        # gets byte-identical copies in a directory no repository owns.
        copies = pathlib.Path(work, "fixit-sample")
        copies.mkdir()
        for index, source in enumerate(picked):
            shutil.copyfile(source, copies / f"{index:04d}_{source.name}")
        rows.append(
            (
                f"fixit lint ({len(picked)}-file sample)",
                len(picked),
                line_count(picked),
                timed([str(BIN / "fixit"), "lint", str(copies)], work),
            )
        )
        rows.append(("purelint --no-cache (cold)", len(files), lines, timed([*purelint, "--no-cache", *paths], work)))
        timed([*purelint, *paths], work)  # fills the cache
        rows.append(("purelint (warm cache)", len(files), lines, timed([*purelint, *paths], work)))
        if "stdlib" in parts:
            std = [str(f) for f in parts["stdlib"]]
            rows.append(
                ("purelint stdlib only (warm)", len(std), line_count(parts["stdlib"]), timed([*purelint, *std], work))
            )
        shutil.rmtree(os.path.join(work, ".purelint_cache"), ignore_errors=True)

    fixit_rate = rows[1][2] / rows[1][3]
    ruff_rate = rows[0][2] / rows[0][3]
    print(
        f"{'tool':<34} {'files':>6} {'lines':>9} {'seconds':>8} {'files/s':>9} {'lines/s':>10} {'x Fixit':>8} {'x Ruff':>8}"
    )
    for name, count, size, seconds in rows:
        rate = size / seconds
        print(
            f"{name:<34} {count:>6} {size:>9} {seconds:>8.2f} {count / seconds:>9.1f} {rate:>10.0f} "
            f"{rate / fixit_rate:>8.1f} {rate / ruff_rate:>8.3f}"
        )
    cold = rows[2][2] / rows[2][3]
    print(
        f"target cold >= 5x Fixit lines/s: {cold / fixit_rate:.1f}x -> {'met' if cold >= 5 * fixit_rate else 'NOT met'}"
    )
    if "stdlib" in parts:
        warm = rows[-1][3]
        print(f"target warm stdlib < 1 s: {warm:.2f} s -> {'met' if warm < 1 else 'NOT met'}")
    return 0


def compare(args: argparse.Namespace) -> int:
    """purelint now vs. the checkout in `--baseline`, cold and warm, alternating in one run."""
    base = pathlib.Path(args.baseline).resolve()
    if not (base / "purelint" / "__init__.py").is_file():
        print(f"lint_throughput: {base} has no purelint package", file=sys.stderr)
        return 2
    here = pathlib.Path(__file__).resolve().parent.parent
    parts = corpus(args.corpus)
    files = [f for name in args.corpus for f in parts[name]]
    lines = line_count(files)
    print(
        f"corpus: {len(files)} files, {lines} lines ("
        + ", ".join(f"{n} {len(parts[n])} files" for n in args.corpus)
        + ")"
    )
    paths = [str(f) for f in files]
    std = [str(f) for f in parts.get("stdlib", [])]
    flags = ["--exit-zero", "--output-format", "json", "--jobs", str(args.jobs)]
    times: dict[tuple[str, str], list[float]] = {}
    for _round in range(args.rounds):
        for label, root in (("baseline", base), ("current", here)):
            command = [
                sys.executable,
                "-c",
                f"import sys; sys.path.insert(0, {str(root)!r}); "
                "from purelint._cli import main; raise SystemExit(main())",
                *flags,
            ]
            with tempfile.TemporaryDirectory() as work:
                times.setdefault((label, "cold"), []).append(timed([*command, "--no-cache", *paths], work))
                timed([*command, *paths], work)  # fills the cache
                if std:
                    times.setdefault((label, "warm stdlib"), []).append(timed([*command, *std], work))
    print(f"{'purelint':<10} {'run':<12} {'seconds (best)':>15} {'lines/s':>10}")
    for (label, kind), seconds in times.items():
        best = min(seconds)
        rate = f"{lines / best:>10.0f}" if kind == "cold" else f"{'':>10}"
        print(f"{label:<10} {kind:<12} {best:>15.2f} {rate}")
    ratio = min(times[("baseline", "cold")]) / min(times[("current", "cold")])
    print(f"cold throughput current/baseline: {ratio:.2f} -> {'met' if ratio >= 0.8 else 'NOT met'} (>= 0.80)")
    if std:
        warm = min(times[("current", "warm stdlib")])
        print(f"target warm stdlib < 1 s: {warm:.2f} s -> {'met' if warm < 1 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
