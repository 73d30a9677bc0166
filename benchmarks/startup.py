"""Startup time of the `purelm` command and of a first training call, with a cold and a warm persistent
compilation cache (`purelm/_runtime/_compile_cache.py`), and with the cache turned off.

    python benchmarks/startup.py --repeats 3
    python benchmarks/startup.py --run RUN_DIR --eval-file FILE    # an existing run instead of a fresh one

Measured, each in a fresh process:

- `import jax`, the start of its backend and the exit as `purelm` exits (`gc.freeze()` first): the floor
  under every `purelm` command that computes anything, whatever the cache holds;
- `purelm sample RUN --length 300`;
- `purelm eval RUN FILE` on a 7 kB text file;
- the first training call for configuration (a) of benchmarks/train_throughput.py (vocab 256, embed 128,
  hidden 512, batch 32, seq 64): import, build the model and Adam, and the first call of `make_train_step`
  (1 step) or `make_train_steps` (10 steps per call, as `purelm train` runs), which includes tracing and
  compiling it.

"cold" is the first run with an empty cache directory, "warm" the median of `--repeats` runs after it,
"off" the median of `--repeats` runs with `PURELM_CACHE_DIR=off`. Each cell gives the wall time and, in
parentheses, the CPU time (user + system) of the process, which a busy machine inflates less than the
wall time. Without `--run`, a small byte-level run is trained first (20 steps, cache off) in a temporary
directory.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# What every `purelm` command that computes must do at least: import JAX, start its backend, and exit as
# purelm._cli._entry.console_main exits (gc.freeze() spares the final collection JAX's many objects).
FLOOR = "import gc, jax; jax.devices(); gc.freeze()"
A = {"vocab": 256, "embed": 128, "hidden": 512, "batch": 32, "seq": 64}


def purelm_command() -> list[str]:
    sibling = Path(sys.executable).with_name("purelm")
    found = str(sibling) if sibling.exists() else shutil.which("purelm")
    if found is None:
        sys.exit("startup.py: the purelm command is not installed next to this interpreter or on PATH")
    return [found]


def timed_run(command: list[str], env: dict) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system) and stdout of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"startup.py: {' '.join(command)} failed: {result.stderr.strip().splitlines()[-1:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


def first_training_call(steps_per_call: int) -> None:
    """In a fresh process: import, cache on, build (a), first training call; prints the seconds."""
    start = time.perf_counter()
    import equinox as eqx
    import jax
    import numpy as np
    import optax

    import purelm
    from purelm._runtime import _compile_cache

    _compile_cache.enable()
    imported = time.perf_counter()
    model = purelm.LSTMLM(A["vocab"], A["embed"], A["hidden"], key=jax.random.key(0))
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    rng = np.random.default_rng(0)
    if steps_per_call == 1:
        step = purelm.make_train_step(optimizer)
        batch = rng.integers(0, A["vocab"], (A["batch"], A["seq"]))
    else:
        step = purelm.make_train_steps(optimizer)
        batch = rng.integers(0, A["vocab"], (steps_per_call, A["batch"], A["seq"]))
    # device_put, not jnp.asarray: the latter compiles a small program per shape.
    tokens = jax.device_put(batch.astype(np.int32))
    jax.block_until_ready(step(model, opt_state, tokens, None))
    done = time.perf_counter()
    print(f"{imported - start:.3f} {done - imported:.3f}")


def make_run(tmp: Path, purelm: list[str], env: dict) -> tuple[Path, Path]:
    """A small byte-level run (trained with the cache off, so that the cache starts empty) and a 7 kB
    evaluation file, both cut from this repository's own sources."""
    sources = sorted(Path(__file__).resolve().parents[1].joinpath("purelm").glob("*.py"))
    text = "".join(path.read_text() for path in sources)
    corpus, small = tmp / "corpus.txt", tmp / "small.txt"
    corpus.write_text(text[:200_000])
    small.write_text(text[-7_000:])
    run = tmp / "run"
    command = purelm + ["train", str(corpus), "--out", str(run), "--steps", "20", "--eval-every", "20"]
    subprocess.run(command, env={**env, "PURELM_CACHE_DIR": "off"}, check=True, capture_output=True)
    return run, small


def cell(samples: list[tuple[float, float]]) -> str:
    wall = statistics.median(s[0] for s in samples)
    cpu = statistics.median(s[1] for s in samples)
    return f"{wall:6.2f} s ({cpu:5.2f})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="an existing run directory (default: train a small one)")
    parser.add_argument("--eval-file", help="the text to evaluate (default: 7 kB of purelm's sources)")
    parser.add_argument("--repeats", type=int, default=3, help="warm and cache-off runs per command")
    parser.add_argument("--first-step", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.first_step:
        first_training_call(args.first_step)
        return
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    purelm = purelm_command()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="purelm-startup-") as name:
        tmp = Path(name)
        if args.run:
            if not args.eval_file:
                parser.error("--run needs --eval-file")
            run, small = Path(args.run), Path(args.eval_file)
        else:
            run, small = make_run(tmp, purelm, env)
        commands = {
            "import jax, backend, exit (the floor)": [sys.executable, "-c", FLOOR],
            "purelm sample RUN --length 300": purelm + ["sample", str(run), "--length", "300"],
            f"purelm eval RUN ({small.stat().st_size / 1000:.0f} kB)": purelm + ["eval", str(run), str(small)],
            "first training call (a), 1 step": [sys.executable, __file__, "--first-step", "1"],
            "first training call (a), 10 steps/call": [sys.executable, __file__, "--first-step", "10"],
        }
        load_before = os.getloadavg()[0]
        rows, inside = [], {}
        for index, (label, command) in enumerate(commands.items()):
            cached = {**env, "PURELM_CACHE_DIR": str(tmp / f"cache-{index}")}
            cold = timed_run(command, cached)
            warm = [timed_run(command, cached) for _ in range(args.repeats)]
            off = [timed_run(command, {**env, "PURELM_CACHE_DIR": "off"}) for _ in range(args.repeats)]
            rows.append(
                f"{label:<42}{cell([cold[:2]]):>20}{cell([w[:2] for w in warm]):>20}{cell([o[:2] for o in off]):>20}"
            )
            if "--first-step" in command:
                # The call itself (build + first step), without the interpreter start and imports.
                calls = [float(result[2].split()[-1]) for result in (cold, *warm, *off)]
                inside[label] = (
                    calls[0],
                    statistics.median(calls[1 : 1 + args.repeats]),
                    statistics.median(calls[1 + args.repeats :]),
                )
    print(f"{'command':<42}{'cold cache':>20}{'warm cache':>20}{'cache off':>20}")
    print("\n".join(rows))
    for label, (cold, warm, off) in inside.items():
        print(f"{label}: build + first call alone {cold:.2f} s cold, {warm:.2f} s warm, {off:.2f} s cache off")
    print(
        f"wall seconds (CPU seconds, user + system); warm and off: median of {args.repeats}; "
        f"load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
