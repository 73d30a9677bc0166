"""The pre-commit hook and the light distribution it installs: the real `pre-commit try-repo`
against a throwaway git repository (offline), and what the two distributions of this repository
declare (the root `purelint` must not pull the model toolkit's dependencies)."""

import email.parser
import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import purelint

REPO = Path(__file__).resolve().parents[2]
# What the linter's install (and the hook's environment) must not contain: the model toolkit's stack.
HEAVY = {"jax", "jaxlib", "numpy", "scipy", "equinox", "optax", "torch"}
IMPURE = "import jax\n\n\n@jax.jit\ndef step(x):\n    print(x)\n    return x\n"
FIXED = "import jax\n\n\n@jax.jit\ndef step(x):\n    jax.debug.print('{}', x)\n    return x\n"
CLEAN = "def double(x):\n    return 2 * x\n"


def git(cwd, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def copy_light_project(root):
    """What the hook installs from the repository root: its pyproject, PyPI readme, license, manifest,
    hook definition and package (and nothing of purelm, so a build that reached for it would fail)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = ("pyproject.toml", "MANIFEST.in", ".pre-commit-hooks.yaml", project["readme"], *project["license-files"])
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "purelint", root / "purelint", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory):
    """A committed copy of this checkout's hook definition and package (the working tree may hold
    uncommitted files, which try-repo would not see)."""
    pytest.importorskip("pre_commit", reason="pre-commit is not installed (it is in the dev extra)")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = copy_light_project(tmp_path_factory.mktemp("hook-repo"))
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
        # its dependencies (libcst, pathspec) where this test's interpreter has them.
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip reads this inverted: "0" means --no-build-isolation
        "PYTHONPATH": os.pathsep.join(
            [sysconfig.get_paths()["purelib"], *(p for p in sys.path if p.endswith("-packages"))]
        ),
        "NO_COLOR": "1",
    }
    command = [
        sys.executable,
        "-m",
        "pre_commit",
        "try-repo",
        str(hook_repo),
        "purelint",
        "--all-files",
        "--color",
        "never",
    ]
    failed = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert (
        "impure.py:6:5: PUR001" in failed.stdout
        and "clean.py" not in failed.stdout.split("Using config")[-1].split("=" * 79)[-1]
    )
    (work / "impure.py").write_text(FIXED)
    git(work, "add", "-A")
    passed = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout


def built_metadata(project, out):
    """The core metadata setuptools writes for `project` (offline: no build isolation)."""
    code = (
        "import sys; from setuptools import build_meta; print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    info = out / done.stdout.strip().splitlines()[-1]
    return email.parser.Parser().parsestr((info / "METADATA").read_text(encoding="utf-8"))


def names(requirements):
    return {Requirement(r).name.lower() for r in requirements}


def test_the_light_distribution_declares_no_model_dependency(tmp_path):
    (tmp_path / "light").mkdir()
    meta = built_metadata(copy_light_project(tmp_path / "light"), tmp_path)
    assert meta["Name"] == "purelint" and meta["Version"] == purelint.__version__
    requires = meta.get_all("Requires-Dist")
    assert {"libcst", "pathspec"} <= names(requires)
    # Extras included, dev and bench stay light too; only `purelint[probe]`, which watches JAX
    # programs as they run, brings JAX.
    probe = [
        r for r in requires if Requirement(r).marker is not None and 'extra == "probe"' in str(Requirement(r).marker)
    ]
    assert names(probe) == {"jax", "jaxlib", "numpy"}
    assert not names(set(requires) - set(probe)) & HEAVY, requires
    entry_points = (tmp_path / f"purelint-{meta['Version']}.dist-info" / "entry_points.txt").read_text()
    assert "purelint = purelint._cli:main" in entry_points
    assert "purelint_probe = purelint._probe._pytest" in entry_points  # `pytest --purelint-probe`


def test_the_light_dependency_closure_has_no_model_dependency():
    """Everything `pip install purelint` pulls (as installed here), not just the direct list."""
    seen, todo = set(), ["purelint"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name.lower())
    assert {"libcst", "pathspec"} <= seen and not seen & HEAVY, sorted(seen)


def test_the_toolkit_distribution_pins_this_linter(tmp_path):
    """packaging/purelm is the model toolkit: its package is the repository's purelm/ (a symlink),
    and it requires this very release of purelint, so one version number moves both."""
    project = REPO / "packaging" / "purelm"
    assert (project / "purelm").is_symlink() and (project / "purelm").resolve() == REPO / "purelm"
    copy = tmp_path / "purelm-project"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    meta = built_metadata(copy, tmp_path)
    requires = meta.get_all("Requires-Dist")
    core = [Requirement(r) for r in requires if "extra ==" not in r]
    assert {r.name for r in core} >= {"purelint", "jax", "jaxlib", "equinox", "optax"}
    (pin,) = [str(r.specifier) for r in core if r.name == "purelint"]
    version_file = REPO / "purelm" / "_runtime" / "_version.py"
    version = version_file.read_text().split("__version__ = ")[1].split()[0].strip("\"'")
    assert meta["Name"] == "purelm" and meta["Version"] == version == purelint.__version__
    assert pin == f"=={purelint.__version__}"
    assert {"torch", "plot"} <= set(meta.get_all("Provides-Extra"))


def checkout_copy(root):
    """This checkout as a fresh clone has it: the files git tracks or would add (tests included, so a
    build that picks them up by accident shows it), symlinks kept as symlinks."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    for name in filter(None, listed.stdout.split("\0")):
        source, target = REPO / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.is_file():  # a tracked file deleted in the working tree is not there
            shutil.copy2(source, target)
    return root


def build(project, hook, out):
    """One PEP 517 build (`build_wheel` or `build_sdist`) of `project`, offline: no build isolation."""
    code = "import sys; from setuptools import build_meta; print(getattr(build_meta, sys.argv[1])(sys.argv[2]))"
    done = subprocess.run(
        [sys.executable, "-c", code, hook, str(out)], cwd=project, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out / done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("project", [".", "packaging/purelm"])
def test_wheel_and_sdist_ship_the_license_and_no_tests(project, tmp_path):
    """Both distributions, as wheel and sdist: LICENSE (MIT) inside, their own PyPI page as the long
    description, and nothing from tests/ (setuptools adds tests/test*.py to an sdist unless told not to)."""
    checkout = checkout_copy(tmp_path / "checkout")
    meta = tomllib.loads((checkout / project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    license_text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License") and meta["license"] == "MIT"
    wheel = build(checkout / project, "build_wheel", tmp_path / "dist")
    sdist = build(checkout / project, "build_sdist", tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        wheel_files = {name: archive.read(name) for name in archive.namelist()}
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.isfile()]
        sdist_files = {m.name.split("/", 1)[1]: archive.extractfile(m).read() for m in members}
    info = f"{meta['name']}-{purelint.__version__}.dist-info"
    assert wheel_files[f"{info}/licenses/LICENSE"].decode() == license_text
    assert sdist_files["LICENSE"].decode() == license_text
    for files in (wheel_files, sdist_files):
        assert not [name for name in files if "tests" in name.split("/")], sorted(files)
        assert any(name.startswith(f"{meta['name']}/") and name.endswith("__init__.py") for name in files)
    metadata = email.parser.Parser().parsestr(wheel_files[f"{info}/METADATA"].decode())
    assert metadata["License-Expression"] == "MIT"
    readme = (checkout / project / meta["readme"]).read_text(encoding="utf-8")
    assert readme.startswith(f"# {meta['name']}\n") and metadata.get_payload().strip() == readme.strip()


def test_the_linter_runs_where_jax_cannot_be_imported(tmp_path):
    """The hook's environment has no jax, numpy or torch: importing any of them must not be needed."""
    (tmp_path / "impure.py").write_text(IMPURE)
    code = textwrap.dedent(f"""
        import sys
        class Missing:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in {sorted(HEAVY)!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}")
        sys.meta_path.insert(0, Missing())
        from purelint._cli import main
        sys.exit(main(["--no-cache", "impure.py"]))
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "impure.py:6:5: PUR001" in done.stdout, done.stdout + done.stderr
