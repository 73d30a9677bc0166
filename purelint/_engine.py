"""Parse once, resolve names through imports, work out what JAX traces, then run the rules.

One iterative walk over the libcst tree records scopes (module, classes, functions, lambdas),
bindings and imports, and the nodes the enabled rules asked for. Name resolution and trace-scope
analysis then run over those records, and the rules are dispatched over them: no second walk, no
libcst metadata providers (positions are computed only for the statements that hold findings).
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import re
import sys
import warnings
from contextlib import contextmanager
from typing import Any
from collections.abc import Iterable, Iterator

import libcst as cst
from libcst.metadata import CodePosition, CodeRange, MetadataWrapper, PositionProvider
from libcst.metadata.position_provider import PositionProvidingCodegenState

from purelint._diagnostic import Diagnostic, Fix
from purelint._noqa import Suppressions
from purelint._rule import Rule

__all__ = [
    "INIT_METHODS",
    "JIT_LIKE",
    "LAX_BODIES",
    "Analysis",
    "ClassInfo",
    "Context",
    "FunctionInfo",
    "RuleCrash",
    "Scope",
    "check_source",
    "mutation_root",
]

JIT_LIKE = frozenset(
    {
        "jax.jit",
        "jax.grad",
        "jax.value_and_grad",
        "jax.vmap",
        "jax.pmap",
        "jax.checkpoint",
        "jax.remat",
        "jax.ad_checkpoint.checkpoint",
        "jax.custom_jvp",
        "jax.custom_vjp",
        "jax.jacfwd",
        "jax.jacrev",
        "jax.hessian",
        "equinox.filter_jit",
        "equinox.filter_grad",
        "equinox.filter_value_and_grad",
        "equinox.filter_vmap",
        "equinox.filter_pmap",
        "equinox.filter_checkpoint",
    }
)
LAX_BODIES = frozenset(
    f"jax.lax.{name}"
    for name in ("scan", "fori_loop", "while_loop", "cond", "switch", "map", "associative_scan")
)
MODULE_BASES = frozenset({"equinox.Module"})
# Methods that run while the module is being built, on concrete Python values.
INIT_METHODS = frozenset({"__init__", "__post_init__", "__check_init__"})
_RULE_DEFINERS = frozenset({"defjvp", "defvjp", "defjvps"})
_BUILTINS = frozenset(dir(builtins))
# A file without these words cannot import a JAX transformation, so nothing in it is traced.
_MAY_TRACE = re.compile(r"\b(?:jax|equinox)\b")

# Fields that hold only whitespace, brackets, commas and operators: never walked.
_SKIP_FIELDS = frozenset(
    ["lpar", "rpar", "leading_lines", "lines_after_decorators", "header", "footer", "comma", "semicolon", "colon", "operator", "equal", "lbracket", "rbracket", "lbrace", "rbrace", "dot", "asynchronous", "star", "posonly_ind", "trailing_whitespace", "type_parameters"]
)
_FIELDS: dict[type, tuple[str, ...]] = {}
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
# Node kinds the analysis itself needs (call sites, mutations), whatever the rules want.
_ANALYSIS_TYPES = frozenset({"Call", "AssignTarget", "AugAssign", "Del"})
_MUTATING_METHODS = frozenset(
    ["append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "sort", "reverse", "add", "discard", "popitem"]
)
# These return a value, so a used result says nothing; the others return None and count only as
# statements (which keeps `opt_state = optimizer.update(...)` from looking like a mutation).
_MUTATING_WITH_RESULT = frozenset({"pop", "popitem", "setdefault"})


def _fields(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(
            f.name
            for f in reversed(dataclasses.fields(cls))
            if f.name not in _SKIP_FIELDS and not f.name.startswith("whitespace")
        )
    return names


def _chain(expr: cst.BaseExpression) -> tuple[cst.BaseExpression, list[str]]:
    """`a.b.c` -> (the innermost value `a`, ["b", "c"]); iterative, chains can be long."""
    attrs = []
    while type(expr) is cst.Attribute:
        attrs.append(expr.attr.value)  # type: ignore[attr-defined]
        expr = expr.value  # type: ignore[attr-defined]
    attrs.reverse()
    return expr, attrs


def dotted(expr: cst.BaseExpression) -> str | None:
    """`a.b.c` -> "a.b.c" for pure Name/Attribute chains, else None."""
    base, attrs = _chain(expr)
    return ".".join([base.value, *attrs]) if isinstance(base, cst.Name) else None


def literal(expr: cst.BaseExpression) -> Any:
    """The Python value of a literal expression (numbers, strings, tuples...), or None."""
    try:
        return ast.literal_eval(cst.Module([]).code_for_node(expr).strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


class Scope:
    """A namespace: the module, a class body, or a function/lambda (see FunctionInfo)."""

    kind = "module"

    def __init__(self, parent: Scope | None, node: cst.CSTNode | None, name: str = "") -> None:
        self.parent = parent
        self.node = node
        self.name = name
        self.locals: set[str] = set()  # every name bound here (params, imports, defs included)
        self.assigned: set[str] = set()  # names (re)bound by assignment, loops, with, def, class
        self.imports: dict[str, str] = {}  # local name -> qualified name
        self.defs: dict[str, list[FunctionInfo]] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.values: dict[str, list[cst.BaseExpression]] = {}  # `name = value` right-hand sides

    def function(self) -> FunctionInfo | None:
        """The innermost function scope at or around this scope."""
        scope: Scope | None = self
        while scope is not None and scope.kind != "function":
            scope = scope.parent
        return scope  # type: ignore[return-value]


class ClassInfo(Scope):
    kind = "class"

    def __init__(self, parent: Scope, node: cst.ClassDef) -> None:
        super().__init__(parent, node, node.name.value)
        self.is_module = False  # an eqx.Module subclass (directly or through same-file bases)


class FunctionInfo(Scope):
    """A def or lambda, with what the trace analysis found out about it.

    `traced`: JAX traces it; `reasons`: (route, detail) pairs saying why ("decorator", "jax.jit"),
    ("call", ...), ("lax", ...), ("module method", class), ("nested", outer), ("called", caller);
    `static_params`: parameters named by static_argnums/static_argnames on every route that traces it;
    `class_info`: the class when it is a method; `params`: all parameter names in order;
    `positional`: the positional ones (what static_argnums indexes).
    """

    kind = "function"

    def __init__(self, parent: Scope, node: cst.FunctionDef | cst.Lambda, top: int) -> None:
        is_def = isinstance(node, cst.FunctionDef)
        super().__init__(parent, node, node.name.value if is_def else "<lambda>")
        self.is_lambda = not is_def
        self.class_info: ClassInfo | None = parent if isinstance(parent, ClassInfo) and is_def else None
        self.top = top
        self.params: list[str] = []
        self.positional: list[str] = []
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()
        self.global_stores: set[str] = set()
        self.nonlocal_stores: set[str] = set()
        self.children: list[FunctionInfo] = []
        self.calls: list[cst.Call] = []
        self.traced = False
        self.reasons: list[tuple[str, str]] = []
        self.static_params: frozenset[str] = frozenset()

    @property
    def is_init(self) -> bool:
        return self.class_info is not None and self.name in INIT_METHODS

    @property
    def self_name(self) -> str | None:
        """The name of the instance parameter of a method (usually `self`)."""
        if self.class_info is None or not self.params:
            return None
        decorators = {dotted(d.decorator) for d in self.node.decorators}  # type: ignore[union-attr]
        return None if decorators & {"staticmethod", "classmethod"} else self.params[0]


class Analysis:
    """Scopes, bindings and trace scope of one parsed module."""

    def __init__(self, module: cst.Module, wanted: Iterable[str] = (), transforms: Iterable[str] = ()) -> None:
        self.module = module
        self.module_scope = Scope(None, module)
        self.functions: list[FunctionInfo] = []
        self.classes: list[ClassInfo] = []
        self.lambdas: dict[cst.Lambda, FunctionInfo] = {}
        # (node, innermost scope, parent node, index of the top-level statement, store context)
        self.events: list[tuple[cst.CSTNode, Scope, cst.CSTNode | None, int, bool]] = []
        self.module_rebound: set[str] = set()  # module names rebound from functions via `global`
        self._mutated: set[str] | None = None
        self._wanted = frozenset(wanted) | _ANALYSIS_TYPES
        self._transforms = JIT_LIKE | frozenset(transforms)
        for top, stmt in enumerate(module.body):
            self._walk(stmt, top)
        self._trace()

    # -- the walk -------------------------------------------------------------------------------

    def _walk(self, root: cst.CSTNode, top: int) -> None:
        stack: list[tuple[cst.CSTNode, Scope, cst.CSTNode | None, bool]] = [(root, self.module_scope, None, False)]
        events, wanted, push = self.events, self._wanted, stack.append
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
            for name in _fields(cls):
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
            elif cls is cst.Call:
                fn = scope.function()
                if fn is not None:
                    fn.calls.append(node)  # type: ignore[arg-type]

    def _bind(self, scope: Scope, name: str) -> None:
        if isinstance(scope, FunctionInfo):
            if name in scope.globals:
                scope.global_stores.add(name)
                self.module_rebound.add(name)
                scope = self.module_scope
            elif name in scope.nonlocals:
                scope.nonlocal_stores.add(name)
                return
        scope.locals.add(name)
        scope.assigned.add(name)

    def _name(self, node: cst.Name, scope: Scope, store: bool, push: Any, top: int) -> None:
        if store:
            self._bind(scope, node.value)

    def _new_function(self, node: cst.FunctionDef | cst.Lambda, scope: Scope, push: Any, top: int) -> FunctionInfo:
        fn = FunctionInfo(scope, node, top)
        self.functions.append(fn)
        outer = scope.function()
        if outer is not None:
            outer.children.append(fn)
        params = node.params
        positional = [*params.posonly_params, *params.params]
        every = [*positional]
        if isinstance(params.star_arg, cst.Param):
            every.append(params.star_arg)
        every += params.kwonly_params
        if params.star_kwarg is not None:
            every.append(params.star_kwarg)
        fn.params = [p.name.value for p in every]
        fn.positional = [p.name.value for p in positional]
        fn.locals.update(fn.params)
        push((node.body, fn, node, False))
        for param in reversed(every):  # defaults and annotations belong to the enclosing scope
            if param.annotation is not None:
                push((param.annotation, scope, param, False))
            if param.default is not None:
                push((param.default, scope, param, False))
        return fn

    def _function_def(self, node: cst.FunctionDef, scope: Scope, store: bool, push: Any, top: int) -> None:
        if node.returns is not None:
            push((node.returns, scope, node, False))
        fn = self._new_function(node, scope, push, top)
        for decorator in reversed(node.decorators):
            push((decorator, scope, node, False))
        self._bind(scope, fn.name)
        scope.defs.setdefault(fn.name, []).append(fn)

    def _lambda(self, node: cst.Lambda, scope: Scope, store: bool, push: Any, top: int) -> None:
        self.lambdas[node] = self._new_function(node, scope, push, top)

    def _class_def(self, node: cst.ClassDef, scope: Scope, store: bool, push: Any, top: int) -> None:
        info = ClassInfo(scope, node)
        self.classes.append(info)
        push((node.body, info, node, False))
        for part in reversed([*node.decorators, *node.bases, *node.keywords]):
            push((part, scope, node, False))
        self._bind(scope, info.name)
        scope.classes[info.name] = info

    def _import(self, node: cst.Import, scope: Scope, store: bool, push: Any, top: int) -> None:
        for alias in node.names:
            full = dotted(alias.name) or ""
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
                scope.imports[local] = full
            else:
                local = full.split(".")[0]
                scope.imports[local] = local
            scope.locals.add(local)

    def _import_from(self, node: cst.ImportFrom, scope: Scope, store: bool, push: Any, top: int) -> None:
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

    def _global(self, node: cst.Global | cst.Nonlocal, scope: Scope, store: bool, push: Any, top: int) -> None:
        if isinstance(scope, FunctionInfo):
            names = {item.name.value for item in node.names}
            (scope.globals if isinstance(node, cst.Global) else scope.nonlocals).update(names)

    def _attribute(self, node: cst.Attribute, scope: Scope, store: bool, push: Any, top: int) -> None:
        push((node.value, scope, node, False))  # `.attr` is not a variable reference

    def _arg(self, node: cst.Arg, scope: Scope, store: bool, push: Any, top: int) -> None:
        push((node.value, scope, node, False))  # nor is a keyword name

    def _as_name(self, node: cst.AsName, scope: Scope, store: bool, push: Any, top: int) -> None:
        push((node.name, scope, node, True))

    # -- resolution -----------------------------------------------------------------------------

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
        base, attrs = _chain(expr)  # type: ignore[arg-type]
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

    def value_qualnames(self, name: str, scope: Scope) -> set[str]:
        """Qualified names of the calls whose results are assigned to `name` where it is bound."""
        where = self.lookup(name, scope)
        found = set()
        for value in where.values.get(name, ()) if where else ():
            while isinstance(value, (cst.Call, cst.Subscript, cst.Attribute)) and not (
                isinstance(value, cst.Attribute) and self.qualname(value, where)
            ):
                value = value.func if isinstance(value, cst.Call) else value.value
            qualname = self.qualname(value, where)
            if qualname:
                found.add(qualname)
        return found

    def module_mutated(self) -> set[str]:
        """Module-level names whose objects some function mutates in place (`G[k] = v`, `G.append(x)`)."""
        if self._mutated is None:
            self._mutated = set()
            for node, scope, parent, _top, _store in self.events:
                if isinstance(scope, FunctionInfo):
                    for target in mutation_targets(node, parent):
                        root = mutation_root(target)
                        if root is not None and self.binding_kind(root.value, scope) == "module":
                            self._mutated.add(root.value)
        return self._mutated

    # -- trace scope ----------------------------------------------------------------------------

    def function_refs(self, expr: cst.BaseExpression, scope: Scope) -> list[FunctionInfo]:
        """Same-file functions an expression may stand for: a name, a lambda, `self.method`,
        `partial(f, ...)`, or a list/tuple of those (lax.switch branches)."""
        if isinstance(expr, cst.Lambda):
            return [self.lambdas[expr]] if expr in self.lambdas else []
        if isinstance(expr, cst.Name):
            where = self.lookup(expr.value, scope)
            return list(where.defs.get(expr.value, ())) if where else []
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
            fn = scope.function()
            if fn is not None and fn.class_info is not None and expr.value.value == fn.self_name:
                return self._methods(fn.class_info, expr.attr.value, set())
            return []
        if isinstance(expr, (cst.List, cst.Tuple)):
            return [ref for element in expr.elements for ref in self.function_refs(element.value, scope)]
        if isinstance(expr, cst.Call) and self.qualname(expr.func, scope) == "functools.partial" and expr.args:
            return self.function_refs(expr.args[0].value, scope)
        return []

    def _methods(self, info: ClassInfo, name: str, seen: set[int]) -> list[FunctionInfo]:
        if id(info) in seen:
            return []
        seen.add(id(info))
        found = list(info.defs.get(name, ()))
        if not found:
            for base in self._base_classes(info):
                found += self._methods(base, name, seen)
        return found

    def _base_classes(self, info: ClassInfo) -> list[ClassInfo]:
        bases = []
        for arg in info.node.bases:  # type: ignore[union-attr]
            if isinstance(arg.value, cst.Name):
                where = self.lookup(arg.value.value, info.parent)  # type: ignore[arg-type]
                if where is not None and arg.value.value in where.classes:
                    bases.append(where.classes[arg.value.value])
        return bases

    def _static(self, args: Iterable[cst.Arg], fn: FunctionInfo) -> frozenset[str]:
        static = set()
        for arg in args:
            keyword = arg.keyword.value if arg.keyword else None
            if keyword not in ("static_argnums", "static_argnames"):
                continue
            value = literal(arg.value)
            values = value if isinstance(value, (tuple, list)) else (value,)
            for item in values:
                if keyword == "static_argnames" and isinstance(item, str):
                    static.add(item)
                elif isinstance(item, int) and -len(fn.positional) <= item < len(fn.positional):
                    static.add(fn.positional[item])
        return frozenset(static)

    def _transform_of(self, expr: cst.BaseExpression, scope: Scope) -> tuple[str, list[cst.Arg]] | None:
        """(transform, its keyword arguments) when `expr` is a transform, possibly called with
        options (`jax.jit(static_argnums=0)`) or wrapped in `functools.partial`."""
        qualname = self.qualname(expr, scope)
        if qualname in self._transforms:
            return qualname, []
        if isinstance(expr, cst.Call):
            qualname = self.qualname(expr.func, scope)
            if qualname in self._transforms and not any(a.keyword is None for a in expr.args):
                return qualname, list(expr.args)
            if qualname == "functools.partial" and expr.args:
                inner = self.qualname(expr.args[0].value, scope)
                if inner in self._transforms:
                    return inner, list(expr.args[1:])
        return None

    def _trace(self) -> None:
        queue: list[FunctionInfo] = []

        def mark(fn: FunctionInfo, route: str, detail: str, args: Iterable[cst.Arg] = ()) -> None:
            static = self._static(args, fn)
            if not fn.traced:
                fn.traced, fn.static_params = True, static
                queue.append(fn)
            else:
                fn.static_params &= static
            fn.reasons.append((route, detail))

        for fn in self.functions:
            if fn.is_lambda:
                continue
            for decorator in fn.node.decorators:  # type: ignore[union-attr]
                found = self._transform_of(decorator.decorator, fn.parent)  # type: ignore[arg-type]
                if found:
                    mark(fn, "decorator", found[0], found[1])
                elif (
                    isinstance(decorator.decorator, cst.Attribute)
                    and decorator.decorator.attr.value in _RULE_DEFINERS
                    and self.function_refs(decorator.decorator.value, fn.parent)  # type: ignore[arg-type]
                ):
                    mark(fn, "decorator", decorator.decorator.attr.value)
        for node, scope, _parent, _top, _store in self.events:
            if type(node) is not cst.Call:
                continue
            func = node.func  # type: ignore[attr-defined]
            args = node.args  # type: ignore[attr-defined]
            found = self._transform_of(func, scope)
            target = next((a for a in args if a.keyword is None or a.keyword.value in ("fun", "f")), None)
            if found and target is not None:
                options = [*found[1], *(a for a in args if a is not target)]
                for fn in self.function_refs(target.value, scope):
                    mark(fn, "call", found[0], options)
                continue
            qualname = self.qualname(func, scope)
            if qualname in LAX_BODIES or (isinstance(func, cst.Attribute) and func.attr.value in _RULE_DEFINERS):
                for arg in args:
                    for fn in self.function_refs(arg.value, scope):
                        mark(fn, "lax" if qualname in LAX_BODIES else "call", qualname or func.attr.value)
        self._modules()
        for fn in self.functions:
            info = fn.class_info
            if info is not None and info.is_module and not fn.is_init:
                mark(fn, "module method", info.name)
        while queue:
            fn = queue.pop()
            for child in fn.children:
                mark(child, "nested", fn.name)
            for call in fn.calls:
                if isinstance(call.func, (cst.Name, cst.Attribute)):
                    for callee in self.function_refs(call.func, fn):
                        mark(callee, "called", fn.name)

    def _modules(self) -> None:
        changed = True
        while changed:
            changed = False
            for info in self.classes:
                if info.is_module:
                    continue
                if any(self.qualname(a.value, info.parent) in MODULE_BASES for a in info.node.bases) or any(  # type: ignore[union-attr, arg-type]
                    base.is_module for base in self._base_classes(info)
                ):
                    info.is_module = changed = True


def mutation_root(expr: cst.BaseExpression) -> cst.Name | None:
    """The variable at the root of `a.b[i].c` (or of the receiver of a method call `a.b.append(v)`),
    or None (calls in the chain, or JAX's `x.at[i]`)."""
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
        expr = expr.func.value
    while isinstance(expr, (cst.Attribute, cst.Subscript)):
        if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Attribute) and expr.value.attr.value == "at":
            return None
        expr = expr.value
    return expr if isinstance(expr, cst.Name) else None


def mutation_targets(node: cst.CSTNode, parent: cst.CSTNode | None) -> list[cst.BaseExpression]:
    """What a statement or call mutates in place: subscript/attribute targets of assignments and
    `del`, and the receivers of mutating method calls (`x.append(v)` -> the whole call)."""
    kind = type(node)
    if kind is cst.AssignTarget or kind is cst.AugAssign or kind is cst.Del:
        return _item_targets(node.target)  # type: ignore[attr-defined]
    if kind is cst.Call:
        func = node.func  # type: ignore[attr-defined]
        if isinstance(func, cst.Attribute) and func.attr.value in _MUTATING_METHODS:
            if func.attr.value in _MUTATING_WITH_RESULT or isinstance(parent, cst.Expr):
                return [node]  # type: ignore[list-item]
    return []


def _item_targets(target: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(target, (cst.Subscript, cst.Attribute)):
        return [target]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [t for element in target.elements for t in _item_targets(element.value)]
    return []


_SPECIAL = {
    cst.Name: Analysis._name,
    cst.FunctionDef: Analysis._function_def,
    cst.Lambda: Analysis._lambda,
    cst.ClassDef: Analysis._class_def,
    cst.Import: Analysis._import,
    cst.ImportFrom: Analysis._import_from,
    cst.Global: Analysis._global,
    cst.Nonlocal: Analysis._global,
    cst.Attribute: Analysis._attribute,
    cst.Arg: Analysis._arg,
    cst.AsName: Analysis._as_name,
}


@contextmanager
def _recursion_limit(limit: int = 6000) -> Iterator[None]:
    """libcst generates code recursively (several frames per nesting level); allow deeper nesting
    than Python's default while positions are generated."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


class _Positions:
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
                ok = _match_lines(self.module.body, _cpython_parse(self.source).body, starts)
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
                with _recursion_limit():
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
            c.node.body.indent if isinstance(c.node.body, cst.IndentedBlock) and c.node.body.indent is not None  # type: ignore[union-attr]
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
            with _recursion_limit():
                unit._codegen(state)
            self.ranges.update(provider._computed)
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


class Context:
    """What a rule sees while it runs: the file, the innermost function around the node being
    visited, name resolution from that function, and `report`."""

    def __init__(self, analysis: Analysis, source: str, path: str, config: Any) -> None:
        self.analysis = analysis
        self.module = analysis.module
        self.source = source
        self.path = path
        self.config = config
        self.function: FunctionInfo = None  # type: ignore[assignment]
        self.parent: cst.CSTNode | None = None
        self.is_store = False
        self.rule: Rule = None  # type: ignore[assignment]
        self.top = 0
        self.positions = _Positions(analysis.module, source)
        # (rule, node, top-level statement index, message, fix, traced) per report, in order
        self.pending: list[tuple[Rule, cst.CSTNode, int, str, Fix | None, bool]] = []
        self.pending_functions: list[FunctionInfo] = []  # the function around each pending report

    @property
    def traced(self) -> bool:
        return self.function.traced

    def qualname(self, expr: cst.CSTNode) -> str | None:
        return self.analysis.qualname(expr, self.function)

    def binding_kind(self, name: str) -> str | None:
        return self.analysis.binding_kind(name, self.function)

    def value_qualnames(self, name: str) -> set[str]:
        return self.analysis.value_qualnames(name, self.function)

    def mutations(self, node: cst.CSTNode) -> list[tuple[cst.BaseExpression, cst.Name, str | None]]:
        """(target, root variable, its binding kind) for each in-place change `node` makes
        (see mutation_targets; the node is the one being visited, its parent is ctx.parent)."""
        found = []
        for target in mutation_targets(node, self.parent):
            root = mutation_root(target)
            if root is not None:
                found.append((target, root, self.binding_kind(root.value)))
        return found

    def position(self, node: cst.CSTNode) -> CodeRange:
        """libcst CodeRange of a node in the current function (1-based lines, 0-based columns)."""
        return self.positions.get(node, self.top, self.function)

    def report(self, node: cst.CSTNode, message: str | None = None, *, fix: Fix | None = None, **fmt: Any) -> None:
        """Report the current rule at `node`; the message defaults to the rule's, formatted with `fmt`."""
        text = message if message is not None else self.rule.message
        if fmt:
            text = text.format(**fmt)
        self.pending.append((self.rule, node, self.top, text, fix, self.function.traced))
        self.pending_functions.append(self.function)


def _syntax_error(path: str, error: Exception, source: str) -> Diagnostic:
    """PUR999 at CPython's location and wording when CPython rejects the code too (libcst's
    positions for errors are rougher), else at libcst's."""
    try:
        _cpython_parse(source)
    except SyntaxError as cpython:
        line, column, text = cpython.lineno or 1, cpython.offset or 1, cpython.msg
    except (ValueError, MemoryError, RecursionError) as cpython:
        line, column, text = 1, 1, str(cpython)
    else:
        if isinstance(error, cst.ParserSyntaxError):
            line, column, text = error.editor_line, error.editor_column, error.message
        else:
            line, column, text = 1, 1, f"{type(error).__name__}: {error}"
    text = (text.removeprefix("parser error: ").splitlines() or ["invalid syntax"])[0]
    return Diagnostic("PUR999", f"file does not parse: {text}", path, line, column, line, column)


def check_source(source: str, path: str, config: Any, rules: list[Rule]) -> list[Diagnostic]:
    """Lint one decoded source text with the given rule instances; never raises on bad code."""
    scope_all = config.scope == "all"
    has_module_hooks = any(hasattr(r, "check_module") for r in rules)
    if not scope_all and not has_module_hooks and not _may_trace(source, config):
        try:
            _cpython_parse(source)
            return []  # nothing is traced in this file, and module-level code is never flagged
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            pass  # let libcst decide, and report its error
    try:
        module = cst.parse_module(source)
    except Exception as error:  # libcst raises ParserSyntaxError, and RecursionError on deep nesting
        return [_syntax_error(path, error, source)] if any(r.code == "PUR999" for r in rules) else []
    handlers: dict[str, list[tuple[Rule, Any]]] = {}
    for rule in rules:
        for node_type, method in rule.handlers().items():
            handlers.setdefault(node_type, []).append((rule, getattr(rule, method)))
    analysis = Analysis(module, handlers, getattr(config, "extra_transforms", ()))
    ctx = Context(analysis, source, path, config)
    node: cst.CSTNode = module
    try:
        for node, scope, parent, top, store in analysis.events:
            if not isinstance(scope, FunctionInfo) or not (scope.traced or scope_all):
                continue
            found = handlers.get(type(node).__name__)
            if found is None:
                continue
            ctx.function, ctx.parent, ctx.is_store, ctx.top = scope, parent, store, top
            for rule, method in found:
                if scope.traced or not rule.traced_only:
                    ctx.rule = rule
                    method(node, ctx)
        function_rules = [r for r in rules if hasattr(r, "check_function")]
        for fn in analysis.functions if function_rules else ():
            if fn.traced or scope_all:
                ctx.function, ctx.parent, ctx.top, node = fn, None, fn.top, fn.node
                for rule in function_rules:
                    if fn.traced or not rule.traced_only:
                        ctx.rule = rule
                        rule.check_function(fn, ctx)  # type: ignore[attr-defined]
        for rule in rules if has_module_hooks else ():
            if hasattr(rule, "check_module"):
                ctx.rule, node = rule, module
                rule.check_module(ctx)  # type: ignore[attr-defined]
    except Exception as error:
        line = ctx.positions.get(node, ctx.top, ctx.function).start.line if node is not module else 1
        raise RuleCrash(f"rule {ctx.rule.code} crashed at {path}:{line}: {type(error).__name__}: {error}") from error
    return _finish(ctx, Suppressions(source))


class RuleCrash(RuntimeError):
    """A rule raised on some input: a purelint bug, reported with the rule code and location."""


def _cpython_parse(source: str) -> ast.Module:
    """CPython's parser (several times faster than libcst's), without its warnings about the
    checked code (invalid escapes and the like)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source)


def _may_trace(source: str, config: Any) -> bool:
    if _MAY_TRACE.search(source):
        return True
    return any(name.split(".")[0] in source for name in getattr(config, "extra_transforms", ()))


def _finish(ctx: Context, suppressions: Suppressions) -> list[Diagnostic]:
    best: dict[tuple[int, int], tuple[Rule, Diagnostic]] = {}
    for (rule, node, top, message, fix, traced), function in zip(ctx.pending, ctx.pending_functions):
        where = ctx.positions.get(node, top, function)
        diagnostic = Diagnostic(
            rule.code,
            message,
            ctx.path,
            where.start.line,
            where.start.column + 1,
            where.end.line,
            where.end.column + 1,
            "traced" if traced else "untraced",
            fix,
        )
        key = (diagnostic.line, diagnostic.column)
        held = best.get(key)
        if held is None or (rule.priority, held[1].code) > (held[0].priority, rule.code):
            best[key] = (rule, diagnostic)
    kept = [d for _rule, d in best.values() if not suppressions.suppressed(d)]
    return sorted(kept, key=Diagnostic.sort_key)
