"""Flax NNX facts: which names and parameters hold NNX objects, and which files keep NNX state
updates under plain `jax.jit` ("hijax" Variables).

NNX objects (modules, optimizers) carry their state in Variables; NNX's own transforms (`nnx.jit`)
carry that state in and out, plain `jax.jit` does not, unless the file makes Variables hijax.
"""

from __future__ import annotations

import libcst as cst

from purelint._analysis._cst import parameters
from purelint._analysis._model import SemanticModel
from purelint._analysis._scopes import FunctionInfo, Scope
from purelint._frameworks import HIJAX, NNX_VARIABLES

__all__ = ["hijax_file", "hijax_update", "nnx_params", "nnx_traced", "nnx_value"]

_OPTIMIZERS = ("flax.nnx.Optimizer", "flax.nnx.ModelAndOptimizer")


def nnx_traced(fn: FunctionInfo) -> bool:
    """Traced by a Flax NNX transform (`nnx.jit`, ...), which lifts NNX objects: their attributes
    other than Variables are static, and updates to their Variables are kept."""
    return any(a.transform.nnx for a in fn.applications)


def hijax_file(source: str) -> bool:
    """A file that makes NNX Variables "hijax" (`nnx.var_defaults(...)`, `hijax=True`): NNX state
    updates under plain `jax.jit` are kept there."""
    return any(marker in source for marker in HIJAX)


def hijax_update(target: cst.CSTNode, source: str) -> bool:
    """A method call (`optimizer.update(...)`) or item assignment (`v[...] += 1`) in a file that
    mentions hijax NNX Variables, which keep such updates under plain `jax.jit` (their API)."""
    return "hijax" in source and isinstance(target, (cst.Call, cst.Subscript))


def nnx_value(name: str, scope: Scope, model: SemanticModel) -> str | None:
    """ "optimizer"/"module" when every value bound to `name` is built by an NNX constructor."""
    where, values = model.assigned_values(name, scope)
    found = None
    for value in values:
        if not isinstance(value, cst.Call):
            return None
        qualname = model.qualname(value.func, where)  # type: ignore[arg-type]
        info = model.class_named(value.func, where)  # type: ignore[arg-type]
        if qualname in _OPTIMIZERS:
            found = "optimizer"
        elif (info is not None and info.framework == "nnx") or (
            qualname is not None
            and qualname.startswith("flax.nnx.")
            and qualname.rsplit(".", 1)[1][:1].isupper()
            and qualname not in NNX_VARIABLES
            and qualname != "flax.nnx.Rngs"
        ):
            found = found or "module"
        else:
            return None
    return found


def nnx_params(fn: FunctionInfo, model: SemanticModel) -> dict[str, str]:
    """Parameters known to hold NNX objects: by annotation, or by what the jitted function is called with."""
    found: dict[str, str] = {}
    for param in parameters(fn.node.params, star_kwarg=False):  # type: ignore[union-attr]
        if param.annotation is None:
            continue
        annotation = param.annotation.annotation
        qualname = model.qualname(annotation, fn.parent)  # type: ignore[arg-type]
        info = model.class_named(annotation, fn.parent)  # type: ignore[arg-type]
        if qualname in _OPTIMIZERS:
            found[param.name.value] = "optimizer"
        elif qualname == "flax.nnx.Module" or (info is not None and info.framework == "nnx"):
            found[param.name.value] = "module"
    # The function's own name and the names its jitted versions are bound to (`g = jax.jit(f)`), in
    # source order, so the first call that tells wins on every run.
    names = dict.fromkeys(
        [fn.name]
        + [
            a.holder.targets[0].target.value
            for a in fn.applications
            if isinstance(a.holder, cst.Assign) and isinstance(a.holder.targets[0].target, cst.Name)
        ]
    )
    for name in names:
        for call, scope in model.calls_named(name):
            for index, arg in enumerate(a for a in call.args if a.keyword is None):
                if index < len(fn.positional) and isinstance(arg.value, cst.Name):
                    what = nnx_value(arg.value.value, scope, model)
                    if what is not None:
                        found.setdefault(fn.positional[index], what)
    return found
