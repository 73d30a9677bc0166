"""Hidden state: rebinding outer names (PUR101), mutating module objects (PUR102), reading them (PUR103)."""

from __future__ import annotations

import libcst as cst

from purelint._rule import Context, FunctionInfo, Invalid, Rule, code_of

__all__ = ["GlobalStatement", "MutableGlobalRead", "MutateModuleState", "NnxStateUnderJaxJit"]


class GlobalStatement(Rule):
    code = "PUR101"
    name = "global-rebinding"
    summary = "`global`/`nonlocal` rebinding an outer name"
    message = "`{keyword} {names}` rebinds state outside the function, once per trace; return the value instead"
    untraced_message = "`{keyword} {names}` rebinds state outside the function; return the value instead"
    what = "Checks for `global` and `nonlocal` declarations whose names the function assigns."
    why = """
        A traced function runs once per compilation: the outer variable is updated while JAX
        traces, not on each call, and what is stored there is a tracer that leaks out of the trace.
    """
    example = """
        step_count = 0


        @jax.jit
        def step(x):
            global step_count
            step_count += 1
            return x * 2
    """
    use_instead = """
        @jax.jit
        def step(x, step_count):
            return x * 2, step_count + 1
    """
    VALID = [
        "import jax\nN = 0\n@jax.jit\ndef f(x):\n    global N\n    return x + N",
        "N = 0\ndef bump():\n    global N\n    N += 1\n",
    ]
    INVALID = [
        Invalid("import jax\nN = 0\n@jax.jit\ndef f(x):\n    global N\n    N += 1\n    return x", line=5, column=5),
        Invalid(
            "def outer():\n    n = 0\n    def inner():\n        nonlocal n\n        n = 1\n",
            line=4,
            config={"scope": "all"},
        ),
    ]

    def visit_Global(self, node: cst.Global, ctx: Context) -> None:
        self._check(node, ctx.function.global_stores, "global", ctx)

    def visit_Nonlocal(self, node: cst.Nonlocal, ctx: Context) -> None:
        self._check(node, ctx.function.nonlocal_stores, "nonlocal", ctx)

    def _check(self, node: cst.Global | cst.Nonlocal, stored: set[str], keyword: str, ctx: Context) -> None:
        names = [item.name.value for item in node.names if item.name.value in stored]
        if names:
            ctx.report(node, keyword=keyword, names=", ".join(names))


class MutateModuleState(Rule):
    code = "PUR102"
    name = "module-state-mutation"
    summary = "mutating a module-level object"
    message = "mutates module-level `{name}`, once per trace; thread state through arguments and return values"
    untraced_message = "mutates module-level `{name}`; thread state through arguments and return values"
    what = """
        Checks for in-place changes to module-level objects: item and attribute assignment
        (`CACHE[k] = v`, `cfg.step += 1`), `del G[k]`, mutating methods (`LOG.append(x)`), and
        `next(it)` on a module-level iterator.
    """
    why = """
        The mutation happens while JAX traces the function, once per compilation, and stores
        tracers in long-lived objects; later calls do not mutate anything.
    """
    example = """
        HISTORY = []


        @jax.jit
        def step(x):
            HISTORY.append(x)
            return x * 2
    """
    use_instead = """
        @jax.jit
        def step(x):
            return x * 2


        history = [step(x) for x in xs]  # collect outside the traced function
    """
    priority = 1
    VALID = [
        "import jax\nLOG = []\ndef f(x):\n    LOG.append(x)",
        "import jax\n@jax.jit\ndef f(x):\n    log = []\n    log.append(x)\n    return log",
        "import jax\nimport optax\nopt = optax.adam(1e-3)\n@jax.jit\ndef f(g, s):\n    u, s = opt.update(g, s)\n    return u, s",
        "import jax\nC = {}\nC['a'] = 1\n@jax.jit\ndef f(x):\n    return x",
    ]
    INVALID = [
        Invalid("import jax\nLOG = []\n@jax.jit\ndef f(x):\n    LOG.append(x)\n    return x", line=5, column=5),
        Invalid("import jax\nC = {}\n@jax.jit\ndef f(k, v):\n    C[k] = v\n    return v", line=5, column=5),
        Invalid("import jax\nC = {}\n@jax.jit\ndef f(k):\n    del C[k]\n    return k", line=5),
        Invalid("class Cfg: step = 0\ncfg = Cfg()\ndef f(x):\n    cfg.step += 1", line=4, config={"scope": "all"}),
        Invalid("import os\ndef f(x):\n    os.environ['A'] = x", line=3, config={"scope": "all"}),
    ]

    def _visit(self, node: cst.CSTNode, ctx: Context) -> None:
        for target, root, kind in ctx.mutations(node):
            # Methods called on imported modules (`np.append`) are functions, not mutations.
            if kind == "module" and ctx.is_ref(root.value):
                continue  # a `jax.new_ref` Ref: writing it is its API, on every call
            if kind == "module" and ctx.hijax_update(target):
                continue  # hijax NNX Variables and objects: updating them under `jax.jit` is their API
            if kind == "module" and ctx.nnx_value(root.value):
                continue  # NNX objects: PUR104 under plain `jax.jit`, NNX's API under `nnx.jit` or hijax
            if kind == "module" or (kind == "import" and not isinstance(target, cst.Call)):
                ctx.report(target, name=root.value)
        if type(node) is cst.Call and node.args and ctx.qualname(node.func) == "builtins.next":  # type: ignore[attr-defined]
            it = node.args[0].value  # type: ignore[attr-defined]
            if isinstance(it, cst.Name) and ctx.binding_kind(it.value) == "module":
                ctx.report(
                    node,
                    f"`next({it.value})` advances the module-level iterator once per trace, not once per call; pass the values in as arguments",
                )

    visit_AssignTarget = visit_AugAssign = visit_Del = visit_Call = _visit


class MutableGlobalRead(Rule):
    code = "PUR103"
    name = "mutable-global-read"
    summary = "reading a module-level name that is rebound or mutated"
    message = "reads module-level `{name}`, which changes at runtime; JAX freezes its value at trace time, pass it as an argument"
    untraced_message = "reads module-level `{name}`, which changes at runtime; pass it as an argument"
    what = """
        Checks for reads of module-level names that some function rebinds (through `global`) or
        mutates in place, or that the module itself assigns more than once (`g = 10.` ... `g =
        20.`, notebook style). Mutation is tracked per attribute: reading `cfg.lr` is fine when
        only `cfg.step` is ever set.

        It leaves alone constants that never change, imported modules, functions, absl flags
        (`flags.FLAGS`, `flags.DEFINE_*` holders), which are set once at start-up, and names
        the module assigns again when the only function reading them is jitted once by a
        module-level statement that runs it at once (`jax.jit(f)(x)`, `jax.jit(f).trace(x)`):
        it is traced with the values of that moment and never called again, so nothing goes
        stale. `grad`, `vmap` and `vjp` re-trace on every call and never go stale either.
    """
    why = """
        JAX bakes the value it sees while tracing into the compiled program. When the global
        changes later, the cached compiled function keeps using the old value without a warning.
    """
    example = """
        temperature = 1.0


        def set_temperature(t):
            global temperature
            temperature = t


        @jax.jit
        def sample_logits(logits):
            return logits / temperature
    """
    use_instead = """
        @jax.jit
        def sample_logits(logits, temperature):
            return logits / temperature
    """
    priority = -1
    VALID = [
        "import jax\nSCALE = 2.0\n@jax.jit\ndef f(x):\n    return x * SCALE",
        "import jax\nimport jax.numpy as jnp\n@jax.jit\ndef f(x):\n    return jnp.sin(x)",
        "import jax\nT = 1.0\ndef setter(t):\n    global T\n    T = t\ndef g(x):\n    return x / T",
        "import jax\ng = 1.0\ndef f():\n    return g * 2\nprint(jax.jit(f)())\ng = 2.0\n",
    ]
    INVALID = [
        Invalid(
            "import jax\nT = 1.0\ndef setter(t):\n    global T\n    T = t\n@jax.jit\ndef g(x):\n    return x / T",
            line=8,
            column=16,
        ),
        Invalid(
            "import jax\nSEEN = []\ndef add(x):\n    SEEN.append(x)\n@jax.jit\ndef g(x):\n    return len(SEEN) + x",
            line=7,
        ),
        Invalid("import jax\ng = 10.0\n@jax.jit\ndef f(x):\n    return x + g\ng = 20.0\n", line=5, column=16),
    ]

    def visit_Name(self, node: cst.Name, ctx: Context) -> None:
        name = node.value
        if ctx.is_store or name in ctx.function.globals:
            return
        mutated = ctx.module_mutated()
        changes = (
            name in ctx.module_rebound
            or name in mutated
            or (name in ctx.module_reassigned() and ctx.caches_program(ctx.function))
        )
        parent = ctx.parent
        if not changes and isinstance(parent, cst.Attribute) and parent.value is node:
            changes = f"{name}.{parent.attr.value}" in mutated  # `cfg.step` read, `cfg.step += 1` elsewhere
        if changes and ctx.binding_kind(name) == "module" and not ctx.is_flags(name) and not ctx.is_ref(name):
            if not ctx.nnx_value(name):  # NNX objects carry their state in Variables
                ctx.report(node, name=name)


class NnxStateUnderJaxJit(Rule):
    code = "PUR104"
    name = "nnx-state-under-jax-jit"
    summary = "a Flax NNX object (optimizer, module) mutated inside plain `jax.jit`"
    message = (
        "`{call}` changes the NNX {what} `{name}` inside plain `{transform}`: the update is made on tracers "
        "and lost after the call; use `nnx.jit` (or `nnx.split` the state, pass it in and return it)"
    )
    what = """
        Checks for state updates of Flax NNX objects inside a function traced by plain `jax.jit`
        (or another `jax` transform, not an `nnx` one): `optimizer.update(...)` on an
        `nnx.Optimizer`, and attribute or item assignment on an NNX module (`model.count.value
        += 1`, `model.w[...] = ...`). It knows an object is NNX from an annotation
        (`optimizer: nnx.Optimizer`, a subclass of `nnx.Module`), from a closed-over or
        module-level name built by `nnx.Optimizer(...)`/`nnx.Linear(...)`/a same-file
        `nnx.Module` subclass, or from the arguments the jitted function is called with.

        It leaves alone the same code under `nnx.jit` (which carries NNX state in and out),
        files that make Variables "hijax" (`nnx.var_defaults(hijax=True)`, `hijax=True`), with
        which plain `jax.jit` keeps the updates, and updates of bare `nnx.Variable` arguments.
    """
    why = """
        `jax.jit` sees NNX objects only as pytrees (or as constants it closes over): the
        Variables are updated on tracers while JAX traces, and nothing carries the new values back
        out. The training loop runs without an error and the optimizer state (or the module's
        counters, batch statistics, RNG counts) never changes: the step count stays 0, Adam's
        moments stay zero.
    """
    example = """
        model = MLP(rngs=nnx.Rngs(0))
        optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)


        @jax.jit
        def train_step(model, optimizer, x, y):
            grads = nnx.grad(loss_fn)(model, x, y)
            optimizer.update(model, grads)


        train_step(model, optimizer, x, y)
    """
    use_instead = """
        @nnx.jit
        def train_step(model, optimizer, x, y):
            grads = nnx.grad(loss_fn)(model, x, y)
            optimizer.update(model, grads)
    """
    priority = 4  # more specific than PUR302/PUR102 at the same place
    VALID = [
        "import jax\nfrom flax import nnx\n@nnx.jit\ndef step(opt: nnx.Optimizer, model, g):\n    opt.update(model, g)",
        "import jax\nfrom flax import nnx\nnnx.var_defaults(hijax=True)\n@jax.jit\ndef step(opt: nnx.Optimizer, model, g):\n    opt.update(model, g)",
        "import jax\nimport optax\nopt = optax.adam(1e-3)\n@jax.jit\ndef f(g, s):\n    u, s = opt.update(g, s)\n    return u, s",
        "import jax\nfrom flax import nnx\n@jax.jit\ndef f(v: nnx.Variable):\n    v[...] += 1",
    ]
    INVALID = [
        Invalid(
            "import jax\nfrom flax import nnx\n@jax.jit\ndef step(model, opt: nnx.Optimizer, g):\n    opt.update(model, g)",
            line=5,
            column=5,
        ),
        Invalid(
            "import jax\nimport optax\nfrom flax import nnx\nmodel = nnx.Linear(2, 3, rngs=nnx.Rngs(0))\n"
            "optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)\n"
            "@jax.jit\ndef train_step(model, optimizer, grads):\n    optimizer.update(model, grads)\n"
            "train_step(model, optimizer, None)\n",
            line=8,
            column=5,
        ),
        Invalid(
            "import jax\nfrom flax import nnx\nclass Counter(nnx.Module):\n    def __init__(self):\n        self.n = nnx.Variable(0)\n"
            "counter = Counter()\n@jax.jit\ndef bump(x):\n    counter.n.value += 1\n    return x\n",
            line=9,
            column=5,
        ),
    ]

    def check_function(self, fn: FunctionInfo, ctx: Context) -> None:
        plain = [a for a in fn.applications if not a.transform.nnx and a.transform.mode not in ("filter", "wrapper")]
        if not plain or ctx.nnx_traced(fn) or ctx.hijax:
            return
        objects = ctx.nnx_params(fn)
        for node in fn.calls:
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value == "update" and isinstance(func.value, cst.Name):
                what = self._object(func.value.value, fn, objects, ctx)
                if what is not None:
                    ctx.report(
                        node,
                        call=f"{func.value.value}.update(...)",
                        what=what,
                        name=func.value.value,
                        transform=plain[0].transform.name,
                    )
        for statement in ctx.nodes(fn):
            if type(statement) not in (cst.AssignTarget, cst.AugAssign):
                continue
            for target, root, _kind in ctx.mutations(statement):
                if isinstance(target, cst.Call) or (
                    target.value is root if isinstance(target, cst.Subscript) else False
                ):
                    continue
                what = self._object(root.value, fn, objects, ctx)
                if what is not None:
                    ctx.report(
                        target,
                        call=f"{code_of(target).strip()} = ...",
                        what=what,
                        name=root.value,
                        transform=plain[0].transform.name,
                    )

    @staticmethod
    def _object(name: str, fn: FunctionInfo, objects: dict[str, str], ctx: Context) -> str | None:
        if name in objects:
            return objects[name]
        kind = ctx.binding_kind(name)
        if kind in ("module", "enclosing"):
            return ctx.nnx_value(name, fn)
        return None
