"""PUR402: concretizing traced values (`float(x)`, `.item()`, `np.asarray(x)`), and traced values
used as shapes or as boolean masks.

Which values are traced is PUR401's question too, answered by the same taint facts (`Context.taint`):
see `purelint/rules/branching.py` for what makes a parameter or a value traced.
"""

from __future__ import annotations

import libcst as cst

from purelint._rule import Context, FunctionInfo, Invalid, Rule, Taint, code_of

__all__ = ["ConcretizeTraced"]

_CONCRETIZERS = frozenset(
    {"builtins.float", "builtins.int", "builtins.bool", "builtins.complex", "numpy.asarray", "numpy.array"}
)
_CONCRETIZING_METHODS = frozenset({"item", "tolist"})


class ConcretizeTraced(Rule):
    code = "PUR402"
    name = "concretize-traced"
    summary = (
        "`float()`/`int()`/`bool()`/`.item()`/`.tolist()`/`np.asarray()`, a shape or a boolean mask from a traced value"
    )
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
        Invalid(
            "import jax\nimport jax.numpy as jnp\n@jax.jit\ndef f(x):\n    return x[~jnp.isnan(x)].sum()",
            line=5,
            column=14,
        ),
    ]

    def check_function(self, fn: FunctionInfo, ctx: Context) -> None:
        self._boolean_masks(ctx.taint(fn, branching=True), ctx)
        taint = ctx.taint(fn)
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
                shape += positional[position : position + 1] if position >= 0 else positional
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
        stored: set[int] = set()  # ids of `x[mask] = v` and `del x[mask]`: item assignment, PUR301/PUR302's business
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
                            f"`jnp.where({mask}, new, x)`"
                            if scatter
                            else f"`jnp.where({mask}, x, 0)` or a reduction's `where={mask}`"
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
    **{
        f"jax.random.{n}": (1, "shape")
        for n in ("normal", "uniform", "randint", "gumbel", "exponential", "laplace", "logistic", "cauchy")
    },
    "jax.random.bernoulli": (2, "shape"),
    "jax.random.categorical": (3, "shape"),
    "jax.random.truncated_normal": (3, "shape"),
}
