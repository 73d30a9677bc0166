"""PRNG key-reuse analysis: the correct idioms stay silent, every reuse shape is found where it is."""

import textwrap

import libcst as cst
import pytest

from purelint._analysis._keys import find_key_reuse, resolver_for

HEADER = "import jax\nimport jax.numpy as jnp\nfrom jax import random as jr\n"

# Correct code: nothing to report.
VALID = [
    # The split idiom, with the subkey used once.
    """
    def f(key):
        key, sub = jax.random.split(key)
        a = jax.random.normal(sub, (3,))
        key, sub = jax.random.split(key)
        b = jax.random.uniform(sub, (3,))
        return a + b, key
    """,
    """
    def f(key):
        k1, k2 = jax.random.split(key)
        return jax.random.normal(k1) + jax.random.normal(k2)
    """,
    # One array of keys, indexed.
    """
    def f(key, n):
        keys = jax.random.split(key, 3)
        a = jax.random.normal(keys[0])
        b = jr.normal(keys[1])
        c = jr.bernoulli(keys[-1], 0.5)
        return a, b, c
    """,
    """
    def f(key, n):
        keys = jax.random.split(key, n)
        return [jax.random.normal(keys[i]) for i in range(n)]
    """,
    # fold_in derives without consuming: the loop idiom.
    """
    def f(key, n):
        out = []
        for i in range(n):
            k = jax.random.fold_in(key, i)
            out.append(jax.random.normal(k))
        return out
    """,
    "def f(key):\n    return [jax.random.normal(jax.random.fold_in(key, i)) for i in range(3)]",
    "def f(key, n):\n    return [jax.random.normal(k) for k in jax.random.split(key, n)]",
    # Splitting at the top of each iteration.
    """
    def f(key, xs):
        for x in xs:
            key, sub = jax.random.split(key)
            x = x + jax.random.normal(sub)
        return key
    """,
    """
    def f(key):
        while True:
            key, sub = jax.random.split(key)
            if jax.random.bernoulli(sub):
                break
        return key
    """,
    # Each branch uses the key once.
    """
    def f(key, c):
        if c:
            x = jax.random.normal(key)
        else:
            x = jax.random.uniform(key)
        return x
    """,
    "def f(key, c):\n    return jax.random.normal(key) if c else jax.random.uniform(key)",
    # A branch that returns does not reach the code after it.
    """
    def f(key, c):
        if c:
            return jax.random.normal(key)
        return jax.random.uniform(key)
    """,
    """
    def f(key, c):
        match c:
            case 0:
                return jax.random.normal(key)
            case _:
                pass
        return jax.random.uniform(key)
    """,
    # Inspecting a key is not drawing from it.
    """
    def f(key):
        print(key, key.shape, jnp.shape(key), len(key))
        jax.debug.print("{}", key)
        data = jax.random.key_data(key)
        return jax.random.normal(key)
    """,
    # Passing a key to two helpers is not reported (they may only look at it).
    "def f(key, model, x):\n    model.check(key)\n    return model(x, key=key)",
    # Rebinding from elsewhere makes a new key.
    """
    def f(key, seed):
        x = jax.random.normal(key)
        key = jax.random.PRNGKey(seed)
        return x + jax.random.normal(key)
    """,
    # split(key)[0] and split(key)[1] are different keys.
    "def f(key):\n    return jax.random.normal(jax.random.split(key)[0]), jax.random.split(key)[1]",
    # Nested functions are separate scopes.
    """
    def f(key):
        def g(key):
            return jax.random.normal(key)
        h = lambda k: jax.random.normal(k)
        return g(jax.random.split(key)[0]), jax.vmap(h)(jax.random.split(key)[1])
    """,
    # A different attribute call that happens to be named like a sampler.
    "def f(key, rng):\n    rng.normal(key)\n    return rng.normal(key)",
    # try: the handler runs instead of the rest of the body.
    """
    def f(key):
        try:
            x = jax.random.normal(key)
        except ValueError:
            x = jax.random.uniform(key)
        return x
    """,
]

# Reuse: (code, the reported key names, the 1-based lines they sit on (in the snippet), loop flags).
INVALID = [
    (
        """
        def f(key):
            a = jax.random.normal(key, (3,))
            b = jax.random.uniform(key, (3,))
            return a + b
        """,
        ["key"],
        [3],
        [False],
    ),
    ("def f(key):\n    return jax.random.normal(key) + jr.normal(key)", ["key"], [2], [False]),
    # Sampling, then passing the same key on.
    (
        "def f(key, model, x):\n    noise = jax.random.normal(key, x.shape)\n    return model(x + noise, key=key)",
        ["key"],
        [3],
        [False],
    ),
    # Passing on, then sampling.
    ("def f(key, model, x):\n    y = model(x, key)\n    return y + jax.random.normal(key)", ["key"], [3], [False]),
    # Splitting a key that was already used, or splitting twice.
    (
        "def f(key):\n    x = jax.random.normal(key)\n    key, sub = jax.random.split(key)\n    return x, key",
        ["key"],
        [3],
        [False],
    ),
    (
        "def f(key):\n    a, b = jax.random.split(key)\n    c, d = jax.random.split(key)\n    return a, c",
        ["key"],
        [3],
        [False],
    ),
    # Using the old key after splitting it.
    ("def f(key):\n    k1, k2 = jax.random.split(key)\n    return jax.random.normal(key)", ["key"], [3], [False]),
    # The same subkey twice; the same element of a key array twice.
    (
        "def f(key):\n    key, sub = jax.random.split(key)\n    return jax.random.normal(sub), jax.random.normal(sub)",
        ["sub"],
        [3],
        [False],
    ),
    (
        "def f(key):\n    keys = jax.random.split(key, 4)\n    return jax.random.normal(keys[0]), jax.random.normal(keys[0])",
        ["keys[0]"],
        [3],
        [False],
    ),
    # Keyword key, aliasing.
    ("def f(rng):\n    k = rng\n    return jax.random.normal(key=rng), jax.random.normal(k)", ["k"], [3], [False]),
    # Used in a branch, then again after it (reuse on that path).
    (
        """
        def f(key, c):
            x = 0.0
            if c:
                x = jax.random.normal(key)
            return x + jax.random.uniform(key)
        """,
        ["key"],
        [5],
        [False],
    ),
    # Loops: the key is drawn from in every iteration without being split.
    (
        """
        def f(key, xs):
            out = []
            for x in xs:
                out.append(x + jax.random.normal(key))
            return out
        """,
        ["key"],
        [4],
        [True],
    ),
    (
        "def f(key):\n    i = 0\n    while i < 3:\n        i = i + jax.random.randint(key, (), 0, 2)\n    return i",
        ["key"],
        [4],
        [True],
    ),
    ("def f(key):\n    return [jax.random.normal(key) for _ in range(3)]", ["key"], [2], [True]),
    # Split inside the loop, but from the same outer key each time.
    (
        """
        def f(key, xs):
            for x in xs:
                k1, k2 = jax.random.split(key)
                x = x + jax.random.normal(k1)
            return xs
        """,
        ["key"],
        [3],
        [True],
    ),
    # After the loop: consumed inside, used again outside.
    (
        """
        def f(key, xs):
            for x in xs:
                key, sub = jax.random.split(key)
                last = jax.random.normal(sub)
            return last, jax.random.normal(sub)
        """,
        ["sub"],
        [5],
        [False],
    ),
]


def _function(code):
    module = cst.parse_module(HEADER + textwrap.dedent(code).strip("\n") + "\n")
    function = next(s for s in module.body if isinstance(s, cst.FunctionDef))
    return module, function


def _line(module, node):
    wrapper = cst.MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(cst.metadata.PositionProvider)
    return positions[node].start.line - HEADER.count("\n")


@pytest.mark.parametrize("code", VALID)
def test_correct_key_handling_is_silent(code):
    module, function = _function(code)
    assert find_key_reuse(function, resolver_for(module)) == []


@pytest.mark.parametrize(("code", "names", "lines", "loops"), INVALID)
def test_reuse_is_found_where_it_happens(code, names, lines, loops):
    module, function = _function(code)
    found = find_key_reuse(function, resolver_for(module))
    assert [r.name for r in found] == names
    assert [_line(module, r.node) for r in found] == lines
    assert [r.loop for r in found] == loops
    assert all(r.first.node is not r.node or r.loop for r in found)


def test_first_use_and_consumers_are_reported():
    module, function = _function("def f(key, model, x):\n    a = jr.normal(key)\n    return model(x, key)")
    (reuse,) = find_key_reuse(function, resolver_for(module))
    assert (reuse.first.callee, reuse.first.kind) == ("jax.random.normal", "random")
    assert (reuse.use.callee, reuse.use.kind) == ("model", "call")
    assert _line(module, reuse.first.node) == 2


def test_resolution_is_a_callback():
    # Only what the resolver says is jax.random counts; an unresolved `normal` is an unknown call.
    module, function = _function("def f(key):\n    normal(key)\n    return normal(key)")
    assert find_key_reuse(function, resolver_for(module)) == []
    found = find_key_reuse(
        function, lambda e: "jax.random.normal" if isinstance(e, cst.Name) and e.value == "normal" else None
    )
    assert [r.name for r in found] == ["key"]


def test_lambda_bodies_can_be_analysed_too():
    module = cst.parse_module(HEADER + "f = lambda key: jax.random.normal(key) + jax.random.normal(key)\n")
    lam = module.body[-1].body[0].value
    assert [r.name for r in find_key_reuse(lam, resolver_for(module))] == ["key"]
