"""Applying fixes: the edit model behind `--fix`, `--diff` and the language server's code actions.

An `Edit` (see `purelint._diagnostic`) replaces the text between two positions; a `Fix` groups the
edits that must land together with an applicability (`"safe"` or `"unsafe"`) and a message. Lines and
columns are 1-based, columns count characters, ends are exclusive (`purelint._text`). `fix_to_json`
gives Ruff's JSON form. Reading and writing files is `purelint._source`.

Example:
    >>> fix = Fix("safe", "use .at[].set", (Edit(2, 5, 2, 13, "x = x.at[i].set(v)"),))
    >>> apply_fixes("def f(x, i, v):\\n    x[i] = v\\n", [fix])[0]
    'def f(x, i, v):\\n    x = x.at[i].set(v)\\n'
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from purelint._diagnostic import Edit, Fix
from purelint._text import Position, line_starts, newline_of, to_offset

__all__ = ["apply_edits", "apply_fixes", "fix_to_json", "select_fixes", "unified_diff"]

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


def apply_edits(source: str, edits: Iterable[Edit]) -> str:
    """Apply non-overlapping edits; `\\n` in new text follows the file's own line ending."""
    starts = line_starts(source)
    newline = newline_of(source)
    spans = sorted((to_offset(starts, source, _start(e)), to_offset(starts, source, _end(e)), e.content) for e in edits)
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


def select_fixes(source: str, fixes: Iterable[Fix], *, unsafe: bool = False) -> tuple[list[Edit], list[Fix]]:
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
        if any(b < a for a, b in spans) or any(_overlaps(x, y) for i, x in enumerate(spans) for y in spans[i + 1 :]):
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
