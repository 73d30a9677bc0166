"""Which files a run lints: Python files under the given paths, minus excludes and .gitignore."""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Iterable, Iterator

from purelint._config import Config, _glob_regex

__all__ = ["DEFAULT_EXCLUDE", "SOURCE_SUFFIXES", "iter_files"]

# Never descended into when walking directories (files named explicitly are still linted).
DEFAULT_EXCLUDE = (
    ".git", ".hg", ".svn", ".venv", "venv", "__pycache__", ".tox", ".nox", ".eggs", "*.egg-info",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".purelint_cache", "node_modules", "build", "dist",
)  # fmt: skip
SOURCE_SUFFIXES = (".py", ".pyi", ".ipynb")


class _GitIgnore:
    """The patterns of one .gitignore file; `match` says ignored (True), re-included (False) or None."""

    def __init__(self, base: Path, text: str) -> None:
        self.base = base
        self.patterns = []
        for raw in text.splitlines():
            line = raw.rstrip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            line = line[1:] if negate else line.removeprefix("\\")
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            anchored = "/" in line
            self.patterns.append((_glob_regex(line.lstrip("/")), negate, dir_only, anchored))

    def match(self, path: Path, is_dir: bool) -> bool | None:
        try:
            relative = path.relative_to(self.base).as_posix()
        except ValueError:
            return None
        verdict = None
        for regex, negate, dir_only, anchored in self.patterns:
            if dir_only and not is_dir:
                continue
            if regex.fullmatch(relative if anchored else relative.rsplit("/", 1)[-1]):
                verdict = not negate
        return verdict


def _load_gitignore(directory: Path) -> list[_GitIgnore]:
    candidate = directory / ".gitignore"
    try:
        return [_GitIgnore(directory, candidate.read_text(encoding="utf-8", errors="replace"))]
    except OSError:
        return []


def _ancestor_gitignores(directory: Path) -> list[_GitIgnore]:
    """.gitignore files from the repository root (the nearest directory with .git) down to `directory`."""
    chain = []
    for parent in (directory, *directory.parents):
        chain.append(parent)
        if (parent / ".git").exists():
            break
    else:
        chain = [directory]
    return [g for parent in reversed(chain) for g in _load_gitignore(parent)]


def _ignored(ignores: list[_GitIgnore], path: Path, is_dir: bool) -> bool:
    verdict = False
    for ignore in ignores:
        found = ignore.match(path, is_dir)
        if found is not None:
            verdict = found
    return verdict


def iter_files(paths: Iterable[str | Path], config: Config) -> Iterator[Path]:
    """Files to lint, in a stable order. Directories are walked for .py/.pyi files, skipping
    DEFAULT_EXCLUDE, `exclude` globs and (unless respect_gitignore is off) .gitignore'd paths.
    Files named explicitly are yielded as they are, unless force_exclude is set and they match."""
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            if not (config.force_exclude and config.is_excluded(path)) and path not in seen:
                seen.add(path)
                yield path
            continue
        ignores = _ancestor_gitignores(path.absolute()) if config.respect_gitignore else []
        yield from _walk(path, config, ignores, seen)


def _walk(top: Path, config: Config, ignores: list[_GitIgnore], seen: set[Path]) -> Iterator[Path]:
    defaults = [_glob_regex(g) for g in DEFAULT_EXCLUDE]
    stack = [(top, ignores)]
    while stack:
        directory, inherited = stack.pop()
        local = inherited + (_load_gitignore(directory.absolute()) if config.respect_gitignore and directory != top else [])
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            path = directory / entry.name
            is_dir = entry.is_dir()
            if is_dir and any(d.fullmatch(entry.name) for d in defaults):
                continue
            if config.is_excluded(path) or (local and _ignored(local, path.absolute(), is_dir)):
                continue
            if is_dir:
                subdirs.append((path, local))
            elif entry.name.endswith(SOURCE_SUFFIXES) and path not in seen:
                seen.add(path)
                yield path
        stack.extend(reversed(subdirs))
