"""Facts about a parsed file that rules read: which parameters are traced, and value kinds.

Built on the engine's scopes and its one name resolver (`Analysis.qualname`); computed lazily, once
per function, and shared by every rule (rules never recompute them, nor edit them).
"""

from __future__ import annotations

import re

import libcst as cst

from purelint._engine import Analysis, Application, FunctionInfo, Scope, literal
from purelint._fix import code_of
from purelint._frameworks import NNX_VARIABLES
from purelint._values import ValueKinds, annotation_kind

__all__ = ["Facts", "nnx_params", "nnx_traced", "nnx_value", "params_with_annotations", "traced_params"]

_ARRAY_ANNOTATION = re.compile(r"\b(?:Array|ArrayLike|ndarray|Float|Int|Bool|Complex|Num|Shaped|Real|Inexact|Integer|UInt|Key|PRNGKeyArray)\b")


def params_with_annotations(node: cst.FunctionDef | cst.Lambda) -> list[cst.Param]:
    params = node.params
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    if isinstance(params.star_arg, cst.Param):
        every.append(params.star_arg)
    return every


def _option(options: tuple[cst.Arg, ...], keyword: str, position: int):
    """A transform option given by keyword or by position (after the function), as a literal."""
    positional = [a for a in options if a.keyword is None]
    for arg in options:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return literal(arg.value), True
    if len(positional) > position:
        return literal(positional[position].value), True
    return None, False


def _indices(value: object, params: list[str]) -> set[str]:
    items = value if isinstance(value, (tuple, list)) else (value,)
    return {params[i] for i in items if isinstance(i, int) and -len(params) <= i < len(params)}


def _names(value: object) -> set[str]:
    items = value if isinstance(value, (tuple, list)) else (value,)
    return {i for i in items if isinstance(i, str)}


def _traced_by(application: Application, fn: FunctionInfo, params: list[str]) -> set[str]:
    """Parameters one application of a transform turns into tracers."""
    options = application.options
    positional = application.positional(fn)
    static = set(application.bound)
    for keyword in ("static_argnums", "nondiff_argnums"):
        static |= _indices(_option(options, keyword, 99)[0], positional)
    static |= _names(_option(options, "static_argnames", 99)[0])
    candidates = [p for p in params if p not in static]
    mode = application.transform.mode
    if mode == "differentiate":
        argnums, given = _option(options, "argnums", 0)
        return _indices(argnums if given else 0, positional) - static
    if mode == "map":
        axes, given = _option(options, "in_axes", 0)
        if given and axes is None:
            return set()
        if isinstance(axes, (tuple, list)):
            return {p for p, axis in zip(positional, axes) if axis is not None and p in candidates}
    return set(candidates)


def traced_params(fn: FunctionInfo, ctx: object = None, branching: bool = False) -> set[str]:
    """Parameters of `fn` that hold tracers when JAX traces it (see the module docstring).

    Only direct routes count (a transform applied to `fn`, a `lax` body, an `eqx.Module` method):
    a helper merely called from traced code may well be called with plain Python values. With
    `branching`, only tracers without a concrete value count: `grad`-like transforms applied outside
    traced code keep the values, and Python `if`/`while` on them works (`float()` still fails).
    """
    every = params_with_annotations(fn.node)  # type: ignore[arg-type]
    params = [p.name.value for i, p in enumerate(every) if not (i == 0 and fn.self_name == p.name.value)]
    arrays = {
        p.name.value
        for p in every
        if p.name.value in params and p.annotation is not None and _ARRAY_ANNOTATION.search(code_of(p.annotation.annotation))
    }
    applied = fn.applications
    lax = [a for a in applied if a.transform.mode == "body"]
    if lax:
        # lax passes a fixed number of arguments: parameters left to their defaults (or bound with
        # `functools.partial`, which needs a default-less signature slot anyway) stay Python values.
        bound = set().union(*(a.bound for a in lax))
        return {p.name.value for p in every if p.default is None and p.name.value in params and p.name.value not in bound}
    names = set()
    if any(route == "module method" for route, _ in fn.reasons) or any(a.transform.mode == "filter" for a in applied):
        names |= arrays - fn.static_params
    tracing = [a for a in applied if a.transform.mode != "filter"]
    decorators = [a for a in tracing if a.call is None]
    if branching and decorators and all(a.concrete for a in decorators):
        decorators = []
    layers = [_traced_by(a, fn, params) for a in decorators]  # stacked decorators: all must trace it
    if layers:
        names |= set.intersection(*layers)
    for application in tracing:
        if application.call is not None and not (branching and application.concrete):
            names |= _traced_by(application, fn, params)
    return names


def nnx_traced(fn: FunctionInfo) -> bool:
    """Traced by a Flax NNX transform (`nnx.jit`, ...), which lifts NNX objects: their attributes
    other than Variables are static, and updates to their Variables are kept."""
    return any(a.transform.nnx for a in fn.applications)



def nnx_value(name: str, scope: Scope, analysis: Analysis) -> str | None:
    """"optimizer"/"module" when every value bound to `name` is built by an NNX constructor."""
    where = analysis.lookup(name, scope)
    values = where.values.get(name, []) if where is not None else []
    found = None
    for value in values:
        if not isinstance(value, cst.Call):
            return None
        qualname = analysis.qualname(value.func, where)
        info = analysis.class_named(value.func, where)
        if qualname in ("flax.nnx.Optimizer", "flax.nnx.ModelAndOptimizer"):
            found = "optimizer"
        elif (info is not None and info.framework == "nnx") or (
            qualname is not None and qualname.startswith("flax.nnx.") and qualname.rsplit(".", 1)[1][:1].isupper()
            and qualname not in NNX_VARIABLES and qualname != "flax.nnx.Rngs"
        ):
            found = found or "module"
        else:
            return None
    return found


def nnx_params(fn: FunctionInfo, analysis: Analysis) -> dict[str, str]:
    """Parameters known to hold NNX objects: by annotation, or by what the jitted function is called with."""
    found: dict[str, str] = {}
    for param in params_with_annotations(fn.node):  # type: ignore[arg-type]
        if param.annotation is None:
            continue
        annotation = param.annotation.annotation
        qualname = analysis.qualname(annotation, fn.parent)  # type: ignore[arg-type]
        info = analysis.class_named(annotation, fn.parent)  # type: ignore[arg-type]
        if qualname in ("flax.nnx.Optimizer", "flax.nnx.ModelAndOptimizer"):
            found[param.name.value] = "optimizer"
        elif qualname == "flax.nnx.Module" or (info is not None and info.framework == "nnx"):
            found[param.name.value] = "module"
    names = {fn.name} | {
        a.holder.targets[0].target.value
        for a in fn.applications
        if isinstance(a.holder, cst.Assign) and isinstance(a.holder.targets[0].target, cst.Name)
    }
    for name in names:
        for call, scope in analysis.calls_named(name):
            for index, arg in enumerate(a for a in call.args if a.keyword is None):
                if index < len(fn.positional) and isinstance(arg.value, cst.Name):
                    what = nnx_value(arg.value.value, scope, analysis)
                    if what is not None:
                        found.setdefault(fn.positional[index], what)
    return found


class Facts:
    """Read-only facts of one file, computed on first use."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self._kinds: dict[int, ValueKinds] = {}

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
        analysis = self.analysis

        def framework(expr: cst.BaseExpression) -> str | None:
            info = analysis.class_named(expr, fn or analysis.module_scope)
            return info.framework if info is not None else None

        if fn is None:
            return ValueKinds(
                analysis.module.body, lambda e: analysis.qualname(e, analysis.module_scope), classes=framework,
                unknown=frozenset(analysis.module_rebound),
            )
        resolve = lambda e: analysis.qualname(e, fn)  # noqa: E731
        params: dict[str, str] = {}
        traced = traced_params(fn) if fn.traced else set()
        node = fn.node
        if not fn.is_lambda and node.params.star_kwarg is not None:  # type: ignore[union-attr]
            params[node.params.star_kwarg.name.value] = "kwargs"  # type: ignore[union-attr]
        for param in params_with_annotations(node):  # type: ignore[arg-type]
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
