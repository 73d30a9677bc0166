"""Value kinds: what each local name holds at each point of a function (or of the module body).

A small flow-sensitive, intra-procedural analysis. It walks the statements in order, and for every
statement records the kind of each name bound before it:

- "array": a JAX array, proven: the result of `jnp`/`lax`/`jax.random`/`jax.nn` calls, arithmetic,
  indexing and array methods on arrays or on traced parameters (under a transform a parameter is a
  pytree of tracers; if arithmetic on it works, it was a tracer), `.at[...].set(...)`, and, in traced
  code, parameters annotated `jax.Array`/jaxtyping `Float[Array, ...]`.
- "declared-array": a parameter annotated as a JAX array in code JAX does not trace: the annotation
  is a promise, not a proof (a NumPy array passed in is mutable).
- "traced": a traced parameter whose structure is unknown (an array, or a dict/list of them).
- "dict", "list", "tuple", "set", "kwargs" (the function's own `**kwargs`, a fresh dict per call),
  "scalar" (numbers, bools, None), "str", "numpy" (NumPy arrays, mutable), "generator" (a NumPy
  `Generator`/`RandomState`), "ref" (a mutable `jax.new_ref` Ref), "nnx-variable" and "nnx-object"
  (Flax NNX Variables and graph objects: modules, optimizers, `Rngs`).
- anything else is unknown (None).

Branches merge (a name whose kinds differ becomes unknown), loops run their body twice, names bound by
`:=` or rebound from nested functions (`nonlocal`) are unknown. A fix may rely on "array" only.

Example:
    >>> import libcst as cst
    >>> body = cst.parse_module("y = jnp.zeros(3)\\nd = {}\\ny[0] = 1\\nd['k'] = 2\\n").body
    >>> resolve = lambda e: "jax.numpy.zeros" if cst.Module([]).code_for_node(e) == "jnp.zeros" else None
    >>> kinds = ValueKinds(body, resolve)
    >>> kinds.before(body[2])["y"], kinds.before(body[3])["d"]
    ('array', 'dict')
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence

import libcst as cst

from purelint._analysis._cst import bound_names
from purelint._frameworks import ARRAY_METHODS, NNX_OBJECTS, NNX_VARIABLES, REF_CONSTRUCTORS, returns_array

__all__ = ["ARRAY_KINDS", "ExpressionKinds", "ValueKinds", "annotation_kind"]

Env = Mapping[str, str]
Resolver = Callable[[cst.BaseExpression], "str | None"]
# Kinds on which item assignment is certainly a JAX array's (and so raises TypeError).
ARRAY_KINDS = frozenset({"array"})
_EMPTY: dict[str, str] = {}
_BUILTIN_KINDS = {
    "builtins.dict": "dict", "builtins.list": "list", "builtins.sorted": "list", "builtins.tuple": "tuple",
    "builtins.set": "set", "builtins.frozenset": "set", "builtins.int": "scalar", "builtins.float": "scalar",
    "builtins.bool": "scalar", "builtins.len": "scalar", "builtins.str": "str", "builtins.repr": "str",
    "collections.OrderedDict": "dict", "collections.defaultdict": "dict", "collections.Counter": "dict",
}  # fmt: skip
_TREE_MAPS = frozenset(
    {
        "jax.tree.map",
        "jax.tree_util.tree_map",
        "jax.tree_map",
        "jax.tree.map_with_path",
        "jax.tree_util.tree_map_with_path",
    }
)
_GENERATORS = frozenset(f"numpy.random.{n}" for n in ("default_rng", "Generator", "RandomState"))
_CONTAINERS = frozenset({"dict", "list", "tuple", "kwargs"})
_ARRAY_ATTRIBUTES = frozenset({"T", "mT", "real", "imag"})
_ARRAYISH = frozenset({"array", "traced"})


def annotation_kind(annotation: cst.BaseExpression | None, resolve: Resolver) -> str | None:
    """ "array" for `jax.Array`, `jnp.ndarray` and jaxtyping's `Float[Array, "..."]`; NNX kinds for
    `nnx.Variable`/`nnx.Module`-like annotations; None otherwise (Optional/unions included)."""
    if annotation is None:
        return None
    if isinstance(annotation, cst.Subscript):  # jaxtyping: Float[Array, "n"]
        name = resolve(annotation.value) or ""
        first = annotation.slice[0].slice if annotation.slice else None
        if name.startswith("jaxtyping.") and isinstance(first, cst.Index):
            return annotation_kind(first.value, resolve)
        return None
    qualname = resolve(annotation)
    if qualname in ("jax.Array", "jax.numpy.ndarray", "jaxtyping.Array", "chex.Array", "jax.typing.Array"):
        return "array"
    if qualname in NNX_VARIABLES:
        return "nnx-variable"
    if qualname in NNX_OBJECTS:
        return "nnx-object"
    return None


class ExpressionKinds:
    """The kind of an expression, given the kinds of the names in it (`env`).

    `resolve`: the shared name resolver; `classes`: a callback giving the framework of a same-file
    class a call constructs ("nnx", "nnx-variable"...).
    """

    def __init__(self, resolve: Resolver, classes: Callable[[cst.BaseExpression], str | None] | None = None) -> None:
        self.resolve = resolve
        self.classes = classes or (lambda expr: None)

    def kind(self, expr: cst.BaseExpression | None, env: Env) -> str | None:
        """The kind of the value an expression evaluates to, given the kinds of names in `env`."""
        node = expr
        kind = type(node)
        if kind is cst.Name:
            name = node.value  # type: ignore[union-attr]
            if name in ("None", "True", "False"):
                return "scalar"
            return env.get(name)
        if kind in (cst.Integer, cst.Float, cst.Imaginary):
            return "scalar"
        if kind in (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString):
            return "str"
        if kind in (cst.Dict, cst.DictComp):
            return "dict"
        if kind in (cst.List, cst.ListComp):
            return "list"
        if kind is cst.Tuple:
            return "tuple"
        if kind in (cst.Set, cst.SetComp):
            return "set"
        if kind is cst.Call:
            return self._call(node, env)  # type: ignore[arg-type]
        if kind is cst.BinaryOperation:
            # `a + b + ... + z` nests to the left: fold it from the innermost operand, so that long
            # chains cost no recursion.
            operations = []
            while type(node) is cst.BinaryOperation:
                operations.append(node)
                node = node.left  # type: ignore[union-attr]
            left = self.kind(node, env)
            for operation in reversed(operations):
                left = _binary(operation.operator, left, self.kind(operation.right, env))  # type: ignore[union-attr]
            return left
        if kind is cst.UnaryOperation:
            operators = []  # `- - x` as well: from the innermost operand out
            while type(node) is cst.UnaryOperation:
                operators.append(node.operator)  # type: ignore[union-attr]
                node = node.expression  # type: ignore[union-attr]
            inner = self.kind(node, env)
            for operator in reversed(operators):
                inner = "scalar" if type(operator) is cst.Not else _unary(inner)
            return inner
        if kind is cst.Comparison:
            if any(type(c.operator) in (cst.Is, cst.IsNot, cst.In, cst.NotIn) for c in node.comparisons):  # type: ignore[union-attr]
                return "scalar"
            operands = [node.left, *(c.comparator for c in node.comparisons)]  # type: ignore[union-attr]
            kinds = {self.kind(o, env) for o in operands}
            return "array" if kinds & _ARRAYISH and kinds <= {"array", "traced", "scalar"} else None
        if kind is cst.Subscript:
            receiver = self.kind(node.value, env)  # type: ignore[union-attr]
            if receiver == "array":
                return "array"
            if receiver == "traced":
                return "traced"
            return None
        if kind is cst.Attribute:
            receiver = self.kind(node.value, env)  # type: ignore[union-attr]
            attr = node.attr.value  # type: ignore[union-attr]
            if receiver in _ARRAYISH and attr in _ARRAY_ATTRIBUTES:
                return "array"
            if receiver == "array" and attr == "shape":
                return "tuple"
            if receiver == "array" and attr in ("ndim", "size"):
                return "scalar"
            return None
        if kind is cst.IfExp:
            body, orelse = self.kind(node.body, env), self.kind(node.orelse, env)  # type: ignore[union-attr]
            return body if body == orelse else None
        return None

    def _call(self, node: cst.Call, env: Env) -> str | None:
        func = node.func
        qualname = self.resolve(func)
        if qualname is not None:
            if qualname in _BUILTIN_KINDS:
                return _BUILTIN_KINDS[qualname]
            if qualname == "jax.numpy.where":
                return "array" if len(node.args) == 3 else None
            if returns_array(qualname):
                return "array"
            if qualname in _TREE_MAPS and len(node.args) >= 2:
                tree = self.kind(node.args[1].value, env)
                return tree if tree in _CONTAINERS else None
            if qualname in ("copy.copy", "copy.deepcopy") and node.args:
                inner = self.kind(node.args[0].value, env)
                return inner if inner in _CONTAINERS else None
            if qualname in REF_CONSTRUCTORS:
                return "ref"
            if qualname in _GENERATORS:
                return "generator"
            if qualname.startswith("numpy.") and not qualname.startswith("numpy.random."):
                return "numpy"
            if qualname in NNX_VARIABLES:
                return "nnx-variable"
            if qualname.startswith("flax.nnx.") and qualname.rsplit(".", 1)[1][:1].isupper():
                return "nnx-object"
            return None
        framework = self.classes(func)
        if framework is not None:
            return "nnx-variable" if framework == "nnx-variable" else "nnx-object" if framework == "nnx" else None
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            receiver_expr = func.value
            # `x.at[i].set(v)`: `.at` exists only on JAX arrays, so the result is one.
            if (
                isinstance(receiver_expr, cst.Subscript)
                and isinstance(receiver_expr.value, cst.Attribute)
                and receiver_expr.value.attr.value == "at"
            ):
                return "array"
            receiver = self.kind(receiver_expr, env)
            if receiver in _ARRAYISH and method in ARRAY_METHODS:
                return "array"
            if receiver in ("dict", "kwargs") and method == "copy":
                return "dict"
            if receiver == "list" and method == "copy":
                return "list"
        return None


class ValueKinds(ExpressionKinds):
    """Kinds of the names bound in `body` (statements of one function, or of the module).

    `params`: the kinds parameters start with; `resolve` and `classes` as for `ExpressionKinds`;
    `unknown`: names never to trust (bound by `:=`, `nonlocal` in nested functions, `global`).
    """

    def __init__(
        self,
        body: Sequence[cst.CSTNode],
        resolve: Resolver,
        params: Mapping[str, str] | None = None,
        classes: Callable[[cst.BaseExpression], str | None] | None = None,
        unknown: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(resolve, classes)
        self.unknown = unknown
        self._before: dict[int, Env] = {}
        env = {name: kind for name, kind in (params or {}).items() if name not in unknown}
        # Statements nested hundreds deep (generated code) exhaust Python's stack: what was recorded before stays.
        with contextlib.suppress(RecursionError):
            self._suite(body, env)

    def before(self, statement: cst.CSTNode) -> Env:
        """Kinds before a statement (a small statement such as an Assign, or a compound one)."""
        return self._before.get(id(statement), _EMPTY)

    # -- statements -------------------------------------------------------------------------------

    def _suite(self, body: Sequence[cst.CSTNode], env: dict[str, str] | None) -> dict[str, str] | None:
        for statement in body:
            if env is None:
                return None
            env = self._statement(statement, env)
        return env

    def _block(self, block: cst.BaseSuite, env: dict[str, str]) -> dict[str, str] | None:
        return self._suite(block.body, env)

    def _statement(self, node: cst.CSTNode, env: dict[str, str]) -> dict[str, str] | None:
        self._before[id(node)] = env
        kind = type(node)
        if kind is cst.SimpleStatementLine:
            return self._suite(node.body, env)  # type: ignore[attr-defined]
        if kind is cst.Assign:
            value = self.kind(node.value, env)  # type: ignore[attr-defined]
            env = dict(env)
            for target in node.targets:  # type: ignore[attr-defined]
                self._bind(target.target, value, node.value, env)  # type: ignore[attr-defined]
            return env
        if kind is cst.AnnAssign:
            declared = annotation_kind(node.annotation.annotation, self.resolve)  # type: ignore[attr-defined]
            value = self.kind(node.value, env) if node.value is not None else None  # type: ignore[attr-defined]
            env = dict(env)
            self._bind(node.target, value if value is not None else declared, node.value, env)  # type: ignore[attr-defined]
            return env
        if kind is cst.AugAssign:
            target = node.target  # type: ignore[attr-defined]
            if isinstance(target, cst.Name):
                old, new = env.get(target.value), self.kind(node.value, env)  # type: ignore[attr-defined]
                combined = old if old in ("list", "dict", "set", "str") else _arithmetic(old, new)
                env = dict(env)
                self._bind(target, combined, None, env)
            return env
        if kind in (cst.Return, cst.Raise):
            return None
        if kind in (cst.Break, cst.Continue):
            return None
        if kind is cst.Del:
            return self._forget(node.target, env)  # type: ignore[attr-defined]
        if kind in (cst.Import, cst.ImportFrom, cst.Global, cst.Nonlocal):
            names = getattr(node, "names", ())
            if isinstance(names, cst.ImportStar):
                return {}
            env = dict(env)
            for alias in names:
                local = alias.asname.name if getattr(alias, "asname", None) is not None else alias.name
                while isinstance(local, cst.Attribute):
                    local = local.value
                if isinstance(local, cst.Name):
                    env.pop(local.value, None)
            return env
        if kind in (cst.FunctionDef, cst.ClassDef):
            env = dict(env)
            env.pop(node.name.value, None)  # type: ignore[attr-defined]
            return env
        if kind is cst.If:
            taken = self._block(node.body, env)  # type: ignore[attr-defined]
            orelse = node.orelse  # type: ignore[attr-defined]
            if orelse is None:
                other: dict[str, str] | None = env
            elif isinstance(orelse, cst.If):
                other = self._statement(orelse, env)
            else:
                other = self._block(orelse.body, env)
            return _merge([taken, other])
        if kind in (cst.For, cst.While):
            head: dict[str, str] = env
            for _ in range(2):  # the second pass sees what the body feeds back
                entry = dict(head)
                if kind is cst.For:
                    self._bind(node.target, None, None, entry)  # type: ignore[attr-defined]
                end = self._block(node.body, entry)  # type: ignore[attr-defined]
                head = _merge([head, end]) or head
            if node.orelse is not None:  # type: ignore[attr-defined]
                head = self._block(node.orelse.body, head) or head  # type: ignore[attr-defined]
            return head
        if kind in (cst.Try, cst.TryStar):
            end = self._block(node.body, env)  # type: ignore[attr-defined]
            if end is not None and node.orelse is not None:  # type: ignore[attr-defined]
                end = self._block(node.orelse.body, end)  # type: ignore[attr-defined]
            start = _merge([env, end]) or env
            outcomes = [end] + [
                self._block(h.body, _without(start, h.name.name if h.name else None)) for h in node.handlers
            ]  # type: ignore[attr-defined]
            merged = _merge(outcomes)
            if node.finalbody is not None:  # type: ignore[attr-defined]
                return self._block(node.finalbody.body, merged if merged is not None else start)  # type: ignore[attr-defined]
            return merged
        if kind is cst.With:
            env = dict(env)
            for item in node.items:  # type: ignore[attr-defined]
                if item.asname is not None:
                    self._bind(item.asname.name, None, None, env)
            return self._block(node.body, env)  # type: ignore[attr-defined]
        if kind is cst.Match:
            return _merge([env, *(self._block(case.body, _with_captures(env, case.pattern)) for case in node.cases)])  # type: ignore[attr-defined]
        return env

    def _bind(
        self, target: cst.BaseExpression, kind: str | None, value: cst.BaseExpression | None, env: dict[str, str]
    ) -> None:
        if isinstance(target, cst.Name):
            name = target.value
            if kind is None or name in self.unknown:
                env.pop(name, None)
            else:
                env[name] = kind
        elif isinstance(target, (cst.Tuple, cst.List)):
            elements = target.elements
            values = (
                value.elements
                if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(elements)
                else None
            )
            for index, element in enumerate(elements):
                if values is not None and not isinstance(values[index], cst.StarredElement):
                    inner = self.kind(values[index].value, env)
                else:
                    inner = "array" if kind == "array" and not isinstance(element, cst.StarredElement) else None
                self._bind(element.value, inner, None, env)
        elif isinstance(target, cst.StarredElement):
            self._bind(target.value, "list", None, env)

    @staticmethod
    def _forget(target: cst.BaseExpression, env: dict[str, str]) -> dict[str, str]:
        env = dict(env)
        for name in bound_names(target):
            env.pop(name, None)
        return env


def _binary(operator: cst.BaseBinaryOp, left: str | None, right: str | None) -> str | None:
    """Kind of `left <operator> right`."""
    if left in ("list", "tuple", "str") and type(operator) in (cst.Add, cst.Multiply):
        return left
    if left == "dict" == right and type(operator) is cst.BitOr:
        return "dict"
    return _arithmetic(left, right)


def _unary(inner: str | None) -> str | None:
    """Kind of `-x`, `+x` or `~x`."""
    return "array" if inner in _ARRAYISH else inner if inner == "scalar" else None


def _arithmetic(left: str | None, right: str | None) -> str | None:
    """Kind of `left <op> right` for numeric operators."""
    kinds = {left, right}
    if kinds & _ARRAYISH and kinds <= {"array", "traced", "scalar"}:
        return "array"
    if kinds == {"scalar"}:
        return "scalar"
    return None


def _merge(envs: Sequence[Env | None]) -> dict[str, str] | None:
    live = [e for e in envs if e is not None]
    if not live:
        return None
    first = live[0]
    if all(e is first for e in live):
        return dict(first)
    return {name: kind for name, kind in first.items() if all(e.get(name) == kind for e in live[1:])}


def _without(env: Env, target: cst.BaseExpression | None) -> dict[str, str]:
    env = dict(env)
    for name in bound_names(target) if target is not None else ():
        env.pop(name, None)
    return env


def _with_captures(env: Env, pattern: cst.CSTNode) -> dict[str, str]:
    """A `case` pattern binds names: they are unknown in its body."""
    env = dict(env)
    stack = [pattern]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            env.pop(node.value, None)
        stack.extend(node.children)
    return env
