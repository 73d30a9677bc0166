"""The fixes purelint offers for the core rules, built from the node a rule reports.

Each builder returns a `Fix` or None (when the code is shaped so that no fix is certain to be right).
Whether a fix is safe or unsafe is decided, and explained, next to each rule (`purelint/rules/`).
Imports a fix needs (`import jax`, `import jax.numpy as jnp`) come from `purelint._fix.reference`,
which reuses existing aliases and adds each import once.
"""

from __future__ import annotations

import libcst as cst

from purelint._diagnostic import Fix
from purelint._fix import build_fix, code_of, node_edit, reference

# `x[i] op= v` -> `x = x.at[i].<method>(v)`
AT_METHODS = {
    cst.AddAssign: "add",
    cst.SubtractAssign: "subtract",
    cst.MultiplyAssign: "multiply",
    cst.DivideAssign: "divide",
    cst.PowerAssign: "power",
}
# `x[i] = jnp.minimum(x[i], v)` -> `x = x.at[i].min(v)`
_EXTREMA = {"jax.numpy.minimum": "min", "jax.numpy.maximum": "max"}
# torch in-place arithmetic -> the Python operator that rebinds
_IN_PLACE_OPERATORS = {"add_": "+", "sub_": "-", "mul_": "*", "div_": "/"}
_ATOMIC = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)


def _wrapped(node: cst.BaseExpression) -> str:
    """Source of an expression that is safe to put next to an operator or inside a call."""
    text = code_of(node)
    if isinstance(node, _ATOMIC) or node.lpar:
        return text
    return f"({text})"


def _argument(node: cst.BaseExpression) -> str:
    """Source of an expression as a single call argument (a bare tuple gets parentheses)."""
    text = code_of(node)
    return f"({text})" if isinstance(node, cst.Tuple) and not node.lpar else text


def item_assignment(ctx, statement: cst.Assign | cst.AugAssign, target: cst.Subscript, applicability: str) -> Fix | None:
    """PUR301: `x[i] = v` -> `x = x.at[i].set(v)`, `x[i] += v` -> `x = x.at[i].add(v)`, and
    `x[i] = jnp.minimum(x[i], v)` -> `x = x.at[i].min(v)` (likewise `maximum`/`max`)."""
    if isinstance(statement, cst.Assign) and len(statement.targets) != 1:
        return None  # `a = x[i] = v`: rewriting would change what `a` gets
    if not isinstance(target.value, cst.Name):
        return None
    name = target.value.value
    index = ", ".join(code_of(element.slice).strip() for element in target.slice)
    value = statement.value
    if isinstance(statement, cst.AugAssign):
        method = AT_METHODS.get(type(statement.operator))
        if method is None:
            return None
    else:
        method = "set"
        if isinstance(value, cst.Call) and ctx.qualname(value.func) in _EXTREMA and len(value.args) == 2:
            first, second = (a.value for a in value.args)
            same = code_of(target).strip()
            if not any(a.keyword or a.star for a in value.args) and same in (code_of(first).strip(), code_of(second).strip()):
                method = _EXTREMA[ctx.qualname(value.func)]
                value = second if code_of(first).strip() == same else first
    text = f"{name} = {name}.at[{index}].{method}({_argument(value)})"
    return build_fix(applicability, f"Use `{name} = {name}.at[{index}].{method}(...)`", [node_edit(ctx, statement, text)])


def stop_gradient(ctx, call: cst.Call) -> Fix | None:
    """PUR305: `y.detach()` -> `jax.lax.stop_gradient(y)`."""
    if not isinstance(call.func, cst.Attribute) or call.args:
        return None
    spelled, imported = reference(ctx.analysis, "jax.lax.stop_gradient")
    receiver = call.func.value
    if isinstance(receiver, cst.BaseExpression) and receiver.lpar:
        receiver = receiver.with_changes(lpar=[], rpar=[])  # `(a * b).detach()`: the call's parentheses suffice
    text = f"{spelled}({code_of(receiver).strip()})"
    return build_fix("safe", f"Use `{spelled}`", [node_edit(ctx, call, text), imported])


def debug_print(ctx, call: cst.Call) -> Fix | None:
    """PUR001: `print(a, b)` -> `jax.debug.print("{} {}", a, b)`; string literals and f-strings
    become part of the format string (`print("x =", x)` -> `jax.debug.print("x = {}", x)`)."""
    if any(arg.keyword is not None or arg.star for arg in call.args):
        return None  # sep=, end=, file=, flush= and *args have no jax.debug.print spelling
    pieces: list[str] = []
    values: list[str] = []
    for arg in call.args:
        converted = _format_piece(arg.value)
        if converted is None:
            pieces.append("{}")
            values.append(code_of(arg.value).strip())
        else:
            pieces.append(converted[0])
            values.extend(converted[1])
    spelled, imported = reference(ctx.analysis, "jax.debug.print")
    text = f"{spelled}({' '.join(pieces)!r}" + "".join(f", {v}" for v in values) + ")"
    return build_fix("unsafe", f"Use `{spelled}`", [node_edit(ctx, call, text), imported])


def _format_piece(node: cst.BaseExpression) -> tuple[str, list[str]] | None:
    """(format text, arguments) for a plain string or a simple f-string; None for anything else."""
    if isinstance(node, cst.SimpleString) and "b" not in node.prefix.lower():
        value = node.evaluated_value
        return (value.replace("{", "{{").replace("}", "}}"), []) if isinstance(value, str) else None
    if not isinstance(node, cst.FormattedString) or "b" in node.prefix.lower() or "r" in node.prefix.lower():
        return None
    text, args = [], []
    for part in node.parts:
        if isinstance(part, cst.FormattedStringText):
            if "\\" in part.value:
                return None  # escapes would need decoding; leave it to a person
            text.append(part.value.replace("{{", "{").replace("}}", "}").replace("{", "{{").replace("}", "}}"))
            continue
        spec = ""
        if part.format_spec:
            if not all(isinstance(p, cst.FormattedStringText) for p in part.format_spec):
                return None
            spec = ":" + "".join(p.value for p in part.format_spec)  # type: ignore[union-attr]
        conversion = f"!{part.conversion}" if part.conversion else ""
        if part.equal is not None:
            return None  # `{x=}` has no str.format spelling
        text.append("{" + conversion + spec + "}")
        args.append(code_of(part.expression).strip())
    return "".join(text), args


def in_place_arithmetic(ctx, call: cst.Call, parent: cst.CSTNode | None) -> Fix | None:
    """PUR304: `x.add_(y)` -> `x = x + y` (also `sub_`, `mul_`, `div_`), `x.zero_()` ->
    `x = jnp.zeros_like(x)`; only as a whole statement on a plain variable."""
    func = call.func
    if not (isinstance(parent, cst.Expr) and isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)):
        return None
    name, method = func.value.value, func.attr.value
    if method == "zero_" and not call.args:
        spelled, imported = reference(ctx.analysis, "jax.numpy.zeros_like")
        text = f"{name} = {spelled}({name})"
        return build_fix("unsafe", f"Use `{text}`", [node_edit(ctx, call, text), imported])
    operator = _IN_PLACE_OPERATORS.get(method)
    if operator is None or len(call.args) != 1 or call.args[0].keyword is not None or call.args[0].star:
        return None
    text = f"{name} = {name} {operator} {_wrapped(call.args[0].value)}"
    return build_fix("unsafe", f"Use `{name} = {name} {operator} ...`", [node_edit(ctx, call, text)])
