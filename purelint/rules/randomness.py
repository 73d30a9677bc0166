"""Hidden randomness and time: Python's random (PUR201), numpy/torch global RNGs (PUR202), clocks (PUR203)."""

from __future__ import annotations

import libcst as cst

from purelint._rule import Context, Invalid, Rule

__all__ = ["ClockInTraced", "GlobalNumpyTorchRandom", "PythonRandom"]

# Constructors that take an explicit seed are fine when given one; everything else in
# numpy.random draws from (or reseeds) the hidden global state.
_SEEDED_CONSTRUCTORS = frozenset(
    f"numpy.random.{n}"
    for n in ("default_rng", "Generator", "RandomState", "SeedSequence", "PCG64", "Philox", "MT19937", "SFC64")
)
_GENERATORS = frozenset(f"numpy.random.{n}" for n in ("default_rng", "Generator", "RandomState"))
_TORCH_RNG = frozenset(
    f"torch.{n}"
    for n in (
        "manual_seed", "seed", "initial_seed", "rand", "rand_like", "randn", "randn_like", "randint",
        "randint_like", "randperm", "bernoulli", "multinomial", "normal", "poisson", "cuda.manual_seed",
        "cuda.manual_seed_all", "random.manual_seed", "random.seed",
    )
)  # fmt: skip
_CLOCKS = frozenset(
    {
        *(
            f"time.{n}{s}"
            for n in ("time", "perf_counter", "monotonic", "process_time", "thread_time")
            for s in ("", "_ns")
        ),
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "uuid.uuid1",
        "uuid.uuid4",
        "os.urandom",
        "os.getrandom",
    }
)

_KEY_ADVICE = "use `jax.random` with an explicit key (`key, sub = jax.random.split(key)`)"


class PythonRandom(Rule):
    code = "PUR201"
    name = "python-random"
    summary = "Python's `random` module inside a traced function"
    message = (
        f"`{{call}}` draws once, at trace time, and the number is frozen into the compiled function; {_KEY_ADVICE}"
    )
    untraced_message = f"`{{call}}` draws from Python's hidden global RNG; {_KEY_ADVICE}"
    what = "Checks for calls into Python's `random` module inside traced functions."
    why = """
        `random.random()` runs while JAX traces: the number it returns becomes a constant of the
        compiled program, so every call reuses the same "random" value.
    """
    example = """
        @jax.jit
        def dropout(x):
            keep = random.random() > 0.1
            return x * keep
    """
    use_instead = """
        @jax.jit
        def dropout(x, key):
            keep = jax.random.bernoulli(key, 0.9, x.shape)
            return x * keep
    """
    VALID = [
        "import jax\n@jax.jit\ndef f(x, key):\n    return x + jax.random.normal(key)",
        "from jax import random\n@jax.jit\ndef f(key):\n    return random.uniform(key)",
        "import jax, random\ndef g():\n    return random.random()",
    ]
    INVALID = [
        Invalid("import jax, random\n@jax.jit\ndef f(x):\n    return x + random.random()", line=4, column=16),
        Invalid("import jax\nfrom random import gauss\n@jax.jit\ndef f(x):\n    return gauss(0, 1) * x", line=5),
        Invalid("import random as r\ndef f():\n    return r.choice([1, 2])", line=3, config={"scope": "all"}),
    ]

    def visit_Call(self, node: cst.Call, ctx: Context) -> None:
        qualname = ctx.qualname(node.func)
        if qualname is not None and qualname.startswith("random."):
            ctx.report(node, call=qualname)


class GlobalNumpyTorchRandom(Rule):
    code = "PUR202"
    name = "global-rng"
    summary = "numpy's or torch's global random state inside a traced function"
    message = f"`{{call}}` uses a hidden RNG that JAX freezes at trace time; {_KEY_ADVICE}"
    untraced_message = f"`{{call}}` uses a hidden RNG; {_KEY_ADVICE}"
    what = """
        Checks for `numpy.random` functions that use or reseed the global state
        (`np.random.rand`, `np.random.seed`, ...), draws from NumPy `Generator`s
        (`rng = np.random.default_rng(0)`; `rng.normal(...)`), and torch's global RNG
        (`torch.manual_seed`, `torch.rand*`, `torch.randn*`, ...) inside traced functions.
    """
    why = """
        The draw happens once, during tracing; its result is a constant in the compiled program.
        Seeding a global generator inside a traced function does nothing on later calls.
    """
    example = """
        @jax.jit
        def init(shape):
            return jnp.asarray(np.random.randn(*shape))
    """
    use_instead = """
        @partial(jax.jit, static_argnums=1)
        def init(key, shape):
            return jax.random.normal(key, shape)
    """
    VALID = [
        "import jax\nimport numpy as np\n@jax.jit\ndef f(x):\n    rng = np.random.default_rng(0)\n    return x",
        "import jax\nimport numpy as np\nnp.random.seed(0)\n@jax.jit\ndef f(x):\n    return x",
    ]
    INVALID = [
        Invalid(
            "import jax\nimport numpy as np\n@jax.jit\ndef f(x):\n    return x + np.random.rand()", line=5, column=16
        ),
        Invalid(
            "import jax\nfrom numpy import random as npr\n@jax.jit\ndef f(x):\n    npr.seed(0)\n    return x", line=5
        ),
        Invalid("import jax, torch\n@jax.jit\ndef f(x):\n    torch.manual_seed(0)\n    return x", line=4),
        Invalid("import torch\ndef f(n):\n    return torch.randn(n)", line=3, config={"scope": "all"}),
        Invalid(
            "import jax\nimport numpy as np\nrng = np.random.default_rng(0)\n@jax.jit\ndef f(x):\n    return x + rng.normal()",
            line=6,
            column=16,
        ),
    ]

    def visit_Call(self, node: cst.Call, ctx: Context) -> None:
        func = node.func
        qualname = ctx.qualname(func)
        if qualname is None:
            # `rng.normal(...)` where `rng = np.random.default_rng(...)`: seeded, but still a Python-side
            # generator whose draw is frozen at trace time.
            if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
                if ctx.value_qualnames(func.value.value) & _GENERATORS:
                    ctx.report(node, call=f"{func.value.value}.{func.attr.value}")
            return
        if (
            qualname.startswith("numpy.random.") and not (qualname in _SEEDED_CONSTRUCTORS and node.args)
        ) or qualname in _TORCH_RNG:
            ctx.report(node, call=qualname)


class ClockInTraced(Rule):
    code = "PUR203"
    name = "clock-or-entropy"
    summary = "clocks and entropy sources inside a traced function"
    message = (
        "`{call}` is read once, at trace time, and frozen into the compiled function; pass the value in as an argument"
    )
    untraced_message = "`{call}` makes the function's result depend on when it runs; pass the value in as an argument"
    what = """
        Checks for `time.time()`, `time.perf_counter()`, `datetime.now()`, `uuid.uuid4()`,
        `os.urandom()` and similar calls inside traced functions.
    """
    why = """
        The call runs while JAX traces, so its value becomes a compile-time constant: timings
        measure tracing, timestamps never change, and "random" ids repeat on every call.
    """
    example = """
        @jax.jit
        def stamp(x):
            return x, time.time()
    """
    use_instead = """
        @jax.jit
        def stamp(x, now):
            return x, now


        stamp(x, time.time())
    """
    VALID = [
        "import jax, time\ndef bench(f, x):\n    t = time.perf_counter()\n    f(x)\n    return time.perf_counter() - t",
        "import jax, time\n@jax.jit\ndef f(x, now):\n    return x * now",
    ]
    INVALID = [
        Invalid("import jax, time\n@jax.jit\ndef f(x):\n    return x * time.time()", line=4, column=16),
        Invalid(
            "import jax\nfrom datetime import datetime\n@jax.jit\ndef f(x):\n    d = datetime.now()\n    return x",
            line=5,
        ),
        Invalid("import jax, uuid\n@jax.jit\ndef f(x):\n    uuid.uuid4()\n    return x", line=4),
        Invalid("import os\ndef f():\n    return os.urandom(8)", line=3, config={"scope": "all"}),
    ]

    def visit_Call(self, node: cst.Call, ctx: Context) -> None:
        qualname = ctx.qualname(node.func)
        if qualname in _CLOCKS:
            ctx.report(node, call=qualname)
