"""In-place mutation: array item assignment (PUR301), arguments (PUR302), Equinox modules (PUR303),
torch-style in-place calls (PUR304). Local objects built inside the function are free to mutate."""

from __future__ import annotations

import re

import libcst as cst

from purelint._rule import Context, Fix, FunctionInfo, Invalid, Rule, Valid, build_fix, code_of

__all__ = ["ArrayItemAssignment", "MutateArgument", "MutateModuleField", "TorchInPlace"]

_IN_PLACE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*_")
# `x[i] op= v` -> `x = x.at[i].<method>(v)`
_AT_METHODS = {
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


class ArrayItemAssignment(Rule):
    code = "PUR301"
    name = "array-item-assignment"
    summary = "item assignment on a JAX array"
    message = "JAX arrays are immutable, `{target} {op} ...` fails; use `{name} = {name}.at[{index}].{method}(...)`"
    what = """
        Checks for `x[i] = v` and `x[i] += v` where `x` is proven to hold a JAX array at that
        point (see "Value kinds" in docs/purelint.md): a local bound from a `jnp`/`lax`/
        `jax.random`/`jax.nn` call, arithmetic or array methods on arrays or on traced
        parameters (`y = x * 2`, `x.reshape(...)[0] = ...`), `.at[...].set(...)`, or a traced
        parameter annotated `jax.Array`/jaxtyping `Float[Array, "..."]`.

        It runs on all code, traced or not, by default: item assignment on a JAX array raises a
        `TypeError` wherever it happens. With `--scope all` it also reports untraced parameters
        annotated as JAX arrays (with an unsafe fix: a NumPy array may be passed in).

        It leaves alone what is not proven to be an array: dicts and lists (literals, `dict(...)`,
        `jax.tree.map` over them, loop carries), Flax NNX Variables (`v[...] += 1` is how NNX
        updates state), `jax.new_ref` Refs, NumPy arrays, and parameters whose type is unknown
        (under `jit` those are PUR302: a dict argument is mutated, not an array).
    """
    why = """
        JAX arrays cannot be changed in place: item assignment raises a TypeError under `jit`
        and on concrete arrays alike. NumPy-style code ported to JAX hits this first.
    """
    example = """
        @jax.jit
        def bump(x, i):
            y = x * 2
            y[i] += 1
            return y
    """
    use_instead = """
        @jax.jit
        def bump(x, i):
            y = x * 2
            y = y.at[i].add(1)
            return y
    """
    priority = 2
    everywhere = True
    # Safe: the fix is offered only where the receiver is proven to be a JAX array, on which the
    # original statement raises (TypeError), in traced code and outside it; `.at[...]` does what
    # the statement meant. Unsafe for annotated parameters of untraced functions (`--scope all`):
    # a NumPy array passed in would no longer be changed for the caller.
    fix_applicability = "safe"
    VALID = [
        "import jax\n@jax.jit\ndef f(x, i):\n    return x.at[i].set(0)",
        "import jax\n@jax.jit\ndef f(x):\n    d = {}\n    d['a'] = x\n    return d",
        "import jax\ndef f(x):\n    x[0] = 1\n",
        Valid("import jax\n@jax.jit\ndef f(x, i):\n    x[i] = 0\n    return x", config={"select": ["PUR301"]}),
        "import jax\nimport jax.numpy as jnp\n@jax.jit\ndef f(x):\n    s = {'a': jnp.sum(x)}\n    s['b'] = x\n    s = jax.tree.map(jnp.mean, s)\n    return s",
        "import jax\nimport jax.numpy as jnp\n@jax.jit\ndef f(x):\n    s = jax.tree.map(jnp.mean, {'a': x})\n    s['c'] = jnp.sum(x)\n    return s",
        "import jax\nfrom flax import nnx\n@nnx.jit\ndef f(v: nnx.Variable):\n    v[...] += 1",
        "import jax\nimport jax.numpy as jnp\n@jax.jit\ndef f(x):\n    r = jax.new_ref(jnp.zeros(3))\n    r[0] = 1.0\n    return r[...]",
        "import jax\nimport numpy as np\n@jax.jit\ndef f(x):\n    a = np.zeros(3)\n    a[0] = 1\n    return x",
        "import jax.numpy as jnp\ndef f(c):\n    y = jnp.zeros(3)\n    if c:\n        y = [0, 0]\n    y[0] = 1\n",
    ]
    INVALID = [
        Invalid(
            "import jax\n@jax.jit\ndef f(x: jax.Array, i):\n    x[i] = 0\n    return x",
            line=4,
            column=5,
            expected_fix="import jax\n@jax.jit\ndef f(x: jax.Array, i):\n    x = x.at[i].set(0)\n    return x",
        ),
        Invalid(
            "import jax\n@jax.jit\ndef f(x, i):\n    y = x * 2\n    y[i] += 2\n    return y",
            line=5,
            expected_fix="import jax\n@jax.jit\ndef f(x, i):\n    y = x * 2\n    y = y.at[i].add(2)\n    return y",
        ),
        Invalid(
            "import jax\nimport jax.numpy as jnp\n@jax.jit\ndef f(i):\n    y = jnp.zeros(3)\n    y[i] = 1.0\n    return y",
            line=6,
        ),
        Invalid(
            "import jax.numpy as jnp\na = jnp.zeros((3, 3))\na[1, :] = 1.0\n",
            line=3,
            column=1,
            expected_fix="import jax.numpy as jnp\na = jnp.zeros((3, 3))\na = a.at[1, :].set(1.0)\n",
        ),
        Invalid("import jax\n@jax.jit\ndef f(x):\n    x.reshape(-1)[0] = 1\n    return x", line=4, column=5),
        Invalid("import jax\ndef f(x: jax.Array):\n    x[0] = 1\n", line=3, config={"scope": "all"}),
    ]

    def _visit(self, node: cst.AssignTarget | cst.AugAssign, ctx: Context) -> None:
        target = node.target
        if not isinstance(target, cst.Subscript):
            return
        statement = node if isinstance(node, cst.AugAssign) else ctx.parent
        kind = ctx.kind(target.value, statement)
        if kind == "array":
            applicability = "safe"
        elif kind == "declared-array" and ctx.config.scope == "all":
            applicability = "unsafe"
        else:
            return
        receiver = code_of(target.value).strip()
        method = _AT_METHODS.get(type(node.operator), "set") if isinstance(node, cst.AugAssign) else "set"
        op = code_of(node.operator).strip() if isinstance(node, cst.AugAssign) else "="
        index = ", ".join(code_of(s.slice).strip() for s in target.slice)
        fix = _item_assignment(ctx, statement, target, applicability) if isinstance(target.value, cst.Name) else None  # type: ignore[arg-type]
        ctx.report(target, target=code_of(target), op=op, name=receiver, index=index, method=method, fix=fix)

    visit_AssignTarget = visit_AugAssign = _visit


class MutateArgument(Rule):
    code = "PUR302"
    name = "argument-mutation"
    summary = "mutating a function argument"
    message = "mutates argument `{name}` in place (under `jit`, once, at trace time: the caller never sees it); copy it and return a new value{hint}"
    untraced_message = (
        "mutates argument `{name}` in place, which callers may not expect; copy it and return a new value{hint}"
    )
    # `@jax.jit` on a method (or `jax.jit(obj.method)`): JAX's sharp bits call the method's state "stale".
    self_message = (
        "mutates `{name}` in a traced method: it runs once, at trace time, and later calls skip it (the object "
        "keeps the first trace's tracers or values); return the new state instead of storing it on `{name}`"
    )
    what = """
        Checks for in-place changes to a parameter: mutating methods (`append`, `extend`,
        `insert`, `pop`, `remove`, `clear`, `update`, `setdefault`, `sort`, `reverse`, `add`,
        `discard`, `popitem`), item or attribute assignment and deletion. `self` counts, except
        in methods that build the object (`__init__`, Flax linen `setup`, also in a class whose
        base comes from another file, and `setUp` of `unittest`, absl, `tf.test`, chex and any
        other `...TestCase` base) and in linen Variable updates (`self.counts.value = ...`).
        Methods that return None count only as statements, so `state = opt.update(...)`-style
        pure APIs are not flagged. Item assignment on a parameter of unknown type lands here
        (it may be a dict; if it is a JAX array it raises, and the message says so; in a traced
        function `--unsafe-fixes` rewrites `x[i] = v` to `x = x.at[i].set(v)`). A traced
        method (`@jax.jit` on a method, `jax.jit(obj.method)`) that changes `self` gets its own
        message: the change happens once, while tracing; reading `self` is fine.

        It leaves alone: the function's own `**kwargs` (a fresh dict per call, `kwargs.pop(...)`
        is fine); parameters of `lax` loop bodies and branches (JAX rebuilds the carry for
        every call, and the body returns it); Flax NNX Variables and objects under NNX
        transforms (`nnx.jit` keeps their updates; that is NNX's API), `jax.new_ref` Refs and
        parameters named like Refs (`x_ref`, JAX's and Pallas' convention for mutable refs);
        NNX objects under plain `jax.jit`, which PUR104 reports.
    """
    why = """
        Under `jit` the mutation happens on tracers during tracing; the caller's object is not
        changed (JAX passes rebuilt pytrees in), or holds leaked tracers, and later calls do not
        mutate anything. Pure functions return new values instead.
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
    # Unsafe: only `x[i] = v` / `x[i] += v` on a traced parameter of unknown type gets one
    # (`x = x.at[i].set(v)`); if the argument is a dict, the rewrite raises.
    fix_applicability = "unsafe"
    VALID = [
        "import jax\n@jax.jit\ndef f(x):\n    out = []\n    out.append(x)\n    return out",
        "import jax\n@jax.jit\ndef f(x):\n    x = x + 1\n    return x",
        "import jax\n@jax.jit\ndef f(xs):\n    xs = list(xs)\n    xs.append(1)\n    return xs",
        "class A:\n    def __init__(self, v):\n        self.v = v\n",
        "import jax\n@jax.jit\ndef f(opt, g, s):\n    u, s = opt.update(g, s)\n    return u",
        "import jax\n@jax.jit\ndef f(x, **kwargs):\n    scale = kwargs.pop('scale', 1.0)\n    return x * scale",
        Valid(
            "import unittest\nclass T(unittest.TestCase):\n    def setUp(self):\n        self.x = 1\n",
            config={"scope": "all"},
        ),
        Valid(
            "import flax.linen as nn\nclass M(nn.Module):\n    def setup(self):\n        self.dense = nn.Dense(3)\n",
            config={"scope": "all"},
        ),
        "import jax\ndef body(i, c):\n    c['n'] = c['n'] + i\n    return c\njax.lax.fori_loop(0, 3, body, {'n': 0})",
        "import jax\nfrom flax import nnx\n@nnx.jit\ndef step(model, x):\n    model.count.value += 1\n    return x",
    ]
    INVALID = [
        Invalid("import jax\n@jax.jit\ndef f(xs, x):\n    xs.append(x)\n    return x", line=4, column=5),
        Invalid(
            "import jax\n@jax.jit\ndef f(d, x):\n    d['k'] = x\n    return x", line=4, config={"select": ["PUR302"]}
        ),
        Invalid("import jax\n@jax.jit\ndef f(d):\n    return d.pop('k')", line=4, column=12),
        Invalid("import jax\n@jax.jit\ndef f(o, x):\n    o.count = x\n    return x", line=4),
        Invalid("import jax\n@jax.jit\ndef f(o):\n    del o.cache\n    return 1", line=4),
        Invalid("class A:\n    def reset(self):\n        self.v = 0\n", line=3, config={"scope": "all"}),
        Invalid(
            "import jax\n@jax.jit\ndef f(x, i):\n    x[i] = 0\n    return x",
            line=4,
            column=5,
            expected_fix="import jax\n@jax.jit\ndef f(x, i):\n    x = x.at[i].set(0)\n    return x",
        ),
        Invalid(
            "import jax\nclass Counter:\n    def __init__(self):\n        self.n = 0\n    def count(self):\n        self.n += 1\n"
            "        return self.n\ncounter = Counter()\nfast = jax.jit(counter.count)\n",
            line=6,
            column=9,
        ),
    ]

    def _visit(self, node: cst.CSTNode, ctx: Context) -> None:
        fn = ctx.function
        if fn is None:
            return
        mutations = ctx.mutations(node)
        if not mutations:
            return
        if fn.applications and all(a.transform.mode == "body" for a in fn.applications):
            return  # a lax body: the carry is rebuilt for every call and returned
        star_kwarg = fn.node.params.star_kwarg if not fn.is_lambda else None  # type: ignore[union-attr]
        nnx = ctx.nnx_traced(fn)
        nnx_objects = ctx.nnx_params(fn) if fn.applications else {}
        for target, root, kind in mutations:
            if kind != "param" or (fn.is_init and root.value == fn.self_name):
                continue
            if star_kwarg is not None and root.value == star_kwarg.name.value:
                continue
            if ctx.hijax_update(target):
                continue  # hijax NNX Variables (`v[...] += 1`) and objects (`optimizer.update(...)`) update under `jax.jit`
            if root.value in nnx_objects:
                continue  # PUR104 under plain `jax.jit`; NNX's API under `nnx.jit` or with hijax Variables
            if root.value == "ref" or root.value.endswith("_ref"):
                continue  # JAX's naming for mutable Refs (`x_ref[...] = v` in Pallas kernels and with `jax.new_ref`)
            value = ctx.kind(root, _statement_of(node, ctx))
            if value in ("nnx-variable", "ref") or ((value == "nnx-object" or nnx) and value not in ("list", "dict")):
                continue
            if root.value == fn.self_name and _linen_variable_update(target, fn):
                continue  # `self.counts.value = ...`: how linen updates a Variable (`self.variable(...)`)
            if fn.traced and root.value == fn.self_name:
                ctx.report(target, self.self_message, name=root.value)
                continue
            hint, fix = "", None
            if isinstance(target, cst.Subscript) and target.value is root:
                index = ", ".join(code_of(s.slice).strip() for s in target.slice)
                hint = (
                    f" (if `{root.value}` is a JAX array this raises instead: use `{root.value}.at[{index}].set(...)`)"
                )
                if fn.traced and value in (None, "traced") and isinstance(node, (cst.AssignTarget, cst.AugAssign)):
                    # The line people bring from PyTorch; unsafe, since the argument may be a dict.
                    statement = node if isinstance(node, cst.AugAssign) else ctx.parent
                    fix = _item_assignment(ctx, statement, target, "unsafe")  # type: ignore[arg-type]
            ctx.report(target, name=root.value, hint=hint, fix=fix)

    visit_AssignTarget = visit_AugAssign = visit_Del = visit_Call = _visit


def _linen_variable_update(target: cst.BaseExpression, fn: FunctionInfo) -> bool:
    """`self.<name>.value = ...` in a linen Module (or a class whose base comes from another file)."""
    info = fn.class_info
    if info is None or not (info.framework == "linen" or (info.framework is None and info.node.bases)):  # type: ignore[union-attr]
        return False
    return (
        isinstance(target, cst.Attribute)
        and target.attr.value == "value"
        and isinstance(target.value, cst.Attribute)
        and isinstance(target.value.value, cst.Name)
    )


def _statement_of(node: cst.CSTNode, ctx: Context) -> cst.CSTNode | None:
    """The simple statement a visited node belongs to, when it is one level up or the node itself."""
    if isinstance(node, (cst.AugAssign, cst.Del)):
        return node
    return ctx.parent


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
        Invalid(
            "import equinox as eqx\nclass M(eqx.Module):\n    w: int\n    def bump(self):\n        self.w = 2",
            line=5,
            column=9,
        ),
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
    what = """
        Checks for trailing-underscore in-place methods (`x.add_(y)`, `x.zero_()`, `w.copy_(v)`)
        and `out=` arguments of NumPy/torch/`jnp` functions. It leaves alone `out=` keywords of
        other functions (a user function's parameter named `out`), `out=None`, and `out=out`
        passing the function's own parameter on, and files that import neither JAX nor a library
        built on it (torch code that is not being ported).
    """
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
            "import jax\n@jax.jit\ndef f(x, y):\n    x.add_(y)\n    return x",
            line=4,
            column=5,
            expected_fix="import jax\n@jax.jit\ndef f(x, y):\n    x = x + y\n    return x",
        ),
        Invalid(
            "import jax\nimport numpy as np\n@jax.jit\ndef f(x, y):\n    np.add(x, y, out=x)\n    return x",
            line=5,
            column=18,
        ),
        Invalid("import jax\ndef step(w):\n    w.grad.zero_()\n", line=3, config={"scope": "all"}),
        Invalid("import jax, torch\ndef init(w):\n    torch.nn.init.normal_(w)\n", line=3, config={"scope": "all"}),
    ]

    def visit_Call(self, node: cst.Call, ctx: Context) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and _IN_PLACE.fullmatch(func.attr.value) and ctx.imports_jax:
            # Module functions ending in `_` are in-place only in torch (`torch.nn.init.normal_`);
            # numpy's `np.ix_`/`np.r_` are not.
            qualname = ctx.qualname(func)
            if qualname is None or qualname.startswith("torch."):
                ctx.report(node, call=f".{func.attr.value}()", fix=_in_place_arithmetic(ctx, node, ctx.parent))

    def visit_Arg(self, node: cst.Arg, ctx: Context) -> None:
        if node.keyword is None or node.keyword.value != "out" or not isinstance(ctx.parent, cst.Call):
            return
        # Only the array libraries' `out=` writes in place; `f(x, out=out)` passing a parameter on,
        # `out=None`, or a keyword of some other function named `out` are not in-place operations.
        qualname = ctx.qualname(ctx.parent.func)
        if qualname is None or not qualname.startswith(("numpy.", "torch.", "jax.numpy.")) or not ctx.imports_jax:
            return
        value = node.value
        if isinstance(value, cst.Name) and (
            value.value == "None" or (value.value == "out" and ctx.binding_kind("out") == "param")
        ):
            return
        ctx.report(node, call="out=")


# --- fixes ----------------------------------------------------------------------------------------


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


def _item_assignment(
    ctx: Context, statement: cst.Assign | cst.AugAssign, target: cst.Subscript, applicability: str
) -> Fix | None:
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
        method = _AT_METHODS.get(type(statement.operator))
        if method is None:
            return None
    else:
        method = "set"
        if isinstance(value, cst.Call) and ctx.qualname(value.func) in _EXTREMA and len(value.args) == 2:
            first, second = (a.value for a in value.args)
            same = code_of(target).strip()
            if not any(a.keyword or a.star for a in value.args) and same in (
                code_of(first).strip(),
                code_of(second).strip(),
            ):
                method = _EXTREMA[ctx.qualname(value.func) or ""]
                value = second if code_of(first).strip() == same else first
    text = f"{name} = {name}.at[{index}].{method}({_argument(value)})"
    return build_fix(applicability, f"Use `{name} = {name}.at[{index}].{method}(...)`", [ctx.edit(statement, text)])


def _in_place_arithmetic(ctx: Context, call: cst.Call, parent: cst.CSTNode | None) -> Fix | None:
    """PUR304: `x.add_(y)` -> `x = x + y` (also `sub_`, `mul_`, `div_`), `x.zero_()` ->
    `x = jnp.zeros_like(x)`; only as a whole statement on a plain variable."""
    func = call.func
    if not (isinstance(parent, cst.Expr) and isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)):
        return None
    name, method = func.value.value, func.attr.value
    if method == "zero_" and not call.args:
        spelled, imported = ctx.reference("jax.numpy.zeros_like")
        text = f"{name} = {spelled}({name})"
        return build_fix("unsafe", f"Use `{text}`", [ctx.edit(call, text), imported])
    operator = _IN_PLACE_OPERATORS.get(method)
    if operator is None or len(call.args) != 1 or call.args[0].keyword is not None or call.args[0].star:
        return None
    text = f"{name} = {name} {operator} {_wrapped(call.args[0].value)}"
    return build_fix("unsafe", f"Use `{name} = {name} {operator} ...`", [ctx.edit(call, text)])
