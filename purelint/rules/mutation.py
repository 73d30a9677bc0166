"""In-place mutation: array item assignment (PUR301), arguments (PUR302), Equinox modules (PUR303),
torch-style in-place calls (PUR304). Local objects built inside the function are free to mutate."""

from __future__ import annotations

import re

import libcst as cst

from purelint._engine import Context
from purelint._fixes import AT_METHODS, in_place_arithmetic, item_assignment
from purelint._rule import Invalid, Rule

__all__ = ["ArrayItemAssignment", "MutateArgument", "MutateModuleField", "TorchInPlace"]

_IN_PLACE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*_")


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


class ArrayItemAssignment(Rule):
    code = "PUR301"
    name = "array-item-assignment"
    summary = "item assignment on a JAX array"
    message = "JAX arrays are immutable, `{target} {op} ...` fails; use `{name} = {name}.at[{index}].{method}(...)`"
    what = """
        Checks for `x[i] = v` and `x[i] += v` where `x` is a (non-static) parameter of the
        function or a local bound from a `jax`/`jax.numpy` call.
    """
    why = """
        JAX arrays cannot be changed in place: item assignment raises a TypeError under `jit`
        (and on concrete arrays). NumPy-style code ported to JAX hits this first.
    """
    example = """
        @jax.jit
        def bump(x, i):
            x[i] += 1
            return x
    """
    use_instead = """
        @jax.jit
        def bump(x, i):
            x = x.at[i].add(1)
            return x
    """
    priority = 2
    # Safe inside traced functions: there `x[i] = v` raises (JAX arrays are immutable), so the
    # functional update changes no behaviour that worked. Unsafe elsewhere (`--scope all`): a NumPy
    # array passed in would no longer be changed for the caller.
    fix_applicability = "safe"
    VALID = [
        "import jax\n@jax.jit\ndef f(x, i):\n    return x.at[i].set(0)",
        "import jax\n@jax.jit\ndef f(x):\n    d = {}\n    d['a'] = x\n    return d",
        "import jax\ndef f(x):\n    x[0] = 1\n",
    ]
    INVALID = [
        Invalid(
            "import jax\n@jax.jit\ndef f(x, i):\n    x[i] = 0\n    return x", line=4, column=5,
            expected_fix="import jax\n@jax.jit\ndef f(x, i):\n    x = x.at[i].set(0)\n    return x",
        ),
        Invalid(
            "import jax\n@jax.jit\ndef f(x, i):\n    x[i] += 2\n    return x", line=4,
            expected_fix="import jax\n@jax.jit\ndef f(x, i):\n    x = x.at[i].add(2)\n    return x",
        ),
        Invalid("import jax\nimport jax.numpy as jnp\n@jax.jit\ndef f(i):\n    y = jnp.zeros(3)\n    y[i] = 1.0\n    return y", line=6),
    ]

    def _visit(self, node: cst.AssignTarget | cst.AugAssign, ctx: Context) -> None:
        target = node.target
        if not (isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name)):
            return
        name = target.value.value
        kind = ctx.binding_kind(name)
        array = (kind == "param" and name not in ctx.function.static_params) or (
            kind == "local" and any(q.startswith("jax.") for q in ctx.value_qualnames(name))
        )
        if array:
            method = AT_METHODS.get(type(node.operator), "set") if isinstance(node, cst.AugAssign) else "set"
            op = _code(node.operator).strip() if isinstance(node, cst.AugAssign) else "="
            index = ", ".join(_code(s.slice).strip() for s in target.slice)
            statement = node if isinstance(node, cst.AugAssign) else ctx.parent
            fix = item_assignment(ctx, statement, target, "safe" if ctx.traced else "unsafe")  # type: ignore[arg-type]
            ctx.report(target, target=_code(target), op=op, name=name, index=index, method=method, fix=fix)

    visit_AssignTarget = visit_AugAssign = _visit


class MutateArgument(Rule):
    code = "PUR302"
    name = "argument-mutation"
    summary = "mutating a function argument"
    message = "mutates argument `{name}` in place (under `jit`, once, at trace time); copy it and return a new value"
    what = """
        Checks for in-place changes to a parameter: mutating methods (`append`, `extend`,
        `insert`, `pop`, `remove`, `clear`, `update`, `setdefault`, `sort`, `reverse`, `add`,
        `discard`, `popitem`), item or attribute assignment and deletion. `self` counts, except
        in `__init__`. Methods that return None count only as statements, so
        `state = opt.update(...)`-style pure APIs are not flagged.
    """
    why = """
        Under `jit` the mutation happens on tracers during tracing; the caller's object is
        changed once (or holds leaked tracers) and never again on later calls. Pure functions
        return new values instead.
    """
    example = """
        @jax.jit
        def record(history, x):
            history.append(x)
            return x
    """
    use_instead = """
        @jax.jit
        def record(history, x):
            return history + [x], x
    """
    priority = 1
    VALID = [
        "import jax\n@jax.jit\ndef f(x):\n    out = []\n    out.append(x)\n    return out",
        "import jax\n@jax.jit\ndef f(x):\n    x = x + 1\n    return x",
        "import jax\n@jax.jit\ndef f(xs):\n    xs = list(xs)\n    xs.append(1)\n    return xs",
        "class A:\n    def __init__(self, v):\n        self.v = v\n",
        "import jax\n@jax.jit\ndef f(opt, g, s):\n    u, s = opt.update(g, s)\n    return u",
    ]
    INVALID = [
        Invalid("import jax\n@jax.jit\ndef f(xs, x):\n    xs.append(x)\n    return x", line=4, column=5),
        Invalid("import jax\n@jax.jit\ndef f(d, x):\n    d['k'] = x\n    return x", line=4, config={"select": ["PUR302"]}),
        Invalid("import jax\n@jax.jit\ndef f(d):\n    return d.pop('k')", line=4, column=12),
        Invalid("import jax\n@jax.jit\ndef f(o, x):\n    o.count = x\n    return x", line=4),
        Invalid("import jax\n@jax.jit\ndef f(o):\n    del o.cache\n    return 1", line=4),
        Invalid("class A:\n    def reset(self):\n        self.v = 0\n", line=3, config={"scope": "all"}),
    ]

    def _visit(self, node: cst.CSTNode, ctx: Context) -> None:
        fn = ctx.function
        for target, root, kind in ctx.mutations(node):
            if kind == "param" and not (fn.is_init and root.value == fn.self_name):
                ctx.report(target, name=root.value)

    visit_AssignTarget = visit_AugAssign = visit_Del = visit_Call = _visit


class MutateModuleField(Rule):
    code = "PUR303"
    name = "module-field-assignment"
    summary = "`self.attr = ...` in an `eqx.Module` method other than `__init__`"
    message = "Equinox modules are frozen, `self.{attr} = ...` fails outside `__init__`; use `eqx.tree_at` to return an updated copy"
    what = "Checks for assignments to `self.<field>` in methods of `eqx.Module` subclasses other than `__init__`."
    why = """
        Equinox modules are frozen dataclasses and pytrees: setting a field after construction
        raises `FrozenInstanceError`, and would be a side effect invisible to JAX anyway.
    """
    example = """
        class Counter(eqx.Module):
            count: jax.Array

            def bump(self):
                self.count = self.count + 1
                return self
    """
    use_instead = """
        class Counter(eqx.Module):
            count: jax.Array

            def bump(self):
                return eqx.tree_at(lambda m: m.count, self, self.count + 1)
    """
    priority = 3
    VALID = [
        "import equinox as eqx\nclass M(eqx.Module):\n    w: int\n    def __init__(self, w):\n        self.w = w",
        "class M:\n    def bump(self):\n        self.w = 1\n",
    ]
    INVALID = [
        Invalid("import equinox as eqx\nclass M(eqx.Module):\n    w: int\n    def bump(self):\n        self.w = 2", line=5, column=9),
        Invalid(
            "from equinox import Module\nclass B(Module):\n    pass\nclass M(B):\n    n: int\n    def f(self):\n        self.n += 1",
            line=7,
        ),
    ]

    def _visit(self, node: cst.AssignTarget | cst.AugAssign, ctx: Context) -> None:
        fn = ctx.function
        info = fn.class_info
        if info is None or not info.is_module or fn.is_init:
            return
        for target, root, _kind in ctx.mutations(node):
            if isinstance(target, cst.Attribute) and target.value is root and root.value == fn.self_name:
                ctx.report(target, attr=target.attr.value)

    visit_AssignTarget = visit_AugAssign = _visit


class TorchInPlace(Rule):
    code = "PUR304"
    name = "torch-in-place"
    summary = "torch-style in-place calls (`x.add_(y)`) and `out=` arguments"
    message = "`{call}` is a torch-style in-place operation; JAX arrays are immutable, write the out-of-place expression (`x = x + y`)"
    what = "Checks for trailing-underscore in-place methods (`x.add_(y)`, `x.zero_()`, `w.copy_(v)`) and `out=` arguments."
    why = """
        JAX has no in-place operations: arrays are immutable, so these methods do not exist on
        JAX arrays and `out=` is not supported. Code ported from PyTorch has to rebind instead.
    """
    example = """
        def sgd(w, g, lr):
            w.sub_(lr * g)
            return w
    """
    use_instead = """
        def sgd(w, g, lr):
            return w - lr * g
    """
    # Unsafe: torch mutates the tensor every reference sees; `x = x + y` rebinds one name only,
    # so code that relied on aliasing (another name for `x`, the caller's tensor) changes meaning.
    fix_applicability = "unsafe"
    VALID = [
        "import jax\n@jax.jit\ndef f(x, y):\n    return x + y",
        "import jax\n@jax.jit\ndef f(x, y):\n    return x.__add__(y)",
        "import jax\ndef f(x, y):\n    x.add_(y)\n",
        "import jax\nimport jax.numpy as jnp\n@jax.jit\ndef f(x, i, j):\n    return x[jnp.ix_(i, j)]",
    ]
    INVALID = [
        Invalid(
            "import jax\n@jax.jit\ndef f(x, y):\n    x.add_(y)\n    return x", line=4, column=5,
            expected_fix="import jax\n@jax.jit\ndef f(x, y):\n    x = x + y\n    return x",
        ),
        Invalid("import jax\nimport numpy as np\n@jax.jit\ndef f(x, y):\n    np.add(x, y, out=x)\n    return x", line=5, column=18),
        Invalid("def step(w):\n    w.grad.zero_()\n", line=2, config={"scope": "all"}),
        Invalid("import torch\ndef init(w):\n    torch.nn.init.normal_(w)\n", line=3, config={"scope": "all"}),
    ]

    def visit_Call(self, node: cst.Call, ctx: Context) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and _IN_PLACE.fullmatch(func.attr.value):
            # Module functions ending in `_` are in-place only in torch (`torch.nn.init.normal_`);
            # numpy's `np.ix_`/`np.r_` are not.
            qualname = ctx.qualname(func)
            if qualname is None or qualname.startswith("torch."):
                ctx.report(node, call=f".{func.attr.value}()", fix=in_place_arithmetic(ctx, node, ctx.parent))

    def visit_Arg(self, node: cst.Arg, ctx: Context) -> None:
        if node.keyword is not None and node.keyword.value == "out" and isinstance(ctx.parent, cst.Call):
            ctx.report(node, call="out=")
