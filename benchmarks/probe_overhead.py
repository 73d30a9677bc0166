"""What `purelint probe` costs: the same work with and without the probe watching.

    python benchmarks/probe_overhead.py --repeats 2
    python benchmarks/probe_overhead.py --only dispatch      # one workload: train, tests or dispatch

Workloads, each run with and without the probe in alternating order (so a busy machine slows both alike):

- train: `make demo`'s training run, shortened: `purelm train --steps 200 --embed-dim 32 --hidden-dim 128
  --eval-every 100 --log-every 50 --no-compile-cache` on the interpreter's standard library, as
  `python -m purelm._signals train ...` against `purelint probe -m purelm._signals train ...`;
- tests: a jit-heavy slice of purelm's test suite (`tests/purelm/test_jit.py`, `test_model.py` and
  `test_training.py`), `pytest -p no:xdist` against `pytest -p no:xdist --purelint-probe`;
- dispatch: the per-call cost the probe adds to a compiled function, in this process: 20,000 calls of a
  jitted function that adds two scalars (dispatch is all there is to it) and of a jitted matrix product
  (256 x 256), with and without `purelint.probe()` around them.

Each cell is the median wall time over `--repeats`, and in parentheses the CPU time (user + system) of the
child processes or of this process, which other processes on a shared machine inflate less than the wall
time. The last column is the slowdown, probe / plain, of the wall time.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN = [
    "train",
    "--steps",
    "200",
    "--embed-dim",
    "32",
    "--hidden-dim",
    "128",
    "--eval-every",
    "100",
    "--log-every",
    "50",
    "--no-compile-cache",
]
TESTS = ["tests/purelm/test_jit.py", "tests/purelm/test_model.py", "tests/purelm/test_training.py"]
CALLS = 20_000


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_process(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one child process; its output is dropped, a failure is an error."""
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    # pytest under the probe exits 1 when the probe finds something (test_jit.py records its traces on purpose).
    if done.returncode not in (0, 1) or (done.returncode == 1 and "--purelint-probe" not in argv):
        raise SystemExit(f"probe_overhead: {' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return wall, _children_cpu() - cpu


def train_pair(workdir: Path) -> dict[str, list[str]]:
    out = str(workdir / "run")
    command = ["-m", "purelm._signals", *TRAIN, "--out", out]
    return {"plain": [sys.executable, *command], "probe": [sys.executable, "-m", "purelint", "probe", *command]}


def tests_pair() -> dict[str, list[str]]:
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", *TESTS]
    return {"plain": base, "probe": [*base, "--purelint-probe"]}


def measure_processes(pair: dict[str, list[str]], repeats: int, cwd: Path, clean: Path | None = None) -> dict:
    times: dict[str, list[tuple[float, float]]] = {"plain": [], "probe": []}
    for round_ in range(repeats):
        for name in ("plain", "probe") if round_ % 2 == 0 else ("probe", "plain"):
            if clean is not None:
                subprocess.run(["rm", "-rf", str(clean)], check=True)
            times[name].append(timed_process(pair[name], cwd))
    return times


def dispatch(repeats: int) -> dict[str, dict]:
    """Per-call cost in this process: (wall, CPU) per call, in microseconds."""
    import jax
    import jax.numpy as jnp

    import purelint

    def loop(fn, args, calls):
        jax.block_until_ready(fn(*args))
        cpu, start = time.process_time(), time.perf_counter()
        for _ in range(calls):
            out = fn(*args)
        jax.block_until_ready(out)
        return (time.perf_counter() - start) / calls * 1e6, (time.process_time() - cpu) / calls * 1e6

    rows: dict[str, dict] = {}
    matrix = jnp.ones((256, 256))
    for label, make, args, calls in (
        ("dispatch: jitted scalar add, per call", lambda: jax.jit(lambda a, b: a + b), (1.0, 2.0), CALLS),
        ("dispatch: jitted 256x256 matmul, per call", lambda: jax.jit(lambda a: a @ a), (matrix,), CALLS // 10),
    ):
        times: dict[str, list] = {"plain": [], "probe": []}
        for round_ in range(repeats):
            for name in ("plain", "probe") if round_ % 2 == 0 else ("probe", "plain"):
                if name == "plain":
                    times[name].append(loop(make(), args, calls))
                else:
                    with purelint.probe(output=None):
                        fn = make()  # jitted while the probe runs: the probe watches it
                        times[name].append(loop(fn, args, calls))
        rows[label] = times
    return rows


def cell(samples: list[tuple[float, float]], unit: str) -> str:
    wall = statistics.median(s[0] for s in samples)
    cpu = statistics.median(s[1] for s in samples)
    return f"{wall:.1f} {unit} ({cpu:.1f})" if unit == "us" else f"{wall:.2f} {unit} ({cpu:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs of each workload both ways (default 2)")
    parser.add_argument(
        "--only", choices=("train", "tests", "dispatch"), action="append", help="run only these workloads"
    )
    args = parser.parse_args()
    only = set(args.only or ("train", "tests", "dispatch"))
    results: dict[str, tuple[dict, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "train" in only:
            pair = train_pair(workdir)
            results["train: purelm train, 200 steps"] = (
                measure_processes(pair, args.repeats, REPO, workdir / "run"),
                "s",
            )
        if "tests" in only:
            results[f"tests: pytest {' '.join(Path(t).name for t in TESTS)}"] = (
                measure_processes(tests_pair(), args.repeats, REPO),
                "s",
            )
    if "dispatch" in only:
        for label, times in dispatch(args.repeats).items():
            results[label] = times, "us"
    width = max(len(label) for label in results)
    print(f"{'workload':<{width}}  {'plain':>17}  {'probe':>17}  slowdown")
    for label, (times, unit) in results.items():
        ratio = statistics.median(s[0] for s in times["probe"]) / statistics.median(s[0] for s in times["plain"])
        print(f"{label:<{width}}  {cell(times['plain'], unit):>17}  {cell(times['probe'], unit):>17}  {ratio:.2f}x")
    print(f"(median of {args.repeats}; wall time, CPU time in parentheses; {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
