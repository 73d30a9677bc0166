"""How a module spells a qualified name in a fix, and the import to add when nothing binds it yet.

What the module's names refer to comes from the semantic model (its module-level imports), the same
resolution the rules use.
"""

from __future__ import annotations

import re

import libcst as cst

from purelint._analysis._model import SemanticModel
from purelint._diagnostic import Edit
from purelint._text import line_starts, to_position

__all__ = ["reference"]

# Modules a fix may need and how we import them when missing: module -> (import line, local name).
_CANONICAL_IMPORTS = {
    "jax": ("import jax", "jax"),
    "jax.numpy": ("import jax.numpy as jnp", "jnp"),
    "equinox": ("import equinox as eqx", "eqx"),
}


def reference(model: SemanticModel, qualname: str) -> tuple[str, Edit | None]:
    """How to spell `qualname` in the module of `model`, plus the import edit to add when nothing
    binds it yet.

    Existing aliases win: with `import jax.numpy as np_`, `jax.numpy.zeros_like` is `np_.zeros_like`.
    With nothing suitable imported, adds `import jax.numpy as jnp` for `jax.numpy.*`, `import
    equinox as eqx` for `equinox.*`, else `import jax`, once, after the module's leading imports.
    """
    module = model.module
    bindings = {local: target for local, target in model.module_scope.imports.items() if not target.startswith(".")}
    best: tuple[int, str] | None = None
    for local, target in bindings.items():
        if (qualname == target or qualname.startswith(target + ".")) and (best is None or len(target) > best[0]):
            best = (len(target), local + qualname[len(target) :])
    home = next((m for m in ("jax.numpy", "equinox") if qualname.startswith(m + ".")), "jax")
    if best is not None and best[0] >= len(home):
        return best[1], None
    line, local = _CANONICAL_IMPORTS[home]
    if _free(module, local, home, bindings):
        return local + qualname[len(home) :], _import_edit(module, line)
    if best is not None:
        return best[1], None
    top = home.split(".")[0]
    return qualname, _import_edit(module, f"import {top}")


def _free(module: cst.Module, name: str, target: str, bindings: dict[str, str]) -> bool:
    """Whether importing `target` as `name` clashes with nothing the module already calls `name`."""
    if name in bindings:
        return bindings[name] == target
    return re.search(rf"(?<![\w.]){re.escape(name)}\b", module.code) is None


def _import_edit(module: cst.Module, line: str) -> Edit:
    body = list(module.body)
    last = -1  # index of the last statement in the leading docstring/import block
    for index, statement in enumerate(body):
        if not isinstance(statement, cst.SimpleStatementLine):
            break
        first = statement.body[0]
        is_docstring = index == 0 and isinstance(first, cst.Expr) and isinstance(first.value, cst.SimpleString)
        if not (is_docstring or all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in statement.body)):
            break
        last = index
    source = module.code
    newline = module.default_newline
    if last >= 0:
        offset = len(module.with_changes(body=body[: last + 1], footer=(), has_trailing_newline=True).code)
    else:  # before the first statement, after the comments heading the file (shebang, licence)
        offset = sum(len(module.code_for_node(line)) for line in module.header)
    content = line + newline
    if offset > len(source) or (offset == len(source) and source and not source.endswith(("\n", "\r"))):
        offset, content = len(source), newline + line  # after a last line without a newline
    position = to_position(line_starts(source), offset)
    return Edit(*position, *position, content)
