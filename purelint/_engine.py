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
from collections.abc import Callable, Iterable, Iterator

import libcst as cst
from libcst.metadata import CodePosition, CodeRange, MetadataWrapper, PositionProvider
from libcst.metadata.position_provider import PositionProvidingCodegenState

from purelint._diagnostic import Diagnostic, Fix
from purelint._fix import code_of
from purelint._frameworks import ARGUMENT_DROPPERS, CLASS_FRAMEWORKS, FLAG_SOURCES, HOST_CALLBACKS, REF_CONSTRUCTORS, RULE_DEFINERS, SETUP_METHODS, TRANSFORMS, WRAPPED_ARGUMENTS, Transform
from purelint._noqa import Suppressions
from purelint._rule import Rule

__all__ = [
    "Application",
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

# Transforms that trace the function they are given, and the ones that take bodies (lax loops, cond
# branches); the whole list, with how each traces, lives in `purelint._frameworks`.
JIT_LIKE = frozenset(name for name, t in TRANSFORMS.items() if t.mode != "body")
LAX_BODIES = frozenset(name for name, t in TRANSFORMS.items() if t.mode == "body")
MODULE_BASES = frozenset(name for name, framework in CLASS_FRAMEWORKS.items() if framework == "equinox")
# Methods that run while the module is being built, on concrete Python values.
INIT_METHODS = SETUP_METHODS[None]
_RULE_DEFINERS = RULE_DEFINERS
_BUILTINS = frozenset(dir(builtins))
# A file without these words cannot import a JAX transformation, so nothing in it is traced.
_MAY_TRACE = re.compile(r"\b(?:jax|equinox|flax|haiku|optax)\b")

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


def iter_children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The children of a node that carry code, in source order (whitespace, commas, brackets and
    comments left out): much cheaper than libcst's `node.children`, which rebuilds the node."""
    for name in reversed(_fields(type(node))):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            yield value
        elif type(value) is tuple or type(value) is list:
            for item in value:
                if isinstance(item, cst.CSTNode):
                    yield item


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
        return ast.literal_eval(code_of(expr).strip())
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
        self.unpacked: dict[str, list[tuple[cst.BaseExpression, int]]] = {}  # `a, name = value`: (value, 1)

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
        # "equinox", "nnx", "linen", "haiku", "unittest", "nnx-variable" (see `_frameworks.CLASS_FRAMEWORKS`),
        # directly or through same-file bases; None for plain classes.
        self.framework: str | None = None

    @property
    def is_module(self) -> bool:
        """An `eqx.Module` subclass."""
        return self.framework == "equinox"


@dataclasses.dataclass(frozen=True)
class Application:
    """One place a transform is applied to a function: `@jax.jit`, `jax.jit(f)`, `lax.scan(body, ...)`."""

    transform: Transform
    options: tuple[cst.Arg, ...]  # the transform's own arguments (static_argnums, in_axes, ...)
    node: cst.BaseExpression  # the decorator expression, or the function expression of the call
    top: int  # index of the top-level statement holding it
    scope: Scope  # where it is applied (for `grad` outside any trace: concrete values)
    bound: frozenset[str] = frozenset()  # parameters fixed by `functools.partial(f, ...)` there
    call: cst.Call | None = None  # the `jax.jit(f)` call, for the call form
    holder: cst.CSTNode | None = None  # the node around that call (`g = jax.jit(f)`: the Assign)
    bound_method: bool = False  # `jax.grad(self.loss)`: the first parameter is not an argument
    leading: int = 0  # arguments a wrapper passes before the function's own (`hk.transform`'s `apply`)

    def positional(self, fn: FunctionInfo) -> list[str]:
        """The positional parameters the transform's `argnums`/`in_axes`/`static_argnums` index
        (a wrapper's leading arguments are placeholders that name no parameter)."""
        params = fn.positional[1:] if self.bound_method and fn.self_name else fn.positional
        return [f"<{i}>" for i in range(self.leading)] + [p for p in params if p not in self.bound]

    @property
    def concrete(self) -> bool:
        """Values stay concrete: `grad`/`jvp`-like transforms applied outside traced code."""
        if self.transform.mode not in ("differentiate", "concrete"):
            return False
        where = self.scope.function()
        return where is None or not where.traced


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
        self.applications: list[Application] = []  # transforms applied to it directly
        self.static_params: frozenset[str] = frozenset()
        self.walrus: set[str] = set()  # names bound by `:=` (value kinds treat them as unknown)

    @property
    def is_init(self) -> bool:
        """A method that builds the object on concrete values (`__init__`, linen `setup`, `setUp`)."""
        info = self.class_info
        if info is None:
            return False
        return self.name in INIT_METHODS or self.name in SETUP_METHODS.get(info.framework, ())

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
        self._calls_by_name: dict[str, list[tuple[cst.Call, Scope]]] = {}
        self._wanted = frozenset(wanted) | _ANALYSIS_TYPES
        self._transforms = {name: t for name, t in TRANSFORMS.items() if t.mode != "body"}
        self._transforms.update((name, Transform(name, "abstract")) for name in transforms if name not in TRANSFORMS)
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
                    elif isinstance(target.target, cst.Tuple):
                        for index, element in enumerate(target.target.elements):
                            if isinstance(element.value, cst.Name):
                                scope.unpacked.setdefault(element.value.value, []).append((node.value, index))  # type: ignore[attr-defined]
            elif cls is cst.Call:
                fn = scope.function()
                if fn is not None:
                    fn.calls.append(node)  # type: ignore[arg-type]
            elif cls is cst.NamedExpr and isinstance(scope, FunctionInfo):
                scope.walrus.update(n.value for n in _names_in(node.target))  # type: ignore[attr-defined]

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
        """Module-level objects some function mutates in place: "G" for the whole object
        (`G[k] = v`, `G.append(x)`), "G.attr" for one attribute (`G.attr = v`, `G.attr.append(x)`).
        Objects set once at start-up (absl flags) are left out."""
        if self._mutated is None:
            self._mutated = set()
            for node, scope, parent, _top, _store in self.events:
                if isinstance(scope, FunctionInfo):
                    for target in mutation_targets(node, parent):
                        root = mutation_root(target)
                        if root is None or self.binding_kind(root.value, scope) != "module" or self.is_flags(root.value):
                            continue
                        if self.is_ref(root.value, self.module_scope):
                            continue
                        attribute = _first_attribute(target, root)
                        self._mutated.add(f"{root.value}.{attribute}" if attribute else root.value)
        return self._mutated

    def is_ref(self, name: str, scope: Scope) -> bool:
        """A name bound to a mutable `jax.new_ref(...)` Ref (reads and writes happen at run time)."""
        return bool(self.value_qualnames(name, scope) & REF_CONSTRUCTORS)

    def is_flags(self, name: str) -> bool:
        """A module-level name bound to absl's `FLAGS` or a `flags.DEFINE_*` holder: set once at start-up."""
        return any(q.startswith(FLAG_SOURCES) for q in self.value_qualnames(name, self.module_scope))

    def module_reassigned(self) -> set[str]:
        """Module-level names assigned by more than one top-level statement (`g = 10.` ... `g = 20.`):
        a traced function reading them keeps the value it saw when it was traced."""
        counts: dict[str, int] = {}
        for statement in self.module.body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    targets = []
                    if isinstance(small, cst.Assign):
                        targets = [t.target for t in small.targets]
                    elif isinstance(small, (cst.AugAssign, cst.AnnAssign)) and getattr(small, "value", None) is not None:
                        targets = [small.target]
                    for target in targets:
                        for name in _names_in(target):
                            counts[name.value] = counts.get(name.value, 0) + 1
        return {name for name, count in counts.items() if count > 1 and not self.is_flags(name)}

    # -- trace scope ----------------------------------------------------------------------------

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

    def class_named(self, expr: cst.BaseExpression, scope: Scope) -> ClassInfo | None:
        """The same-file class a name refers to."""
        if isinstance(expr, cst.Name):
            where = self.lookup(expr.value, scope)
            if where is not None:
                return where.classes.get(expr.value)
        return None

    def instance_class(self, name: str, scope: Scope) -> ClassInfo | None:
        """The same-file class `name` is an instance of, when every assignment to it is `Class(...)`."""
        where = self.lookup(name, scope)
        values = where.values.get(name, ()) if where is not None else ()
        classes = {self.class_named(v.func, where) if isinstance(v, cst.Call) else None for v in values}  # type: ignore[arg-type]
        if len(classes) == 1:
            return classes.pop()
        return None

    def _methods(self, info: ClassInfo, name: str, seen: set[int]) -> list[FunctionInfo]:
        if id(info) in seen:
            return []
        seen.add(id(info))
        found = list(info.defs.get(name, ()))
        if not found:
            for base in self._base_classes(info):
                found += self._methods(base, name, seen)
        return found

    def calls_named(self, name: str) -> list[tuple[cst.Call, Scope]]:
        """Every `name(...)` call in the file, with the scope it is in."""
        return self._calls_by_name.get(name, [])

    def _base_classes(self, info: ClassInfo) -> list[ClassInfo]:
        bases = []
        for arg in info.node.bases:  # type: ignore[union-attr]
            found = self.class_named(arg.value, info.parent)  # type: ignore[arg-type]
            if found is not None:
                bases.append(found)
        return bases

    def wrapped_functions(self, expr: cst.BaseExpression, scope: Scope, top: int | None = None) -> list[tuple[FunctionInfo, int]]:
        """Same-file functions a wrapper's returned function calls, with its leading arguments:
        `apply` in `init, apply = hk.transform(f)` (or `hk.without_apply_rng(...)`), `t.apply` with
        `t = hk.transform(f)`, `hk.transform(f).apply` (see `_frameworks.WRAPPED_ARGUMENTS`)."""
        sources: list[tuple[cst.BaseExpression, Scope, str | int]] = []
        if isinstance(expr, cst.Name):
            where = self.lookup(expr.value, scope)
            if where is not None:
                sources = [(value, where, index) for value, index in where.unpacked.get(expr.value, ())]
        elif isinstance(expr, cst.Attribute):
            if isinstance(expr.value, cst.Name):
                where = self.lookup(expr.value.value, scope)
                values = where.values.get(expr.value.value, ()) if where is not None else ()
                sources = [(value, where, expr.attr.value) for value in values]  # type: ignore[misc]
            else:
                sources = [(expr.value, scope, expr.attr.value)]
        found = []
        for value, where, which in sources:
            dropped: dict[str, int] = {}
            while isinstance(value, cst.Call) and value.args:
                qualname = self.qualname(value.func, where)
                if qualname in ARGUMENT_DROPPERS:
                    dropped = ARGUMENT_DROPPERS[qualname]  # type: ignore[index]
                    value = value.args[0].value
                    continue
                returned = WRAPPED_ARGUMENTS.get(qualname)  # type: ignore[arg-type]
                if returned is not None:
                    for index, (name, leading) in enumerate(returned):
                        if which in (index, name):
                            leading -= dropped.get(name, 0)
                            found += [(fn, leading) for fn in self.function_refs(value.args[0].value, where, top)]
                break
        return found

    def _static(self, args: Iterable[cst.Arg], positional: list[str]) -> frozenset[str]:
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
                elif isinstance(item, int) and -len(positional) <= item < len(positional):
                    static.add(positional[item])
        return frozenset(static)

    def transform_of(self, expr: cst.BaseExpression, scope: Scope) -> tuple[Transform, list[cst.Arg]] | None:
        """(transform, its keyword arguments) when `expr` is a transform that traces the function it
        is given, possibly called with options (`jax.jit(static_argnums=0)`) or wrapped in
        `functools.partial`. Bodies (`lax.scan`) are not included: see `body_transform`."""
        qualname = self.qualname(expr, scope)
        found = self._transforms.get(qualname)  # type: ignore[arg-type]
        if found is not None:
            return found, []
        if isinstance(expr, cst.Call):
            qualname = self.qualname(expr.func, scope)
            found = self._transforms.get(qualname)  # type: ignore[arg-type]
            if found is not None and not any(a.keyword is None for a in expr.args):
                return found, list(expr.args)
            if qualname == "functools.partial" and expr.args:
                found = self._transforms.get(self.qualname(expr.args[0].value, scope))  # type: ignore[arg-type]
                if found is not None:
                    return found, list(expr.args[1:])
        return None

    def _trace(self) -> None:
        queue: list[FunctionInfo] = []
        host: set[int] = set()  # functions handed to host callbacks: they run on concrete values

        def mark(fn: FunctionInfo, route: str, detail: str, args: Iterable[cst.Arg] = (), application: Application | None = None) -> None:
            if id(fn) in host:
                return
            static = self._static(args, application.positional(fn) if application is not None else fn.positional)
            if not fn.traced:
                fn.traced, fn.static_params = True, static
                queue.append(fn)
            else:
                fn.static_params &= static
            fn.reasons.append((route, detail))
            if application is not None:
                fn.applications.append(application)

        for node, scope, _parent, top, _store in self.events:
            if type(node) is cst.Call and node.args and self.qualname(node.func, scope) in HOST_CALLBACKS:  # type: ignore[attr-defined]
                host.update(id(fn) for fn in self.function_refs(node.args[0].value, scope, top))  # type: ignore[attr-defined]
        for fn in self.functions:
            if fn.is_lambda:
                continue
            for decorator in fn.node.decorators:  # type: ignore[union-attr]
                found = self.transform_of(decorator.decorator, fn.parent)  # type: ignore[arg-type]
                if found:
                    transform, options = found
                    application = Application(transform, tuple(options), decorator.decorator, fn.top, fn.parent)  # type: ignore[arg-type]
                    mark(fn, "decorator", transform.name, options, application)
                elif (
                    isinstance(decorator.decorator, cst.Attribute)
                    and decorator.decorator.attr.value in _RULE_DEFINERS
                    and self.function_refs(decorator.decorator.value, fn.parent)  # type: ignore[arg-type]
                ):
                    mark(fn, "decorator", decorator.decorator.attr.value)
        for node, scope, parent, top, _store in self.events:
            if type(node) is not cst.Call:
                continue
            func = node.func  # type: ignore[attr-defined]
            args = node.args  # type: ignore[attr-defined]
            if type(func) is cst.Name:
                self._calls_by_name.setdefault(func.value, []).append((node, scope))  # type: ignore[arg-type, attr-defined]
            found = self.transform_of(func, scope)
            target = next((a for a in args if a.keyword is None or a.keyword.value in ("fun", "f")), None)
            if found and target is not None:
                transform, options = found
                options = [*options, *(a for a in args if a is not target)]
                for fn in self.function_refs(target.value, scope, top):
                    application = Application(
                        transform, tuple(options), func, top, scope, _partial_bound(target.value, fn), node, parent,  # type: ignore[arg-type]
                        _is_bound_method(target.value),
                    )
                    mark(fn, "call", transform.name, options, application)
                for fn, leading in self.wrapped_functions(target.value, scope, top) if isinstance(target.value, (cst.Name, cst.Attribute)) else ():
                    application = Application(transform, tuple(options), func, top, scope, frozenset(), node, parent, leading=leading)  # type: ignore[arg-type]
                    mark(fn, "call", transform.name, options, application)
                continue
            qualname = self.qualname(func, scope)
            body = TRANSFORMS.get(qualname) if qualname in LAX_BODIES else None  # type: ignore[arg-type]
            if body is not None or (isinstance(func, cst.Attribute) and func.attr.value in _RULE_DEFINERS):
                for arg in args:
                    for fn in self.function_refs(arg.value, scope, top):
                        if body is not None:
                            application = Application(
                                body, (), func, top, scope, _partial_bound(arg.value, fn), node, parent, _is_bound_method(arg.value)  # type: ignore[arg-type]
                            )
                            mark(fn, "lax", body.name, (), application)
                        else:
                            mark(fn, "call", func.attr.value)
        self._frameworks()
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

    def _frameworks(self) -> None:
        """Which framework each class belongs to, through its bases (same-file bases included)."""
        changed = True
        while changed:
            changed = False
            for info in self.classes:
                if info.framework is not None:
                    continue
                for arg in info.node.bases:  # type: ignore[union-attr]
                    framework = CLASS_FRAMEWORKS.get(self.qualname(arg.value, info.parent))  # type: ignore[arg-type]
                    if framework is None:
                        base = self.class_named(arg.value, info.parent)  # type: ignore[arg-type]
                        framework = base.framework if base is not None else None
                    if framework is not None:
                        info.framework = framework
                        changed = True
                        break


def _is_bound_method(target: cst.BaseExpression) -> bool:
    while isinstance(target, cst.Call) and target.args:  # functools.partial(obj.method, ...)
        target = target.args[0].value
    return isinstance(target, cst.Attribute)


def _partial_bound(target: cst.BaseExpression, fn: FunctionInfo) -> frozenset[str]:
    """Parameters `functools.partial(f, *args, **kwargs)` fixes (static for the transform applied to it)."""
    if not isinstance(target, cst.Call):
        return frozenset()
    params = fn.positional[1:] if _is_bound_method(target) and fn.self_name else fn.positional
    positional = sum(1 for a in target.args[1:] if a.keyword is None)
    return frozenset(params[:positional]) | {a.keyword.value for a in target.args if a.keyword is not None}


def _first_attribute(target: cst.BaseExpression, root: cst.Name) -> str | None:
    """In `root.a.b[i]` (or `root.a.append(...)`), "a": the attribute of the root that changes;
    None when the root itself is indexed or called on (`root[k] = v`, `root.append(x)`)."""
    expr = target.func if isinstance(target, cst.Call) else target
    if isinstance(target, cst.Call) and isinstance(expr, cst.Attribute):
        expr = expr.value  # the receiver of the mutating method
    last = None
    while expr is not root and isinstance(expr, (cst.Attribute, cst.Subscript)):
        last = expr
        expr = expr.value
    return last.attr.value if isinstance(last, cst.Attribute) else None


def _names_in(target: cst.CSTNode) -> list[cst.Name]:
    if isinstance(target, cst.Name):
        return [target]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for element in target.elements for n in _names_in(element.value)]
    if isinstance(target, cst.StarredElement):
        return _names_in(target.value)
    return []


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
        self._facts = None
        self.line_names: Callable[[int], str] = lambda line: f"line {line}"
        # (rule, node, top-level statement index, message, fix, traced) per report, in order
        self.pending: list[tuple[Rule, cst.CSTNode, int, str, Fix | None, bool]] = []
        self.pending_functions: list[Scope | None] = []  # the function around each pending report

    def line_of(self, node: cst.CSTNode) -> str:
        """How a message names the line of `node`: "line 7" (in notebooks, the line in its cell)."""
        return self.line_names(self.position(node).start.line)

    @property
    def traced(self) -> bool:
        return self.function is not None and self.function.traced

    @property
    def facts(self):
        """The file's `purelint._facts.Facts` (traced parameters, value kinds), built on first use."""
        if self._facts is None:
            from purelint._facts import Facts  # the layer above this one

            self._facts = Facts(self.analysis)
        return self._facts

    def kind(self, expr: cst.BaseExpression, statement: cst.CSTNode | None = None) -> str | None:
        """The value kind of `expr` (see `purelint._values`) just before `statement` (by default the
        statement around the node being visited, when it is a simple statement)."""
        statement = statement if statement is not None else self.parent
        return self.facts.kind_at(statement, expr, self.scope)

    @property
    def scope(self) -> Scope:
        """The innermost function being checked, or the module for module-level statements."""
        return self.function if self.function is not None else self.analysis.module_scope

    def qualname(self, expr: cst.CSTNode) -> str | None:
        return self.analysis.qualname(expr, self.scope)

    def binding_kind(self, name: str) -> str | None:
        return self.analysis.binding_kind(name, self.scope)

    def value_qualnames(self, name: str) -> set[str]:
        return self.analysis.value_qualnames(name, self.scope)

    def mutations(self, node: cst.CSTNode) -> list[tuple[cst.BaseExpression, cst.Name, str | None]]:
        """(target, root variable, its binding kind) for each in-place change `node` makes
        (see mutation_targets; the node is the one being visited, its parent is ctx.parent)."""
        found = []
        for target in mutation_targets(node, self.parent):
            root = mutation_root(target)
            if root is not None:
                found.append((target, root, self.binding_kind(root.value)))
        return found

    def position(self, node: cst.CSTNode, at: tuple[int, Scope] | None = None) -> CodeRange:
        """libcst CodeRange of a node (1-based lines, 0-based columns) in the current function, or
        at `at` = (top-level statement index, scope) when the node lies elsewhere."""
        top, scope = at if at is not None else (self.top, self.function)
        return self.positions.get(node, top, scope)

    def report(
        self, node: cst.CSTNode, message: str | None = None, *, fix: Fix | None = None,
        at: tuple[int, Scope] | None = None, **fmt: Any,
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


def check_source(
    source: str, path: str, config: Any, rules: list[Rule], line_names: Callable[[int], str] | None = None
) -> list[Diagnostic]:
    """Lint one decoded source text with the given rule instances; never raises on bad code.
    `line_names` names a line of the source in messages (notebooks: "line 3 of cell 2")."""
    scope_all = config.scope == "all"
    # Rules that run everywhere report JAX code only, so a file that never mentions JAX is skipped.
    has_module_hooks = any(r.has_hook("check_module") for r in rules)
    needs_parse = any(r.has_hook("check_module") and not r.everywhere for r in rules)
    if not scope_all and not needs_parse and not _may_trace(source, config):
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
    if line_names is not None:
        ctx.line_names = line_names
    anywhere = any(r.everywhere for r in rules)
    node: cst.CSTNode = module
    try:
        for node, scope, parent, top, store in analysis.events:
            if isinstance(scope, FunctionInfo):
                checked = scope.traced or scope_all
                function: FunctionInfo | None = scope
            elif scope is analysis.module_scope and anywhere:
                checked, function = False, None
            else:
                continue
            if not checked and not anywhere:
                continue
            found = handlers.get(type(node).__name__)
            if found is None:
                continue
            ctx.function, ctx.parent, ctx.is_store, ctx.top = function, parent, store, top  # type: ignore[assignment]
            traced = function is not None and function.traced
            for rule, method in found:
                if (checked and (traced or not rule.traced_only)) or rule.everywhere:
                    ctx.rule = rule
                    method(node, ctx)
        function_rules = [r for r in rules if r.has_hook("check_function")]
        for fn in analysis.functions if function_rules else ():
            checked = fn.traced or scope_all
            ctx.function, ctx.parent, ctx.top, node = fn, None, fn.top, fn.node
            for rule in function_rules:
                if (checked and (fn.traced or not rule.traced_only)) or rule.everywhere:
                    ctx.rule = rule
                    rule.check_function(fn, ctx)
        for rule in rules if has_module_hooks else ():
            if rule.has_hook("check_module"):
                ctx.rule, ctx.function, node = rule, None, module  # type: ignore[assignment]
                rule.check_module(ctx)
    except Exception as error:
        line = ctx.positions.get(node, ctx.top, ctx.function).start.line if node is not module else 1
        raise RuleCrash(f"rule {ctx.rule.code} crashed at {path}:{line}: {type(error).__name__}: {error}", ctx.rule.code) from error
    return _finish(ctx, Suppressions(source))


class RuleCrash(RuntimeError):
    """A rule raised on some input: a purelint bug, reported with the rule code and location.
    `code` is the rule's code, so callers can lint on without that rule."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


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
