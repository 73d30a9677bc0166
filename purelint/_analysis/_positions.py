"""Where reported nodes are in the source: libcst's PositionProvider ranges, computed only around
findings (see `Positions`)."""

from __future__ import annotations

import ast
from collections.abc import Iterable

import libcst as cst
from libcst.metadata import CodePosition, CodeRange, MetadataWrapper, PositionProvider
from libcst.metadata.position_provider import PositionProvidingCodegenState

from purelint._analysis._cst import cpython_parse, recursion_limit
from purelint._analysis._scopes import ClassInfo, Scope

__all__ = ["Positions"]


class Positions:
    """Syntactic positions (libcst's PositionProvider semantics) for the nodes that get reported.

    Full position metadata costs about twice the parse, so positions are generated only for the
    smallest "unit" around a finding: a def or class that sits directly in the module or in a
    class body, else the top-level statement. Where a unit starts comes from CPython's `ast`
    (cheap); only the unit itself goes through libcst's position-tracking code generator.
    """

    def __init__(self, module: cst.Module, source: str) -> None:
        self.module = module
        self.source = source
        self.ranges: dict[cst.CSTNode, CodeRange] = {}
        self._starts: dict[cst.CSTNode, int] | None = None
        self._done: set[int] = set()
        self._whole = False

    def _unit_starts(self) -> dict[cst.CSTNode, int]:
        if self._starts is None:
            starts: dict[cst.CSTNode, int] = {}
            try:
                ok = _match_lines(self.module.body, cpython_parse(self.source).body, starts)
            except (SyntaxError, ValueError, MemoryError, RecursionError):
                ok = False
            self._starts = starts if ok else {}
        return self._starts

    def get(self, node: cst.CSTNode, top: int, scope: Scope | None = None) -> CodeRange:
        """Range of `node`, which lies in top-level statement `top` (inside function `scope` when known)."""
        found = self.ranges.get(node)
        if found is None:
            self._generate(scope, top)
            found = self.ranges.get(node)
        if found is None and not self._whole:
            self._whole = True
            try:
                with recursion_limit():
                    self.ranges.update(MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider))
            except RecursionError:  # absurdly deep nesting: fall back to the statement's first line
                pass
            found = self.ranges.get(node)
        if found is None:
            unit = self._unit(scope, top)
            line = self._unit_starts().get(unit, 1) + len(getattr(unit, "leading_lines", ())) if unit else 1
            found = CodeRange(CodePosition(line, 0), CodePosition(line, 0))
        return found

    def _unit(self, scope: Scope | None, top: int, classes: list[ClassInfo] | None = None) -> cst.CSTNode | None:
        """The innermost def/class around `scope` whose start line is known, else the top-level
        statement; `classes` collects the classes around that unit (for its indentation)."""
        starts = self._unit_starts()
        unit: cst.CSTNode | None = None
        while isinstance(scope, Scope) and scope.kind != "module":
            if unit is None and scope.node in starts:
                unit = scope.node
            if unit is not None and isinstance(scope, ClassInfo) and classes is not None:
                classes.append(scope)
            scope = scope.parent
        if unit is None and 0 <= top < len(self.module.body) and self.module.body[top] in starts:
            unit = self.module.body[top]
        return unit

    def _generate(self, scope: Scope | None, top: int) -> None:
        starts = self._unit_starts()
        classes: list[ClassInfo] = []
        unit = self._unit(scope, top, classes)
        if unit is None or id(unit) in self._done:
            return
        self._done.add(id(unit))
        indents = [
            c.node.body.indent
            if isinstance(c.node.body, cst.IndentedBlock) and c.node.body.indent is not None  # type: ignore[union-attr]
            else self.module.default_indent
            for c in reversed(classes)
        ]
        try:
            provider = PositionProvider()
            state = PositionProvidingCodegenState(
                default_indent=self.module.default_indent,
                default_newline=self.module.default_newline,
                provider=provider,
            )
            state.line, state.indent_tokens = starts[unit], indents
            with recursion_limit():
                unit._codegen(state)
            self.ranges.update(provider._computed)  # type: ignore[arg-type]  # CodeRange values, computed eagerly
        except Exception:  # private codegen API changed, or deep nesting: `get` falls back
            pass


def _match_lines(body: Iterable[cst.BaseStatement], nodes: list[ast.stmt], starts: dict[cst.CSTNode, int]) -> bool:
    """Pair libcst statements with CPython's (one libcst line may hold several `;` statements) and
    record the first line of each libcst statement's code, leading comments included. Class
    bodies are paired too. False when the two trees disagree."""
    index = 0
    for statement in body:
        if index >= len(nodes):
            return False
        node = nodes[index]
        if isinstance(statement, cst.SimpleStatementLine):
            index += len(statement.body)
            line = node.lineno
        else:
            index += 1
            name = getattr(statement, "name", None)
            if isinstance(name, cst.Name) and getattr(node, "name", None) != name.value:
                return False
            decorators = getattr(node, "decorator_list", None)
            line = decorators[0].lineno if decorators else node.lineno
            if isinstance(statement, cst.ClassDef) and isinstance(statement.body, cst.IndentedBlock):
                if not isinstance(node, ast.ClassDef) or not _match_lines(statement.body.body, node.body, starts):
                    return False
        starts[statement] = line - len(statement.leading_lines)
    return index == len(nodes)
