"""PUR305: PyTorch habits that have no meaning on traced JAX arrays."""

from __future__ import annotations

import libcst as cst

from purelint._rule import Context, Fix, Invalid, Rule, Valid, build_fix, code_of

__all__ = ["TorchIsm"]

_ADVICE = {
    "detach": "use `jax.lax.stop_gradient(x)`",
    "backward": "compute gradients with `jax.grad` / `eqx.filter_grad`",
    "zero_grad": "gradients are return values in JAX; there is nothing to zero",
    "item": "keep it an array (convert outside the traced function)",
    "cuda": "JAX places arrays itself; use `jax.device_put` outside the traced function",
    "numpy": "keep it an array (convert outside the traced function)",
}


class TorchIsm(Rule):
    code = "PUR305"
    name = "torch-ism"
    summary = "PyTorch-only methods in traced code (`.detach()`, `.backward()`, `.item()`...)"
    message = "`.{method}()` is a PyTorch habit that fails on traced JAX arrays; {advice}"
    what = "Checks for `.detach()`, `.backward()`, `.zero_grad()`, `.item()`, `.cuda()` and `.numpy()` calls in traced functions."
    why = """
        Traced JAX arrays have no autograd tape to detach from or run backward on, and turning a
        tracer into a Python number (`.item()`) or a NumPy array (`.numpy()`) raises a
        concretization error under `jit`.
    """
    example = """
        @jax.jit
        def target(q_next):
            return q_next.detach().max()
    """
    use_instead = """
        @jax.jit
        def target(q_next):
            return jax.lax.stop_gradient(q_next).max()
    """
    traced_only = True
    # Safe, for `.detach()` only: a JAX array has no `.detach()` (the call raises), and
    # `jax.lax.stop_gradient` is exactly what it meant. The other methods have no one-line equivalent.
    fix_applicability = "safe"
    VALID = [
        "import jax\n@jax.jit\ndef f(x):\n    return jax.lax.stop_gradient(x)",
        "import torch\ndef f(x):\n    return x.detach().item()",
        Valid("import torch\ndef f(x):\n    return x.detach().item()", config={"scope": "all"}),
    ]
    INVALID = [
        Invalid(
            "import jax\n@jax.jit\ndef f(x):\n    return x.detach()",
            line=4,
            column=12,
            expected_fix="import jax\n@jax.jit\ndef f(x):\n    return jax.lax.stop_gradient(x)",
        ),
        Invalid("import jax\n@jax.jit\ndef f(x):\n    return x.sum().item()", line=4),
        Invalid("import jax\n@jax.jit\ndef f(loss):\n    loss.backward()\n    return loss", line=4),
    ]

    def visit_Call(self, node: cst.Call, ctx: Context) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in _ADVICE and ctx.qualname(func) is None:
            fix = _stop_gradient(ctx, node) if func.attr.value == "detach" else None
            ctx.report(node, method=func.attr.value, advice=_ADVICE[func.attr.value], fix=fix)


def _stop_gradient(ctx: Context, call: cst.Call) -> Fix | None:
    """PUR305: `y.detach()` -> `jax.lax.stop_gradient(y)`."""
    if not isinstance(call.func, cst.Attribute) or call.args:
        return None
    spelled, imported = ctx.reference("jax.lax.stop_gradient")
    receiver = call.func.value
    if isinstance(receiver, cst.BaseExpression) and receiver.lpar:
        receiver = receiver.with_changes(lpar=[], rpar=[])  # `(a * b).detach()`: the call's parentheses suffice
    text = f"{spelled}({code_of(receiver).strip()})"
    return build_fix("safe", f"Use `{spelled}`", [ctx.edit(call, text), imported])
