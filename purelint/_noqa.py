"""Suppression comments: `# noqa`, `# noqa: PUR001` on a line; `# purelint: noqa[: CODES]` for a file."""

from __future__ import annotations

import re

from purelint._diagnostic import Diagnostic

__all__ = ["Suppressions"]

_CODES = r"(?P<codes>[A-Za-z]+[0-9]+(?:[ \t]*,?[ \t]*[A-Za-z]+[0-9]+)*)"
_LINE = re.compile(r"#[ \t]*noqa(?::[ \t]*" + _CODES + ")?", re.IGNORECASE)
_FILE = re.compile(r"^[ \t]*#[ \t]*purelint:[ \t]*noqa(?::[ \t]*" + _CODES + r")?[ \t]*$", re.IGNORECASE | re.MULTILINE)
_ALL = frozenset({"*"})


def _codes(match: re.Match[str]) -> frozenset[str]:
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
        self.used: set[tuple[int, str]] = set()

    def file_codes(self) -> frozenset[str]:
        """Codes silenced for the whole file ({"*"} for all)."""
        if self._file is None:
            found: set[str] = set()
            for match in _FILE.finditer(self.source):
                found |= _codes(match)
            self._file = frozenset(found)
        return self._file

    def line_codes(self, line: int) -> frozenset[str]:
        """Codes silenced on a 1-based line ({"*"} for a bare `# noqa`)."""
        if self._lines is None:
            self._lines = self.source.splitlines()
        if not 1 <= line <= len(self._lines) or "#" not in self._lines[line - 1]:
            return frozenset()
        match = _LINE.search(self._lines[line - 1])
        return _codes(match) if match else frozenset()

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
