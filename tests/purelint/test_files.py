"""File selection matches git's: `iter_files` against `git ls-files --cached --others --exclude-standard`."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from purelint import Config, iter_files, load_config
from purelint._config import glob_match
from purelint._files import DEFAULT_EXCLUDE, SOURCE_SUFFIXES

GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")
REPO = Path(__file__).resolve().parents[2]


def git(cwd, *args):
    done = subprocess.run(
        [GIT, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
        cwd=cwd, check=True, capture_output=True,
    )  # fmt: skip
    return done.stdout


def git_sources(top, prefix=""):
    """git's own file list under `top`, filtered to the suffixes purelint lints, nested
    repositories (listed by git as one entry) expanded with their own listing."""
    names = []
    for name in os.fsdecode(git(top, "ls-files", "--cached", "--others", "--exclude-standard", "-z")).split("\0"):
        path = top / name.rstrip("/")
        if name and path.is_dir() and not path.is_symlink() and (path / ".git").exists():
            names += git_sources(path, prefix + name.rstrip("/") + "/")
        elif name.endswith(SOURCE_SUFFIXES):
            names.append(prefix + name)
    return sorted(names)


def listed(top, **settings):
    return sorted(p.relative_to(top).as_posix() for p in iter_files([top], Config(root=top, **settings)))


def write(root, files):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.fixture
def isolated_git(tmp_path, monkeypatch):
    """Neither the user's global git configuration nor the system's leaks into the tree."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_CONFIG_GLOBAL", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


# Ignore rules git and pathspec agree on: character classes, negation, anchoring, a directory
# ignored whole (its files cannot be re-included), nested .gitignore files that add and re-include.
GITIGNORE = "[Bb]uild/\n*_gen.py\n!keep_gen.py\n/anchored.py\ndocs/*.py\nwhole/\n!whole/inside.py\n"
SUB_GITIGNORE = "local_*.py\n!local_keep.py\n!special_gen.py\n/only_here.py\n"
FILES = [
    "top.py", "stub.pyi", "book.ipynb", "notes.txt",
    "Build/m.py", "build2/b.py", "Cuild/c.py",  # [Bb]uild/ ignores Build/ only
    "a_gen.py", "keep_gen.py",
    "anchored.py", "sub/anchored.py",
    "docs/x.py", "docs/inner/y.py",
    "whole/inside.py", "whole/other.py",
    "sub/local_x.py", "sub/local_keep.py", "sub/deeper/local_y.py", "sub/special_gen.py",
    "sub/only_here.py", "sub/deeper/only_here.py",
    "info_excluded.py", "sub/info_excluded.py",  # .git/info/exclude
    "global_a.py", "sub/global_b.py",  # core.excludesFile
    "untracked.py", "sub/deeper/untracked.py",
]  # fmt: skip


def make_tree(root, *, git_only):
    """A repository covering each rule; with `git_only`, also what only git can know: a tracked
    file its patterns ignore, core.excludesFile, a submodule and an untracked nested repository."""
    git(root, "init", "-q")
    write(root, {name: "x = 1\n" for name in FILES})
    write(root, {".gitignore": GITIGNORE, "sub/.gitignore": SUB_GITIGNORE})
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("info_excluded.py\n")
    (root / "link").symlink_to("sub", target_is_directory=True)  # git lists the link, not sub's files again
    git(root, "add", "top.py", "sub/.gitignore", ".gitignore")
    if git_only:
        (root.parent / "global_ignore").write_text("global_*.py\n")
        git(root, "config", "core.excludesFile", str(root.parent / "global_ignore"))
        write(root, {"tracked_gen.py": "x = 1\n"})
        git(root, "add", "-f", "tracked_gen.py")
        for name in ("inner", "nested"):
            write(
                root, {f"{name}/in.py": "x = 1\n", f"{name}/skip_me.py": "x = 1\n", f"{name}/.gitignore": "skip_*.py\n"}
            )
            git(root / name, "init", "-q")
        git(root / "inner", "add", "-A")
        git(root / "inner", "commit", "-q", "-m", "inner")
        git(root, "add", "inner")  # a gitlink, as a submodule has
    git(root, "commit", "-q", "-m", "tree")


def test_the_file_list_is_gits(isolated_git, monkeypatch):
    root = isolated_git / "repo"
    root.mkdir()
    make_tree(root, git_only=True)
    expected = git_sources(root)
    assert listed(root) == expected
    # each rule did something (the comparison above is not between two empty lists)
    for ignored in ("Build/m.py", "a_gen.py", "anchored.py", "docs/x.py", "whole/inside.py", "sub/local_x.py",
                    "sub/only_here.py", "info_excluded.py", "global_a.py", "sub/global_b.py", "inner/skip_me.py"):  # fmt: skip
        assert ignored not in expected
    for kept in ("Cuild/c.py", "build2/b.py", "keep_gen.py", "sub/anchored.py", "docs/inner/y.py", "sub/local_keep.py",
                 "sub/special_gen.py", "sub/deeper/only_here.py", "untracked.py", "tracked_gen.py", "stub.pyi",
                 "book.ipynb", "inner/in.py", "nested/in.py"):  # fmt: skip
        assert kept in expected
    assert not any(name.startswith("link/") for name in expected)
    # git check-ignore agrees on the example
    assert git(root, "check-ignore", "Build/m.py").strip() == b"Build/m.py"
    # a directory git ignores, named on the command line, is linted like a file named there (Ruff does
    # the same); the .gitignore files inside it still apply
    write(
        root,
        {"Build/deeper/n.py": "x = 1\n", "Build/deeper/skip.py": "x = 1\n", "Build/deeper/.gitignore": "skip.py\n"},
    )
    named = [root / "Build" / "m.py", root / "Build" / "deeper" / "n.py"]
    assert list(iter_files([root / "Build"], Config(root=root))) == named
    assert list(iter_files([root / "Build" / "deeper"], Config(root=root))) == named[1:]
    assert list(iter_files([root / "Build" / "m.py"], Config(root=root))) == [root / "Build" / "m.py"]
    # a subdirectory gets the same answer as the whole tree, relative to itself
    assert listed(root / "sub") == [n.removeprefix("sub/") for n in expected if n.startswith("sub/")]
    # inside a git hook, git's variables name the hook's repository and index, not the walked tree
    monkeypatch.setenv("GIT_DIR", str(isolated_git / "home"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(isolated_git / "home" / "index"))
    assert listed(root) == expected


def test_without_git_the_ignore_files_give_the_same_list(isolated_git, monkeypatch):
    root = isolated_git / "repo"
    root.mkdir()
    make_tree(root, git_only=False)
    expected = git_sources(root)
    assert "Build/m.py" not in expected and "sub/local_keep.py" in expected
    monkeypatch.setenv("PATH", str(isolated_git / "home"))  # no git to run: pathspec reads the files
    assert listed(root) == expected
    assert listed(root / "sub") == [n.removeprefix("sub/") for n in expected if n.startswith("sub/")]
    assert list(iter_files([root / "Build"], Config(root=root))) == [root / "Build" / "m.py"]  # named: linted
    # respect_gitignore=False lists everything but the default excludes (and not the link's target again)
    everything = listed(root, respect_gitignore=False)
    assert set(everything) == {n for n in FILES if n.endswith(SOURCE_SUFFIXES)}


def test_exclude_and_default_exclude_still_apply_inside_git(isolated_git):
    root = isolated_git / "repo"
    root.mkdir()
    make_tree(root, git_only=False)
    write(root, {"build/tracked.py": "x = 1\n", ".venv/lib.py": "x = 1\n"})
    git(root, "add", "-f", "build/tracked.py", ".venv/lib.py")
    assert "build/tracked.py" in git_sources(root)
    names = listed(root, exclude=("sub/deeper/**", "top.py"))
    assert names == [
        n for n in git_sources(root) if not n.startswith(("sub/deeper/", "build/", ".venv/")) and n != "top.py"
    ]


def test_this_repository_lists_what_git_lists():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    config = load_config(REPO / "pyproject.toml")

    def wanted(name):
        dirs = name.split("/")[:-1]
        return not any(glob_match(g, d) for g in DEFAULT_EXCLUDE for d in dirs) and not config.is_excluded(REPO / name)

    expected = [name for name in git_sources(REPO) if wanted(name)]
    assert "purelint/_files.py" in expected and "purelm/__init__.py" in expected
    assert listed(REPO, exclude=config.exclude) == expected
