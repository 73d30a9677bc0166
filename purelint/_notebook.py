"""Jupyter notebooks: the Python inside them, where a finding sits, and writing fixes back.

The code cells are joined into one Python source (so an import in cell 1 resolves names in cell 5),
with IPython syntax neutralised line for line: line magics (`%time f()`, `x = %timeit -o g()`), shell
escapes (`!ls`, `files = !ls`) and help (`obj?`, `?obj`) become `pass` at their indentation, and a cell
led by a non-Python cell magic (`%%bash`) becomes blank lines. Line numbers never move, so a finding maps
back to (cell, line, column) and a fix made on the joined source lands in the right cell.

Fixes are written into the notebook's JSON by replacing only the `source` values of the cells that
changed, in the file's own layout; every other byte stays as it was.

Example:
    >>> nb = parse_notebook('{"cells": [{"cell_type": "code", "source": ["%matplotlib inline\\\\n", "x = 1"]}]}')
    >>> nb.source
    'pass\\nx = 1\\n'
    >>> nb.locate(2)
    (1, 2)
"""

from __future__ import annotations

import bisect
import dataclasses
import io
import json
import os
import re
import tokenize
from collections.abc import Iterable
from json.decoder import scanstring  # type: ignore[attr-defined]  # the C scanner json itself uses

from purelint._diagnostic import Edit, Fix
from purelint._fix import apply_edits, select_fixes
from purelint._source import SourceError, read_bytes, write_atomic
from purelint._text import line_starts, to_offset, to_position

# Cell magics whose body is still Python: lint the body, skip the magic line.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "python", "python3"})

_PLACEHOLDER = "pass"


class NotebookError(SourceError):
    """A notebook file that is not valid notebook JSON."""


@dataclasses.dataclass(frozen=True)
class Cell:
    number: int  # 1-based position among all cells (markdown included), as Jupyter and Ruff count
    text: str  # the cell's source as stored
    first_line: int  # where the cell starts in the joined source (1-based)
    line_count: int  # lines the cell occupies in the joined source
    added_newline: bool  # the joined source ends this cell with a newline the cell itself lacks
    masked: frozenset[int]  # cell lines (1-based) neutralised because they are IPython syntax
    span: tuple[int, int]  # where the cell's "source" value lies in the notebook text
    as_list: bool  # "source" is stored as a list of lines rather than one string


@dataclasses.dataclass(frozen=True)
class Notebook:
    text: str  # the notebook JSON as read (without a BOM)
    bom: bool
    cells: tuple[Cell, ...]  # code cells only
    source: str  # the joined, neutralised Python
    python: bool  # False for notebooks of another kernel language; those are not linted

    def cell_at(self, line: int) -> Cell:
        """The code cell holding `line` of the joined source."""
        index = bisect.bisect_right([c.first_line for c in self.cells], line) - 1
        if index < 0:
            raise ValueError(f"line {line} precedes every cell")
        return self.cells[index]

    def locate(self, line: int) -> tuple[int, int]:
        """(cell number, line within the cell) for `line` of the joined source."""
        cell = self.cell_at(line)
        return cell.number, line - cell.first_line + 1

    def is_masked(self, line: int) -> bool:
        """Whether `line` of the joined source is neutralised IPython syntax."""
        cell = self.cell_at(line)
        return line - cell.first_line + 1 in cell.masked

    def apply_fixes(self, fixes: Iterable[Fix], *, unsafe: bool = False) -> tuple[str, list[Fix]]:
        """The notebook text with the fixes applied (what `select_fixes` chooses) and the fixes applied.

        Fixes that touch neutralised IPython lines or straddle two cells are left out.
        """
        original = "".join(c.text + ("\n" if c.added_newline else "") for c in self.cells)
        fixes = [f for f in fixes if self._fits(f)]
        edits, chosen = select_fixes(original, fixes, unsafe=unsafe)
        if not edits:
            return self.text, []
        starts = line_starts(original)
        spans = [
            (
                to_offset(starts, original, (e.line, e.column)),
                to_offset(starts, original, (e.end_line, e.end_column)),
                e,
            )
            for e in edits
        ]
        new_texts = []
        for cell in self.cells:
            begin = starts[cell.first_line - 1]
            end = begin + len(cell.text) + cell.added_newline
            local = [
                Edit(*_shift(s - begin, cell), *_shift(t - begin, cell), e.content)
                for s, t, e in spans
                if _owns(begin, end, s, t)
            ]
            text = cell.text + ("\n" if cell.added_newline else "")
            text = apply_edits(text, local) if local else text
            if cell.added_newline and text.endswith("\n"):
                text = text[:-1]
            new_texts.append(text)
        return self._with_sources(new_texts), chosen

    def _fits(self, fix: Fix) -> bool:
        cells = set()
        for edit in fix.edits:
            first, last = edit.line, edit.end_line
            insertion = (edit.line, edit.column) == (edit.end_line, edit.end_column)
            if edit.end_column == 1 and last > first:
                last -= 1  # a range ending at a line start does not touch that line
            if insertion and edit.column == 1:
                continue  # inserting whole lines before a line leaves that line alone
            if any(self.is_masked(line) for line in range(first, last + 1)):
                return False
            if not insertion:
                cells.add(self.cell_at(first).number)
                cells.add(self.cell_at(last).number)
        return len(cells) <= 1

    def _with_sources(self, texts: list[str]) -> str:
        ensure_ascii = self.text.isascii() and re.search(r"\\u(?!00[0-7])[0-9a-fA-F]{4}", self.text) is not None
        out, cursor = [], 0
        for cell, text in zip(self.cells, texts):
            if text == cell.text:
                continue
            begin, end = cell.span
            out.append(self.text[cursor:begin])
            out.append(_render_source(self.text, cell, text, ensure_ascii))
            cursor = end
        out.append(self.text[cursor:])
        return "".join(out)


def _owns(begin: int, end: int, start: int, stop: int) -> bool:
    """Whether a cell spanning [begin, end) of the joined text takes the edit [start, stop).

    An insertion on a boundary goes to the cell before it: it follows that cell's imports.
    """
    if not (begin <= start and stop <= end):
        return False
    return not (start == stop == begin and begin > 0)


def _shift(offset: int, cell: Cell) -> tuple[int, int]:
    starts = line_starts(cell.text + ("\n" if cell.added_newline else ""))
    return to_position(starts, offset)


def _render_source(text: str, cell: Cell, source: str, ensure_ascii: bool) -> str:
    """The JSON for a new cell source in the layout of the old one (list of lines or one string)."""
    if not cell.as_list:
        return json.dumps(source, ensure_ascii=ensure_ascii)
    lines = [json.dumps(line, ensure_ascii=ensure_ascii) for line in source.splitlines(keepends=True)]
    old = text[cell.span[0] : cell.span[1]]
    if not lines:
        return "[]"
    if "\n" not in old:
        return "[" + ", ".join(lines) + "]"
    if old.strip("[] \t\r\n"):  # non-empty list: keep its indentation
        body = old[1:-1]  # the old list without its brackets
        lead = body[: len(body) - len(body.lstrip())]
        tail = body[len(body.rstrip()) :]
    else:
        line_start = text.rfind("\n", 0, cell.span[0]) + 1
        indent = _indent(text[line_start:])
        lead, tail = "\n" + indent + " ", "\n" + indent
    return "[" + lead + ("," + lead).join(lines) + tail + "]"


# --- reading ----------------------------------------------------------------------------------------


def read_notebook(path: str | os.PathLike) -> Notebook:
    data = read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise NotebookError(f"{os.fspath(path)}: notebook is not UTF-8: {err.reason}") from None
    return parse_notebook(text, os.fspath(path), bom=data.startswith(b"\xef\xbb\xbf"))


def write_notebook(path: str | os.PathLike, notebook: Notebook, text: str) -> None:
    """Atomically write new notebook text, keeping a BOM if the file had one."""
    write_atomic(path, (text.encode("utf-8-sig") if notebook.bom else text.encode("utf-8")))


def parse_notebook(text: str, path: str = "<notebook>", *, bom: bool = False) -> Notebook:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise NotebookError(
            f"{path}: not a notebook: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError(f"{path}: not a notebook: no 'cells' list")
    spans = _source_spans(text)
    cells: list[Cell] = []
    pieces: list[str] = []
    line = 1
    for number, cell in enumerate(data["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        raw = cell.get("source", "")
        if isinstance(raw, list) and all(isinstance(part, str) for part in raw):
            source = "".join(raw)
        elif isinstance(raw, str):
            source = raw
        else:
            raise NotebookError(f"{path}: cell {number}: 'source' is neither a string nor a list of strings")
        if number - 1 not in spans:
            raise NotebookError(f"{path}: cell {number}: cannot locate its 'source' in the file")
        python, masked = neutralise(source)
        added = not source.endswith("\n")
        python += "\n" if added else ""
        count = len(line_starts(python)) - 1
        cells.append(
            Cell(number, source, line, count, added, frozenset(masked), spans[number - 1], isinstance(raw, list))
        )
        pieces.append(python)
        line += count
    return Notebook(text, bom, tuple(cells), "".join(pieces), _is_python(data))


def _indent(line: str) -> str:
    """The spaces and tabs a line starts with."""
    return line[: len(line) - len(line.lstrip(" \t"))]


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _is_python(data: dict) -> bool:
    metadata = _dict(data.get("metadata"))
    info, kernel = _dict(metadata.get("language_info")), _dict(metadata.get("kernelspec"))
    language = info.get("name") or kernel.get("language") or "python"
    return str(language).lower().startswith("python")


def neutralise(source: str) -> tuple[str, set[int]]:
    """`source` with IPython-only lines replaced (same line count), and the 1-based lines replaced."""
    lines = source.splitlines(keepends=True)
    masked: set[int] = set()
    first = next((i for i, text in enumerate(lines) if text.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        name = lines[first].lstrip()[2:].split(maxsplit=1)
        if not name or name[0] not in PYTHON_CELL_MAGICS:
            masked = set(range(1, len(lines) + 1))
            return "".join(_ending(text) for text in lines), masked
        masked.add(first + 1)
    heads = set(masked)
    candidates = [i + 1 for i, text in enumerate(lines) if _might_be_ipython(text)]
    if candidates:
        for begin, end in _ipython_lines(lines, set(candidates), masked):
            heads.add(begin)
            masked.update(range(begin, end + 1))
    out = []
    for number, text in enumerate(lines, start=1):
        if number in masked:
            indent = _indent(text)
            # A multi-line magic keeps the placeholder on its first line; the rest go blank.
            out.append((indent + _PLACEHOLDER if number in heads else "") + _ending(text))
        else:
            out.append(text)
    return "".join(out), masked


def _ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")) :]


def _might_be_ipython(line: str) -> bool:
    return any(ch in line for ch in "%!?")


def _ipython_lines(lines: list[str], candidates: set[int], masked: set[int]) -> list[tuple[int, int]]:
    """(first, last) lines of each logical line using IPython syntax (`%magic`, `!shell`, `?help`)."""
    hidden = "".join("\n" if i + 1 in masked else text for i, text in enumerate(lines))
    found: list[tuple[int, int]] = []
    logical: list[tokenize.TokenInfo] = []
    complete = 0  # the last line of the last complete logical line
    try:
        for token in tokenize.generate_tokens(io.StringIO(hidden).readline):
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                if logical and _is_ipython(logical):
                    found.append((logical[0].start[0], min(token.start[0], len(lines))))
                logical = []
                complete = token.start[0]
            elif token.type not in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
                logical.append(token)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        # Unfinished input (an open bracket or string): judge the remaining candidates line by line.
        found.extend((n, n) for n in sorted(candidates) if n > complete and _LOOKS_IPYTHON.match(lines[n - 1]))
    return found


_LOOKS_IPYTHON = re.compile(r"\s*(%|!|\?|[\w.]+\?+\s*$|[\w.]+\s*=\s*[%!])")


def _is_ipython(tokens: list[tokenize.TokenInfo]) -> bool:
    previous = None
    for index, token in enumerate(tokens):
        if token.type == tokenize.ERRORTOKEN and token.string in ("!", "?"):
            return True
        if token.type == tokenize.OP and token.string == "%":
            if index == 0 or (previous is not None and previous.type == tokenize.OP and previous.string == "="):
                return True
        if not (token.type == tokenize.ERRORTOKEN and token.string.isspace()):
            previous = token
    return False


# --- locating "source" values in the notebook text --------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip_ws(text: str, index: int) -> int:
    match = _WS.match(text, index)  # matches the empty string at worst
    return match.end() if match else index


def _members(text: str, index: int):
    """(key, value start, value end) for each member of the JSON object starting at `index`."""
    index = _skip_ws(text, index + 1)
    if text[index] == "}":
        return
    while True:
        key, index = scanstring(text, index + 1)
        index = _skip_ws(text, _skip_ws(text, index) + 1)  # past ':'
        _, end = _DECODER.raw_decode(text, index)
        yield key, index, end
        index = _skip_ws(text, end)
        if text[index] == "}":
            return
        index = _skip_ws(text, index + 1)  # past ','


def _elements(text: str, index: int):
    """(start, end) of each element of the JSON array starting at `index`."""
    index = _skip_ws(text, index + 1)
    if text[index] == "]":
        return
    while True:
        _, end = _DECODER.raw_decode(text, index)
        yield index, end
        index = _skip_ws(text, end)
        if text[index] == "]":
            return
        index = _skip_ws(text, index + 1)


def _source_spans(text: str) -> dict[int, tuple[int, int]]:
    """cell index -> span of that cell's "source" value (the last one, as json.loads keeps)."""
    spans: dict[int, tuple[int, int]] = {}
    start = _skip_ws(text, 0)
    cells_at = None
    for key, begin, _ in _members(text, start):
        if key == "cells" and text[begin] == "[":
            cells_at = begin
    if cells_at is None:
        return spans
    for number, (begin, _) in enumerate(_elements(text, cells_at)):
        if text[begin] != "{":
            continue
        for key, value_begin, value_end in _members(text, begin):
            if key == "source":
                spans[number] = (value_begin, value_end)
    return spans
