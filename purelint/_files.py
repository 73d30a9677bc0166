"""Which files a run lints: Python files under the given paths, minus excludes and what git ignores.

Inside a git work tree, git itself says which files count (`git ls-files --cached --others
--exclude-standard`, one call per repository): tracked files, plus untracked ones that no
`.gitignore`, `.git/info/exclude` or `core.excludesFile` pattern ignores, with git's own character
classes, negations and precedence. Without git (not installed, not a repository, or a repository
git refuses to read), the `.gitignore` files from the repository root down are matched with
pathspec's GitIgnoreSpec, plus `.git/info/exclude`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from purelint._config import Config, glob_regex

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

__all__ = ["DEFAULT_EXCLUDE", "SOURCE_SUFFIXES", "iter_files"]

# Never descended into when walking directories (files named explicitly are still linted).
DEFAULT_EXCLUDE = (
    ".git", ".hg", ".svn", ".venv", "venv", "__pycache__", ".tox", ".nox", ".eggs", "*.egg-info",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".purelint_cache", "node_modules", "build", "dist",
)  # fmt: skip
SOURCE_SUFFIXES = (".py", ".pyi", ".ipynb")

# Variables that point git at another repository or index (git sets them for its hooks); the
# listing must describe the directory being walked.
_GIT_LOCATION_VARIABLES = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_IMPLICIT_WORK_TREE", "GIT_NAMESPACE",
)  # fmt: skip


class _Selection:
    """Which entries count under a directory. `rel` paths are POSIX and relative to the selection's
    own directory (where git ran, or the repository root for ignore files)."""

    def file(self, rel: str) -> bool:
        raise NotImplementedError

    def directory(self, rel: str, path: Path) -> tuple[_Selection, str] | None:
        """The selection below directory `rel` (at `path`) and the prefix of paths under it, or
        None to skip the directory."""
        raise NotImplementedError


class _GitListing(_Selection):
    """git's answer for one work tree (or a part of one): the source files it lists, the
    directories holding them, and nested repositories (submodules, untracked clones), which git
    lists as one entry and which get a listing of their own."""

    def __init__(self, names: Iterable[str]) -> None:
        self.files: set[str] = set()
        self.dirs: set[str] = set()
        self.nested: set[str] = set()
        for name in names:
            if name.endswith("/"):  # an untracked repository inside this one
                self.nested.add(name[:-1])
            elif name.endswith(SOURCE_SUFFIXES):
                self.files.add(name)
                parent = name.rpartition("/")[0]
                while parent and parent not in self.dirs:
                    self.dirs.add(parent)
                    parent = parent.rpartition("/")[0]
            else:  # maybe a submodule (a gitlink): it matters only if a directory has this path
                self.nested.add(name)

    def file(self, rel: str) -> bool:
        return rel in self.files

    def directory(self, rel: str, path: Path) -> tuple[_Selection, str] | None:
        if rel in self.dirs:
            return self, rel + "/"
        if rel in self.nested:
            return _selection(path)
        return None


class _IgnoreFiles(_Selection):
    """Without git: the ignore files that apply, lowest precedence first, each with the prefix
    (relative to the repository root) of the directory its patterns are relative to."""

    def __init__(self, specs: list[tuple[str, GitIgnoreSpec]]) -> None:
        self.specs = specs

    def ignored(self, rel: str, is_dir: bool) -> bool:
        for base, spec in reversed(self.specs):  # the deepest file with a matching pattern decides
            if rel.startswith(base):
                local = rel[len(base) :]
                verdict = spec.check_file(local + "/" if is_dir else local).include
                if verdict is not None:
                    return verdict
        return False

    def file(self, rel: str) -> bool:
        return not self.ignored(rel, is_dir=False)

    def directory(self, rel: str, path: Path) -> tuple[_Selection, str] | None:
        if self.ignored(rel, is_dir=True):
            return None  # git never looks inside an ignored directory, so nothing can re-include
        return _IgnoreFiles(self.specs + _gitignore(path, rel + "/")), rel + "/"


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _spec_list(base: str, lines: list[str]) -> list[tuple[str, GitIgnoreSpec]]:
    if not lines:
        return []
    import pathspec  # only without git: the usual run never imports it

    return [(base, pathspec.GitIgnoreSpec.from_lines(lines))]


def _gitignore(directory: Path, base: str) -> list[tuple[str, GitIgnoreSpec]]:
    return _spec_list(base, _read_lines(directory / ".gitignore"))


def _repository_root(directory: Path) -> Path | None:
    """The nearest directory at or above `directory` that has a `.git` (directory or file)."""
    for parent in (directory, *directory.parents):
        if (parent / ".git").exists():
            return parent
    return None


def _git(directory: Path, *arguments: str) -> subprocess.CompletedProcess[bytes] | None:
    """Run git in `directory` about that directory's own repository, or None without git."""
    environment = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARIABLES}
    try:
        return subprocess.run(
            ["git", *arguments],
            cwd=directory,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except OSError:
        return None


def _git_names(directory: Path) -> list[str] | None:
    """`git ls-files` for `directory` (paths relative to it), or None when git cannot answer
    (not installed, not a work tree, a repository git refuses to read)."""
    done = _git(directory, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    if done is None or done.returncode != 0:
        return None
    return [os.fsdecode(name) for name in done.stdout.split(b"\0") if name]


def _git_ignores(directory: Path) -> bool:
    """Whether git ignores `directory` itself (or a directory above it in the same work tree)."""
    done = _git(directory, "check-ignore", "-q", ".")
    return done is not None and done.returncode == 0


def _named_ignored(top: Path) -> tuple[_Selection, str]:
    """A directory named on the command line that git ignores is linted, as a file named explicitly
    is (and as Ruff does); the .gitignore files inside it still apply."""
    return _IgnoreFiles(_gitignore(top, "")), ""


def _selection(top: Path) -> tuple[_Selection, str]:
    """What counts under directory `top`, and the prefix of `top`'s entries in its terms: git's
    listing inside a work tree, else the ignore files from the repository root down."""
    top = top.absolute()
    root = _repository_root(top)
    if root is None:
        return _IgnoreFiles(_gitignore(top, "")), ""
    names = _git_names(top)
    if names is not None:
        if top != root and _git_ignores(top):
            return _named_ignored(top)
        return _GitListing(names), ""
    git_dir = root / ".git"
    specs = _spec_list("", _read_lines(git_dir / "info" / "exclude")) if git_dir.is_dir() else []
    selection: _Selection = _IgnoreFiles(specs + _gitignore(root, ""))
    prefix = ""
    for part in top.relative_to(root).parts:  # each directory between the root and `top`, as git would
        found = selection.directory(prefix + part, root / prefix / part)
        if found is None:
            return _named_ignored(top)
        selection, prefix = found
    return selection, prefix


def iter_files(paths: Iterable[str | Path], config: Config) -> Iterator[Path]:
    """Files to lint, in a stable order. Directories are walked for .py/.pyi/.ipynb files, skipping
    DEFAULT_EXCLUDE, `exclude` globs, symlinked directories and (unless respect_gitignore is off)
    what git ignores. Files named explicitly are yielded as they are, unless force_exclude is set
    and they match."""
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            if not (config.force_exclude and config.is_excluded(path)) and path not in seen:
                seen.add(path)
                yield path
            continue
        selection, prefix = _selection(path) if config.respect_gitignore else (None, "")
        yield from _walk(path, config, selection, prefix, seen)


def _walk(top: Path, config: Config, selection: _Selection | None, prefix: str, seen: set[Path]) -> Iterator[Path]:
    defaults = [glob_regex(g) for g in DEFAULT_EXCLUDE]
    stack = [(top, selection, prefix)]  # a directory, what counts in it, its entries' path prefix
    while stack:
        directory, chosen, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            path = directory / entry.name
            if entry.is_dir():
                # A symlinked directory is not followed: git lists the link, not what it points to
                # (packaging/purelm/purelm would be linted twice), and links can make cycles.
                if entry.is_symlink() or any(d.fullmatch(entry.name) for d in defaults) or config.is_excluded(path):
                    continue
                below = (None, "") if chosen is None else chosen.directory(prefix + entry.name, path)
                if below is not None:
                    subdirs.append((path, *below))
            elif (
                entry.name.endswith(SOURCE_SUFFIXES)
                and path not in seen
                and (chosen is None or chosen.file(prefix + entry.name))
                and not config.is_excluded(path)
            ):
                seen.add(path)
                yield path
        stack.extend(reversed(subdirs))
