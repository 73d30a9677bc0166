"""Lint the interpreter's whole standard library: zero crashes expected; prints files/s and lines/s.

    .venv/bin/python benchmarks/stdlib_sweep.py [--mode default|traced|all ...]

Each file goes through `purelint.lint_file` (read, decode, parse, analyse, rules); a file that
does not parse comes back as PUR999, a crash in purelint is counted and named. Modes:
default = default rules and scope (files without jax/equinox are only syntax-checked);
traced = every rule (which parses every file with libcst), traced scope;
all = every rule, every function checked.
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
import time
from collections import Counter
from pathlib import Path

from purelint import Config, iter_files, lint_file


def stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    config = Config(root=root, exclude=("site-packages", "dist-packages"), respect_gitignore=False)
    return sorted(iter_files([root], config))


MODES = {
    "default": Config(),
    "traced": Config(select=("ALL",)),
    "all": Config(scope="all", select=("ALL",)),
}


def sweep(files: list[Path], mode: str) -> dict:
    config = MODES[mode]
    codes: Counter[str] = Counter()
    crashes = []
    lines = 0
    start = time.perf_counter()
    for path in files:
        try:
            codes.update(d.code for d in lint_file(path, config=config))
        except Exception as error:  # what the sweep exists to catch
            crashes.append(f"{path}: {type(error).__name__}: {error}")
    seconds = time.perf_counter() - start
    for path in files:
        lines += path.read_bytes().count(b"\n")
    return {"mode": mode, "files": len(files), "lines": lines, "seconds": seconds, "codes": codes, "crashes": crashes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=tuple(MODES), nargs="+", default=list(MODES))
    args = parser.parse_args()
    files = stdlib_files()
    print(
        f"{'mode':<7} {'files':>6} {'lines':>8} {'seconds':>8} {'files/s':>8} {'lines/s':>8} {'PUR999':>6} {'crashes':>7}"
    )
    for mode in args.mode:
        r = sweep(files, mode)
        print(
            f"{mode:<7} {r['files']:>6} {r['lines']:>8} {r['seconds']:>8.1f} {r['files'] / r['seconds']:>8.1f} "
            f"{r['lines'] / r['seconds']:>8.0f} {r['codes']['PUR999']:>6} {len(r['crashes']):>7}"
        )
        for crash in r["crashes"]:
            print("  crash:", crash)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
