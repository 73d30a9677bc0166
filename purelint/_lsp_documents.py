"""What the language server lints (an open Python file, an open notebook) and what it offers on it.

A `Target` holds a snapshot of the text purelint lints: a file's text, or a notebook's code cells
joined the way `purelint._notebook` joins a `.ipynb` file. Findings come from `lint_source`, fixes
from the same machinery as `--fix` (`apply_fixes`, `fix_text`, `Notebook.apply_fixes`,
`fix_notebook_text`); the editor gets the difference between the text before and after as
`TextEdit`s (`purelint._lsp_text`). Only `purelint._server` imports this module (it needs lsprotocol).

Rule links point at `RULES_URL#<name>-<code>`, the rule's heading anchor in docs/purelint-rules.md
(`print-in-traced-function-pur001`); an editor may pass another base as the `rulesUrl`
initialization option (a local checkout's `file:///.../docs/purelint-rules.md`, say).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from lsprotocol import types

from purelint._analysis._cst import parses
from purelint._api import failure, lint_source
from purelint._config import Config
from purelint._diagnostic import Diagnostic, Fix
from purelint._engine import RuleCrash
from purelint._fix import apply_fixes
from purelint._lsp_text import FIX_ALL, Text
from purelint._noqa import NOQA_COMMENT, Suppressions
from purelint._notebook import Notebook, parse_notebook
from purelint._registry import all_rules, get_rule
from purelint._report import RULES_URL, rule_url
from purelint._runner import fix_notebook_text, fix_text

__all__ = [
    "FIX_ALL",
    "RULES_URL",
    "Cell",
    "Finding",
    "NotebookTarget",
    "PythonTarget",
    "Request",
    "Target",
    "code_actions",
    "hover",
    "lint_safely",
    "noqa_line",
    "rule_url",
]

Changes = dict[str, list[types.TextEdit]]


@dataclass(frozen=True)
class Finding:
    diagnostic: Diagnostic  # positions in the linted source (the joined cells of a notebook)
    uri: str  # the document it is shown in (a cell's document for a notebook)
    range: types.Range

    def lsp(self, rules_url: str = RULES_URL) -> types.Diagnostic:
        code = self.diagnostic.code
        return types.Diagnostic(
            range=self.range,
            message=self.diagnostic.message,
            severity=types.DiagnosticSeverity.Error if code == "PUR999" else types.DiagnosticSeverity.Warning,
            code=code,
            code_description=types.CodeDescription(href=rule_url(code, rules_url)),
            source="purelint",
        )


def _range(text: Text, start: tuple[int, int], end: tuple[int, int], encoding: str) -> types.Range:
    return _lsp_range(text.lsp_position(*start, encoding), text.lsp_position(*end, encoding))


def _lsp_range(start: tuple[int, int], end: tuple[int, int]) -> types.Range:
    (a, b), (c, d) = start, end
    return types.Range(start=types.Position(line=a, character=b), end=types.Position(line=c, character=d))


class Target:
    """One linted unit; subclasses say where findings show and how new text reaches the editor."""

    uri: str
    path: str
    text: str  # the snapshot: a file's text, or a notebook's JSON

    @property
    def source(self) -> str:
        """The Python purelint lints."""
        raise NotImplementedError

    def lint(self, config: Config) -> list[Diagnostic]:
        raise NotImplementedError

    def documents(self) -> list[str]:
        """Every document that gets a diagnostics list (clean ones too, to clear old findings)."""
        raise NotImplementedError

    def place(self, diagnostic: Diagnostic, encoding: str) -> Finding:
        raise NotImplementedError

    def apply(self, fix: Fix) -> str | None:
        """The target's text with one fix applied (None when the fix cannot land)."""
        raise NotImplementedError

    def fix_all(self, config: Config) -> str:
        """The target's text with every safe fix applied, as `purelint --fix` does."""
        raise NotImplementedError

    def changes(self, new: str, encoding: str) -> Changes:
        """The edits per document that turn the target's text into `new`."""
        raise NotImplementedError

    def line_changes(self, line: int, text: str, encoding: str) -> Changes | None:
        """The edits that replace line `line` of `source` by `text` (None where that line is not
        the user's own text, such as an IPython magic in a notebook)."""
        raise NotImplementedError


@dataclass(eq=False)
class PythonTarget(Target):
    uri: str
    path: str
    text: str

    @property
    def source(self) -> str:
        return self.text

    def lint(self, config: Config) -> list[Diagnostic]:
        return lint_source(self.text, self.path, config=config)

    def documents(self) -> list[str]:
        return [self.uri]

    @cached_property
    def _text(self) -> Text:
        return Text(self.text)

    def place(self, diagnostic: Diagnostic, encoding: str) -> Finding:
        d = diagnostic
        return Finding(d, self.uri, _range(self._text, (d.line, d.column), (d.end_line, d.end_column), encoding))

    def apply(self, fix: Fix) -> str | None:
        new, applied = apply_fixes(self.text, [fix], unsafe=True)
        return new if applied and (parses(new) or not parses(self.text)) else None

    def fix_all(self, config: Config) -> str:
        return fix_text(self.text, self.path, config, unsafe=False).text

    def changes(self, new: str, encoding: str) -> Changes:
        return {self.uri: _text_edits(self._text, new, encoding)}

    def line_changes(self, line: int, text: str, encoding: str) -> Changes | None:
        return self.changes(_replace_line(self.text, line, text), encoding)


@dataclass(frozen=True)
class Cell:
    uri: str
    text: str
    code: bool  # a Python code cell (markdown and other languages are left alone)


@dataclass(eq=False)
class NotebookTarget(Target):
    """A notebook as the client syncs it: its cells in order, each its own text document."""

    uri: str
    path: str
    cells: Sequence[Cell]

    # Target's `text` field, derived here from the cells.
    @cached_property
    def text(self) -> str:  # type: ignore[override]
        """The cells as notebook JSON, so the notebook code that reads `.ipynb` files reads them."""
        cells = [{"cell_type": "code" if c.code else "markdown", "source": c.text} for c in self.cells]
        return json.dumps({"cells": cells, "metadata": {"language_info": {"name": "python"}}})

    @cached_property
    def notebook(self) -> Notebook:
        return parse_notebook(self.text, self.path)

    @property
    def source(self) -> str:
        return self.notebook.source

    def lint(self, config: Config) -> list[Diagnostic]:
        notebook = self.notebook
        if not notebook.cells:
            return []

        def line_names(line: int) -> str:
            cell, within = notebook.locate(line)
            return f"line {within} of cell {cell}"

        return lint_source(notebook.source, self.path, config=config, line_names=line_names)

    def documents(self) -> list[str]:
        return [c.uri for c in self.cells if c.code]

    def place(self, diagnostic: Diagnostic, encoding: str) -> Finding:
        d = diagnostic
        cell = self.notebook.cell_at(d.line)
        start = (d.line - cell.first_line + 1, d.column)
        end = (d.end_line - cell.first_line + 1, d.end_column)
        if d.end_line >= cell.first_line + cell.line_count:  # never span cells: stop at the line's end
            end = (start[0], len(cell.text) + 1)
        return Finding(d, self.cells[cell.number - 1].uri, _range(Text(cell.text), start, end, encoding))

    def apply(self, fix: Fix) -> str | None:
        new, applied = self.notebook.apply_fixes([fix], unsafe=True)
        return new if applied else None

    def fix_all(self, config: Config) -> str:
        return fix_notebook_text(self.text, self.path, config, unsafe=False).text

    def changes(self, new: str, encoding: str) -> Changes:
        after = {c.number: c.text for c in parse_notebook(new, self.path).cells}
        out: Changes = {}
        for cell in self.notebook.cells:
            text = after.get(cell.number, cell.text)
            if text != cell.text:
                out[self.cells[cell.number - 1].uri] = _text_edits(Text(cell.text), text, encoding)
        return out

    def line_changes(self, line: int, text: str, encoding: str) -> Changes | None:
        if self.notebook.is_masked(line):
            return None
        cell = self.notebook.cell_at(line)
        new = _replace_line(cell.text, line - cell.first_line + 1, text)
        return {self.cells[cell.number - 1].uri: _text_edits(Text(cell.text), new, encoding)}


def _replace_line(text: str, line: int, new: str) -> str:
    lines = Text(text)
    begin = lines.starts[line - 1]
    end = begin + len(lines.line(line - 1))
    return text[:begin] + new + text[end:]


def _text_edits(text: Text, new: str, encoding: str) -> list[types.TextEdit]:
    """The `TextEdit`s that turn `text` into `new`."""
    return [
        types.TextEdit(range=_lsp_range(start, end), new_text=content)
        for start, end, content in text.edits(new, encoding)
    ]


# --- linting without ever failing -----------------------------------------------------------------


def lint_safely(target: Target, config: Config, log: Callable[[str], None]) -> list[Diagnostic]:
    """`target.lint(config)`; a rule that crashes is logged and left out, so the others still report."""
    for _ in range(len(all_rules())):
        try:
            return target.lint(config)
        except RuleCrash as crash:
            log(f"purelint: internal error: {crash}" + ("; linting on without that rule" if crash.code else ""))
            if crash.code is None:
                return []
            config = config.replace(ignore=(*config.ignore, crash.code))
        except RecursionError:
            return [failure(target.path, "too deeply nested to analyse")]
    return []


# --- code actions and hover -----------------------------------------------------------------------


def _before(a: types.Position, b: types.Position) -> bool:
    return (a.line, a.character) <= (b.line, b.character)


def _touches(finding: Finding, uri: str, range_: types.Range) -> bool:
    return finding.uri == uri and _before(finding.range.start, range_.end) and _before(range_.start, finding.range.end)


def noqa_line(source: str, diagnostic: Diagnostic) -> tuple[int, str] | None:
    """(line, new text of that line) that adds `# noqa: CODE` for `diagnostic`: on its first line,
    else its last; the new source must really silence it (`Suppressions` decides, as the linter
    does) and still parse, so a line ending inside a string or after a backslash gets nothing."""
    code = diagnostic.code
    if code == "PUR999":
        return None  # a file that does not parse cannot be silenced line by line
    text = Text(source)
    source_parses = parses(source)
    suppressions = Suppressions(source)
    for line in dict.fromkeys((diagnostic.line, diagnostic.end_line)):
        old = text.line(line - 1)
        match = NOQA_COMMENT.search(old) if suppressions.line_codes(line) else None
        new = f"{old[: match.end()]}, {code}{old[match.end() :]}" if match else f"{old.rstrip()}  # noqa: {code}"
        candidate = _replace_line(source, line, new)
        if Suppressions(candidate).suppressed(diagnostic) and (parses(candidate) or not source_parses):
            return line, new
    return None


@dataclass(frozen=True)
class Request:
    """What a code action request asks about, and how the session is set up."""

    uri: str
    range: types.Range
    only: Sequence[str] | None
    config: Config
    encoding: str
    rules_url: str = RULES_URL

    def wants(self, kind: str) -> bool:
        return not self.only or any(kind == k or kind.startswith(k + ".") for k in self.only)


def code_actions(target: Target, findings: Sequence[Finding], request: Request) -> list[types.CodeAction]:
    """Quick fixes for the findings in the range (safe ones preferred, unsafe ones labelled), a
    `# noqa` for each, and one source.fixAll action for the whole file's safe fixes."""
    actions: list[types.CodeAction] = []
    here = [f for f in findings if _touches(f, request.uri, request.range)]
    if request.wants(types.CodeActionKind.QuickFix.value):
        for finding in here:
            d = finding.diagnostic
            new = target.apply(d.fix) if d.fix is not None else None
            if d.fix is None or new is None:
                continue
            unsafe = d.fix.applicability == "unsafe"
            actions.append(
                types.CodeAction(
                    title=f"Fix {d.code}: {d.fix.message}" + (" (unsafe fix: review it)" if unsafe else ""),
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[finding.lsp(request.rules_url)],
                    is_preferred=not unsafe,
                    edit=types.WorkspaceEdit(changes=target.changes(new, request.encoding)),
                )
            )
        for finding in here:
            d = finding.diagnostic
            found = noqa_line(target.source, d)
            changes = target.line_changes(*found, request.encoding) if found else None
            if changes:
                actions.append(
                    types.CodeAction(
                        title=f"Suppress {d.code} with `# noqa: {d.code}`",
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[finding.lsp(request.rules_url)],
                        edit=types.WorkspaceEdit(changes=changes),
                    )
                )
    safe = any(f.diagnostic.fix is not None and f.diagnostic.fix.applicability == "safe" for f in findings)
    if safe and request.wants(FIX_ALL):
        try:
            changes = target.changes(target.fix_all(request.config), request.encoding)
        except RuleCrash:  # fixing re-lints, and a broken rule (already logged) breaks that
            changes = {}
        if any(changes.values()):
            actions.append(
                types.CodeAction(
                    title="Fix all safe purelint findings in this file",
                    kind=FIX_ALL,
                    edit=types.WorkspaceEdit(changes=changes),
                )
            )
    return actions


def hover(findings: Sequence[Finding], uri: str, position: types.Position) -> types.Hover | None:
    """The documentation of the rules whose findings cover `position` (`purelint rule CODE`'s text)."""
    point = types.Range(start=position, end=position)
    hits = [f for f in findings if _touches(f, uri, point)]
    if not hits:
        return None
    pages = [get_rule(code).documentation() for code in dict.fromkeys(f.diagnostic.code for f in hits)]
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value="\n---\n\n".join(pages)),
        range=hits[0].range,
    )
