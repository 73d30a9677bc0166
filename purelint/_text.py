"""Positions in source text: where lines start, and (line, column) <-> offset, both 1-based.

Lines end at `\\r\\n`, `\\r` or `\\n`, as Python's tokenizer and libcst count them; columns count
characters.

Example:
    >>> starts = line_starts("a = 1\\r\\nb = 2\\n")
    >>> starts, to_offset(starts, "a = 1\\r\\nb = 2\\n", (2, 1)), to_position(starts, 9)
    ([0, 7, 13], 7, (2, 3))
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["Position", "line_starts", "newline_of", "to_offset", "to_position"]

Position = tuple[int, int]  # (line, column), both 1-based

_NEWLINE = re.compile(r"\r\n|\r|\n")


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
