"""Tracing hazards (PUR401-PUR404): which parameters are traced, what derives from them, the fixes."""

import textwrap

import pytest

from purelint import Config, lint_source
from purelint._runner import fix_text

HEADER = (
    "import functools\nimport jax\nimport jax.numpy as jnp\nimport equinox as eqx\nfrom jaxtyping import Array, Float\n"
)


def _codes(code, select=("PUR401", "PUR402", "PUR403", "PUR404"), **settings):
    source = HEADER + textwrap.dedent(code)
    config = Config.from_mapping({"select": list(select), **settings})
    return [(d.code, d.line - HEADER.count("\n")) for d in lint_source(source, "t.py", config=config)]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # jax.jit: every parameter that is not static.
        ("@jax.jit\ndef f(x, n):\n    return x * float(n)\n", [("PUR402", 3)]),
        ("@functools.partial(jax.jit, static_argnames='n')\ndef f(x, n):\n    return x * float(n)\n", []),
        ("@functools.partial(jax.jit, static_argnums=(1,))\ndef f(x, n):\n    return x * float(n)\n", []),
        # grad: only the differentiated arguments (argnums, default 0).
        ("def loss(w, n):\n    return w * float(n)\ng = jax.grad(loss)\n", []),
        ("def loss(w, n):\n    return float(w) * n\ng = jax.grad(loss)\n", [("PUR402", 2)]),
        ("def loss(w, n):\n    return w * float(n)\ng = jax.grad(loss, argnums=(0, 1))\n", [("PUR402", 2)]),
        # vmap: arguments mapped over (in_axes not None); partial-bound arguments are plain values.
        ("def f(x, n):\n    return x * float(n)\nv = jax.vmap(f, in_axes=(0, None))\n", []),
        ("def f(x, n):\n    return float(x) * n\nv = jax.vmap(f, (0, None))\n", [("PUR402", 2)]),
        ("def f(x, n):\n    return x * float(n)\nv = jax.vmap(functools.partial(f, n=3))\n", []),
        # Equinox filter transforms trace arrays only: unannotated or scalar-annotated values are static.
        ("@eqx.filter_jit\ndef f(x, training: bool):\n    return x * 0.5 if training else x\n", []),
        (
            "@eqx.filter_jit\ndef f(x: Float[Array, 'n'], n: int):\n    if x.sum() > n:\n        return x\n    return -x\n",
            [("PUR401", 3)],
        ),
        # Methods of an eqx.Module: `self` holds static fields as well as arrays; array parameters are traced.
        (
            "class M(eqx.Module):\n    use_bias: bool\n    def __call__(self, x: Array):\n"
            "        if self.use_bias:\n            x = x + 1\n        return x.item()\n",
            [("PUR402", 6)],
        ),
        # lax bodies: every parameter.
        ("def body(i, x):\n    return x + int(i)\njax.lax.fori_loop(0, 3, body, 0.0)\n", [("PUR402", 2)]),
    ],
)
def test_which_parameters_are_traced(code, expected):
    assert _codes(code) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # Values computed from traced ones are traced; shapes, dtypes and lengths are not.
        ("@jax.jit\ndef f(x):\n    y = x * 2\n    if y.sum() > 0:\n        return y\n    return x\n", [("PUR401", 4)]),
        (
            "@jax.jit\ndef f(x):\n    n = x.shape[0]\n    m = len(x) + n\n    if m > 2 and x.dtype == jnp.float32:\n        return x\n    return -x\n",
            [],
        ),
        # zip and enumerate: each loop variable comes from its own iterable.
        (
            "FLAGS = (True, False)\n@jax.jit\ndef f(xs):\n    for x, flag in zip(xs, FLAGS):\n        if flag:\n            xs = xs + x\n    return xs\n",
            [],
        ),
        (
            "@jax.jit\ndef f(xs):\n    for i, x in enumerate(xs):\n        if i > 2:\n            return x\n    return xs\n",
            [],
        ),
        (
            "@jax.jit\ndef f(xs, ys):\n    for x, y in zip(xs, ys):\n        if y:\n            return x\n    return xs\n",
            [("PUR401", 4)],
        ),
        # One report for a whole condition, not one per operator inside it.
        ("@jax.jit\ndef f(x, y):\n    if x > 0 and not y:\n        return x\n    return y\n", [("PUR401", 3)]),
        ("@jax.jit\ndef f(x, mask=None):\n    while mask is not None:\n        mask = None\n    return x\n", []),
    ],
)
def test_what_derives_from_traced_values(code, expected):
    assert _codes(code) == expected


def test_jit_over_modules_fix_is_unsafe_and_adds_the_import():
    source = (
        "import jax\nfrom equinox import Module\n\nclass MLP(Module):\n    w: jax.Array\n\n"
        "@jax.jit  # compiled once\ndef loss(model: MLP, x):\n    return model.w * x\n"
    )
    config = Config.from_mapping({"select": ["PUR403"]})
    assert fix_text(source, "m.py", config, unsafe=False).text == source
    fixed = fix_text(source, "m.py", config, unsafe=True)
    assert fixed.text == source.replace("Module\n", "Module\nimport equinox as eqx\n", 1).replace(
        "@jax.jit  #", "@eqx.filter_jit  #"
    )
    assert (fixed.fixed, fixed.remaining) == (1, [])
    assert fix_text(fixed.text, "m.py", config, unsafe=True).text == fixed.text


def test_jit_call_site_with_a_module_argument():
    source = (
        "import jax\nimport equinox as eqx\n\ndef loss(model, x):\n    return model(x)\n\n"
        "step = jax.jit(loss)\nmodel = eqx.nn.Linear(2, 2, key=jax.random.PRNGKey(0))\nstep(model, 1.0)\n"
    )
    config = Config.from_mapping({"select": ["PUR403"]})
    (finding,) = lint_source(source, "m.py", config=config)
    assert (finding.line, finding.column, finding.fix.applicability) == (7, 8, "unsafe")
    assert "step = eqx.filter_jit(loss)" in fix_text(source, "m.py", config, unsafe=True).text
    # With no module in sight, jax.jit is right.
    assert (
        lint_source(
            source.replace("step(model, 1.0)", "step(1.0, 1.0)").replace("model = eqx", "m = eqx"),
            "m.py",
            config=config,
        )
        == []
    )


def test_unrolled_loop_counts_literal_ranges_only():
    assert _codes("@jax.jit\ndef f(x, n):\n    for _ in range(n):\n        x = x * 2\n    return x\n") == []
    assert _codes("@jax.jit\ndef f(x):\n    for _ in range(0, 100, 10):\n        x = x * 2\n    return x\n") == []
    assert _codes("@jax.jit\ndef f(x):\n    for _ in range(17):\n        x = x * 2\n    return x\n") == [("PUR404", 3)]


def test_taint_facts_are_shared_by_the_rules():
    # The facts layer computes the taint once per function and mode; PUR401 and PUR402 read it.
    import libcst as cst

    from purelint._analysis._facts import Facts
    from purelint._analysis._tracing import analyze

    source = HEADER + textwrap.dedent(
        """
        @jax.jit
        def f(x, state):
            n = x.shape[0]
            y = x * 2
            spec = jax.typeof(y)
            scale = state.scale
            mask = (y > 0) & ~jnp.isnan(y)
            return y[mask] * n, spec, scale.factor
        """
    )
    model = analyze(cst.parse_module(source))
    (fn,) = [f for f in model.functions if f.name == "f"]
    facts = Facts(model)
    taint = facts.taint(fn, branching=True)
    assert facts.taint(fn, branching=True) is taint
    assert {"x", "state", "y", "mask", "scale"} <= taint.names
    assert not {"n", "spec"} & taint.names
    assert facts.taint(fn).nodes is taint.nodes  # one walk over the body for both modes
    name = lambda text: cst.parse_expression(text)
    assert taint.boolean(name("mask")) and not taint.boolean(name("y"))
    assert taint.structure_test(name("scale")) and not taint.structure_test(name("y"))
