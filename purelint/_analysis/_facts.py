"""`Facts`: what the rules read about one file beyond its scopes and trace routes, computed on first
use, once (per function where it is per function), and shared by every rule; rules never recompute
these facts, nor edit them.

- value kinds (`purelint._analysis._values`): what each name holds before each statement;
- taint (`purelint._analysis._taint`): which values of a traced function are tracers;
- Flax NNX objects among a function's parameters (`purelint._analysis._nnx`);
- module-level state that functions mutate or the module rebinds (`purelint._analysis._globals`);
- PRNG keys consumed twice (`purelint._analysis._keys`).
"""

from __future__ import annotations

import libcst as cst

from purelint._analysis._cst import function_nodes, parameters
from purelint._analysis._globals import module_mutated, module_reassigned
from purelint._analysis._key_calls import same_file_helpers
from purelint._analysis._keys import Reuse, Use, find_key_reuse, module_consumed
from purelint._analysis._model import SemanticModel
from purelint._analysis._nnx import nnx_params
from purelint._analysis._scopes import FunctionInfo, Scope
from purelint._analysis._taint import Taint, traced_params
from purelint._analysis._values import ValueKinds, annotation_kind

__all__ = ["Facts"]


class Facts:
    """Read-only facts of one file, computed on first use and shared by every rule."""

    def __init__(self, model: SemanticModel) -> None:
        self.model = model
        self._kinds: dict[int, ValueKinds] = {}
        self._taint: dict[tuple[int, bool], Taint] = {}
        self._nodes: dict[int, list[cst.CSTNode]] = {}
        self._nnx_params: dict[int, dict[str, str]] = {}
        self._mutated: set[str] | None = None
        self._reassigned: set[str] | None = None
        self._module_keys: dict[str, Use] | None = None

    def taint(self, fn: FunctionInfo, branching: bool = False) -> Taint:
        """The taint facts of `fn`; `branching`: only tracers without concrete values (see `traced_params`)."""
        found = self._taint.get((id(fn), branching))
        if found is None:
            found = self._taint[(id(fn), branching)] = Taint(fn, self.model, self.nodes(fn), self.nnx_params, branching)
        return found

    def nodes(self, fn: FunctionInfo) -> list[cst.CSTNode]:
        """The nodes of `fn`'s body in source order, nested functions and classes excluded."""
        found = self._nodes.get(id(fn))
        if found is None:
            found = self._nodes[id(fn)] = list(function_nodes(fn.node.body))  # type: ignore[union-attr]
        return found

    def nnx_params(self, fn: FunctionInfo) -> dict[str, str]:
        """`nnx_params(fn)`, once per function (read by the taint facts and by PUR104/PUR302)."""
        found = self._nnx_params.get(id(fn))
        if found is None:
            found = self._nnx_params[id(fn)] = nnx_params(fn, self.model)
        return found

    def module_mutated(self) -> set[str]:
        """See `_globals.module_mutated`."""
        if self._mutated is None:
            self._mutated = module_mutated(self.model)
        return self._mutated

    def module_reassigned(self) -> set[str]:
        """See `_globals.module_reassigned`."""
        if self._reassigned is None:
            self._reassigned = module_reassigned(self.model)
        return self._reassigned

    def key_reuse(self, scope: Scope) -> list[Reuse]:
        """PRNG keys consumed twice in the function `scope` (or in the module's top-level code)."""
        model = self.model
        resolve = lambda e: model.qualname(e, scope)  # noqa: E731
        if not isinstance(scope, FunctionInfo):
            return find_key_reuse(model.module, resolve, same_file_helpers(model, scope))
        if self._module_keys is None:
            module_scope = model.module_scope
            self._module_keys = module_consumed(
                model.module, lambda e: model.qualname(e, module_scope), same_file_helpers(model, module_scope)
            )
        # Module keys this function reads as globals (not its own names, nor an enclosing function's).
        outer = {
            name: use for name, use in self._module_keys.items() if model.lookup(name, scope) is model.module_scope
        }
        return find_key_reuse(scope.node, resolve, same_file_helpers(model, scope), outer)  # type: ignore[arg-type]

    def value_kinds(self, scope: Scope) -> ValueKinds:
        """Value kinds of the function `scope` is in (or of the module body)."""
        fn = scope.function()
        key = id(fn)
        found = self._kinds.get(key)
        if found is None:
            found = self._kinds[key] = self._build(fn)
        return found

    def kind_at(self, statement: cst.CSTNode, expr: cst.BaseExpression, scope: Scope) -> str | None:
        """The kind of `expr` evaluated just before `statement` (a small or compound statement)."""
        kinds = self.value_kinds(scope)
        return kinds.kind(expr, kinds.before(statement))

    def _build(self, fn: FunctionInfo | None) -> ValueKinds:
        model = self.model

        def framework(expr: cst.BaseExpression) -> str | None:
            info = model.class_named(expr, fn or model.module_scope)
            return info.framework if info is not None else None

        if fn is None:
            return ValueKinds(
                model.module.body,
                lambda e: model.qualname(e, model.module_scope),
                classes=framework,
                unknown=frozenset(model.module_rebound),
            )
        resolve = lambda e: model.qualname(e, fn)  # noqa: E731
        params: dict[str, str] = {}
        traced = traced_params(fn) if fn.traced else set()
        node = fn.node
        if not fn.is_lambda and node.params.star_kwarg is not None:  # type: ignore[union-attr]
            params[node.params.star_kwarg.name.value] = "kwargs"  # type: ignore[union-attr]
        for param in parameters(node.params, star_kwarg=False):  # type: ignore[union-attr]
            name = param.name.value
            declared = annotation_kind(param.annotation.annotation, resolve) if param.annotation is not None else None
            if declared == "array":
                params[name] = "array" if name in traced else "declared-array"
            elif declared is not None:
                params[name] = declared
            elif name in traced:
                params[name] = "traced"
        info = fn.class_info
        if info is not None and fn.self_name and info.framework in ("nnx", "nnx-variable"):
            params[fn.self_name] = "nnx-object" if info.framework == "nnx" else "nnx-variable"
        unknown = set(fn.walrus) | fn.globals | fn.nonlocals
        for child in fn.children:
            unknown |= child.nonlocals
        body = node.body
        statements = body.body if isinstance(body, cst.BaseSuite) else []
        return ValueKinds(statements, resolve, params, framework, frozenset(unknown))
