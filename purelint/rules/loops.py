"""PUR404: long Python `for` loops in traced code, which JAX unrolls into the compiled program."""

from __future__ import annotations

import libcst as cst

from purelint._rule import Context, FunctionInfo, Invalid, Rule, Valid, literal

__all__ = ["UnrolledLoop"]


class UnrolledLoop(Rule):
    code = "PUR404"
    name = "unrolled-python-loop"
    summary = "a long Python `for` loop inside a traced function"
    message = "this Python loop runs {count} times at trace time and is unrolled into the compiled program; use `jax.lax.scan` or `jax.lax.fori_loop`"
    what = """
        Checks for Python `for` loops over a literal `range(...)` of more than `max-unrolled-loop`
        iterations (default 16) inside traced functions.
    """
    why = """
        JAX traces a Python loop by running it: every iteration adds its operations to the program
        again. Compile time and memory grow with the iteration count, and a few thousand
        iterations can take minutes to compile.
    """
    example = """
        @jax.jit
        def power_iteration(a, v):
            for _ in range(100):
                v = a @ v
                v = v / jnp.linalg.norm(v)
            return v
    """
    use_instead = """
        @jax.jit
        def power_iteration(a, v):
            def step(_, v):
                v = a @ v
                return v / jnp.linalg.norm(v)
            return jax.lax.fori_loop(0, 100, step, v)
    """
    traced_only = True
    VALID = [
        "import jax\n@jax.jit\ndef f(x):\n    for _ in range(16):\n        x = x * 2\n    return x",
        "import jax\n@jax.jit\ndef f(x, layers):\n    for layer in layers:\n        x = layer(x)\n    return x",
        "import jax\ndef f(x):\n    for _ in range(1000):\n        x = x * 2\n    return x",
        Valid(
            "import jax\n@jax.jit\ndef f(x):\n    for _ in range(100):\n        x = x * 2\n    return x",
            config={"max-unrolled-loop": 100},
        ),
    ]
    INVALID = [
        Invalid(
            "import jax\n@jax.jit\ndef f(x):\n    for _ in range(100):\n        x = x * 2\n    return x",
            line=4,
            column=5,
        ),
        Invalid(
            "import jax\n@jax.jit\ndef f(x):\n    for i in range(10, 40, 1):\n        x = x + i\n    return x", line=4
        ),
        Invalid(
            "import jax\n@jax.jit\ndef f(x):\n    for _ in range(8):\n        x = x * 2\n    return x",
            config={"max-unrolled-loop": 4},
        ),
    ]

    def check_function(self, fn: FunctionInfo, ctx: Context) -> None:
        limit = ctx.config.max_unrolled_loop
        for node in ctx.nodes(fn):
            if type(node) is not cst.For or not isinstance(node.iter, cst.Call):
                continue
            if ctx.qualname(node.iter.func) != "builtins.range" or not 1 <= len(node.iter.args) <= 3:
                continue
            bounds = [literal(a.value) for a in node.iter.args]
            if all(type(b) is int for b in bounds) and len(range(*bounds)) > limit:
                ctx.report(node, count=len(range(*bounds)))
