"""Taint: which values of a traced function are tracers.

A value is traced when it is a traced parameter (see `traced_params`) or computed from one, except
what is static about every array (`.shape`, `.ndim`, `.dtype`, `len(x)`, `jnp.shape(x)`), identity
tests (`x is None`), and calls whose result is static metadata whatever they are given
(`jax.typeof`, `PartitionSpec`, `nn.get_partition_spec`: see `_frameworks.STATIC_RESULTS`). Under
Flax NNX transforms, and for parameters known to hold NNX objects (by annotation or by what the
function is called with), attributes of NNX objects are static pytree metadata except Variables'
`.value` and `[...]`. PUR401 and PUR402 read these facts (`Context.taint`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import libcst as cst

from purelint._analysis._cst import SCOPE_TYPES, bound_names, chain, code_of, iter_children, literal, parameters
from purelint._analysis._model import SemanticModel
from purelint._analysis._nnx import nnx_traced
from purelint._analysis._scopes import Application, FunctionInfo
from purelint._frameworks import ARRAY_ATTRIBUTES, ARRAY_METHODS, BOOLEAN_RESULTS, STATIC_RESULTS

__all__ = ["Taint", "traced_params"]

_ARRAY_ANNOTATION = re.compile(
    r"\b(?:Array|ArrayLike|ndarray|Float|Int|Bool|Complex|Num|Shaped|Real|Inexact|Integer|UInt|Key|PRNGKeyArray)\b"
)


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
    if mode == "wrapper":
        return set()  # the function gets what the wrapper's functions get: traced only through them
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


def traced_params(fn: FunctionInfo, branching: bool = False) -> set[str]:
    """Parameters of `fn` that hold tracers when JAX traces it (see the module docstring).

    Only direct routes count (a transform applied to `fn`, a `lax` body, an `eqx.Module` method):
    a helper merely called from traced code may well be called with plain Python values. With
    `branching`, only tracers without a concrete value count: `grad`-like transforms applied outside
    traced code keep the values, and Python `if`/`while` on them works (`float()` still fails).
    """
    every = parameters(fn.node.params, star_kwarg=False)  # type: ignore[union-attr]
    params = [p.name.value for i, p in enumerate(every) if not (i == 0 and fn.self_name == p.name.value)]
    arrays = {
        p.name.value
        for p in every
        if p.name.value in params
        and p.annotation is not None
        and _ARRAY_ANNOTATION.search(code_of(p.annotation.annotation))
    }
    applied = fn.applications
    lax = [a for a in applied if a.transform.mode == "body"]
    if lax:
        # lax passes a fixed number of arguments: parameters left to their defaults (or bound with
        # `functools.partial`, which needs a default-less signature slot anyway) stay Python values.
        bound = set().union(*(a.bound for a in lax))
        return {
            p.name.value for p in every if p.default is None and p.name.value in params and p.name.value not in bound
        }
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


_STATIC_ATTRIBUTES = frozenset({"shape", "ndim", "dtype", "size", "weak_type", "sharding", "metadata", "aval", "spec"})
_STATIC_CALLS = STATIC_RESULTS | {
    *(f"builtins.{n}" for n in ("len", "isinstance", "type", "callable", "hasattr", "id")),
    *(f"jax.numpy.{n}" for n in ("shape", "ndim", "size", "result_type", "issubdtype", "iscomplexobj")),
    "numpy.shape",
    "numpy.ndim",
    "equinox.is_array",
    "equinox.is_array_like",
    "equinox.is_inexact_array",
    "equinox.is_inexact_array_like",
}
# `<anything>.dtype(x)`, `np.shape(x)`, `dtypes.issubdtype(...)`: what these return is static.
_STATIC_METHOD_NAMES = frozenset(
    {"dtype", "shape", "ndim", "result_type", "issubdtype", "iscomplexobj", "isrealobj", "canonicalize_dtype", "typeof"}
)
_BOOLEAN_OPERATORS = (cst.BitAnd, cst.BitOr, cst.BitXor)
_ELEMENT_COMPREHENSIONS = (cst.GeneratorExp, cst.ListComp, cst.SetComp)
_BINDERS = {
    cst.Assign: lambda n: [([x for t in n.targets for x in bound_names(t.target)], n.value)],
    cst.AnnAssign: lambda n: [(list(bound_names(n.target)), n.value)],
    cst.AugAssign: lambda n: [(list(bound_names(n.target)), n.value)],
    cst.For: lambda n: list(_loop_bindings(n.target, n.iter)),
    cst.CompFor: lambda n: list(_loop_bindings(n.target, n.iter)),
    cst.NamedExpr: lambda n: [(list(bound_names(n.target)), n.value)],
    cst.WithItem: lambda n: [(list(bound_names(n.asname.name)), n.item)] if n.asname is not None else [],
}


def _loop_bindings(target: cst.BaseExpression, iterable: cst.BaseExpression):
    """`for a, b in zip(xs, ys)` binds `a` from `xs` and `b` from `ys`; `enumerate` gives a plain index;
    the keys of `d.items()` and `d.keys()` are a pytree's static keys, bound from nothing traced."""
    method = _dict_method(iterable)
    if method == "keys":
        yield list(bound_names(target)), None
        return
    if method == "items" and isinstance(target, (cst.Tuple, cst.List)) and len(target.elements) == 2:
        yield list(bound_names(target.elements[0].value)), None
        yield list(bound_names(target.elements[1].value)), iterable
        return
    if (
        isinstance(target, (cst.Tuple, cst.List))
        and isinstance(iterable, cst.Call)
        and isinstance(iterable.func, cst.Name)
    ):
        elements = [e.value for e in target.elements]
        args = [a.value for a in iterable.args if a.keyword is None and not a.star]
        if iterable.func.value == "zip" and len(args) == len(elements):
            for element, arg in zip(elements, args):
                yield list(bound_names(element)), arg
            return
        if iterable.func.value == "enumerate" and len(elements) == 2 and args:
            yield list(bound_names(elements[1])), args[0]
            return
    yield list(bound_names(target)), iterable


def _key_membership(node: cst.Comparison) -> bool:
    """`"label" in batch`: a string looked up in a dict (of arrays), decided while tracing."""
    return isinstance(node.left, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)) and all(
        type(t.operator) in (cst.In, cst.NotIn) for t in node.comparisons
    )


def _dict_method(iterable: cst.BaseExpression) -> str | None:
    """`"items"` or `"keys"` for `d.items()` / `d.keys()`, else None."""
    if isinstance(iterable, cst.Call) and not iterable.args and isinstance(iterable.func, cst.Attribute):
        name = iterable.func.attr.value
        return name if name in ("items", "keys") else None
    return None


class Taint:
    """Which values of one function depend on its traced parameters (see the module docstring):
    one walk over the body (nested scopes excluded), flow-insensitive (a name bound from a traced
    value anywhere is traced). `branching`: only tracers without concrete values count (see
    `traced_params`). `nodes`: the body's nodes in source order (`function_nodes`), for the rules
    to scan. `nnx_params` says which parameters hold NNX objects (see `_nnx.nnx_params`)."""

    def __init__(
        self,
        fn: FunctionInfo,
        model: SemanticModel,
        nodes: list[cst.CSTNode],
        nnx_params: Callable[[FunctionInfo], dict[str, str]],
        branching: bool = False,
    ) -> None:
        self.model = model
        self.fn = fn
        self.nodes = nodes
        self.names = traced_params(fn, branching)
        self.bindings: dict[str, list[cst.BaseExpression | None]] = {}
        self._objects: set[str] | None = None
        if not self.names:
            return
        self.nnx = nnx_traced(fn) or bool(nnx_params(fn))
        assignments = [pair for node in self.nodes if type(node) in _BINDERS for pair in _BINDERS[type(node)](node)]
        for targets, value in assignments:
            for target in targets:
                self.bindings.setdefault(target, []).append(value)
        changed = True
        while changed:
            changed = False
            for targets, value in assignments:
                if value is not None and any(t not in self.names for t in targets) and self.source(value):
                    self.names.update(targets)
                    changed = True

    def source(self, expr: cst.CSTNode) -> str | None:
        """The traced name `expr` depends on (outside static uses like `x.shape`), or None."""
        if not self.names:
            return None
        qualname, fn = self.model.qualname, self.fn
        stack = [expr]
        while stack:
            node = stack.pop()
            kind = type(node)
            if kind is cst.Name:
                if node.value in self.names:
                    return node.value
                continue
            if kind in SCOPE_TYPES:
                continue
            if kind is cst.Attribute:
                if self.nnx and node.attr.value == "value":
                    stack.append(chain(node)[0])  # type: ignore[arg-type]  # `model.count.value`: a Variable's value
                elif node.attr.value not in _STATIC_ATTRIBUTES and not self.nnx:
                    stack.append(node.value)
                continue
            if (
                kind is cst.Subscript
                and self.nnx
                and type(node.value) is cst.Attribute
                and node.value.attr.value not in _STATIC_ATTRIBUTES
            ):
                stack.append(chain(node.value)[0])  # `model.count[...]`: a Variable's value
                stack.extend(node.slice)
                continue
            if (
                kind is cst.Call
                and self.nnx
                and type(node.func) is cst.Attribute
                and node.func.attr.value in ARRAY_METHODS
            ):
                stack.append(node.func.value)  # `x.sum()`: a method of an array
                stack.extend(node.args)
                continue
            if kind is cst.Call and (
                (type(node.func) is cst.Attribute and node.func.attr.value in _STATIC_METHOD_NAMES)
                or (qualname(node.func, fn) or "") in _STATIC_CALLS
            ):
                continue
            if kind is cst.Comparison and all(type(t.operator) in (cst.Is, cst.IsNot) for t in node.comparisons):
                continue
            if kind is cst.Comparison and _key_membership(node):  # type: ignore[arg-type]
                continue
            if kind is cst.Arg:
                stack.append(node.value)  # not the keyword's name
                continue
            if kind in _ELEMENT_COMPREHENSIONS:
                # `any(is_array(x) for x in leaves(y))`: iterating is static (the loop variables are
                # traced through their bindings); what the element computes decides.
                stack.append(node.elt)
                clause = node.for_in
                while clause is not None:
                    stack.extend(condition.test for condition in clause.ifs)
                    clause = clause.inner_for_in
                continue
            stack.extend(iter_children(node))
        return None

    def structure_test(self, test: cst.BaseExpression) -> bool:
        """Whether a truth test (`if x:`, `not x`, `x and y`) is on a value that is not an array, so
        Python decides it while tracing: a pytree field (`if state.mask:`, usually an optional
        sub-tree, None or not, or a static flag), a local bound only from such fields, or a name used
        with attributes no array has (`scale.value_and_grad(...)`: an object, whose truth is static)."""
        while isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
            test = test.expression
        if isinstance(test, cst.Attribute):
            return True
        if not isinstance(test, cst.Name):
            return False
        values = self.bindings.get(test.value)
        if values and all(isinstance(v, cst.Attribute) for v in values):
            return True
        if self._objects is None:
            self._objects = {
                node.value.value  # type: ignore[attr-defined]
                for node in self.nodes
                if type(node) is cst.Attribute
                and type(node.value) is cst.Name  # type: ignore[attr-defined]
                and node.attr.value not in ARRAY_ATTRIBUTES
                and not node.attr.value.startswith("__")  # type: ignore[attr-defined]
            }
        return test.value in self._objects

    def boolean(self, expr: cst.BaseExpression) -> bool:
        """Whether `expr` is a boolean array expression: a comparison (not `is`/`in`), `~`/`&`/`|`/`^`
        of such, a call returning one (`jnp.isnan`, `jnp.logical_and`...), or a name bound only from
        such expressions."""
        try:
            return self._boolean(expr, frozenset())
        except RecursionError:  # absurdly long `a & b & ...` chains: not worth a finding
            return False

    def _boolean(self, expr: cst.BaseExpression, seen: frozenset[str]) -> bool:
        kind = type(expr)
        if kind is cst.Comparison:
            return not any(type(c.operator) in (cst.Is, cst.IsNot, cst.In, cst.NotIn) for c in expr.comparisons)  # type: ignore[attr-defined]
        if kind is cst.UnaryOperation:
            return type(expr.operator) is cst.BitInvert and self._boolean(expr.expression, seen)  # type: ignore[attr-defined]
        if kind is cst.BinaryOperation:
            return (
                isinstance(expr.operator, _BOOLEAN_OPERATORS)
                and self._boolean(expr.left, seen)
                and self._boolean(expr.right, seen)
            )  # type: ignore[attr-defined]
        if kind is cst.Call:
            return (self.model.qualname(expr.func, self.fn) or "") in BOOLEAN_RESULTS
        if kind is cst.Name and expr.value not in seen:  # type: ignore[attr-defined]
            values = self.bindings.get(expr.value)  # type: ignore[attr-defined]
            return bool(values) and all(v is not None and self._boolean(v, seen | {expr.value}) for v in values)  # type: ignore[attr-defined]
        return False
