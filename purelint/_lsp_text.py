"""Positions and text edits for the language server, without pygls (plain tuples, testable alone).

purelint counts 1-based lines and columns in characters (code points); LSP counts 0-based lines and,
by default, UTF-16 code units (the client may negotiate UTF-8 or UTF-32). Both end lines at `\\r\\n`,
`\\r` and `\\n` (unlike `str.splitlines`, which also splits at form feeds and U+2028), so lines are
found with `purelint._text.line_starts`.

Edits sent to the editor are computed as the difference between the text and what the fix machinery
(`purelint._fix`, `purelint._runner`) made of it, so the server never fixes anything on its own.

Example:
    >>> text = "s = 'é😀'; x[i] = 0\\n"
    >>> Text(text).lsp_position(1, 11, "utf-16")  # `x`: 10 characters precede it, 😀 counts twice
    (0, 11)
    >>> Text(text).edits(text.replace("x[i] = 0", "x = x.at[i].set(0)"), "utf-16")
    [((0, 12), (0, 19), ' = x.at[i].set(0)')]
"""

from __future__ import annotations

import difflib
import itertools
import os.path
from functools import cached_property

from purelint._text import line_starts, to_position

# The code action kind of "fix all" (LSP's `source.fixAll`, narrowed to purelint); a plain string here
# so the server can announce it before the LSP documents machinery (and libcst) is loaded.
FIX_ALL = "source.fixAll.purelint"

__all__ = ["Text", "units"]

LspPosition = tuple[int, int]  # (line, character), both 0-based, character in the negotiated units
LspEdit = tuple[LspPosition, LspPosition, str]


def units(text: str, encoding: str) -> int:
    """Length of `text` in the code units of an LSP position encoding ("utf-8", "utf-16", "utf-32")."""
    if encoding == "utf-32":
        return len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class Text:
    """One document's text, with conversions between purelint's and LSP's positions."""

    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def starts(self) -> list[int]:
        return line_starts(self.text)

    def line(self, index: int) -> str:
        """The 0-based line `index` without its line ending ("" past the end)."""
        if not 0 <= index < len(self.starts):
            return ""
        end = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.text)
        return self.text[self.starts[index] : end].rstrip("\r\n")

    def lsp_position(self, line: int, column: int, encoding: str) -> LspPosition:
        """purelint's (1-based line, 1-based character column) as an LSP position, clamped to the text."""
        index = min(max(line, 1), len(self.starts)) - 1
        text = self.line(index)
        return index, units(text[: max(column - 1, 0)], encoding)

    def lsp_offset(self, offset: int, encoding: str) -> LspPosition:
        return self.lsp_position(*to_position(self.starts, min(max(offset, 0), len(self.text))), encoding)

    def purelint_position(self, position: LspPosition, encoding: str) -> tuple[int, int]:
        """An LSP position as purelint's (1-based line, 1-based column), clamped to the line."""
        index, character = position
        text = self.line(index)
        column = 0
        while column < len(text) and units(text[: column + 1], encoding) <= character:
            column += 1
        return index + 1, column + 1

    def edits(self, new: str, encoding: str) -> list[LspEdit]:
        """The LSP edits that turn this text into `new`: one per changed run of lines, each narrowed
        to the characters that differ, so the editor keeps the cursor and folds elsewhere."""
        old_lines, old_starts = _lines(self.text, self.starts)
        new_lines, new_starts = _lines(new, line_starts(new))
        out: list[LspEdit] = []
        matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            begin, end = old_starts[i1], old_starts[i2]
            replacement = new[new_starts[j1] : new_starts[j2]]
            prefix = len(os.path.commonprefix([self.text[begin:end], replacement]))  # noqa: RUF071 (text, not paths)
            suffix = len(os.path.commonprefix([self.text[begin + prefix : end][::-1], replacement[prefix:][::-1]]))  # noqa: RUF071
            # A position between `\r` and `\n` does not exist in LSP: keep a CRLF whole.
            if self.text[begin + prefix - 1 : begin + prefix + 1] == "\r\n":
                prefix -= 1
            if suffix and self.text[end - suffix - 1 : end - suffix + 1] == "\r\n":
                suffix -= 1
            start, stop = begin + prefix, end - suffix
            out.append(
                (
                    self.lsp_offset(start, encoding),
                    self.lsp_offset(stop, encoding),
                    replacement[prefix : len(replacement) - suffix],
                )
            )
        return out


def _lines(text: str, starts: list[int]) -> tuple[list[str], list[int]]:
    """The lines of `text`, each with its own line ending (the last one may lack it), and the
    offsets where each starts followed by `len(text)`."""
    bounds = [start for start in starts if start < len(text)] + [len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)], bounds
