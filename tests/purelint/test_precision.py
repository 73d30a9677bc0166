"""purelint on real code. One minimal case (written here) per kind of false positive and
miss found on third-party code, the two message fixes, and the safe-fix definition."""

import textwrap

import pytest

from purelint import Config, lint_source
from purelint._runner import fix_text

ALL = Config.from_mapping({"scope": "all"})


def found(code, config=None):
    return [(d.code, d.line) for d in lint_source(textwrap.dedent(code), "m.py", config=config)]


def findings(code, config=None):
    return lint_source(textwrap.dedent(code), "m.py", config=config)


# -- 1. PUR301 on things that are not JAX arrays -------------------------------------------------

NOT_ARRAYS = {
    "dict literal": """
        import jax
        import jax.numpy as jnp
        @jax.jit
        def f(x):
            m = {"loss": jnp.sum(x)}
            m["c"] = jnp.sum(x)
            m = jax.tree.map(jnp.mean, m)
            return m
    """,
    "tree.map over a dict": """
        import jax
        import jax.numpy as jnp
        @jax.jit
        def f(x):
            m = jax.tree_util.tree_map(jnp.mean, {"a": x})
            m["c"] = jnp.sum(x)
            return m
    """,
    "while_loop dict carry": """
        import jax
        def body(c):
            c["i"] = c["i"] + 1
            return c
        jax.lax.while_loop(lambda c: c["i"] < 3, body, {"i": 0})
    """,
    "list": """
        import jax
        @jax.jit
        def f(x):
            out = [x, x]
            out[0] = x * 2
            return out
    """,
    "nnx variable": """
        import jax
        from flax import nnx
        @nnx.jit
        def f(v: nnx.Variable, m: nnx.Variable):
            v[...] += 1
            m["mean"] = 0.5
    """,
    "nnx variable under jax.jit (hijax)": """
        import jax
        from flax import nnx
        @jax.jit
        def f(v: nnx.Variable):
            v[...] += 1
            v.value = 2
    """,
    "jax.new_ref": """
        import jax
        import jax.numpy as jnp
        @jax.jit
        def f(x):
            ref = jax.new_ref(x)
            ref[...] = ref[...] + 1
            return ref[...]
    """,
}


@pytest.mark.parametrize("code", NOT_ARRAYS.values(), ids=NOT_ARRAYS.keys())
def test_no_item_assignment_finding_on_non_arrays(code):
    assert not [f for f in found(code) if f[0] in ("PUR301", "PUR302")]
    assert not [f for f in found(code, ALL) if f[0] == "PUR301"]


def test_safe_fix_only_on_proven_arrays():
    """Safe = behaviour-preserving: `.at[]` only where the receiver is proven to be a JAX array."""
    config = Config.from_mapping({"select": ["ALL"]})
    proven = "import jax.numpy as jnp\n@jax.jit\ndef f(x):\n    y = jnp.zeros(3)\n    y[0] = x\n    return y\n"
    text = fix_text("import jax\n" + proven, "m.py", config, unsafe=False).text
    assert "y = y.at[0].set(x)" in text
    for code in NOT_ARRAYS.values():
        source = textwrap.dedent(code)
        assert fix_text(source, "m.py", config, unsafe=False).text == source
    # A parameter of unknown type under jit: reported (PUR302), rewritten only with unsafe fixes (it may be a dict).
    unknown = "import jax\n@jax.jit\ndef f(x, i):\n    x[i] = 0\n    return x\n"
    assert fix_text(unknown, "m.py", config, unsafe=False).text == unknown
    assert fix_text(unknown, "m.py", config, unsafe=True).text == unknown.replace("x[i] = 0", "x = x.at[i].set(0)")
    # Annotated but untraced (--scope all): the fix is unsafe (a NumPy array may be passed in).
    declared = "import jax\ndef f(x: jax.Array):\n    x[0] = 1\n"
    (finding,) = findings(declared, Config.from_mapping({"scope": "all", "select": ["PUR301"]}))
    assert finding.fix.applicability == "unsafe"


def test_value_kinds_are_flow_sensitive():
    later_array = """
        import jax
        import jax.numpy as jnp
        @jax.jit
        def f(x):
            s = {}
            s["a"] = x
            s = jnp.zeros(3)
            s[0] = 1.0
            return s
    """
    assert found(later_array) == [("PUR301", 9)]
    branches = """
        import jax.numpy as jnp
        def f(c):
            y = jnp.zeros(3)
            if c:
                y = {}
            y[0] = 1
    """
    assert found(branches) == []


# -- 2. PUR401 where Python control flow is fine --------------------------------------------------


def test_grad_alone_keeps_concrete_values():
    code = """
        import jax
        def f(x):
            if x < 3:
                return 3.0 * x ** 2
            return -4 * x
        print(jax.grad(f)(2.0))
        def g(x):
            if x < 3:
                return 2 * x
            return x
        y, g_vjp = jax.vjp(g, 4.0)
    """
    assert found(code) == []
    inside_jit = """
        import jax
        def loss(w):
            if w > 0:
                return w
            return -w
        @jax.jit
        def step(w):
            return jax.grad(loss)(w)
    """
    assert found(inside_jit) == [("PUR401", 4)]


def test_self_of_a_bound_method_is_not_traced():
    code = """
        import jax
        import jax.numpy as jnp
        class Learner:
            def __init__(self, clip):
                self.clip = clip
            def _loss(self, params, r):
                if self.clip > 0:
                    r = jnp.clip(r, -self.clip, self.clip)
                return jnp.sum(params * r)
            def update(self, params, r):
                return jax.jit(jax.grad(self._loss))(params, r)
    """
    assert found(code) == []


def test_positional_partial_arguments_are_static():
    code = """
        import jax
        from functools import partial
        def loss(n, w):
            if n > 2:
                return w * n
            return w
        g = jax.jit(jax.grad(partial(loss, 3)))
        h = jax.jit(partial(loss, 3))
    """
    assert found(code) == []


def test_optional_field_truthiness_is_structure():
    code = """
        import jax
        @jax.jit
        def step(state):
            if state.dynamic_scale:
                return state.params
            if not state.mask:
                return state.params
            return state.params
    """
    assert found(code) == []


def test_static_attributes_under_nnx_jit():
    code = """
        from flax import nnx
        @nnx.jit
        def f(model, x):
            if model.num_layers > 2:
                return x
            if model.count.value > 2:
                return x
            return x
    """
    assert found(code) == [("PUR401", 7)]


def test_redefined_name_means_the_def_bound_at_that_point():
    code = """
        from jax import jit
        def f(x):
            if x < 3:
                return 3.0 * x ** 2
            return -4 * x
        f = jit(f, static_argnames="x")
        def f(x, n):
            if x > 0:
                return x
            return n
        f = jit(f, static_argnames="n")
    """
    assert found(code) == [("PUR401", 9)]


# -- 3. PUR103 on absl flags; mutation per attribute ----------------------------------------------


def test_flags_and_per_attribute_mutation():
    code = """
        import jax
        from absl import flags
        FLAGS = flags.FLAGS
        class Cfg:
            lr = 0.1
            step = 0
        cfg = Cfg()
        @jax.jit
        def step(x):
            return x * FLAGS.decay * cfg.lr
        def main(argv):
            FLAGS.alsologtostderr = True
            cfg.step = 1
        @jax.jit
        def other(x):
            return x * cfg.step
    """
    assert found(code) == [("PUR103", 17)]


# -- 4. PUR302 on **kwargs and set-up methods -------------------------------------------------------


def test_kwargs_and_setup_methods():
    code = """
        import jax
        import unittest
        import flax.linen as nn
        @jax.jit
        def f(x, **kwargs):
            scale = kwargs.pop("scale", 1.0)
            kwargs["seen"] = True
            return x * scale
        class T(unittest.TestCase):
            def setUp(self):
                self.x = 1
        class M(nn.Module):
            def setup(self):
                self.dense = nn.Dense(3)
    """
    assert found(code) == []
    assert found(code, ALL) == []


# -- 5. PUR002 on pathlib.Path(...) ------------------------------------------------------------------


def test_constructing_a_path_is_not_io():
    code = """
        import jax
        import pathlib
        @jax.jit
        def f(x, name):
            p = pathlib.Path("/tmp") / "a"
            q = pathlib.PurePath(name).stem
            return x
    """
    assert found(code) == []
    io = "import jax, pathlib\n@jax.jit\ndef f(x):\n    pathlib.Path('a').write_text('b')\n    return x\n"
    assert found(io) == [("PUR002", 4)]


# -- 6. PUR304 on out= pass-through ------------------------------------------------------------------


def test_out_keyword_pass_through():
    code = """
        import jax
        import jax.numpy as jnp
        def params_dict(**kw):
            return dict(kw)
        def g(x, out=None):
            return helper(x, out=out)
        @jax.jit
        def init(x):
            return params_dict(inp=x, out=jnp.zeros(3))
    """
    assert found(code) == []
    assert found(code, ALL) == []
    numpy_out = "import jax\nimport numpy as np\n@jax.jit\ndef f(x, y):\n    np.add(x, y, out=x)\n    return x\n"
    assert found(numpy_out) == [("PUR304", 5)]


# -- 7. tracing APIs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "apply",
    [
        "jax.make_jaxpr(f)(1.0)",
        "jax.eval_shape(f, 1.0)",
        "jax.jvp(f, (1.0,), (1.0,))",
        "jax.vjp(f, 1.0)",
        "jax.linearize(f, 1.0)",
        "jax.checkpoint(f)",
        "jax.pmap(f)",
        "nnx.jit(f)",
        "nnx.grad(f)",
        "nnx.vmap(f)",
        "nnx.value_and_grad(f)",
        "nnx.scan(f)",
        "hk.transform(f)",
        "jax.experimental.pallas.pallas_call(f, out_shape=None)",
        "optax.GradientTransformation(f, f)",
    ],
)
def test_tracing_apis(apply):
    code = f"import jax\nimport jax.experimental.shard_map\nimport optax\nimport haiku as hk\nfrom flax import nnx\nseen = []\ndef f(x):\n    seen.append(x)\n    return x\n{apply}\n"
    assert found(code) == [("PUR102", 8)]


def test_eager_shard_map_and_host_callbacks_are_not_traced():
    code = """
        import jax
        from jax.experimental import io_callback
        @jax.shard_map(in_specs=jax.P("i"), out_specs=jax.P("i"))
        def f(x):
            print(x)
            return 2 * x
        @jax.jit
        def g(x):
            io_callback(lambda: print("hello"), None)
            jax.debug.callback(lambda v: print(v), x)
            return x
    """
    assert found(code) == []


def test_nnx_state_under_plain_jax_jit():
    code = """
        import jax
        import optax
        from flax import nnx
        model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
        @jax.jit
        def train_step(model, optimizer, grads):
            optimizer.update(model, grads)
        @jax.jit
        def train_step_global(grads):
            optimizer.update(model, grads)
        @nnx.jit
        def fine(model, optimizer, grads):
            optimizer.update(model, grads)
        train_step(model, optimizer, None)
    """
    assert found(code) == [("PUR104", 9), ("PUR104", 12)]
    assert (
        found(
            "nnx.var_defaults(hijax=True)\n"
            + textwrap.dedent(code).replace(
                "from flax import nnx\n", "from flax import nnx\nnnx.var_defaults(hijax=True)\n"
            )
        )
        == []
    )


def test_refs_are_mutable():
    code = """
        import jax
        import jax.numpy as jnp
        x_ref = jax.new_ref(jnp.zeros(3))
        @jax.jit
        def f():
            x_ref[1] += 1.0
        @jax.jit
        def h(out_ref):
            out_ref[...] = x_ref[...]
    """
    assert found(code) == []


def test_prints_of_static_metadata():
    code = """
        import jax
        @jax.jit
        def f(x):
            print(jax.typeof(x))
            print("shape", x.shape, x.dtype)
            print(x)
            return x
    """
    assert found(code) == [("PUR001", 7)]


def test_custom_jvp_rules_are_traced():
    code = """
        import jax
        @jax.custom_jvp
        def f(x):
            return x
        @f.defjvp
        def f_jvp(primals, tangents):
            print(primals)
            return primals[0], tangents[0]
    """
    assert found(code) == [("PUR001", 8)]


# -- 8. jax.jit(obj.method) ------------------------------------------------------------------------------


def test_jit_of_a_bound_method_traces_its_body():
    code = """
        import jax
        class Counter:
            def __init__(self):
                self.n = 0
            def count(self):
                self.n += 1
                return self.n
        counter = Counter()
        fast_count = jax.jit(counter.count)
    """
    assert found(code) == [("PUR302", 7)]


# -- 9. next() on a module-level iterator ------------------------------------------------------------------


def test_next_on_a_module_level_iterator():
    code = """
        import jax
        from jax import lax
        iterator = iter(range(10))
        total = lax.fori_loop(0, 10, lambda i, x: x + next(iterator), 0)
        @jax.jit
        def f(x):
            return x + next(iterator)
        def untraced():
            return next(iterator)
    """
    assert found(code) == [("PUR102", 5), ("PUR102", 8)]


# -- 10. a global rebound at module level ----------------------------------------------------------------


def test_global_rebound_at_module_level():
    code = """
        import jax
        g = 10.0
        K = 3
        @jax.jit
        def f(x):
            return x + g * K
        g = 20.0
    """
    assert found(code) == [("PUR103", 7)]


# -- 11. item assignment on locals derived from traced arrays ---------------------------------------------


def test_item_assignment_on_derived_arrays():
    code = """
        import jax
        @jax.jit
        def f(x):
            y = x * 2
            y[0] = 1
            x.reshape(-1)[0] = 2
            z = y.T
            z[1] += 3
            return y
    """
    assert found(code) == [("PUR301", 6), ("PUR301", 7), ("PUR301", 9)]


# -- 12. NumPy Generators in traced code -----------------------------------------------------------------


def test_numpy_generators():
    code = """
        import jax
        import numpy as np
        rng = np.random.default_rng(0)
        @jax.jit
        def noisy(x):
            local = np.random.default_rng(1)
            return x + rng.normal(size=x.shape) + local.uniform()
        def untraced():
            return rng.normal()
    """
    assert found(code) == [("PUR202", 8), ("PUR202", 8)]


# -- 13. key reuse through a helper -----------------------------------------------------------------------


def test_key_reuse_through_a_helper():
    code = """
        import jax
        def sample(key):
            return jax.random.normal(key, (3,))
        def main():
            key = jax.random.key(0)
            a = sample(key)
            b = sample(key)
            return a, b
    """
    assert found(code) == [("PUR204", 8)]


# -- 14. assert on a traced value; traced value as a shape --------------------------------------------------


def test_assert_and_shapes():
    code = """
        import jax
        import jax.numpy as jnp
        @jax.jit
        def f(x, n):
            assert x.ndim == 1
            assert n > 0
            y = jnp.ones((n,))
            return x.reshape(n) + jnp.zeros(x.shape) + y
        def example_fun(length, val):
            return jnp.ones((length,)) * val
        bad = jax.jit(example_fun)
    """
    assert found(code) == [("PUR401", 7), ("PUR402", 8), ("PUR402", 9), ("PUR402", 11)]


# -- 15. bugs independent of tracing run everywhere -----------------------------------------------------------


def test_key_reuse_and_array_item_assignment_outside_traced_code():
    code = """
        import jax
        import jax.numpy as jnp
        key = jax.random.PRNGKey(0)
        a = jax.random.normal(key, (3,))
        b = jax.random.uniform(key, (3,))
        def train():
            k = jax.random.PRNGKey(1)
            return jax.random.normal(k) + jax.random.normal(k)
        arr = jnp.zeros(3)
        arr[0] = 1.0
        def helper():
            y = jnp.ones(3) * 2
            y[0] = 1
            return y
    """
    assert found(code) == [("PUR204", 6), ("PUR204", 9), ("PUR301", 11), ("PUR301", 14)]


# -- messages ------------------------------------------------------------------------------------------------


def test_untraced_findings_do_not_say_under_jit():
    code = "def f(xs, x):\n    xs.append(x)\n"
    (finding,) = findings(code, ALL)
    assert finding.code == "PUR302" and "jit" not in finding.message and "trace" not in finding.message
    for message in (
        f.message
        for f in findings("import random\nLOG = []\ndef f():\n    LOG.append(random.random())\n    print(1)\n", ALL)
    ):
        assert "trace time" not in message and "jit" not in message, message


def test_key_reuse_message_line_is_the_cell_line_in_notebooks():
    import json

    from purelint._api import lint_notebook
    from purelint._notebook import parse_notebook

    cells = [
        {"cell_type": "code", "metadata": {}, "source": ["import jax\n"], "outputs": [], "execution_count": None},
        {
            "cell_type": "code",
            "metadata": {},
            "source": ["key = jax.random.PRNGKey(0)\n", "a = jax.random.normal(key)\n", "b = jax.random.normal(key)\n"],
            "outputs": [],
            "execution_count": None,
        },
    ]
    notebook = {"cells": cells, "metadata": {"language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    (finding,) = lint_notebook(parse_notebook(json.dumps(notebook), "n.ipynb"), "n.ipynb", Config())
    assert (finding.cell, finding.line) == (2, 3)
    assert "on line 2" in finding.message


def test_shapes_stay_static_next_to_nnx_parameters():
    code = """
        import jax
        from flax import nnx
        @jax.jit
        def detect(model: nnx.Module, img: jax.Array):
            h, w = img.shape[0], img.shape[1]
            new_h, new_w = (800, w / h * 800) if h > w else (h / w * 800, 800)
            shape = (int(new_h), int(new_w), img.shape[2])
            return model(jax.image.resize(img, shape, method="bilinear"))
    """
    assert found(code) == []


def test_local_bound_from_an_optional_field():
    code = """
        import jax
        @jax.jit
        def step(state, x):
            dynamic_scale = state.dynamic_scale
            if dynamic_scale:
                return x
            return x
    """
    assert found(code) == []


def test_key_rebound_in_a_loop_that_always_runs():
    code = """
        import jax
        key = jax.random.key(0)
        for i in range(3):
            new_key, subkey = jax.random.split(key)
            del key
            x = jax.random.normal(subkey)
            key = new_key
        key, subkey = jax.random.split(key)
    """
    assert found(code) == []


# -- the last false positives of the default scope, and the two misses ---------------------------


def test_nnx_module_passed_to_an_unannotated_parameter():
    # The module is known from the call site: its plain attributes are static, its Variables' values traced.
    code = """
        import jax
        from flax import nnx
        class Net(nnx.Module):
            def __init__(self, width, rngs):
                self.width = width
                self.scale = nnx.Param(jax.numpy.ones(width))
        net = Net(3, nnx.Rngs(0))
        @jax.jit
        def run(net):
            if net.width == 3:
                return net.scale[...]
            if net.scale.value.sum() > 0:
                return net.scale[...]
            return -net.scale[...]
        run(net)
    """
    assert found(code) == [("PUR401", 13)]


def test_truth_of_an_object_read_through_a_local():
    # `scaler` has attributes no array has: an object (None or a pytree node), whose truth is static,
    # also after the branch rebinds it from a call.
    code = """
        import jax
        @jax.jit
        def step(state, x):
            scaler = state.scaler
            if scaler:
                scaler, ok = scaler.adjust(x)
            y = x * 2
            if scaler:
                y = y * scaler.factor
            return y
    """
    assert found(code) == []
    flag = """
        import jax
        @jax.jit
        def step(x, flag):
            if flag:
                return x
            return -x
    """
    assert found(flag) == [("PUR401", 5)]


HAIKU_APPLY = """
    import haiku as hk
    import jax
    import jax.numpy as jnp
    def decode(tokens, length):
        return jnp.zeros(length) + tokens.sum()
    {bind}
    fast = jax.jit(apply, static_argnums={static})
"""


@pytest.mark.parametrize(
    "bind, static, expected",
    [
        # apply(params, rng, tokens, length): `length` is argument 3
        ("init, apply = hk.transform(decode)", 3, []),
        ("_, apply = hk.without_apply_rng(hk.transform(decode))", 2, []),
        ("model = hk.transform(decode)\napply = model.apply", 3, []),
        # `length` traced: the shift must not hide a real finding either
        ("init, apply = hk.transform(decode)", 2, [("PUR402", 6)]),
    ],
)
def test_haiku_apply_arguments_follow_the_params_and_rng(bind, static, expected):
    code = HAIKU_APPLY.replace("{bind}", bind.replace("\n", "\n    ")).replace("{static}", str(static))
    assert found(code) == expected


def test_haiku_transform_alone_does_not_trace_arguments():
    code = """
        import haiku as hk
        import jax.numpy as jnp
        def sample(rng, length):
            return jnp.zeros(length)
        init, apply = hk.transform(sample)
    """
    assert found(code) == []


def test_assert_on_a_partition_spec():
    code = """
        import jax
        import flax.linen as nn
        from jax.sharding import PartitionSpec as P
        @jax.jit
        def shard(key, x):
            variables = nn.Dense(4).init(key, x)
            specs = nn.get_partition_spec(variables)
            assert specs["params"]["kernel"] == P("in", "out")
            assert jax.typeof(x) == jax.typeof(key)
            return variables
    """
    assert found(code) == []


def test_global_read_by_a_function_jitted_and_run_at_once():
    # Traced once, with the value of that moment, and never called again: nothing goes stale.
    code = """
        import jax
        x = 1.0
        def f():
            return jax.vjp(lambda y: y * 2, x)
        print(jax.jit(f).trace().jaxpr)
        x = 2.0
    """
    assert found(code) == []
    assert found(code.replace("print(jax.jit(f).trace().jaxpr)", "y = jax.jit(f)()")) == []
    stored = """
        import jax
        x = 1.0
        def f():
            return x * 2
        g = jax.jit(f)
        x = 2.0
    """
    assert found(stored) == [("PUR103", 5)]
    twice = """
        import jax
        x = 1.0
        def f():
            return x * 2
        print(jax.jit(f)())
        x = 2.0
        print(jax.jit(f)())
    """
    assert found(twice) == [("PUR103", 5)]


def test_boolean_mask_indexing_under_jit():
    code = """
        import jax
        import jax.numpy as jnp
        @jax.jit
        def nansum(x):
            keep = ~jnp.isnan(x)
            return x[keep].sum()
        @jax.jit
        def negatives(x):
            return x[(x < 0) & (x > -5)]
        @jax.jit
        def fine(x, y):
            keep = ~jnp.isnan(x)
            s = jnp.where(keep, x, 0.0).sum() + x.sum(where=keep)
            return s + x[x.shape[0] > 2] + x[jnp.arange(2)]
        def concrete(x):
            return x[x > 0].sum()
        g = jax.grad(concrete)
        @jax.jit
        def scatter(x):
            return x.at[x < 0].set(0.0)
    """
    assert found(code) == [("PUR402", 7), ("PUR402", 10), ("PUR402", 21)]
    first, _, scatter = findings(code)
    assert "NonConcreteBooleanIndexError" in first.message and "jnp.where(keep, x, 0)" in first.message
    assert "jnp.where(x < 0, new, x)" in scatter.message


def test_jitted_method_mutating_self():
    code = """
        import jax
        class Counter:
            def __init__(self):
                self.n = 0
            @jax.jit
            def count(self, x):
                self.n += 1
                return x + self.n * 0
            def peek(self):
                return self.n
    """
    assert found(code) == [("PUR302", 8)]
    (finding,) = findings(code)
    assert "traced method" in finding.message and "once, at trace time" in finding.message
