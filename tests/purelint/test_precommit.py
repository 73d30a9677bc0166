"""The real `pre-commit try-repo` against a throwaway git repository (offline)."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMPURE = "import jax\n\n\n@jax.jit\ndef step(x):\n    print(x)\n    return x\n"
FIXED = "import jax\n\n\n@jax.jit\ndef step(x):\n    jax.debug.print('{}', x)\n    return x\n"
CLEAN = "def double(x):\n    return 2 * x\n"


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory):
    """A committed copy of this checkout's hook definition and package (the working tree may hold
    uncommitted files, which try-repo would not see)."""
    pytest.importorskip("pre_commit", reason="pre-commit is not installed (it is in the dev extra)")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path_factory.mktemp("hook-repo")
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "purelint", root / "purelint", ignore=shutil.ignore_patterns("__pycache__"))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "hook")
    return root


def test_pre_commit_hook_fails_on_impure_code_then_passes(hook_repo, tmp_path):
    work = tmp_path / "project"
    work.mkdir()
    git(work, "init", "-q")
    (work / "clean.py").write_text(CLEAN)
    (work / "impure.py").write_text(IMPURE)
    git(work, "add", "-A")
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        # Offline: install only the hook's package into pre-commit's virtualenv and let it find
        # its dependencies (libcst) where this test's interpreter has them.
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip reads this inverted: "0" means --no-build-isolation
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
        "NO_COLOR": "1",
    }
    command = [sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), "purelint", "--all-files", "--color", "never"]
    failed = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "impure.py:6:5: PUR001" in failed.stdout and "clean.py" not in failed.stdout.split("Using config")[-1].split("=" * 79)[-1]
    (work / "impure.py").write_text(FIXED)
    git(work, "add", "-A")
    passed = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout
