"""The records of the semantic model: scopes (module, class, function or lambda) with what each binds,
and `Application`, one place a transform is applied to a function.

`purelint._analysis._model` fills the scopes from one walk over the tree; the trace inference
(`purelint._analysis._tracing`) fills in a function's `traced`, `reasons`, `applications` and
`static_params`, and a class's `framework`.
"""

from __future__ import annotations

import dataclasses

import libcst as cst

from purelint._analysis._cst import dotted
from purelint._frameworks import SETUP_METHODS, Transform

__all__ = ["INIT_METHODS", "Application", "ClassInfo", "FunctionInfo", "Scope"]

# Methods that run while the object is being built, on concrete Python values.
INIT_METHODS = SETUP_METHODS[None]


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
        if self.name in INIT_METHODS or self.name in SETUP_METHODS.get(info.framework, ()):
            return True
        # `class Model(vae.Model)`: a base from another file, most likely a linen Module.
        return info.framework is None and self.name in SETUP_METHODS["linen"] and bool(info.node.bases)  # type: ignore[union-attr]

    @property
    def self_name(self) -> str | None:
        """The name of the instance parameter of a method (usually `self`)."""
        if self.class_info is None or not self.params:
            return None
        decorators = {dotted(d.decorator) for d in self.node.decorators}  # type: ignore[union-attr]
        return None if decorators & {"staticmethod", "classmethod"} else self.params[0]
