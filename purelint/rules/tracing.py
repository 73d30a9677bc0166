"""Tracing hazards: Python control flow on traced values (PUR401), concretizing them (PUR402),
`jax.jit` over Equinox modules (PUR403), long Python loops that unroll at trace time (PUR404).

PUR401/PUR402 read which values are traced from the facts layer (`purelint._facts.Taint`, through
`ctx.facts.taint(fn)`): a parameter is traced when a transform applied to its function makes it a
tracer (`static_argnums`/`static_argnames`/`nondiff_argnums`/`functools.partial` arguments stay
Python values, `grad` traces its `argnums`, `vmap` the arguments whose `in_axes` is not None, `lax`
bodies every parameter without a default, Equinox's `filter_*` arrays only), and a value is traced
when it is computed from one, except what is static about every array (`.shape`, `.ndim`, `.dtype`,
`len(x)`) and static metadata (`jax.typeof`, `PartitionSpec`). Helpers that are merely called from
traced code are left alone: they are as often called with plain Python values.
"""

from __future__ import annotations

import libcst as cst

from purelint._engine import Context, FunctionInfo, literal
from purelint._facts import Taint, function_nodes, params_with_annotations as _params_with_annotations
from purelint._fix import build_fix, code_of, node_edit, reference
from purelint._rule import Invalid, Rule, Valid

__all__ = ["ConcretizeTraced", "JitOverModules", "PythonBranchOnTraced", "UnrolledLoop"]

_CONCRETIZERS = frozenset({"builtins.float", "builtins.int", "builtins.bool", "builtins.complex", "numpy.asarray", "numpy.array"})
_CONCRETIZING_METHODS = frozenset({"item", "tolist"})


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
        next to `scaler.adjust(...)`: an object or an optional pytree node); functions differentiated with
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
        Invalid("import jax\n@jax.jit\ndef f(x):\n    y = x.sum() * 2\n    while y > 1:\n        y = y / 2\n    return y", line=5),
        Invalid("import jax\n@jax.jit\ndef f(x, t):\n    return x if t else -x", line=4, column=17),
        Invalid("import jax\n@jax.jit\ndef f(x, y):\n    z = x and y\n    return z", line=4, column=9),
        Invalid("import jax\n@jax.jit\ndef f(x):\n    return not x", line=4, column=12),
        Invalid("import equinox as eqx\nfrom jaxtyping import Array\n@eqx.filter_jit\ndef f(x: Array):\n    if x.sum() > 0:\n        return x\n    return -x", line=5),
        Invalid("import jax\ndef body(carry, x):\n    if carry > x:\n        return carry, x\n    return x, carry\njax.lax.scan(body, 0.0, None)", line=3),
        Invalid("import jax\n@jax.jit\ndef f(x):\n    assert x > 0\n    return x", line=4, column=12),
    ]

    def check_function(self, fn: FunctionInfo, ctx: Context) -> None:
        taint = ctx.facts.taint(fn, branching=True)
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


class ConcretizeTraced(Rule):
    code = "PUR402"
    name = "concretize-traced"
    summary = "`float()`/`int()`/`bool()`/`.item()`/`.tolist()`/`np.asarray()`, a shape or a boolean mask from a traced value"
    message = "`{call}` needs a concrete value, but `{name}` is traced: this fails under `jit`; keep it an array"
    what = """
        Checks for conversions of traced values to Python or NumPy values: `float(x)`, `int(x)`,
        `bool(x)`, `x.item()`, `x.tolist()`, `np.asarray(x)`, `np.array(x)`, where `x` is a traced
        parameter of a traced function or a value computed from one; and traced values used as a
        shape or size (`jnp.ones((n,))`, `x.reshape(n)`, `jnp.arange(n)`, `jax.random.normal(key,
        (n,))`), which need concrete integers just as well; and indexing with a traced boolean
        mask (`x[mask]`, `x[x < 0]`, with `mask` a comparison, `~`/`&`/`|` of such, or
        `jnp.isnan`/`jnp.logical_and`/... of traced values), whose result's shape depends on the
        values (`NonConcreteBooleanIndexError`).

        It knows the same traced parameters as PUR401, except that `grad` outside traced code
        counts here (its tracers keep values for comparisons, but `float()` on them still fails;
        a boolean mask of them is concrete, and left alone). It leaves alone sizes taken from
        `.shape`/`.ndim`/`len()`, which are static, the mask forms that keep the shape
        (`jnp.where(mask, x, 0)`, `x.sum(where=mask)`), and `x[mask] = v` (item assignment,
        PUR301/PUR302). `x.at[mask].set(v)` is flagged too: it fails the same way (use
        `jnp.where(mask, v, x)`).
    """
    why = """
        Inside `jit` a value is an abstract tracer with a shape and a dtype but no number yet, so
        converting it raises a `ConcretizationTypeError`. Code ported from PyTorch (`loss.item()`)
        or NumPy hits this constantly. Shapes must be known while tracing too, so a size or a
        boolean mask (`x[mask]` has as many elements as `mask` has `True`s) cannot be a tracer.
    """
    example = """
        @jax.jit
        def scale(x):
            top = float(x.max())
            return x / top
    """
    use_instead = """
        @jax.jit
        def scale(x):
            top = x.max()
            return x / top
    """
    traced_only = True
    priority = 1  # more specific than PUR305's generic `.item()`
    VALID = [
        "import jax\n@jax.jit\ndef f(x):\n    n = int(x.shape[0])\n    return x / n",
        "import jax\nimport numpy as np\n@jax.jit\ndef f(x):\n    w = np.asarray([1.0, 2.0])\n    return x * w",
        "import jax\ndef f(x):\n    return float(x)",
        "import jax\nfrom functools import partial\n@partial(jax.jit, static_argnums=1)\ndef f(x, n):\n    return x * int(n)",
        "import jax\nimport jax.numpy as jnp\n@jax.jit\ndef f(x):\n    return jnp.where(x < 0, 0.0, x).sum() + x.sum(where=x > 0)",
    ]
    INVALID = [
        Invalid("import jax\n@jax.jit\ndef f(x):\n    top = float(x.max())\n    return x / top", line=4, column=11),
        Invalid("import jax\n@jax.jit\ndef f(loss):\n    return loss.item()", line=4, column=12),
        Invalid("import jax\n@jax.jit\ndef f(x):\n    y = x * 2\n    return y.tolist()", line=5),
        Invalid("import jax\nimport numpy as onp\n@jax.jit\ndef f(x):\n    return onp.asarray(x)", line=5),
        Invalid("import jax\n@jax.jit\ndef f(x, i):\n    return x[int(i)]", line=4, column=14),
        Invalid("import jax\nimport jax.numpy as jnp\n@jax.jit\ndef f(n):\n    return jnp.ones((n,))", line=5),
        Invalid("import jax\n@jax.jit\ndef f(x, n):\n    return x.reshape(n, -1)", line=4, column=22),
        Invalid("import jax\nimport jax.numpy as jnp\n@jax.jit\ndef f(x):\n    return x[~jnp.isnan(x)].sum()", line=5, column=14),
    ]

    def check_function(self, fn: FunctionInfo, ctx: Context) -> None:
        self._boolean_masks(ctx.facts.taint(fn, branching=True), ctx)
        taint = ctx.facts.taint(fn)
        if not taint.names:
            return
        for node in taint.nodes:
            if type(node) is not cst.Call:
                continue
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value in _CONCRETIZING_METHODS:
                name = taint.source(func.value)
                if name is not None:
                    ctx.report(node, call=f".{func.attr.value}()", name=name)
                continue
            qualname = ctx.qualname(func)
            if qualname is None and isinstance(func, cst.Attribute) and func.attr.value == "reshape":  # x.reshape(n)
                self._shape(node, [a for a in node.args if a.keyword is None], f"{code_of(func).strip()}()", taint, ctx)
                continue
            where = _SHAPE_ARGUMENTS.get(qualname)  # type: ignore[arg-type]
            if where is not None:
                position, keyword = where
                positional = [a for a in node.args if a.keyword is None and not a.star]
                shape = [a for a in node.args if a.keyword is not None and a.keyword.value == keyword]
                shape += positional[position:position + 1] if position >= 0 else positional
                self._shape(node, shape, f"{code_of(func).strip()}()", taint, ctx)
                continue
            if qualname in _CONCRETIZERS and node.args:
                name = taint.source(node.args[0].value)
                if name is not None:
                    ctx.report(node, call=f"{code_of(func)}()", name=name)

    @staticmethod
    def _boolean_masks(taint: Taint, ctx: Context) -> None:
        """`x[mask]` read with a traced boolean mask: the result's shape depends on the values."""
        if not taint.names:
            return
        stored = set()  # `x[mask] = v` and `del x[mask]`: item assignment, PUR301/PUR302's business
        for node in taint.nodes:
            if type(node) in (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.Del):
                targets = [t.target for t in node.targets] if type(node) is cst.Assign else [node.target]
                stored.update(id(t) for t in targets)
        for node in taint.nodes:
            if type(node) is not cst.Subscript or id(node) in stored:
                continue
            # `x.at[mask].set(v)` fails just as well: JAX turns the mask into indices first.
            scatter = isinstance(node.value, cst.Attribute) and node.value.attr.value == "at"
            for element in node.slice:
                index = element.slice
                if isinstance(index, cst.Index) and taint.boolean(index.value):
                    name = taint.source(index.value)
                    if name is not None:
                        mask = code_of(index.value).strip()
                        origin = "" if mask == name else f" (from `{name}`)"
                        instead = (
                            f"`jnp.where({mask}, new, x)`" if scatter else f"`jnp.where({mask}, x, 0)` or a reduction's `where={mask}`"
                        )
                        ctx.report(
                            index.value,
                            f"indexing with the traced boolean mask `{mask}`{origin} needs the positions of its `True`s "
                            f"while tracing: this fails under `jit` (`NonConcreteBooleanIndexError`); use {instead}",
                        )
                        break

    @staticmethod
    def _shape(call: cst.Call, args: list[cst.Arg], label: str, taint: Taint, ctx: Context) -> None:
        for arg in args:
            name = taint.source(arg.value)
            if name is not None:
                ctx.report(
                    arg.value,
                    f"`{label}` needs a concrete shape, but `{name}` is traced: this fails under `jit`; "
                    f"make `{name}` static (`static_argnames`) or derive it from an array's `.shape`",
                )
                return


# Functions whose argument is a shape or a size (must be concrete): qualname -> (position, keyword);
# position -1: every positional argument.
_SHAPE_ARGUMENTS = {
    **{f"jax.numpy.{n}": (0, "shape") for n in ("zeros", "ones", "empty", "full")},
    **{f"jax.numpy.{n}": (-1, "N") for n in ("arange", "eye", "identity", "tri")},
    "jax.numpy.reshape": (1, "shape"),
    "jax.numpy.broadcast_to": (1, "shape"),
    "jax.numpy.tile": (1, "reps"),
    "jax.numpy.linspace": (2, "num"),
    **{f"jax.random.{n}": (1, "shape") for n in ("normal", "uniform", "randint", "gumbel", "exponential", "laplace", "logistic", "cauchy")},
    "jax.random.bernoulli": (2, "shape"),
    "jax.random.categorical": (3, "shape"),
    "jax.random.truncated_normal": (3, "shape"),
}


def _module_class(expr: cst.BaseExpression | None, fn: FunctionInfo, ctx: Context) -> str | None:
    """The Equinox module class an annotation or constructor names, when it names one."""
    if expr is None:
        return None
    if isinstance(expr, cst.Subscript):
        expr = expr.value
    qualname = ctx.analysis.qualname(expr, fn.parent)  # type: ignore[arg-type]
    if qualname is not None and (qualname == "equinox.Module" or qualname.startswith("equinox.nn.")):
        return qualname
    if isinstance(expr, cst.Name):
        where = ctx.analysis.lookup(expr.value, fn.parent)  # type: ignore[arg-type]
        info = where.classes.get(expr.value) if where is not None else None
        if info is not None and info.is_module:
            return expr.value
    return None


class JitOverModules(Rule):
    code = "PUR403"
    name = "jit-over-equinox-modules"
    summary = "`jax.jit` on a function that takes Equinox modules"
    message = "`jax.jit` on `{fn}`, which takes the Equinox module `{module}`; use `eqx.filter_jit`"
    what = """
        Checks for `jax.jit` (as a decorator or `jax.jit(f)`) applied to a function whose
        parameters are annotated as Equinox modules, or that is called in the same file with one.
    """
    why = """
        An Equinox module is a pytree that holds arrays and also non-array leaves (activation
        functions, ints, flags). `jax.jit` tries to trace every leaf and fails on the non-arrays
        (or needs a hand-maintained `static_argnums`); `eqx.filter_jit` traces arrays and keeps
        everything else static automatically.
    """
    example = """
        @jax.jit
        def loss(model: eqx.nn.MLP, x, y):
            return jnp.mean((jax.vmap(model)(x) - y) ** 2)
    """
    use_instead = """
        @eqx.filter_jit
        def loss(model: eqx.nn.MLP, x, y):
            return jnp.mean((jax.vmap(model)(x) - y) ** 2)
    """
    fix_applicability = "unsafe"
    VALID = [
        "import equinox as eqx\n@eqx.filter_jit\ndef f(model: eqx.nn.Linear, x):\n    return model(x)",
        "import jax\n@jax.jit\ndef f(x, y):\n    return x + y",
        "import jax\nimport equinox as eqx\nclass Plain:\n    pass\n@jax.jit\ndef f(p: Plain, x):\n    return x",
    ]
    INVALID = [
        Invalid(
            "import jax\nimport equinox as eqx\n@jax.jit\ndef f(model: eqx.nn.Linear, x):\n    return model(x)",
            line=3, column=2,
            expected_fix="import jax\nimport equinox as eqx\n@eqx.filter_jit\ndef f(model: eqx.nn.Linear, x):\n    return model(x)",
        ),
        Invalid(
            "import jax\nimport equinox as eqx\nclass MLP(eqx.Module):\n    w: jax.Array\n"
            "def loss(m, x):\n    return m.w * x\nloss = jax.jit(loss)\nm = MLP()\nloss(m, 1.0)",
            line=7, column=8,
            expected_fix="import jax\nimport equinox as eqx\nclass MLP(eqx.Module):\n    w: jax.Array\n"
            "def loss(m, x):\n    return m.w * x\nloss = eqx.filter_jit(loss)\nm = MLP()\nloss(m, 1.0)",
        ),
        Invalid(
            "import jax\nfrom functools import partial\nfrom equinox import Module\nclass M(Module):\n    n: int\n"
            "@partial(jax.jit, static_argnums=1)\ndef f(m: M, k):\n    return m.n\n",
            line=6,
        ),
    ]

    def check_function(self, fn: FunctionInfo, ctx: Context) -> None:
        if fn.is_lambda or not any(detail == "jax.jit" for _, detail in fn.reasons):
            return
        module = self._module_param(fn, ctx)
        for decorator in fn.node.decorators:  # type: ignore[union-attr]
            expr = decorator.decorator
            if ctx.qualname(expr) == "jax.jit":
                module = module or self._called_with_module(fn, fn.name, ctx)
                if module:
                    ctx.report(expr, fn=fn.name, module=module, fix=self._fix(expr, ctx))
            elif isinstance(expr, cst.Call) and "jax.jit" in {ctx.qualname(expr.func), *(ctx.qualname(a.value) for a in expr.args[:1])}:
                module = module or self._called_with_module(fn, fn.name, ctx)
                if module:
                    ctx.report(expr, fn=fn.name, module=module)  # static_argnums has no filter_jit spelling
        self._call_sites(fn, module, ctx)

    def _call_sites(self, fn: FunctionInfo, module: str | None, ctx: Context) -> None:
        """`g = jax.jit(f)` (or `jax.jit(f)(...)`): the jitted function is `g` at its call sites."""
        for application in fn.applications:
            node = application.call
            if application.transform.name != "jax.jit" or node is None or application.bound:
                continue
            parent = application.holder
            found = module
            if found is None and isinstance(parent, cst.Assign) and isinstance(parent.targets[0].target, cst.Name):
                found = self._called_with_module(fn, parent.targets[0].target.value, ctx)
            if found is None and isinstance(parent, cst.Call):  # jax.jit(f)(model, x)
                found = self._module_arg(parent.args, fn, ctx)
            if found is not None:
                fix = self._fix(node.func, ctx, (application.top, application.scope)) if len(node.args) == 1 else None
                ctx.report(node.func, fn=fn.name, module=found, fix=fix, at=(application.top, application.scope))

    def _module_param(self, fn: FunctionInfo, ctx: Context) -> str | None:
        for param in _params_with_annotations(fn.node):  # type: ignore[arg-type]
            if param.annotation is not None:
                found = _module_class(param.annotation.annotation, fn, ctx)
                if found:
                    return found
        return None

    def _called_with_module(self, fn: FunctionInfo, name: str, ctx: Context) -> str | None:
        for node, scope in ctx.analysis.calls_named(name):
            found = self._module_arg(node.args, fn, ctx, scope)
            if found:
                return found
        return None

    def _module_arg(self, args, fn: FunctionInfo, ctx: Context, scope=None) -> str | None:
        scope = scope or fn.parent
        for arg in args:
            value = arg.value
            if isinstance(value, cst.Name):
                where = ctx.analysis.lookup(value.value, scope)
                values = where.values.get(value.value, []) if where is not None else []
            else:
                values = [value]
            for candidate in values:
                if isinstance(candidate, cst.Call):
                    found = _module_class(candidate.func, fn, ctx)
                    if found:
                        return found
        return None

    def _fix(self, expr: cst.BaseExpression, ctx: Context, at=None):
        spelled, imported = reference(ctx.analysis, "equinox.filter_jit")
        return build_fix("unsafe", f"Replace `jax.jit` with `{spelled}`", [node_edit(ctx, expr, spelled, at), imported])


class UnrolledLoop(Rule):
    code = "PUR404"
    name = "unrolled-python-loop"
    summary = "a long Python `for` loop inside a traced function"
    message = "this Python loop runs {count} times at trace time and is unrolled into the compiled program; use `jax.lax.scan` or `jax.lax.fori_loop`"
    what = """
        Checks for Python `for` loops over a literal `range(...)` of more than `max-unrolled-loop`
        iterations (default 16) inside traced functions.
    """
    why = """
        JAX traces a Python loop by running it: every iteration adds its operations to the program
        again. Compile time and memory grow with the iteration count, and a few thousand
        iterations can take minutes to compile.
    """
    example = """
        @jax.jit
        def power_iteration(a, v):
            for _ in range(100):
                v = a @ v
                v = v / jnp.linalg.norm(v)
            return v
    """
    use_instead = """
        @jax.jit
        def power_iteration(a, v):
            def step(_, v):
                v = a @ v
                return v / jnp.linalg.norm(v)
            return jax.lax.fori_loop(0, 100, step, v)
    """
    traced_only = True
    VALID = [
        "import jax\n@jax.jit\ndef f(x):\n    for _ in range(16):\n        x = x * 2\n    return x",
        "import jax\n@jax.jit\ndef f(x, layers):\n    for layer in layers:\n        x = layer(x)\n    return x",
        "import jax\ndef f(x):\n    for _ in range(1000):\n        x = x * 2\n    return x",
        Valid("import jax\n@jax.jit\ndef f(x):\n    for _ in range(100):\n        x = x * 2\n    return x", config={"max-unrolled-loop": 100}),
    ]
    INVALID = [
        Invalid("import jax\n@jax.jit\ndef f(x):\n    for _ in range(100):\n        x = x * 2\n    return x", line=4, column=5),
        Invalid("import jax\n@jax.jit\ndef f(x):\n    for i in range(10, 40, 1):\n        x = x + i\n    return x", line=4),
        Invalid("import jax\n@jax.jit\ndef f(x):\n    for _ in range(8):\n        x = x * 2\n    return x", config={"max-unrolled-loop": 4}),
    ]

    def check_function(self, fn: FunctionInfo, ctx: Context) -> None:
        limit = ctx.config.max_unrolled_loop
        for node in ctx.facts.taint(fn).nodes:
            if type(node) is not cst.For or not isinstance(node.iter, cst.Call):
                continue
            if ctx.qualname(node.iter.func) != "builtins.range" or not 1 <= len(node.iter.args) <= 3:
                continue
            bounds = [literal(a.value) for a in node.iter.args]
            if all(type(b) is int for b in bounds) and len(range(*bounds)) > limit:
                ctx.report(node, count=len(range(*bounds)))
