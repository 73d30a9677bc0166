"""Scopes, bindings and name resolution of one module, from one iterative walk over its libcst tree.

The walk records scopes (module, classes, functions, lambdas), what each binds (assignments,
parameters, imports, defs, classes, `global`/`nonlocal`), the right-hand sides assigned to names,
calls, and the nodes the enabled rules asked for (`SemanticModel.events`, with the innermost scope,
the parent node, the top-level statement and whether the node is an assignment target). No libcst
metadata providers: resolution follows Python's LEGB rules over these records.

Example:
    >>> import libcst as cst
    >>> model = build_model(cst.parse_module("import jax.numpy as jnp\\ndef f(x):\\n    return jnp.sin(x)\\n"))
    >>> (fn,) = model.functions
    >>> model.qualname(fn.calls[0].func, fn), model.binding_kind("x", fn), model.binding_kind("len", fn)
    ('jax.numpy.sin', 'param', 'builtin')
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Sequence

import libcst as cst

from purelint._analysis._cst import bound_names, chain, code_fields, dotted, parameters
from purelint._analysis._scopes import ClassInfo, FunctionInfo, Scope

__all__ = ["ANALYSIS_TYPES", "Event", "SemanticModel", "build_model"]

_BUILTINS = frozenset(dir(builtins))
# Node kinds the analysis itself needs (call sites, mutations), whatever the rules want.
ANALYSIS_TYPES = frozenset({"Call", "AssignTarget", "AugAssign", "Del"})
# Assignment targets: the named field of these nodes binds names.
_STORE_FIELDS = {
    cst.AssignTarget: "target",
    cst.AugAssign: "target",
    cst.AnnAssign: "target",
    cst.For: "target",
    cst.CompFor: "target",
    cst.NamedExpr: "target",
    cst.Del: "target",
}
# Store context flows through unpacking (`a, (b, *c) = ...`), not into `x[i]` or `x.a`.
_STORE_THROUGH = frozenset({cst.Tuple, cst.List, cst.Element, cst.StarredElement})

# (node, innermost scope, parent node, index of the top-level statement, store context)
Event = tuple[cst.CSTNode, Scope, "cst.CSTNode | None", int, bool]


class SemanticModel:
    """Scopes, bindings and name resolution of one parsed module (`build_model` fills it in)."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.module_scope = Scope(None, module)
        self.functions: list[FunctionInfo] = []
        self.classes: list[ClassInfo] = []
        self.lambdas: dict[cst.Lambda, FunctionInfo] = {}
        self.events: list[Event] = []
        self.module_rebound: set[str] = set()  # module names rebound from functions via `global`
        self.calls_by_name: dict[str, list[tuple[cst.Call, Scope]]] = {}  # `name(...)` calls, in order

    def lookup(self, name: str, scope: Scope) -> Scope | None:
        """The scope that binds `name` as seen from `scope` (Python's LEGB rules), None if unbound."""
        current: Scope | None = scope
        first = True
        while current is not None:
            if isinstance(current, FunctionInfo) and name in current.globals:
                current = self.module_scope
            if current.kind == "class" and not first:
                current = current.parent
                continue
            if name in current.locals:
                return current
            first = False
            current = current.parent
        return None

    def qualname(self, expr: cst.CSTNode, scope: Scope) -> str | None:
        """The qualified name an expression refers to through imports ("jax.numpy.zeros"), or
        "builtins.<name>" for an unshadowed builtin; None for local values and anything else."""
        base, attrs = chain(expr)  # type: ignore[arg-type]
        if type(base) is not cst.Name:
            return None
        name = base.value  # type: ignore[attr-defined]
        where = self.lookup(name, scope)
        if where is None:
            qualname = f"builtins.{name}" if name in _BUILTINS else None
        else:
            qualname = where.imports.get(name)
        return ".".join([qualname, *attrs]) if qualname and attrs else qualname

    def binding_kind(self, name: str, scope: Scope) -> str | None:
        """How `name` is bound as seen from `scope`: "param" (an unrebound parameter of the innermost
        function), "local", "enclosing" (an outer function's variable), "module", "import",
        "builtin", or None when it is bound nowhere."""
        where = self.lookup(name, scope)
        if where is None:
            return "builtin" if name in _BUILTINS else None
        if name in where.imports:
            return "import"
        if where is self.module_scope:
            return "module"
        if where is not scope.function():
            return "enclosing"
        if isinstance(where, FunctionInfo) and name in where.params and name not in where.assigned:
            return "param"
        return "local"

    def assigned_values(self, name: str, scope: Scope) -> tuple[Scope | None, Sequence[cst.BaseExpression]]:
        """The scope that binds `name` as seen from `scope`, and the right-hand sides of the plain
        `name = value` assignments there."""
        where = self.lookup(name, scope)
        return where, where.values.get(name, ()) if where is not None else ()

    def value_qualnames(self, name: str, scope: Scope) -> set[str]:
        """Qualified names of the calls whose results are assigned to `name` where it is bound."""
        where, values = self.assigned_values(name, scope)
        found = set()
        for value in values:
            while isinstance(value, (cst.Call, cst.Subscript, cst.Attribute)) and not (
                isinstance(value, cst.Attribute) and self.qualname(value, where)  # type: ignore[arg-type]
            ):
                value = value.func if isinstance(value, cst.Call) else value.value
            qualname = self.qualname(value, where)  # type: ignore[arg-type]
            if qualname:
                found.add(qualname)
        return found

    def class_named(self, expr: cst.BaseExpression, scope: Scope) -> ClassInfo | None:
        """The same-file class a name refers to."""
        if isinstance(expr, cst.Name):
            where = self.lookup(expr.value, scope)
            if where is not None:
                return where.classes.get(expr.value)
        return None

    def instance_class(self, name: str, scope: Scope) -> ClassInfo | None:
        """The same-file class `name` is an instance of, when every assignment to it is `Class(...)`."""
        where, values = self.assigned_values(name, scope)
        classes = {self.class_named(v.func, where) if isinstance(v, cst.Call) else None for v in values}  # type: ignore[arg-type]
        if len(classes) == 1:
            return classes.pop()
        return None

    def base_classes(self, info: ClassInfo) -> list[ClassInfo]:
        """The same-file classes among the bases of `info`."""
        bases = []
        for arg in info.node.bases:  # type: ignore[union-attr]
            found = self.class_named(arg.value, info.parent)  # type: ignore[arg-type]
            if found is not None:
                bases.append(found)
        return bases

    def _methods(self, info: ClassInfo, name: str, seen: set[int]) -> list[FunctionInfo]:
        if id(info) in seen:
            return []
        seen.add(id(info))
        found = list(info.defs.get(name, ()))
        if not found:
            for base in self.base_classes(info):
                found += self._methods(base, name, seen)
        return found

    def function_refs(self, expr: cst.BaseExpression, scope: Scope, top: int | None = None) -> list[FunctionInfo]:
        """Same-file functions an expression may stand for: a name, a lambda, `self.method`,
        `obj.method` (obj built from a same-file class), `partial(f, ...)`, or a list/tuple of those
        (lax.switch branches). With `top` (the module statement the expression is in), a module-level
        name redefined several times means the def bound at that point, as a notebook runs it."""
        if isinstance(expr, cst.Lambda):
            return [self.lambdas[expr]] if expr in self.lambdas else []
        if isinstance(expr, cst.Name):
            where = self.lookup(expr.value, scope)
            found = list(where.defs.get(expr.value, ())) if where else []
            if len(found) > 1 and top is not None and where is self.module_scope and scope is self.module_scope:
                before = [fn for fn in found if fn.top < top]
                found = before[-1:] or found
            return found
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
            fn = scope.function()
            if fn is not None and fn.class_info is not None and expr.value.value == fn.self_name:
                return self._methods(fn.class_info, expr.attr.value, set())
            info = self.instance_class(expr.value.value, scope)
            return self._methods(info, expr.attr.value, set()) if info is not None else []
        if isinstance(expr, (cst.List, cst.Tuple)):
            return [ref for element in expr.elements for ref in self.function_refs(element.value, scope, top)]
        if isinstance(expr, cst.Call) and self.qualname(expr.func, scope) == "functools.partial" and expr.args:
            return self.function_refs(expr.args[0].value, scope, top)
        return []

    def calls_named(self, name: str) -> list[tuple[cst.Call, Scope]]:
        """Every `name(...)` call in the file, with the scope it is in."""
        return self.calls_by_name.get(name, [])


def build_model(module: cst.Module, wanted: Iterable[str] = ()) -> SemanticModel:
    """Walk `module` once and return its model; `wanted` names the libcst node classes (besides
    `ANALYSIS_TYPES`) whose nodes go into `events`."""
    model = SemanticModel(module)
    builder = _Builder(model, frozenset(wanted) | ANALYSIS_TYPES)
    for top, statement in enumerate(module.body):
        builder.walk(statement, top)
    return model


Push = Callable[[tuple[cst.CSTNode, Scope, "cst.CSTNode | None", bool]], None]


class _Builder:
    """The walk: an explicit stack (deep nesting cannot exhaust Python's), source order."""

    def __init__(self, model: SemanticModel, wanted: frozenset[str]) -> None:
        self.model = model
        self.wanted = wanted

    def walk(self, root: cst.CSTNode, top: int) -> None:
        model = self.model
        stack: list[tuple[cst.CSTNode, Scope, cst.CSTNode | None, bool]] = [(root, model.module_scope, None, False)]
        events, wanted, push = model.events, self.wanted, stack.append
        while stack:
            node, scope, parent, store = stack.pop()
            cls = type(node)
            if cls.__name__ in wanted:
                events.append((node, scope, parent, top, store))
            special = _SPECIAL.get(cls)
            if special is not None:
                special(self, node, scope, store, push, top)
                continue
            through = store and cls in _STORE_THROUGH
            store_field = _STORE_FIELDS.get(cls)
            for name in code_fields(cls):
                value = getattr(node, name)
                child_store = through or name == store_field
                if isinstance(value, cst.CSTNode):
                    push((value, scope, node, child_store))
                elif type(value) is tuple or type(value) is list:
                    for item in reversed(value):
                        if isinstance(item, cst.CSTNode):
                            push((item, scope, node, child_store))
            if cls is cst.Assign:
                for target in node.targets:  # type: ignore[attr-defined]
                    if isinstance(target.target, cst.Name):
                        scope.values.setdefault(target.target.value, []).append(node.value)  # type: ignore[attr-defined]
                    elif isinstance(target.target, cst.Tuple):
                        for index, element in enumerate(target.target.elements):
                            if isinstance(element.value, cst.Name):
                                scope.unpacked.setdefault(element.value.value, []).append((node.value, index))  # type: ignore[attr-defined]
            elif cls is cst.Call:
                fn = scope.function()
                if fn is not None:
                    fn.calls.append(node)  # type: ignore[arg-type]
                if type(node.func) is cst.Name:  # type: ignore[attr-defined]
                    model.calls_by_name.setdefault(node.func.value, []).append((node, scope))  # type: ignore[arg-type]
            elif cls is cst.NamedExpr and isinstance(scope, FunctionInfo):
                scope.walrus.update(bound_names(node.target))  # type: ignore[attr-defined]

    def _bind(self, scope: Scope, name: str) -> None:
        if isinstance(scope, FunctionInfo):
            if name in scope.globals:
                scope.global_stores.add(name)
                self.model.module_rebound.add(name)
                scope = self.model.module_scope
            elif name in scope.nonlocals:
                scope.nonlocal_stores.add(name)
                return
        scope.locals.add(name)
        scope.assigned.add(name)

    def _name(self, node: cst.Name, scope: Scope, store: bool, push: Push, top: int) -> None:
        if store:
            self._bind(scope, node.value)

    def _new_function(self, node: cst.FunctionDef | cst.Lambda, scope: Scope, push: Push, top: int) -> FunctionInfo:
        fn = FunctionInfo(scope, node, top)
        self.model.functions.append(fn)
        outer = scope.function()
        if outer is not None:
            outer.children.append(fn)
        every = parameters(node.params)
        fn.params = [p.name.value for p in every]
        fn.positional = [p.name.value for p in (*node.params.posonly_params, *node.params.params)]
        fn.locals.update(fn.params)
        push((node.body, fn, node, False))
        for param in reversed(every):  # defaults and annotations belong to the enclosing scope
            if param.annotation is not None:
                push((param.annotation, scope, param, False))
            if param.default is not None:
                push((param.default, scope, param, False))
        return fn

    def _function_def(self, node: cst.FunctionDef, scope: Scope, store: bool, push: Push, top: int) -> None:
        if node.returns is not None:
            push((node.returns, scope, node, False))
        fn = self._new_function(node, scope, push, top)
        for decorator in reversed(node.decorators):
            push((decorator, scope, node, False))
        self._bind(scope, fn.name)
        scope.defs.setdefault(fn.name, []).append(fn)

    def _lambda(self, node: cst.Lambda, scope: Scope, store: bool, push: Push, top: int) -> None:
        self.model.lambdas[node] = self._new_function(node, scope, push, top)

    def _class_def(self, node: cst.ClassDef, scope: Scope, store: bool, push: Push, top: int) -> None:
        info = ClassInfo(scope, node)
        self.model.classes.append(info)
        push((node.body, info, node, False))
        for part in reversed([*node.decorators, *node.bases, *node.keywords]):
            push((part, scope, node, False))
        self._bind(scope, info.name)
        scope.classes[info.name] = info

    def _import(self, node: cst.Import, scope: Scope, store: bool, push: Push, top: int) -> None:
        for alias in node.names:
            full = dotted(alias.name) or ""
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
                scope.imports[local] = full
            else:
                local = full.split(".")[0]
                scope.imports[local] = local
            scope.locals.add(local)

    def _import_from(self, node: cst.ImportFrom, scope: Scope, store: bool, push: Push, top: int) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        dots = "." * len(node.relative)
        package = dotted(node.module) if node.module is not None else None
        for alias in node.names:
            name = dotted(alias.name) or ""
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            scope.imports[local] = f"{dots}{package}.{name}" if package else f"{dots}{name}"
            scope.locals.add(local)

    def _global(self, node: cst.Global | cst.Nonlocal, scope: Scope, store: bool, push: Push, top: int) -> None:
        if isinstance(scope, FunctionInfo):
            names = {item.name.value for item in node.names}
            (scope.globals if isinstance(node, cst.Global) else scope.nonlocals).update(names)

    def _attribute(self, node: cst.Attribute, scope: Scope, store: bool, push: Push, top: int) -> None:
        push((node.value, scope, node, False))  # `.attr` is not a variable reference

    def _arg(self, node: cst.Arg, scope: Scope, store: bool, push: Push, top: int) -> None:
        push((node.value, scope, node, False))  # nor is a keyword name

    def _as_name(self, node: cst.AsName, scope: Scope, store: bool, push: Push, top: int) -> None:
        push((node.name, scope, node, True))


_SPECIAL: dict[type, Callable[..., None]] = {
    cst.Name: _Builder._name,
    cst.FunctionDef: _Builder._function_def,
    cst.Lambda: _Builder._lambda,
    cst.ClassDef: _Builder._class_def,
    cst.Import: _Builder._import,
    cst.ImportFrom: _Builder._import_from,
    cst.Global: _Builder._global,
    cst.Nonlocal: _Builder._global,
    cst.Attribute: _Builder._attribute,
    cst.Arg: _Builder._arg,
    cst.AsName: _Builder._as_name,
}
