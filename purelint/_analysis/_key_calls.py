"""Which calls consume a PRNG key, for the key-flow analysis (`purelint._analysis._keys`): `jax.random`
draws, calls that only inspect a key, same-file helpers that draw from a key argument, and the function a
transform applied in place calls (`jax.jit(f)(key)` calls `f`)."""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from purelint._analysis._cst import bound_names, iter_children, parameters
from purelint._analysis._model import SemanticModel
from purelint._analysis._scopes import Scope
from purelint._frameworks import TRANSFORMS

__all__ = [
    "INSPECTING_BUILTINS",
    "INSPECTING_PREFIXES",
    "NOT_CONSUMING",
    "RANDOM",
    "Helper",
    "Resolver",
    "called_function",
    "drawn_params",
    "inspects",
    "same_file_helpers",
]

Resolver = Callable[[cst.BaseExpression], "str | None"]

RANDOM = "jax.random."
# jax.random functions that take a key without drawing from it, or take no key at all.
NOT_CONSUMING = frozenset(
    {"fold_in", "PRNGKey", "key", "key_data", "wrap_key_data", "key_impl", "clone", "default_prng_impl"}
)
# Calls that look at a key without drawing from it (so passing a key to them is not using it up).
INSPECTING_PREFIXES = (
    "jax.numpy.",
    "numpy.",
    "jax.debug.",
    "jax.tree_util.",
    "jax.tree.",
    "jax.dtypes.",
    "jax.device_put",
    "jax.device_get",
    "jax.block_until_ready",
    "jax.lax.stop_gradient",
    "jax.random.key_data",
    "jax.typeof",
    "jax.ShapeDtypeStruct",
    "equinox.is_array",
    "typing.",
)
INSPECTING_BUILTINS = frozenset(
    [
        "print",
        "len",
        "isinstance",
        "issubclass",
        "type",
        "id",
        "repr",
        "str",
        "hash",
        "bool",
        "format",
        "getattr",
        "hasattr",
        "callable",
        "tuple",
        "list",
        "iter",
        "zip",
        "enumerate",
        "reversed",
        "sorted",
    ]
)


# A same-file helper that draws from some of its parameters: (label, positions, keywords) of the
# arguments it consumes as keys, or None for anything else.
Helper = Callable[[cst.BaseExpression], "tuple[str, frozenset[int], frozenset[str]] | None"]


def drawn_params(function: cst.FunctionDef, resolve: Resolver) -> frozenset[str]:
    """Parameters a function passes straight to a `jax.random` draw (or `split`) without rebinding
    them first: calling it with a key uses that key up."""
    params = [p.name.value for p in parameters(function.params, star=False, star_kwarg=False)]
    found: set[str] = set()
    rebound: set[str] = set()
    stack: list[cst.CSTNode] = [function.body]
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            continue
        if isinstance(node, (cst.AssignTarget, cst.AugAssign, cst.For, cst.NamedExpr)):
            target = node.target
            rebound.update(bound_names(target))
        if isinstance(node, cst.Call):
            callee = resolve(node.func)
            if callee is not None and callee.startswith(RANDOM) and callee[len(RANDOM) :] not in NOT_CONSUMING:
                key = next((a for a in node.args if a.keyword is not None and a.keyword.value == "key"), None)
                if key is None and node.args and node.args[0].keyword is None:
                    key = node.args[0]
                if key is not None and isinstance(key.value, cst.Name) and key.value.value in params:
                    found.add(key.value.value)
        stack.extend(iter_children(node))
    return frozenset(found - rebound)


def same_file_helpers(model: SemanticModel, scope: Scope) -> Helper:
    """Which same-file functions, called by name from `scope`, draw from a key argument, as
    `find_key_reuse` wants them (each function is summarised once)."""
    summaries: dict[int, tuple[str, frozenset[int], frozenset[str]] | None] = {}

    def helper(func: cst.BaseExpression) -> tuple[str, frozenset[int], frozenset[str]] | None:
        if not isinstance(func, cst.Name):
            return None
        defs = model.function_refs(func, scope)
        if len(defs) != 1 or defs[0].is_lambda:
            return None
        fn = defs[0]
        if id(fn) not in summaries:
            drawn = drawn_params(fn.node, lambda e: model.qualname(e, fn))  # type: ignore[arg-type]
            positions = frozenset(i for i, p in enumerate(fn.positional) if p in drawn)
            summaries[id(fn)] = (fn.name, positions, drawn) if drawn else None
        return summaries[id(fn)]

    return helper


def inspects(callee: str | None) -> bool:
    """A call that looks at its arguments without drawing from them (`print(key)`, `jnp.shape(key)`)."""
    if callee is None:
        return False
    if callee.startswith("builtins."):
        return callee[len("builtins.") :] in INSPECTING_BUILTINS
    return callee.startswith(INSPECTING_PREFIXES) or (
        callee.startswith(RANDOM) and callee[len(RANDOM) :] in NOT_CONSUMING
    )


# Transforms that keep the wrapped function's positional parameters: `jax.jit(jax.vmap(f))(key)` calls `f(key)`.
_SAME_ARGUMENTS = frozenset(name for name, t in TRANSFORMS.items() if t.mode in ("abstract", "map", "filter"))


def called_function(func: cst.BaseExpression, resolve: Resolver) -> cst.BaseExpression:
    """The function a call ends up in: `f` for `jax.jit(jax.vmap(f))`, `func` itself otherwise."""
    while (
        isinstance(func, cst.Call)
        and func.args
        and func.args[0].keyword is None
        and not func.args[0].star
        and resolve(func.func) in _SAME_ARGUMENTS
    ):
        func = func.args[0].value
    return func
