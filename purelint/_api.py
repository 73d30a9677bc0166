"""The library entry points: lint a string, bytes, one file, or paths."""

from __future__ import annotations

import io
import tokenize
from functools import lru_cache
from pathlib import Path
from collections.abc import Callable, Iterable

from purelint._config import Config
from purelint._diagnostic import Diagnostic
from purelint._engine import check_source
from purelint._files import iter_files
from purelint._rule import Rule, all_rules

__all__ = ["decode_source", "lint_bytes", "lint_file", "lint_paths", "lint_source", "make_rules"]


@lru_cache(maxsize=64)
def _rule_classes(codes: frozenset[str]) -> tuple[type[Rule], ...]:
    return tuple(cls for code, cls in all_rules().items() if code in codes)


def make_rules(config: Config, path: str | None = None) -> list[Rule]:
    """Fresh instances of the rules enabled for `path` (rules may keep per-file state)."""
    return [cls() for cls in _rule_classes(config.enabled_codes(path))]


def _failure(path: str, message: str) -> Diagnostic:
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


def decode_source(data: bytes) -> str:
    """Decode Python source bytes the way Python does (BOM, PEP 263 coding cookie, else UTF-8).
    Raises UnicodeDecodeError, LookupError or SyntaxError when that is impossible."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding)


def lint_bytes(data: bytes, path: str, *, config: Config | None = None) -> list[Diagnostic]:
    """Lint undecoded source; an undecodable file comes back as one PUR999 finding."""
    try:
        source = decode_source(data)
    except (UnicodeDecodeError, LookupError, SyntaxError) as error:
        reason = error.reason if isinstance(error, UnicodeDecodeError) else str(error)
        return [_failure(path, f"cannot decode file: {reason}")]
    return lint_source(source, path, config=config)


def lint_file(path: str | Path, *, config: Config | None = None) -> list[Diagnostic]:
    """Lint one file; one a parallel runner or a cache can call. A file that cannot be read comes
    back as one PUR999 finding, so a run goes on past it."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return [_failure(str(path), f"cannot read file: {error.strerror or error}")]
    if str(path).endswith(".ipynb"):
        from purelint._runner import lint_data  # notebooks: the code cells, findings by cell

        return lint_data(str(path), data, config or Config())
    return lint_bytes(data, str(path), config=config)


def lint_paths(paths: Iterable[str | Path], *, config: Config | None = None) -> list[Diagnostic]:
    """Lint files and directories (walked for .py/.pyi/.ipynb, honouring exclude and .gitignore)."""
    config = config or Config()
    return [d for path in iter_files(paths, config) for d in lint_file(path, config=config)]
