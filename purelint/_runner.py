"""Linting many files: notebooks next to Python files, the result cache, parallel workers, fixing.

`lint_many` is what the command line runs: cached files cost a read and a hash, the rest go to a
process pool, and findings come back in a deterministic order. `fix_file` applies fixes (re-linting
between rounds, as Ruff does, until nothing more applies) and writes the file back atomically in its
own encoding and line endings; `--diff` uses the same code and writes nothing.

Notebook findings carry their cell number and a line counted inside that cell.

Example:
    >>> from purelint._config import Config
    >>> source = "import jax\\n@jax.jit\\ndef f(x):\\n    y = x.detach()\\n    return y\\n"
    >>> print(fix_text(source, "m.py", Config(), unsafe=False).text)
    import jax
    @jax.jit
    def f(x):
        y = jax.lax.stop_gradient(x)
        return y
    <BLANKLINE>
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections import Counter
from collections.abc import Callable, Sequence

from purelint._analysis._cst import parses
from purelint._api import NOTEBOOK_SUFFIX, failure, in_cell, lint_data, lint_joined, lint_source
from purelint._cache import Cache, fingerprint
from purelint._config import Config
from purelint._diagnostic import Diagnostic, Fix
from purelint._engine import RuleCrash
from purelint._fix import apply_fixes, unified_diff
from purelint._notebook import parse_notebook, read_notebook, write_notebook
from purelint._parallel import Failure, TaskError, run_files
from purelint._source import SourceError, read_source, source_of, write_source

MAX_ROUNDS = 10  # fix rounds per file; each round re-lints the fixed text


def _task(config: Config, path: str, data: bytes | None) -> list[dict]:
    try:
        return [d.to_dict() for d in lint_data(path, data, config)]
    except RuleCrash as crash:
        raise TaskError(str(crash)) from None
    except RecursionError:
        return [failure(path, "too deeply nested to analyse").to_dict()]


@dataclasses.dataclass
class Run:
    diagnostics: list[Diagnostic]
    failures: list[str]  # internal errors (a rule crashed on a file), one line each


def cache_for(config: Config, root: str | os.PathLike | None = None) -> Cache:
    """The cache of a configuration: `.purelint_cache/` next to its pyproject.toml (or the cwd)."""
    return Cache(os.fspath(root if root is not None else config.root), fingerprint(config.fingerprint()))


def lint_many(
    paths: Sequence[str | os.PathLike], config: Config, *, jobs: int | None = None, cache: Cache | None = None
) -> Run:
    """Lint files (already discovered) in parallel, through the cache when one is given."""
    names = [os.fspath(p) for p in paths]
    results = run_files(names, functools.partial(_task, config), jobs=jobs, cache=cache)
    diagnostics, failures = [], []
    for result in results:
        if isinstance(result, Failure):
            failures.append(result.message)
        else:
            diagnostics += [Diagnostic.from_dict(d) for d in result]
    diagnostics.sort(key=Diagnostic.sort_key)
    return Run(diagnostics, failures)


# --- fixing ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Fixed:
    text: str  # the fixed text (the notebook JSON for notebooks)
    fixed: int  # findings fixed
    remaining: list[Diagnostic]  # findings left, as a report shows them


def _fix_rounds(
    source: str,
    lint: Callable[[str], list[Diagnostic]],
    apply: Callable[[str, list[Fix]], tuple[str, list[Fix]]],
    python: Callable[[str], str],
) -> tuple[str, int, list[Diagnostic]]:
    """Lint, apply what fits, repeat; a round whose result does not parse is dropped."""
    fixed = 0
    found = lint(source)
    must_parse = parses(python(source))
    for _ in range(MAX_ROUNDS):
        new, applied = apply(source, [d.fix for d in found if d.fix is not None])
        if not applied or new == source or (must_parse and not parses(python(new))):
            break
        source, fixed = new, fixed + len(applied)
        found = lint(source)
    return source, fixed, found


def fix_text(source: str, path: str, config: Config, *, unsafe: bool) -> Fixed:
    """Apply the fixes purelint offers for Python source (safe ones; unsafe too when asked)."""
    text, fixed, found = _fix_rounds(
        source,
        lambda s: lint_source(s, path, config=config),
        lambda s, fixes: apply_fixes(s, fixes, unsafe=unsafe),
        lambda s: s,
    )
    return Fixed(text, fixed, found)


def fix_notebook_text(text: str, path: str, config: Config, *, unsafe: bool) -> Fixed:
    """The same for a notebook's JSON text: fixes land in the cells, the rest of the file is kept."""
    if not parse_notebook(text, path).python:
        return Fixed(text, 0, [])
    new, fixed, found = _fix_rounds(
        text,
        lambda t: lint_joined(parse_notebook(t, path), path, config),
        lambda t, fixes: parse_notebook(t, path).apply_fixes(fixes, unsafe=unsafe),
        lambda t: parse_notebook(t, path).source,
    )
    notebook = parse_notebook(new, path)
    return Fixed(new, fixed, [in_cell(d, notebook) for d in found])


@dataclasses.dataclass
class FileFix:
    path: str
    fixed: int
    remaining: list[Diagnostic]
    diff: str  # unified diff of the change ("" when nothing changed)


def fix_file(path: str, config: Config, *, unsafe: bool, write: bool) -> FileFix:
    """Fix one file; write it back atomically when `write`, else only report the diff."""
    if path.endswith(NOTEBOOK_SUFFIX):
        notebook = read_notebook(path)
        result = fix_notebook_text(notebook.text, path, config, unsafe=unsafe)
        if write and result.text != notebook.text:
            write_notebook(path, notebook, result.text)
        return FileFix(path, result.fixed, result.remaining, unified_diff(notebook.text, result.text, path))
    source = read_source(path)
    result = fix_text(source.text, path, config, unsafe=unsafe)
    if write and result.text != source.text:
        write_source(path, result.text, source.encoding)
    return FileFix(path, result.fixed, result.remaining, unified_diff(source.text, result.text, path))


def fixable(diagnostic: Diagnostic, unsafe: bool) -> bool:
    return diagnostic.fix is not None and (unsafe or diagnostic.fix.applicability == "safe")


# --- what the command line runs -------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    diagnostics: list[Diagnostic]  # findings left (after fixing, with --fix)
    failures: list[str]  # internal errors, one line each
    fixed: int = 0  # findings fixed (with --fix) or fixable (with --diff)
    diffs: list[str] = dataclasses.field(default_factory=list)
    fixed_codes: dict[str, Counter] = dataclasses.field(default_factory=dict)  # path -> code -> findings fixed


def run_paths(
    files: Sequence[str | os.PathLike],
    config: Config,
    *,
    jobs: int | None = None,
    cache: Cache | None = None,
    fix: bool = False,
    unsafe: bool = False,
    diff: bool = False,
) -> Outcome:
    """Lint files; with `fix`, fix them in place; with `diff`, compute the fixes' diffs only.

    Files are fixed only where the (cached, parallel) lint found something fixable; a file whose
    fixing fails (it changed underneath, it cannot be written) keeps its findings and the run goes on.
    """
    run = lint_many(files, config, jobs=jobs, cache=cache)
    outcome = Outcome(run.diagnostics, run.failures)
    if not (fix or diff):
        return outcome
    targets = sorted({d.path for d in run.diagnostics if fixable(d, unsafe)})
    remaining: dict[str, list[Diagnostic]] = {path: [] for path in targets}
    kept = [d for d in run.diagnostics if d.path not in remaining]
    for path in targets:
        try:
            result = fix_file(path, config, unsafe=unsafe, write=fix and not diff)
        except (OSError, SourceError) as error:
            outcome.failures.append(f"cannot fix {path}: {error}")
            remaining[path] = [d for d in run.diagnostics if d.path == path]
            continue
        except RuleCrash as crash:
            outcome.failures.append(str(crash))
            remaining[path] = [d for d in run.diagnostics if d.path == path]
            continue
        outcome.fixed += result.fixed
        before = Counter(d.code for d in run.diagnostics if d.path == path)
        if gone := before - Counter(d.code for d in result.remaining):
            outcome.fixed_codes[path] = gone
        if result.diff:
            outcome.diffs.append(result.diff)
        # With --diff nothing changed on disk, so every finding still stands.
        remaining[path] = result.remaining if fix and not diff else [d for d in run.diagnostics if d.path == path]
    outcome.diagnostics = sorted(kept + [d for found in remaining.values() for d in found], key=Diagnostic.sort_key)
    return outcome


def fix_stdin(data: bytes, path: str, config: Config, *, unsafe: bool) -> tuple[str, Fixed]:
    """Fix source read from stdin: (the fixed text, what was done). Notebooks by their name."""
    if path.endswith(NOTEBOOK_SUFFIX):
        text = data.decode("utf-8-sig")
        return text, fix_notebook_text(text, path, config, unsafe=unsafe)
    source = source_of(data, path).text
    return source, fix_text(source, path, config, unsafe=unsafe)
