"""PUR204: a PRNG key consumed twice (the key-flow analysis itself is `purelint._analysis._keys`)."""

from __future__ import annotations

from purelint._rule import Context, FunctionInfo, Invalid, Rule

__all__ = ["PrngKeyReuse"]

_SPLIT = "split it first: `{name}, sub = jax.random.split({name})` and draw from `sub`"


class PrngKeyReuse(Rule):
    code = "PUR204"
    name = "prng-key-reuse"
    summary = "the same PRNG key is used by two random draws"
    message = "PRNG key `{name}` is reused: `{callee}` on {line} already used it; " + _SPLIT
    what = """
        Checks for a `jax.random` key variable that is consumed twice without being rebound in
        between: by two sampling calls (`normal`, `uniform`, `bernoulli`, ...), by `split` after a
        draw, or by a draw and a call it is passed on to (`model(x, key=key)`). In loops, it checks
        for a key drawn from in every iteration without being split or folded per iteration.
        `fold_in(key, i)` derives a new key and does not consume `key`. A same-file helper that
        passes its parameter straight to a `jax.random` draw counts as a draw (`sample(key)`
        twice is reuse), also when called through a transform (`jax.jit(sample)(key)`). An element
        of a key array after the array was used (`split(keys[0])` after `step(keys)`), and a
        module-level key that the module's own code used and a function draws from again, are reuse.

        It runs on all code by default (functions JAX does not trace, tests, scripts and
        module-level statements): reusing a key is a bug wherever it happens. It leaves alone a key
        passed to two calls it knows nothing about (they may only inspect it), and keys in
        different branches of an `if`.
    """
    why = """
        A JAX key is not a stateful generator: the same key always gives the same numbers. Two
        draws from one key are perfectly correlated (identical noise, identical dropout masks), the
        program runs without any error, and results are subtly wrong.
    """
    example = """
        @jax.jit
        def noisy(x, key):
            noise = jax.random.normal(key, x.shape)
            mask = jax.random.bernoulli(key, 0.9, x.shape)
            return (x + noise) * mask
    """
    use_instead = """
        @jax.jit
        def noisy(x, key):
            key_noise, key_mask = jax.random.split(key)
            noise = jax.random.normal(key_noise, x.shape)
            mask = jax.random.bernoulli(key_mask, 0.9, x.shape)
            return (x + noise) * mask
    """
    VALID = [
        "import jax\n@jax.jit\ndef f(x, key):\n    key, sub = jax.random.split(key)\n    return x + jax.random.normal(sub), key",
        "import jax\n@jax.jit\ndef f(key):\n    k1, k2 = jax.random.split(key)\n    return jax.random.normal(k1) + jax.random.normal(k2)",
        "import jax\n@jax.jit\ndef f(key):\n    keys = jax.random.split(key, 3)\n    return [jax.random.normal(keys[i]) for i in range(3)]",
        "import jax\n@jax.jit\ndef f(key):\n    return [jax.random.normal(jax.random.fold_in(key, i)) for i in range(3)]",
        "import jax\n@jax.jit\ndef f(key, c):\n    if c:\n        return jax.random.normal(key)\n    return jax.random.uniform(key)",
    ]
    INVALID = [
        Invalid(
            "import jax\n@jax.jit\ndef f(key):\n    a = jax.random.normal(key)\n    return a + jax.random.uniform(key)",
            line=5,
            column=35,
        ),
        Invalid(
            "import jax\nfrom jax import random\n@jax.jit\ndef f(key, m, x):\n    x = x + random.normal(key)\n    return m(x, key=key)",
            line=6,
        ),
        Invalid(
            "import jax\n@jax.jit\ndef f(key, xs):\n    for x in xs:\n        x = x + jax.random.normal(key)\n    return xs",
            line=5,
        ),
        Invalid(
            "import jax\ndef f(key):\n    return jax.random.normal(key) + jax.random.normal(key)", line=3, column=55
        ),
        Invalid(
            "import jax\nkey = jax.random.PRNGKey(0)\na = jax.random.normal(key)\nb = jax.random.uniform(key)\n",
            line=4,
            column=24,
        ),
        Invalid(
            "import jax\ndef sample(key):\n    return jax.random.normal(key, (3,))\nkey = jax.random.key(0)\na = sample(key)\nb = sample(key)\n",
            line=6,
            column=12,
        ),
        Invalid(
            "import jax\n@jax.jit\ndef f(key):\n    x = jax.random.normal(key)\n    k1, k2 = jax.random.split(key)\n    return x, k1",
            line=5,
        ),
    ]

    everywhere = True

    def check_function(self, fn: FunctionInfo, ctx: Context) -> None:
        if "random" in ctx.source:
            self._report(ctx.key_reuse(), ctx)

    def check_module(self, ctx: Context) -> None:
        if "random" in ctx.source:
            self._report(ctx.key_reuse(), ctx)

    @staticmethod
    def _report(found: list, ctx: Context) -> None:
        for reuse in found:
            if reuse.loop:
                ctx.report(
                    reuse.node,
                    f"PRNG key `{reuse.name}` is used in every iteration of the loop without being split; "
                    f"derive one key per iteration (`jax.random.fold_in({reuse.name}, i)`, or split before the loop)",
                )
            else:
                ctx.report(reuse.node, name=reuse.name, callee=reuse.first.callee, line=ctx.line_of(reuse.first.node))
