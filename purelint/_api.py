"""The library entry points: lint a string, bytes, one file, or paths."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

from purelint._config import Config
from purelint._diagnostic import Diagnostic, Edit, Fix
from purelint._engine import check_source
from purelint._files import iter_files
from purelint._notebook import Notebook, parse_notebook
from purelint._registry import all_rules
from purelint._rule import Rule
from purelint._source import SourceError, decode_source

__all__ = [
    "NOTEBOOK_SUFFIX", "failure", "in_cell", "lint_bytes", "lint_data", "lint_file", "lint_joined", "lint_notebook",
    "lint_paths", "lint_source", "make_rules",
]  # fmt: skip

NOTEBOOK_SUFFIX = ".ipynb"


@lru_cache(maxsize=64)
def _rule_classes(codes: frozenset[str]) -> tuple[type[Rule], ...]:
    return tuple(cls for code, cls in all_rules().items() if code in codes)


def make_rules(config: Config, path: str | None = None) -> list[Rule]:
    """Fresh instances of the rules enabled for `path` (rules may keep per-file state)."""
    return [cls() for cls in _rule_classes(config.enabled_codes(path))]


def failure(path: str, message: str) -> Diagnostic:
    """PUR999 at the top of a file that cannot be read, decoded or analysed."""
    return Diagnostic("PUR999", message, path, 1, 1, 1, 1)


def lint_source(
    source: str, path: str = "<string>", *, config: Config | None = None, line_names: Callable[[int], str] | None = None
) -> list[Diagnostic]:
    """Lint Python source text; returns findings sorted by position. `line_names` names a line in
    messages ("line 3"; notebooks name the line within its cell).

    >>> [d.code for d in lint_source("import jax\\n@jax.jit\\ndef f(x):\\n    print(x)\\n")]
    ['PUR001']
    """
    config = config or Config()
    rules = make_rules(config, path)
    return check_source(source, path, config, rules, line_names) if rules else []


def lint_bytes(data: bytes, path: str, *, config: Config | None = None) -> list[Diagnostic]:
    """Lint undecoded source; an undecodable file comes back as one PUR999 finding."""
    try:
        source = decode_source(data)
    except (UnicodeDecodeError, LookupError, SyntaxError) as error:
        reason = error.reason if isinstance(error, UnicodeDecodeError) else str(error)
        return [failure(path, f"cannot decode file: {reason}")]
    return lint_source(source, path, config=config)


def lint_file(path: str | Path, *, config: Config | None = None) -> list[Diagnostic]:
    """Lint one file; one a parallel runner or a cache can call. A file that cannot be read comes
    back as one PUR999 finding, so a run goes on past it."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return [failure(str(path), f"cannot read file: {error.strerror or error}")]
    if str(path).endswith(NOTEBOOK_SUFFIX):
        return lint_data(str(path), data, config or Config())
    return lint_bytes(data, str(path), config=config)


# --- notebooks ------------------------------------------------------------------------------------


def in_cell(diagnostic: Diagnostic, notebook: Notebook) -> Diagnostic:
    """A finding on the joined notebook source, re-addressed to (cell, line within the cell)."""
    cell, line = notebook.locate(diagnostic.line)
    end_cell, end_line = notebook.locate(diagnostic.end_line)
    if end_cell != cell:  # never span cells in a report: stop at the end of the first one
        end_line, end_column = line, diagnostic.column
    else:
        end_column = diagnostic.end_column
    fix = diagnostic.fix
    if fix is not None:
        fix = Fix(
            fix.applicability,
            fix.message,
            tuple(
                Edit(notebook.locate(e.line)[1], e.column, notebook.locate(e.end_line)[1], e.end_column, e.content)
                for e in fix.edits
            ),
        )
    return dataclasses.replace(diagnostic, line=line, end_line=end_line, end_column=end_column, cell=cell, fix=fix)


def lint_joined(notebook: Notebook, path: str, config: Config) -> list[Diagnostic]:
    """Findings at lines of the joined notebook source (what fixes are computed on); their messages
    still name lines as "line N of cell C", so they read the same once re-addressed by `in_cell`."""

    def line_names(line: int) -> str:
        cell, within = notebook.locate(line)
        return f"line {within} of cell {cell}"

    return lint_source(notebook.source, path, config=config, line_names=line_names)


def lint_notebook(notebook: Notebook, path: str, config: Config) -> list[Diagnostic]:
    """Findings in a notebook's code cells, addressed by cell."""
    if not notebook.python or not notebook.cells:
        return []
    return [in_cell(d, notebook) for d in lint_joined(notebook, path, config)]


def lint_data(path: str, data: bytes | None, config: Config) -> list[Diagnostic]:
    """Lint one file from its bytes (None: read it here, reporting why it cannot be read)."""
    if data is None:
        return lint_file(path, config=config)
    if not path.endswith(NOTEBOOK_SUFFIX):
        return lint_bytes(data, path, config=config)
    try:
        return lint_notebook(parse_notebook(data.decode("utf-8-sig"), path), path, config)
    except UnicodeDecodeError as error:
        return [failure(path, f"cannot decode notebook as UTF-8: {error.reason}")]
    except SourceError as error:
        return [failure(path, str(error).removeprefix(f"{path}: "))]


def lint_paths(paths: Iterable[str | Path], *, config: Config | None = None) -> list[Diagnostic]:
    """Lint files and directories (walked for .py/.pyi/.ipynb, honouring exclude and .gitignore)."""
    config = config or Config()
    return [d for path in iter_files(paths, config) for d in lint_file(path, config=config)]
