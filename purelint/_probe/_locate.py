"""Where in a function's source a name is read, rebound or mutated.

A hook sees an effect as it happens, with the frame that caused it. A mutation is only seen
afterwards, by comparing snapshots taken before and after a trace: this module finds the line that
did it, by reading the function's source (the `ast` of its file, matched to the code object).
"""

from __future__ import annotations

import ast
import linecache
from collections.abc import Iterator
from types import CodeType

from purelint._probe._frames import Site, make_site

__all__ = ["def_site", "global_sites", "mutation_sites", "read_site"]

# Methods that change a list, dict, set, bytearray or deque in place.
MUTATORS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "pop",
        "remove",
        "clear",
        "sort",
        "reverse",
        "update",
        "setdefault",
        "popitem",
        "add",
        "discard",
        "difference_update",
        "intersection_update",
        "symmetric_difference_update",
        "appendleft",
        "extendleft",
        "popleft",
        "rotate",
        "__setitem__",
        "__delitem__",
    }
)

_trees: dict[str, tuple[int, ast.Module | None]] = {}
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _tree(path: str) -> ast.Module | None:
    lines = linecache.getlines(path)
    cached = _trees.get(path)
    if cached is not None and cached[0] == id(lines):
        return cached[1]
    try:
        tree = ast.parse("".join(lines)) if lines else None
    except (SyntaxError, ValueError):
        tree = None
    _trees[path] = (id(lines), tree)
    return tree


def _function_node(code: CodeType) -> ast.AST | None:
    tree = _tree(code.co_filename)
    if tree is None or code.co_name == "<module>":
        return tree
    for node in ast.walk(tree):
        if isinstance(node, ast.Lambda):
            if code.co_name == "<lambda>" and node.lineno == code.co_firstlineno:
                return node
        elif isinstance(node, _DEFS) and node.name == code.co_name:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if first == code.co_firstlineno or node.lineno == code.co_firstlineno:
                return node
    return None


def _site(code: CodeType, node: ast.expr | ast.stmt) -> Site:
    return make_site(
        code.co_filename,
        node.lineno,
        node.col_offset,
        node.end_lineno or node.lineno,
        node.end_col_offset,
        code.co_qualname,
    )


def def_site(code: CodeType) -> Site:
    """The `def name` of the function (its first line when the source is unavailable)."""
    node = _function_node(code)
    if isinstance(node, _DEFS):
        start = node.col_offset
        width = len("async def " if isinstance(node, ast.AsyncFunctionDef) else "def ") + len(node.name)
        return make_site(code.co_filename, node.lineno, start, node.lineno, start + width, code.co_qualname)
    if isinstance(node, ast.Lambda):
        return make_site(
            code.co_filename,
            node.lineno,
            node.col_offset,
            node.lineno,
            node.col_offset + len("lambda"),
            code.co_qualname,
        )
    return make_site(code.co_filename, code.co_firstlineno, 0, code.co_firstlineno, None, code.co_qualname)


def _root(node: ast.AST) -> str | None:
    """`xs` for `xs`, `xs[0]`, `xs.attr`, `xs[0].attr[1]`."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _mutations(node: ast.AST) -> Iterator[tuple[str, ast.expr | ast.stmt]]:
    """(root name, node) for each in-place change in `node`: mutating method calls, item and
    attribute assignment and deletion, and augmented assignment (in place for lists)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in MUTATORS:
            root = _root(sub.func.value)
            if root:
                yield root, sub
        elif isinstance(sub, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = sub.targets if isinstance(sub, (ast.Assign, ast.Delete)) else [sub.target]
            for target in targets:
                for leaf in ast.walk(target) if isinstance(target, (ast.Tuple, ast.List)) else [target]:
                    if isinstance(leaf, (ast.Subscript, ast.Attribute)):
                        root = _root(leaf)
                        if root:
                            yield root, leaf
                    elif isinstance(leaf, ast.Name) and isinstance(sub, ast.AugAssign):
                        yield leaf.id, sub


def mutation_sites(code: CodeType, name: str) -> list[Site]:
    """Where the function changes the object `name` refers to in place, in source order."""
    node = _function_node(code)
    if node is None:
        return []
    found = [_site(code, sub) for root, sub in _mutations(node) if root == name]
    return sorted(found, key=lambda s: (s.line, s.column))


def global_sites(code: CodeType, name: str) -> list[Site]:
    """The `global name` statement of the function, then its assignments to `name`."""
    node = _function_node(code)
    if node is None:
        return []
    declared = [sub for sub in ast.walk(node) if isinstance(sub, (ast.Global, ast.Nonlocal)) and name in sub.names]
    stores = [
        sub
        for sub in ast.walk(node)
        if isinstance(sub, ast.Name) and sub.id == name and isinstance(sub.ctx, (ast.Store, ast.Del))
    ]
    ordered = sorted(declared, key=lambda n: (n.lineno, n.col_offset)) + sorted(
        stores, key=lambda n: (n.lineno, n.col_offset)
    )
    return [_site(code, sub) for sub in ordered]


def read_site(code: CodeType, name: str) -> Site | None:
    """The first place the function reads `name`."""
    node = _function_node(code)
    if node is None:
        return None
    reads = [
        sub for sub in ast.walk(node) if isinstance(sub, ast.Name) and sub.id == name and isinstance(sub.ctx, ast.Load)
    ]
    if not reads:
        return None
    return _site(code, min(reads, key=lambda n: (n.lineno, n.col_offset)))
