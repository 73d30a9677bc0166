"""CST helpers: walking a libcst tree cheaply, dotted names, literals, the names an assignment target
binds, the source text of a node, a signature's parameters, and what a statement mutates in place.

Nothing here knows about scopes, imports or JAX: each helper reads one node and what lies under it.

Example:
    >>> import libcst as cst
    >>> statement = cst.parse_statement("a, (b, *c) = jax.numpy.zeros(3)")
    >>> bound_names(statement.body[0].targets[0].target), dotted(statement.body[0].value.func)
    (['a', 'b', 'c'], 'jax.numpy.zeros')
"""

from __future__ import annotations

import ast
import dataclasses
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import libcst as cst

__all__ = [
    "SCOPE_TYPES",
    "bound_names",
    "chain",
    "code_fields",
    "code_of",
    "cpython_parse",
    "dotted",
    "first_attribute",
    "function_nodes",
    "iter_children",
    "literal",
    "mutation_root",
    "mutation_targets",
    "parameters",
    "parses",
    "recursion_limit",
]

# Fields that hold only whitespace, brackets, commas and operators: never walked.
_SKIP_FIELDS = frozenset(
    ["lpar", "rpar", "leading_lines", "lines_after_decorators", "header", "footer", "comma", "semicolon", "colon",
     "operator", "equal", "lbracket", "rbracket", "lbrace", "rbrace", "dot", "asynchronous", "star", "posonly_ind",
     "trailing_whitespace", "type_parameters"]
)  # fmt: skip
_FIELDS: dict[type, tuple[str, ...]] = {}
# Nodes that open a scope of their own: walks over one function's body stop at them.
SCOPE_TYPES = frozenset({cst.FunctionDef, cst.Lambda, cst.ClassDef})
_MUTATING_METHODS = frozenset(
    ["append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "sort", "reverse", "add", "discard",
     "popitem"]
)  # fmt: skip
# These return a value, so a used result says nothing; the others return None and count only as
# statements (which keeps `opt_state = optimizer.update(...)` from looking like a mutation).
_MUTATING_WITH_RESULT = frozenset({"pop", "popitem", "setdefault"})


def code_fields(cls: type) -> tuple[str, ...]:
    """The fields of a libcst node class that can hold code, in reverse source order (what a
    stack-based walk pushes)."""
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
    for name in reversed(code_fields(type(node))):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            yield value
        elif type(value) is tuple or type(value) is list:
            for item in value:
                if isinstance(item, cst.CSTNode):
                    yield item


def function_nodes(body: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node of a function body in source order, nested functions and classes excluded."""
    stack = [body]
    while stack:
        node = stack.pop()
        yield node
        if type(node) not in SCOPE_TYPES:
            stack.extend(reversed(list(iter_children(node))))


def chain(expr: cst.BaseExpression) -> tuple[cst.BaseExpression, list[str]]:
    """`a.b.c` -> (the innermost value `a`, ["b", "c"]); iterative, chains can be long."""
    attrs = []
    while type(expr) is cst.Attribute:
        attrs.append(expr.attr.value)  # type: ignore[attr-defined]
        expr = expr.value  # type: ignore[attr-defined]
    attrs.reverse()
    return expr, attrs


def dotted(expr: cst.BaseExpression) -> str | None:
    """`a.b.c` -> "a.b.c" for pure Name/Attribute chains, else None."""
    base, attrs = chain(expr)
    return ".".join([base.value, *attrs]) if isinstance(base, cst.Name) else None


def code_of(node: cst.CSTNode) -> str:
    """The source text of a node as libcst prints it (comments and spacing inside it kept)."""
    return cst.Module([]).code_for_node(node)


def literal(expr: cst.BaseExpression) -> Any:
    """The Python value of a literal expression (numbers, strings, tuples...), or None."""
    try:
        return ast.literal_eval(code_of(expr).strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def bound_names(target: cst.CSTNode) -> list[str]:
    """Names an assignment target binds: `a`, `a, (b, *c)`; not `x[i]` or `x.attr`."""
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [name for element in target.elements for name in bound_names(element.value)]
    if isinstance(target, cst.StarredElement):
        return bound_names(target.value)
    return []


def parameters(params: cst.Parameters, *, star: bool = True, star_kwarg: bool = True) -> list[cst.Param]:
    """A signature's parameters in order: positional-only, positional, `*args` (with `star`),
    keyword-only, `**kwargs` (with `star_kwarg`)."""
    found = [*params.posonly_params, *params.params]
    if star and isinstance(params.star_arg, cst.Param):
        found.append(params.star_arg)
    found += params.kwonly_params
    if star_kwarg and params.star_kwarg is not None:
        found.append(params.star_kwarg)
    return found


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
    `del`, and the receivers of mutating method calls (`x.append(v)` -> the whole call); `parent`
    is the node around `node` (a mutating method whose result is used must be a statement)."""
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


def first_attribute(target: cst.BaseExpression, root: cst.Name) -> str | None:
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


def cpython_parse(source: str) -> ast.Module:
    """CPython's parser (several times faster than libcst's), without its warnings about the
    checked code (invalid escapes and the like)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source)


def parses(text: str) -> bool:
    """Whether `text` is Python that CPython accepts."""
    try:
        ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


@contextmanager
def recursion_limit(limit: int = 6000) -> Iterator[None]:
    """libcst generates code recursively (several frames per nesting level); allow deeper nesting
    than Python's default while it does."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)
