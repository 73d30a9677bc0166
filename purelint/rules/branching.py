"""PUR401: Python control flow (`if`, `while`, `assert`, ternaries, `and`/`or`/`not`) on traced values.

As for PUR402, which values are traced comes from the taint facts (`Context.taint`): a parameter is traced when a
transform applied to its function makes it a tracer (`static_argnums`/`static_argnames`/
`nondiff_argnums`/`functools.partial` arguments stay Python values, `grad` traces its `argnums`,
`vmap` the arguments whose `in_axes` is not None, `lax` bodies every parameter without a default,
Equinox's `filter_*` arrays only), and a value is traced when it is computed from one, except what
is static about every array (`.shape`, `.ndim`, `.dtype`, `len(x)`) and static metadata
(`jax.typeof`, `PartitionSpec`). Helpers that are merely called from traced code are left alone:
they are as often called with plain Python values.
"""

from __future__ import annotations

import libcst as cst

from purelint._rule import Context, FunctionInfo, Invalid, Rule, function_nodes

__all__ = ["PythonBranchOnTraced"]


class PythonBranchOnTraced(Rule):
    code = "PUR401"
    name = "python-branch-on-traced"
    summary = "Python `if`/`while`/`assert`/ternary/`and`/`or`/`not` on a traced value"
    message = (
        "Python `{kind}` on traced `{name}` fails under `jit` (a tracer has no truth value); "
        "use `jax.lax.cond` / `jnp.where`, or make `{name}` static (`static_argnames`)"
    )
    what = """
        Checks for Python control flow whose condition depends on a traced parameter of a traced
        function (or a value computed from one): `if`, `while`, `assert`, `x if c else y`, `and`,
        `or`, `not`.

        What it knows: which parameters each transform traces (`static_argnums`/`static_argnames`,
        positional `functools.partial` arguments, `argnums` of `grad`, `in_axes=None` of `vmap`,
        `lax` bodies, Equinox's `filter_*` tracing arrays only, Flax NNX transforms keeping NNX
        objects' attributes static), the `self` of a bound method passed to a transform (closed
        over, not traced), which def a redefined name means where a transform is applied, NNX
        objects passed to plain `jax.jit` (known from an annotation or from what the function is
        called with: their plain attributes, `model.dim`, are static pytree metadata, their
        Variables' values traced), and Haiku's `jax.jit(apply, static_argnums=...)` on the
        functions `hk.transform(f)` returns (the positions count `params` and `rng` first).

        What it leaves alone: conditions on `.shape`, `.ndim`, `.dtype`, `len(...)` and `is None`
        (static), and on static metadata (`jax.typeof(x)`, a `PartitionSpec`,
        `nn.get_partition_spec(...)`); truth tests of values that are not arrays, which Python
        decides while tracing: a bare attribute (`if state.mask:`, usually an optional field that
        is None or not, which is static pytree structure), a local bound only from such
        attributes, or a name the function also uses with attributes no array has (`if scaler:`
        next to `scaler.adjust(...)`: an object or an optional pytree node); a string's membership in a
        dict (`"label" in batch`), `options or {}` (None or a container), the keys of `d.items()` and
        `d.keys()` (a pytree's keys are static); functions differentiated with
        `jax.grad`/`value_and_grad`/`jvp`/`vjp` outside any traced code (the tracers keep
        concrete values and Python control flow on them works: JAX's docs call it "ok"); helpers
        that are only called from traced code (they are as often called with Python values).
    """
    why = """
        Python decides a branch while JAX traces, when the value is still an abstract tracer:
        `jit` raises a `TracerBoolConversionError`. Where it happens to run (outside `jit`), the
        compiled code keeps only the branch taken while tracing.
    """
    example = """
        @jax.jit
        def relu(x):
            if x > 0:
                return x
            return 0.0
    """
    use_instead = """
        @jax.jit
        def relu(x):
            return jnp.where(x > 0, x, 0.0)
    """
    traced_only = True
    VALID = [
        "import jax\n@jax.jit\ndef f(x):\n    if x.shape[0] > 2 and x.ndim == 1:\n        return x[:2]\n    return x",
        "import jax\n@jax.jit\ndef f(x, mask=None):\n    if mask is None:\n        return x\n    return x * mask",
        "import jax\nfrom functools import partial\n@partial(jax.jit, static_argnames='training')\ndef f(x, training):\n    return x * 0.5 if training else x",
        "import jax\n@jax.jit\ndef f(xs):\n    n = len(xs)\n    while n > 1:\n        n = n // 2\n    return xs",
        "import equinox as eqx\n@eqx.filter_jit\ndef f(x, training: bool):\n    if training:\n        return x * 0.5\n    return x",
        "import jax\ndef f(x):\n    if x > 0:\n        return x\n    return -x",
        "import jax\nimport jax.numpy as jnp\n@jax.jit\ndef f(x):\n    return jnp.where(x > 0, x, 0.0)",
        "import jax\n@jax.jit\ndef f(state, x):\n    scaler = state.scaler\n    if scaler:\n        scaler, ok = scaler.adjust(x)\n    return x",
    ]
    INVALID = [
        Invalid("import jax\n@jax.jit\ndef f(x):\n    if x > 0:\n        return x\n    return 0.0", line=4, column=8),
        Invalid(
            "import jax\n@jax.jit\ndef f(x):\n    y = x.sum() * 2\n    while y > 1:\n        y = y / 2\n    return y",
            line=5,
        ),
        Invalid("import jax\n@jax.jit\ndef f(x, t):\n    return x if t else -x", line=4, column=17),
        Invalid("import jax\n@jax.jit\ndef f(x, y):\n    z = x and y\n    return z", line=4, column=9),
        Invalid("import jax\n@jax.jit\ndef f(x):\n    return not x", line=4, column=12),
        Invalid(
            "import equinox as eqx\nfrom jaxtyping import Array\n@eqx.filter_jit\ndef f(x: Array):\n    if x.sum() > 0:\n        return x\n    return -x",
            line=5,
        ),
        Invalid(
            "import jax\ndef body(carry, x):\n    if carry > x:\n        return carry, x\n    return x, carry\njax.lax.scan(body, 0.0, None)",
            line=3,
        ),
        Invalid("import jax\n@jax.jit\ndef f(x):\n    assert x > 0\n    return x", line=4, column=12),
    ]

    def check_function(self, fn: FunctionInfo, ctx: Context) -> None:
        taint = ctx.taint(fn, branching=True)
        if not taint.names:
            return
        inside: set[int] = set()  # nodes already inside a reported condition
        for node in taint.nodes:
            if id(node) in inside:
                continue
            kind = test = None
            if isinstance(node, (cst.If, cst.While)):
                kind, test = ("if" if isinstance(node, cst.If) else "while"), node.test
            elif isinstance(node, cst.IfExp):
                kind, test = "... if ... else ...", node.test
            elif isinstance(node, cst.BooleanOperation):
                if isinstance(node.operator, cst.Or) and _default_container(node.right, ctx):
                    continue  # `options or {}`: None or a container, never an array
                kind, test = ("and" if isinstance(node.operator, cst.And) else "or"), node.left
            elif isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
                kind, test = "not", node.expression
            elif isinstance(node, cst.Assert):
                kind, test = "assert", node.test
            if test is None or taint.structure_test(test):
                continue
            name = taint.source(test)
            if name is not None:
                inside.update(id(n) for n in function_nodes(test))
                ctx.report(node if kind == "not" else test, kind=kind, name=name)


_CONTAINERS = (cst.Dict, cst.List, cst.Tuple, cst.Set, cst.DictComp, cst.ListComp, cst.SetComp)
_CONTAINER_CALLS = frozenset({"builtins.dict", "builtins.list", "builtins.tuple", "builtins.set"})


def _default_container(expr: cst.BaseExpression, ctx: Context) -> bool:
    """`{}`, `[]`, `()`, `dict()`...: the default of an optional container argument."""
    return isinstance(expr, _CONTAINERS) or (isinstance(expr, cst.Call) and ctx.qualname(expr.func) in _CONTAINER_CALLS)
