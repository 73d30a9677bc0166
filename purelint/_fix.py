"""The edit model behind `--fix`/`--diff`, plus source reading and atomic writing.

An `Edit` (see `purelint._diagnostic`) replaces the text between two positions; a `Fix` groups the
edits that must land together with an applicability (`"safe"` or `"unsafe"`) and a message. Lines and
columns are 1-based, columns count characters, ends are exclusive. `fix_to_json` gives Ruff's JSON form.

Reading keeps what the file was: the encoding (PEP 263 cookie, UTF-8 with or without BOM) and its line
endings, so that a fixed file differs from the original only inside the edited expressions.

Example:
    >>> fix = Fix("safe", "use .at[].set", (Edit(2, 5, 2, 13, "x = x.at[i].set(v)"),))
    >>> apply_fixes("def f(x, i, v):\\n    x[i] = v\\n", [fix])[0]
    'def f(x, i, v):\\n    x = x.at[i].set(v)\\n'
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import os
import re
import tempfile
import tokenize
from collections.abc import Iterable, Sequence

import libcst as cst

from purelint._diagnostic import Edit, Fix

Position = tuple[int, int]  # (line, column), both 1-based

_NEWLINE = re.compile(r"\r\n|\r|\n")
_BARE_LF = re.compile(r"(?<!\r)\n")


def fix_to_json(fix: Fix) -> dict:
    """Ruff's JSON form of a fix: `location`/`end_location` with 1-based `row` and `column`."""
    return {
        "applicability": fix.applicability,
        "message": fix.message,
        "edits": [
            {
                "content": e.content,
                "location": {"row": e.line, "column": e.column},
                "end_location": {"row": e.end_line, "column": e.end_column},
            }
            for e in fix.edits
        ],
    }


def _start(edit: Edit) -> Position:
    return edit.line, edit.column


def _end(edit: Edit) -> Position:
    return edit.end_line, edit.end_column


# --- positions --------------------------------------------------------------------------------------


def line_starts(source: str) -> list[int]:
    """Offsets where each line starts (index 0 is line 1); `\\r\\n`, `\\r` and `\\n` end lines."""
    return [0] + [m.end() for m in _NEWLINE.finditer(source)]


def to_offset(starts: Sequence[int], source: str, pos: Position) -> int:
    line, column = pos
    if not 1 <= line <= len(starts):
        raise ValueError(f"line {line} outside the source (1..{len(starts)})")
    offset = starts[line - 1] + column - 1
    limit = starts[line] if line < len(starts) else len(source)
    if column < 1 or offset > limit:
        raise ValueError(f"column {column} outside line {line}")
    return offset


def to_position(starts: Sequence[int], offset: int) -> Position:
    lo, hi = 0, len(starts) - 1
    while lo < hi:  # the last line start that is <= offset
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo + 1, offset - starts[lo] + 1


def newline_of(source: str) -> str:
    """The file's line ending: the first one found, `\\n` for a one-line file."""
    match = _NEWLINE.search(source)
    return match.group() if match else "\n"


# --- applying ---------------------------------------------------------------------------------------


def apply_edits(source: str, edits: Iterable[Edit]) -> str:
    """Apply non-overlapping edits; `\\n` in new text follows the file's own line ending."""
    starts = line_starts(source)
    newline = newline_of(source)
    spans = sorted(
        (to_offset(starts, source, _start(e)), to_offset(starts, source, _end(e)), e.content) for e in edits
    )
    out, cursor = [], 0
    for begin, end, content in spans:
        if begin < cursor or end < begin:
            raise ValueError("overlapping or reversed edits")
        out.append(source[cursor:begin])
        out.append(_BARE_LF.sub(newline, content) if newline != "\n" else content)
        cursor = end
    out.append(source[cursor:])
    return "".join(out)


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    # Two insertions at one point conflict (their order would be arbitrary); touching ranges do not.
    if a[0] == a[1] == b[0] == b[1]:
        return True
    return a[0] < b[1] and b[0] < a[1]


def select_fixes(
    source: str, fixes: Iterable[Fix], *, unsafe: bool = False
) -> tuple[list[Edit], list[Fix]]:
    """The fixes that can land together, in source order, and the edits they make.

    A fix is skipped when it is unsafe (unless `unsafe`), points outside the source, or collides with
    one chosen before it. An edit identical to one already chosen (the same import added by two fixes)
    counts as done. Callers re-lint and repeat to pick up what was skipped.
    """
    starts = line_starts(source)
    taken: dict[tuple[int, int], str] = {}
    chosen: list[Fix] = []
    edits: list[Edit] = []
    for fix in sorted(fixes, key=lambda f: min(map(_start, f.edits), default=(0, 0))):
        if not fix.edits or (fix.applicability == "unsafe" and not unsafe):
            continue
        try:
            spans = [(to_offset(starts, source, _start(e)), to_offset(starts, source, _end(e))) for e in fix.edits]
        except ValueError:
            continue
        if any(b < a for a, b in spans) or any(_overlaps(x, y) for i, x in enumerate(spans) for y in spans[i + 1:]):
            continue
        new = [(span, e) for span, e in zip(spans, fix.edits) if taken.get(span) != e.content]
        if any(_overlaps(span, other) for span, _ in new for other in taken):
            continue
        for span, edit in new:
            taken[span] = edit.content
            edits.append(edit)
        chosen.append(fix)
    return edits, chosen


def apply_fixes(source: str, fixes: Iterable[Fix], *, unsafe: bool = False) -> tuple[str, list[Fix]]:
    """Apply what `select_fixes` chooses; returns the new source and the fixes applied."""
    edits, chosen = select_fixes(source, fixes, unsafe=unsafe)
    return apply_edits(source, edits), chosen


def unified_diff(old: str, new: str, path: str) -> str:
    """A `diff -u` style patch from `old` to `new` (empty when they are equal)."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=path, tofile=path
    )
    return "".join(line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n" for line in lines)


# --- reading and writing files ----------------------------------------------------------------------


class SourceError(Exception):
    """A file that cannot be read or decoded; the message names the problem in one line."""


@dataclasses.dataclass(frozen=True)
class Source:
    """Decoded file text, exactly as on disk (line endings untouched), and how to encode it back."""

    text: str
    encoding: str  # a Python codec name; "utf-8-sig" means the file starts with a BOM


def decode_source(data: bytes, path: str = "<bytes>") -> Source:
    """Decode Python source bytes the way the interpreter does (BOM, PEP 263 cookie, else UTF-8)."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as err:
        raise SourceError(f"{path}: cannot decode: {err}") from None
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as err:
        raise SourceError(f"{path}: cannot decode as {encoding}: {err.__class__.__name__}: {err.reason if isinstance(err, UnicodeDecodeError) else err}") from None
    return Source(text, encoding)


def read_bytes(path: str | os.PathLike) -> bytes:
    """A file's bytes; a file that cannot be read raises SourceError naming the reason."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as err:
        raise SourceError(f"{os.fspath(path)}: cannot read: {err.strerror or err}") from None


def read_source(path: str | os.PathLike) -> Source:
    return decode_source(read_bytes(path), os.fspath(path))


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` with `data` through a temporary file in the same directory (never half-written)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".purelint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        try:
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        except OSError:
            pass  # a new file keeps mkstemp's private mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_source(path: str | os.PathLike, text: str, encoding: str) -> None:
    """Atomically write `text` back in the file's own encoding (a BOM stays a BOM)."""
    write_atomic(path, text.encode(encoding))


# --- imports: what names a module binds, and adding one that is missing -----------------------------


def dotted_name(node: cst.BaseExpression) -> str | None:
    """`a.b.c` for a chain of Name/Attribute nodes, else None."""
    parts = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


# Modules a fix may need and how we import them when missing: module -> (import line, local name).
_CANONICAL_IMPORTS = {
    "jax": ("import jax", "jax"),
    "jax.numpy": ("import jax.numpy as jnp", "jnp"),
    "equinox": ("import equinox as eqx", "eqx"),
}


def reference(analysis, qualname: str) -> tuple[str, Edit | None]:
    """How to spell `qualname` in the module of `analysis` (a `purelint._engine.Analysis`), plus the
    import edit to add when nothing binds it yet. What the module's names refer to comes from the
    engine's scopes (its module-level imports), the same resolution rules use.

    Existing aliases win: with `import jax.numpy as np_`, `jax.numpy.zeros_like` is `np_.zeros_like`.
    With nothing suitable imported, adds `import jax.numpy as jnp` for `jax.numpy.*`, `import
    equinox as eqx` for `equinox.*`, else `import jax`, once, after the module's leading imports.
    """
    module = analysis.module
    bindings = {local: target for local, target in analysis.module_scope.imports.items() if not target.startswith(".")}
    best: tuple[int, str] | None = None
    for local, target in bindings.items():
        if (qualname == target or qualname.startswith(target + ".")) and (best is None or len(target) > best[0]):
            best = (len(target), local + qualname[len(target):])
    home = next((m for m in ("jax.numpy", "equinox") if qualname.startswith(m + ".")), "jax")
    if best is not None and best[0] >= len(home):
        return best[1], None
    line, local = _CANONICAL_IMPORTS[home]
    if _free(module, local, home, bindings):
        return local + qualname[len(home):], _import_edit(module, line)
    if best is not None:
        return best[1], None
    top = home.split(".")[0]
    return qualname, _import_edit(module, f"import {top}")


def _free(module: cst.Module, name: str, target: str, bindings: dict[str, str]) -> bool:
    """Whether importing `target` as `name` clashes with nothing the module already calls `name`."""
    if name in bindings:
        return bindings[name] == target
    return re.search(rf"(?<![\w.]){re.escape(name)}\b", module.code) is None


def _import_edit(module: cst.Module, line: str) -> Edit:
    body = list(module.body)
    last = -1  # index of the last statement in the leading docstring/import block
    for index, statement in enumerate(body):
        if not isinstance(statement, cst.SimpleStatementLine):
            break
        first = statement.body[0]
        is_docstring = index == 0 and isinstance(first, cst.Expr) and isinstance(first.value, cst.SimpleString)
        if not (is_docstring or all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in statement.body)):
            break
        last = index
    source = module.code
    newline = module.default_newline
    if last >= 0:
        offset = len(module.with_changes(body=body[: last + 1], footer=(), has_trailing_newline=True).code)
    else:  # before the first statement, after the comments heading the file (shebang, licence)
        offset = sum(len(module.code_for_node(line)) for line in module.header)
    content = line + newline
    if offset > len(source) or (offset == len(source) and source and not source.endswith(("\n", "\r"))):
        offset, content = len(source), newline + line  # after a last line without a newline
    position = to_position(line_starts(source), offset)
    return Edit(*position, *position, content)


# --- building fixes inside rules ------------------------------------------------------------------


def node_edit(ctx, node: cst.CSTNode, content: str, at=None) -> Edit:
    """An edit replacing `node`'s text; `ctx` is the rule context (its `position` gives libcst ranges;
    `at` places a node outside the current function, see `Context.position`)."""
    where = ctx.position(node, at)
    return Edit(where.start.line, where.start.column + 1, where.end.line, where.end.column + 1, content)


def code_of(node: cst.CSTNode) -> str:
    """The source text of a node as libcst prints it (comments and spacing inside it kept)."""
    return cst.Module([]).code_for_node(node)


def build_fix(applicability: str, message: str, edits: Iterable[Edit | None]) -> Fix:
    """A fix from edits, leaving out the `None`s that `reference` gives when nothing is imported."""
    return Fix(applicability, message, tuple(e for e in edits if e is not None))
