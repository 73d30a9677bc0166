"""PUR403: `jax.jit` over functions that take Equinox modules (`eqx.filter_jit` is meant)."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from purelint._rule import Context, Fix, FunctionInfo, Invalid, Rule, Scope, Where, build_fix, parameters

__all__ = ["JitOverModules"]


def _module_class(expr: cst.BaseExpression | None, fn: FunctionInfo, ctx: Context) -> str | None:
    """The Equinox module class an annotation or constructor names, when it names one."""
    if expr is None:
        return None
    if isinstance(expr, cst.Subscript):
        expr = expr.value
    qualname = ctx.qualname(expr, fn.parent)
    if qualname is not None and (qualname == "equinox.Module" or qualname.startswith("equinox.nn.")):
        return qualname
    if isinstance(expr, cst.Name):
        info = ctx.class_named(expr, fn.parent)  # type: ignore[arg-type]
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
            line=3,
            column=2,
            expected_fix="import jax\nimport equinox as eqx\n@eqx.filter_jit\ndef f(model: eqx.nn.Linear, x):\n    return model(x)",
        ),
        Invalid(
            "import jax\nimport equinox as eqx\nclass MLP(eqx.Module):\n    w: jax.Array\n"
            "def loss(m, x):\n    return m.w * x\nloss = jax.jit(loss)\nm = MLP()\nloss(m, 1.0)",
            line=7,
            column=8,
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
            elif isinstance(expr, cst.Call) and "jax.jit" in {
                ctx.qualname(expr.func),
                *(ctx.qualname(a.value) for a in expr.args[:1]),
            }:
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
        for param in parameters(fn.node.params, star_kwarg=False):  # type: ignore[union-attr]
            if param.annotation is not None:
                found = _module_class(param.annotation.annotation, fn, ctx)
                if found:
                    return found
        return None

    def _called_with_module(self, fn: FunctionInfo, name: str, ctx: Context) -> str | None:
        for node, scope in ctx.calls_named(name):
            found = self._module_arg(node.args, fn, ctx, scope)
            if found:
                return found
        return None

    def _module_arg(
        self, args: Sequence[cst.Arg], fn: FunctionInfo, ctx: Context, scope: Scope | None = None
    ) -> str | None:
        scope = scope or fn.parent
        for arg in args:
            value = arg.value
            values = ctx.assigned_values(value.value, scope) if isinstance(value, cst.Name) else [value]
            for candidate in values:
                if isinstance(candidate, cst.Call):
                    found = _module_class(candidate.func, fn, ctx)
                    if found:
                        return found
        return None

    def _fix(self, expr: cst.BaseExpression, ctx: Context, at: Where | None = None) -> Fix:
        spelled, imported = ctx.reference("equinox.filter_jit")
        return build_fix("unsafe", f"Replace `jax.jit` with `{spelled}`", [ctx.edit(expr, spelled, at), imported])
