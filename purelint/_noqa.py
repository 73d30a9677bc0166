"""Suppression comments: `# noqa`, `# noqa: PUR001` on a line; `# purelint: noqa[: CODES]` for a file.

Only real comments count, as in Ruff: the same text inside a string (a docstring that documents noqa,
say) suppresses nothing. The text is searched first, so only files that mention noqa are tokenized.
"""

from __future__ import annotations

import io
import re
import tokenize

from purelint._diagnostic import Diagnostic

__all__ = ["NOQA_COMMENT", "Suppressions", "noqa_codes"]

_CODES = r"(?P<codes>[A-Za-z]+[0-9]+(?:[ \t]*,?[ \t]*[A-Za-z]+[0-9]+)*)"
# A line-level `# noqa` or `# noqa: CODES` comment (the codes, when given, are the "codes" group).
NOQA_COMMENT = re.compile(r"#[ \t]*noqa(?::[ \t]*" + _CODES + ")?", re.IGNORECASE)
_FILE = re.compile(r"^[ \t]*#[ \t]*purelint:[ \t]*noqa(?::[ \t]*" + _CODES + r")?[ \t]*$", re.IGNORECASE | re.MULTILINE)
_ALL = frozenset({"*"})


def _comments(source: str) -> dict[int, str] | None:
    """Each line's comment, from Python's tokenizer; None when the source does not tokenize."""
    try:
        tokens = tokenize.generate_tokens(io.StringIO(source).readline)
        return {token.start[0]: token.string for token in tokens if token.type == tokenize.COMMENT}
    except (tokenize.TokenError, SyntaxError):
        return None  # purelint reports the file as unparsable (PUR999); the text is all there is


def noqa_codes(match: re.Match[str]) -> frozenset[str]:
    """The codes a suppression match names, upper-cased ({"*"} for all)."""
    codes = match.group("codes")
    return frozenset(re.split(r"[\s,]+", codes.upper())) if codes else _ALL


class Suppressions:
    """The suppression comments of one source text, parsed on first use.

    `used` records (line, code) for every line-level suppression that silenced a finding
    (line 0 for file-level ones), so unused ones can be reported.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._file: frozenset[str] | None = None
        self._lines: list[str] | None = None
        self._comment_lines: dict[int, str] | None = None
        self._tokenized = False
        self.used: set[tuple[int, str]] = set()

    def _comment(self, line: int, text: str) -> str:
        """The comment on a 1-based line whose `text` looked like a suppression; "" inside a string."""
        if not self._tokenized:
            self._comment_lines, self._tokenized = _comments(self.source), True
        return text if self._comment_lines is None else self._comment_lines.get(line, "")

    def file_codes(self) -> frozenset[str]:
        """Codes silenced for the whole file ({"*"} for all)."""
        if self._file is None:
            found: set[str] = set()
            for match in _FILE.finditer(self.source):
                line = self.source.count("\n", 0, match.start()) + 1
                if self._comment(line, match.group()).strip() == match.group().strip():
                    found |= noqa_codes(match)
            self._file = frozenset(found)
        return self._file

    def line_codes(self, line: int) -> frozenset[str]:
        """Codes silenced on a 1-based line ({"*"} for a bare `# noqa`)."""
        if self._lines is None:
            self._lines = self.source.splitlines()
        if not 1 <= line <= len(self._lines) or "#" not in self._lines[line - 1]:
            return frozenset()
        text = self._lines[line - 1]
        if not NOQA_COMMENT.search(text):
            return frozenset()
        match = NOQA_COMMENT.search(self._comment(line, text))
        return noqa_codes(match) if match else frozenset()

    def suppressed(self, diagnostic: Diagnostic) -> bool:
        code = diagnostic.code
        file_codes = self.file_codes()
        if code in file_codes or file_codes is _ALL or "*" in file_codes:
            self.used.add((0, code))
            return True
        for line in {diagnostic.line, diagnostic.end_line}:
            codes = self.line_codes(line)
            if code in codes or "*" in codes:
                self.used.add((line, code))
                return True
        return False
