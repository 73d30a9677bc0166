"""How heavy the pre-commit hook is for its users: the size of the environment pre-commit builds for
it, and the time of a first `pre-commit try-repo` (cold: try-repo always builds a fresh environment).

    .venv/bin/python benchmarks/precommit_hook.py [--rounds N] [--repo DIR]

It clones the repository's last commit (what a `rev:` would install) and measures two variants of
the root pyproject: as committed, and without the language-server dependencies (pygls, lsprotocol),
alternating rounds in one run. A one-file project is the hook's target. pre-commit downloads
libcst, pathspec (and pygls) from the configured package index, so this needs the network.

Targets: environment under 60 MB, first try-repo under 25 s. For scale it also sizes a
bare `python -m venv` with pip, libcst and pathspec.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPURE = "import jax\n\n\n@jax.jit\ndef step(x):\n    print(x)\n    return x\n"
SERVER_DEPENDENCIES = re.compile(r'^\s*"(pygls|lsprotocol)[^"]*",\n', re.MULTILINE)


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: the hook found the impure file, as it should
        raise SystemExit(
            f"precommit_hook: `{' '.join(command)}` failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}"
        )
    return done


def git(cwd: Path, *args: str) -> str:
    return run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "-c", "commit.gpgsign=false", *args], cwd).stdout


def megabytes(path: Path) -> float:
    """Disk usage as `du` counts it (blocks, not apparent sizes), in MiB."""
    return int(run(["du", "-sk", str(path)], path).stdout.split()[0]) / 1024


def packages(python: Path, cwd: Path) -> str:
    listing = run([str(python), "-m", "pip", "list", "--format=freeze"], cwd).stdout
    return ", ".join(sorted(line.split("==")[0] for line in listing.splitlines() if line))


def hook_repository(work: Path, source: Path, variant: str) -> Path:
    clone = work / f"hook-{variant}"
    git(work, "clone", "-q", str(source), str(clone))
    if variant == "without pygls":
        pyproject = clone / "pyproject.toml"
        text, count = SERVER_DEPENDENCIES.subn("", pyproject.read_text())
        if count != 2:
            raise SystemExit("precommit_hook: pygls and lsprotocol not found in the root pyproject's dependencies")
        pyproject.write_text(text)
        git(clone, "commit", "-q", "-am", "no language server")
    return clone


def cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def measure(work: Path, hook: Path, project: Path, label: str) -> tuple[float, float, float, str]:
    """Cold try-repo wall and CPU seconds (CPU: all its processes; the machine's load barely changes
    it), then the size of the environment `install-hooks` builds for the same hook."""
    env = {**os.environ, "PRE_COMMIT_HOME": str(work / f"home-{label}"), "NO_COLOR": "1"}
    start, cpu = time.perf_counter(), cpu_seconds()
    done = run([sys.executable, "-m", "pre_commit", "try-repo", str(hook), "purelint", "--all-files"], project, env)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    if "PUR001" not in done.stdout:
        raise SystemExit(f"precommit_hook: the hook did not report the impure file:\n{done.stdout}")
    rev = git(hook, "rev-parse", "HEAD").strip()
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {hook}\n  rev: {rev}\n  hooks:\n  - id: purelint\n"
    )
    run([sys.executable, "-m", "pre_commit", "install-hooks"], project, env)
    (environment,) = Path(env["PRE_COMMIT_HOME"]).glob("repo*/py_env-*")
    names = packages(environment / "bin" / "python", project)
    size = megabytes(environment)
    shutil.rmtree(env["PRE_COMMIT_HOME"])
    (project / ".pre-commit-config.yaml").unlink()
    return seconds, cpu, size, names


def bare_venv(work: Path) -> tuple[float, str]:
    venv = work / "bare"
    run([sys.executable, "-m", "venv", str(venv)], work)
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "libcst", "pathspec"], work)
    return megabytes(venv), packages(venv / "bin" / "python", work)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="cold runs per variant, alternating (default: 1)")
    parser.add_argument(
        "--repo", type=Path, default=ROOT, help="the repository whose last commit is the hook (default: this one)"
    )
    args = parser.parse_args()
    if shutil.which("git") is None:
        print("precommit_hook: git is not installed", file=sys.stderr)
        return 2
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}   ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        project = work / "project"
        project.mkdir()
        git(project, "init", "-q")
        (project / "step.py").write_text(IMPURE)
        git(project, "add", "step.py")
        variants = ["as committed", "without pygls"]
        hooks = {v: hook_repository(work, args.repo, v) for v in variants}
        results: dict[str, list[tuple[float, float, float, str]]] = {v: [] for v in variants}
        for round_ in range(args.rounds):
            for variant in variants if round_ % 2 == 0 else variants[::-1]:
                results[variant].append(measure(work, hooks[variant], project, f"{variant}-{round_}".replace(" ", "-")))
        bare, bare_names = bare_venv(work)
    print(f"{'hook environment':<16} {'first try-repo (s)':>20} {'its CPU (s)':>12} {'env (MB)':>9}  packages")
    for variant, rows in results.items():
        seconds = " / ".join(f"{r[0]:.1f}" for r in rows)
        cpu = " / ".join(f"{r[1]:.1f}" for r in rows)
        print(f"{variant:<16} {seconds:>20} {cpu:>12} {rows[0][2]:>9.1f}  {rows[0][3]}")
    print(f"{'bare venv':<16} {'':>20} {'':>12} {bare:>9.1f}  {bare_names}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("targets: environment < 60 MB, first try-repo < 25 s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
