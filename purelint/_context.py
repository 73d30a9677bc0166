"""`Context`: everything a rule may ask about the file it checks, and how it reports.

A rule sees the file (`source`, `path`, `module`, `config`), where it is (`function`, `parent`,
`is_store`, `scope`), name resolution from there (`qualname`, `binding_kind`, ...), the file's facts
(value kinds, taint, NNX objects, module state, key reuse: `purelint._analysis._facts`), and
`report`. The semantic model behind these stays private: rules ask the context, never the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import libcst as cst
from libcst.metadata import CodeRange

from purelint._analysis._cst import mutation_root, mutation_targets
from purelint._analysis._facts import Facts
from purelint._analysis._globals import is_flags, is_ref
from purelint._analysis._imports import reference
from purelint._analysis._keys import Reuse
from purelint._analysis._model import SemanticModel
from purelint._analysis._nnx import hijax_file, hijax_update, nnx_traced, nnx_value
from purelint._analysis._positions import Positions
from purelint._analysis._scopes import ClassInfo, FunctionInfo, Scope
from purelint._analysis._taint import Taint
from purelint._analysis._tracing import caches_program
from purelint._diagnostic import Edit, Fix
from purelint._frameworks import JAX_LIBRARIES

__all__ = ["Context", "Where", "build_fix"]

# Where a node lies when it is not in the function being checked: (top-level statement index, scope).
Where = tuple[int, "Scope | None"]


def build_fix(applicability: str, message: str, edits: Iterable[Edit | None]) -> Fix:
    """A fix from edits, leaving out the `None`s that `Context.reference` gives when nothing is imported."""
    return Fix(applicability, message, tuple(e for e in edits if e is not None))


class Context:
    """What a rule sees while it runs: the file, the innermost function around the node being
    visited, name resolution from that function, the file's facts, and `report`."""

    def __init__(self, model: SemanticModel, source: str, path: str, config: Any) -> None:
        self._model = model
        self._facts = Facts(model)
        self.module = model.module
        self.source = source
        self.path = path
        self.config = config
        self.function: FunctionInfo = None  # type: ignore[assignment]
        self.parent: cst.CSTNode | None = None
        self.is_store = False
        self.rule: Any = None  # the rule running now (a `purelint._rule.Rule`)
        self.top = 0
        self.positions = Positions(model.module, source)
        self.line_names: Callable[[int], str] = lambda line: f"line {line}"
        # (rule, node, top-level statement index, message, fix, traced) per report, in order
        self.pending: list[tuple[Any, cst.CSTNode, int, str, Fix | None, bool]] = []
        self.pending_functions: list[Scope | None] = []  # the function around each pending report
        self._defs: dict[int, FunctionInfo] | None = None

    # -- where the rule is -----------------------------------------------------------------------

    @property
    def traced(self) -> bool:
        return self.function is not None and self.function.traced

    @property
    def scope(self) -> Scope:
        """The innermost function being checked, or the module for module-level statements."""
        return self.function if self.function is not None else self._model.module_scope

    @property
    def module_scope(self) -> Scope:
        return self._model.module_scope

    @property
    def imports_jax(self) -> bool:
        """The file imports JAX or a library built on it (`JAX_LIBRARIES`), at any level."""
        model = self._model
        scopes = [model.module_scope, *model.functions, *model.classes]
        return any(target.partition(".")[0] in JAX_LIBRARIES for s in scopes for target in s.imports.values())

    def function_of(self, node: cst.CSTNode) -> FunctionInfo | None:
        """The function a `def` node defines."""
        if self._defs is None:
            self._defs = {id(fn.node): fn for fn in self._model.functions}
        return self._defs.get(id(node))

    # -- names -----------------------------------------------------------------------------------

    def qualname(self, expr: cst.CSTNode, scope: Scope | None = None) -> str | None:
        """The qualified name `expr` refers to ("jax.numpy.zeros", "builtins.len"), seen from
        `scope` (by default the current one); None for local values."""
        return self._model.qualname(expr, scope or self.scope)

    def binding_kind(self, name: str) -> str | None:
        """ "param", "local", "enclosing", "module", "import", "builtin" or None (see
        `SemanticModel.binding_kind`)."""
        return self._model.binding_kind(name, self.scope)

    def value_qualnames(self, name: str) -> set[str]:
        """Qualified names of the calls whose results are assigned to `name` where it is bound."""
        return self._model.value_qualnames(name, self.scope)

    def assigned_values(self, name: str, scope: Scope | None = None) -> Sequence[cst.BaseExpression]:
        """The right-hand sides of the plain `name = value` assignments where `name` is bound."""
        return self._model.assigned_values(name, scope or self.scope)[1]

    def class_named(self, expr: cst.BaseExpression, scope: Scope | None = None) -> ClassInfo | None:
        """The same-file class a name refers to."""
        return self._model.class_named(expr, scope or self.scope)

    def calls_named(self, name: str) -> list[tuple[cst.Call, Scope]]:
        """Every `name(...)` call in the file, with the scope it is in."""
        return self._model.calls_named(name)

    # -- facts -----------------------------------------------------------------------------------

    def kind(self, expr: cst.BaseExpression, statement: cst.CSTNode | None = None) -> str | None:
        """The value kind of `expr` (see `purelint._analysis._values`) just before `statement` (by
        default the statement around the node being visited, when it is a simple statement)."""
        statement = statement if statement is not None else self.parent
        return self._facts.kind_at(statement, expr, self.scope)  # type: ignore[arg-type]

    def taint(self, fn: FunctionInfo, branching: bool = False) -> Taint:
        """Which values of `fn` are tracers; `branching`: only those without a concrete value."""
        return self._facts.taint(fn, branching)

    def nodes(self, fn: FunctionInfo) -> list[cst.CSTNode]:
        """The nodes of `fn`'s body in source order, nested functions and classes excluded."""
        return self._facts.nodes(fn)

    def mutations(self, node: cst.CSTNode) -> list[tuple[cst.BaseExpression, cst.Name, str | None]]:
        """(target, root variable, its binding kind) for each in-place change `node` makes
        (see `mutation_targets`; the node is the one being visited, its parent is `parent`)."""
        found = []
        for target in mutation_targets(node, self.parent):
            root = mutation_root(target)
            if root is not None:
                found.append((target, root, self.binding_kind(root.value)))
        return found

    def key_reuse(self) -> list[Reuse]:
        """PRNG keys consumed twice in the current function (or the module's top-level code)."""
        return self._facts.key_reuse(self.scope)

    def nnx_params(self, fn: FunctionInfo) -> dict[str, str]:
        """Parameters of `fn` known to hold NNX objects: name -> "optimizer" or "module"."""
        return self._facts.nnx_params(fn)

    def nnx_value(self, name: str, scope: Scope | None = None) -> str | None:
        """ "optimizer"/"module" when every value bound to `name` is built by an NNX constructor."""
        return nnx_value(name, scope or self.scope, self._model)

    @staticmethod
    def nnx_traced(fn: FunctionInfo) -> bool:
        """Traced by a Flax NNX transform, which keeps NNX objects' state updates."""
        return nnx_traced(fn)

    @property
    def hijax(self) -> bool:
        """The file makes NNX Variables hijax: plain `jax.jit` keeps their updates."""
        return hijax_file(self.source)

    def hijax_update(self, target: cst.CSTNode) -> bool:
        """An update (`optimizer.update(...)`, `v[...] += 1`) that hijax Variables keep under `jax.jit`."""
        return hijax_update(target, self.source)

    def is_ref(self, name: str) -> bool:
        """`name` is bound to a mutable `jax.new_ref(...)` Ref."""
        return is_ref(name, self.scope, self._model)

    def is_flags(self, name: str) -> bool:
        """A module-level name bound to absl flags: set once at start-up."""
        return is_flags(name, self._model)

    @property
    def module_rebound(self) -> set[str]:
        """Module-level names some function rebinds through `global`."""
        return self._model.module_rebound

    def module_mutated(self) -> set[str]:
        """Module-level objects ("G") and attributes ("G.attr") some function mutates in place."""
        return self._facts.module_mutated()

    def module_reassigned(self) -> set[str]:
        """Module-level names assigned by more than one top-level statement."""
        return self._facts.module_reassigned()

    def caches_program(self, fn: FunctionInfo | None) -> bool:
        """`fn` (or a function around it) is compiled once and cached, so a later rebinding of a
        global it reads leaves it stale (see `_tracing.caches_program`)."""
        return caches_program(fn, self._model)

    # -- reporting -------------------------------------------------------------------------------

    def position(self, node: cst.CSTNode, at: Where | None = None) -> CodeRange:
        """libcst CodeRange of a node (1-based lines, 0-based columns) in the current function, or
        at `at` = (top-level statement index, scope) when the node lies elsewhere."""
        top, scope = at if at is not None else (self.top, self.function)
        return self.positions.get(node, top, scope)

    def line_of(self, node: cst.CSTNode) -> str:
        """How a message names the line of `node`: "line 7" (in notebooks, the line in its cell)."""
        return self.line_names(self.position(node).start.line)

    def edit(self, node: cst.CSTNode, content: str, at: Where | None = None) -> Edit:
        """An edit replacing `node`'s text by `content` (`at` as for `position`)."""
        where = self.position(node, at)
        return Edit(where.start.line, where.start.column + 1, where.end.line, where.end.column + 1, content)

    def reference(self, qualname: str) -> tuple[str, Edit | None]:
        """How to spell `qualname` in this file, and the import edit to add when nothing binds it
        yet (existing aliases win; see `purelint._analysis._imports.reference`)."""
        return reference(self._model, qualname)

    def report(
        self,
        node: cst.CSTNode,
        message: str | None = None,
        *,
        fix: Fix | None = None,
        at: Where | None = None,
        **fmt: Any,
    ) -> None:
        """Report the current rule at `node` (in the current function, or at `at`, see `position`).
        The message defaults to the rule's (its `untraced_message` in code JAX does not trace),
        formatted with `fmt`."""
        where = at[1].function() if at is not None and at[1] is not None else self.function
        traced = where is not None and where.traced
        text = message
        if text is None:
            text = self.rule.message if traced or not self.rule.untraced_message else self.rule.untraced_message
        if fmt:
            text = text.format(**fmt)
        top, scope = at if at is not None else (self.top, self.function)
        self.pending.append((self.rule, node, top, text, fix, traced))
        self.pending_functions.append(scope)
