"""Name resolution, trace-scope routes, static arguments, scope setting and the one-finding policy."""

import textwrap

import libcst as cst
import pytest

from purelint import Config, lint_source
from purelint._analysis._tracing import analyze


def found(source, **settings):
    settings.setdefault("select", ["PUR0", "PUR1", "PUR2", "PUR3", "PUR999"])
    settings.setdefault("ignore", ["PUR204"])
    config = Config.from_mapping(settings)
    return [(d.code, d.line) for d in lint_source(textwrap.dedent(source), "t.py", config=config)]


def traced(source):
    model = analyze(cst.parse_module(textwrap.dedent(source)))
    return {fn.name for fn in model.functions if fn.traced}


@pytest.mark.parametrize(
    "imports, decorator",
    [
        ("import jax", "@jax.jit"),
        ("import jax as j", "@j.jit"),
        ("from jax import jit", "@jit"),
        ("from jax import jit as compile_", "@compile_"),
        ("import equinox as eqx", "@eqx.filter_jit"),
        ("from equinox import filter_jit", "@filter_jit"),
        ("import jax\nfrom functools import partial", "@partial(jax.jit, static_argnums=1)"),
        ("import jax, functools", "@functools.partial(jax.vmap, in_axes=0)"),
        ("import jax", "@jax.jit(static_argnames='n')"),
        ("import jax.numpy as jnp\nimport jax", "@jax.grad"),
        ("import jax", "@jax.checkpoint"),
        ("import jax", "@jax.custom_jvp"),
        ("import equinox as eqx", "@eqx.filter_value_and_grad"),
    ],
)
def test_decorator_routes_and_import_spellings(imports, decorator):
    source = f"{imports}\n{decorator}\ndef f(x, n=1):\n    print(x)\n    return x\n"
    assert found(source) == [("PUR001", len(imports.splitlines()) + 3)]


def test_resolution_is_not_by_spelling():
    source = """
        import mylib as jax
        @jax.jit
        def f(x):
            print(x)
    """
    assert found(source) == []
    shadowed = """
        import jax
        def jit(f):
            return f
        @jit
        def g(x):
            print(x)
    """
    assert found(shadowed) == []


def test_call_site_wrapping():
    assert traced("import jax\ndef step(x):\n    return x\nstep = jax.jit(step)\n") == {"step"}
    assert traced("import jax\ndef loss(p):\n    return p\ng = jax.grad(loss)(1.0)\n") == {"loss"}
    assert traced(
        "import jax\nfrom functools import partial\ndef f(x, n):\n    return x\ng = partial(jax.jit, static_argnums=1)(f)\n"
    ) == {"f"}
    assert traced("import jax\ndef f(x):\n    return x\ng = jax.vmap(jax.grad(f))\n") == {"f"}
    assert traced("import jax\ndef f(x):\n    return x\ng = jax.jit(fun=f)\n") == {"f"}
    assert traced("import jax\ndef f(x):\n    return x\ndef g(x):\n    return f\n") == set()


@pytest.mark.parametrize(
    "call",
    [
        "lax.scan(body, 0, xs)",
        "lax.fori_loop(0, 3, body, 0)",
        "lax.while_loop(cond, body, 0)",
        "lax.cond(p, body, other, 0)",
        "lax.switch(i, [body, other], 0)",
        "lax.map(body, xs)",
        "lax.associative_scan(body, xs)",
    ],
)
def test_lax_bodies(call):
    source = f"from jax import lax\ndef body(*a):\n    return a\ndef other(*a):\n    return a\ndef cond(*a):\n    return a\ny = {call}\n"
    assert "body" in traced(source)
    assert "untouched" not in traced(source + "def untouched():\n    pass\n")


def test_lax_lambda_bodies():
    source = """
        import jax
        def f(xs):
            return jax.lax.scan(lambda c, x: (print(x), c)[1], 0, xs)
    """
    assert found(source) == [("PUR001", 4)]


def test_equinox_module_methods_except_init():
    source = """
        import equinox as eqx
        class Base(eqx.Module):
            pass
        class Layer(Base):
            w: int
            def __init__(self, w):
                print("building")
                self.w = w
            def __call__(self, x):
                print(x)
                return x
        class Plain:
            def __call__(self, x):
                print(x)
    """
    assert found(source) == [("PUR001", 11)]


def test_nested_and_called_functions_transitively():
    source = """
        import jax
        def helper(x):
            return deeper(x)
        def deeper(x):
            print(x)
            return x
        def unrelated(x):
            print(x)
        @jax.jit
        def f(x):
            def inner(y):
                print(y)
                return y
            return helper(inner(x))
    """
    assert found(source) == [("PUR001", 6), ("PUR001", 13)]


def test_methods_called_through_self():
    source = """
        import jax
        class Trainer:
            def helper(self, x):
                print(x)
                return x
            def other(self, x):
                print(x)
            @jax.jit
            def step(self, x):
                return self.helper(x)
    """
    assert found(source) == [("PUR001", 5)]


def test_static_arguments():
    model = analyze(
        cst.parse_module(
            "import jax\nfrom functools import partial\n"
            "@partial(jax.jit, static_argnums=(1,), static_argnames='mode')\n"
            "def f(x, n, mode='a'):\n    return x\n"
            "def g(x, k):\n    return x\n"
            "h = jax.jit(g, static_argnums=-1)\n"
        )
    )
    by_name = {fn.name: fn for fn in model.functions}
    assert by_name["f"].static_params == {"n", "mode"}
    assert by_name["g"].static_params == {"k"}
    # a static parameter is not an array: item assignment on it is argument mutation, not PUR301
    source = "import jax\nfrom functools import partial\n@partial(jax.jit, static_argnums=1)\ndef f(x, cache):\n    cache[0] = 1\n    return x\n"
    assert found(source) == [("PUR302", 5)]


def test_scope_setting_and_module_level_code():
    source = """
        import jax
        print("module level")
        def f(x):
            print(x)
        class C:
            print("class body")
    """
    assert found(source) == []
    assert found(source, scope="all") == [("PUR001", 5)]


def test_extra_transforms():
    source = "import mylib\n@mylib.compile\ndef f(x):\n    print(x)\n"
    assert found(source) == []
    assert found(source, **{"extra-transforms": ["mylib.compile"]}) == [("PUR001", 4)]


def test_one_finding_per_location_most_specific_wins():
    module_field = """
        import equinox as eqx
        class M(eqx.Module):
            n: int
            def bump(self):
                self.n = 1
    """
    assert found(module_field) == [("PUR303", 6)]
    item = "import jax\n@jax.jit\ndef f(x: jax.Array):\n    x[0] = 1\n    return x\n"
    assert found(item) == [("PUR301", 4)]
    unknown = "import jax\n@jax.jit\ndef f(x):\n    x[0] = 1\n    return x\n"  # may be a dict
    assert found(unknown) == [("PUR302", 4)]
    module_list = "import jax\nLOG = []\n@jax.jit\ndef f(x):\n    LOG.append(x)\n    return x\n"
    assert found(module_list) == [("PUR102", 5)]


def test_local_mutation_and_rebinding_are_pure():
    source = """
        import jax
        @jax.jit
        def f(x, items):
            out = []
            out.append(x)
            table = {}
            table["k"] = x
            x = x + 1
            items = list(items)
            items.append(x)
            return out, table, x, items
    """
    assert found(source) == []


def test_mutable_global_reads():
    source = """
        import jax
        import jax.numpy as jnp
        SCALE = 2.0
        counter = 0
        def bump():
            global counter
            counter += 1
        @jax.jit
        def f(x):
            return jnp.sin(x) * SCALE + counter
    """
    assert found(source) == [("PUR103", 11)]


def test_positions_are_one_based_with_exclusive_end():
    source = "import jax\n\n\n@jax.jit\ndef f(x):\n    y = print( x )\n    return y\n"
    (d,) = lint_source(source, config=Config(select=("PUR001",)))
    assert (d.line, d.column, d.end_line, d.end_column, d.scope) == (6, 9, 6, 19, "traced")


def test_parse_errors_are_findings_not_crashes():
    assert found("def f(:\n    pass\n") == [("PUR999", 1)]
    assert (
        found("import jax\nx = ((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))\n")
        == []
    )
