"""purelint on code bases it was not tuned on: one minimal case (written here) per kind of false
finding and of missed key reuse seen there."""

import textwrap

from purelint import Config, lint_source

AUDIT = Config.from_mapping({"select": ["ALL"], "scope": "all"})


def found(code, config=None):
    return [(d.code, d.line) for d in lint_source(textwrap.dedent(code), "m.py", config=config)]


# -- PUR401 on values that are not traced ----------------------------------------------------------


def test_string_membership_in_a_dict_of_arrays_is_decided_while_tracing():
    code = """
        import jax
        @jax.jit
        def f(batch):
            y = batch["label"] if "label" in batch else None
            if "mask" not in batch:
                return batch["x"], y
            return batch["x"] * batch["mask"], y
    """
    assert found(code) == []


def test_optional_container_argument_or_an_empty_default():
    code = """
        import jax
        @jax.jit
        def f(x, extra=None, names=None):
            extra = extra or {}
            names = names or []
            return x, extra, names
    """
    assert found(code) == []


def test_str_methods_on_the_keys_of_items():
    code = """
        import jax
        @jax.jit
        def f(obs):
            out = {}
            for k, v in obs.items():
                if k.startswith("pixels/"):
                    out[k] = v / 255.0
            for k in obs.keys():
                if k.endswith("_mask"):
                    out[k] = obs[k]
            return out
    """
    assert found(code) == []


def test_values_of_items_and_other_membership_stay_traced():
    code = """
        import jax
        @jax.jit
        def f(obs, x, xs):
            for k, v in obs.items():
                if v > 0:
                    x = x + 1
            if x in xs:
                x = x + 1
            return x or 1.0
    """
    assert found(code) == [("PUR401", 6), ("PUR401", 8), ("PUR401", 10)]


# -- PUR204: key reuse that was missed ----------------------------------------------------------------


def test_key_passed_to_transformed_functions_called_in_place():
    code = """
        import jax
        def rollout(key, params):
            return jax.random.normal(key, (3,)) + params
        def run(env, params):
            rng = jax.random.key(0)
            state = jax.jit(jax.vmap(env.reset))(rng)
            out = jax.jit(rollout)(rng, params)
            return state, out
    """
    assert found(code) == [("PUR204", 8)]


def test_module_level_key_consumed_again_inside_a_function():
    code = """
        import jax
        key = jax.random.key(0)
        x = jax.random.normal(key, (3,))
        def loss(w):
            noise = jax.random.normal(key, (3,))
            return (w * noise).sum()
        grads = jax.value_and_grad(loss)(x)
    """
    assert found(code) == [("PUR204", 6)]


def test_module_key_rebound_or_shadowed_is_not_reuse():
    code = """
        import jax
        key = jax.random.key(0)
        x = jax.random.normal(key, (3,))
        key = jax.random.key(1)
        def f(key):
            return jax.random.normal(key, (3,))
        def g():
            return jax.random.normal(key, (3,))
    """
    assert found(code) == []


def test_element_of_a_key_array_after_the_array_was_consumed():
    code = """
        import jax
        def train(train_step, state, key, n):
            keys = jax.random.split(key, n)
            state = train_step(keys, state)
            more = jax.random.split(keys[0], n)
            return state, more
    """
    assert found(code) == [("PUR204", 6)]


# -- audit mode (`--select ALL --scope all`) ------------------------------------------------------------


def test_setup_of_test_classes_of_other_frameworks_builds_the_fixture():
    code = """
        import chex
        import tensorflow as tf
        from absl.testing import absltest, parameterized
        from jax._src import test_util as jtu
        class A(tf.test.TestCase):
            def setUp(self):
                self.x = 1
        class B(parameterized.TestCase):
            def setUp(self):
                self.x = 1
        class C(chex.TestCase):
            def setUp(self):
                self.x = 1
        class Base(absltest.TestCase):
            pass
        class D(Base):
            def setUp(self):
                self.x = 1
        class E(jtu.JaxTestCase):
            def setUp(self):
                self.x = 1
    """
    assert found(code, AUDIT) == []


def test_linen_setup_with_a_base_from_another_file():
    code = """
        import jax
        import vae
        class Model(vae.Model):
            def setup(self):
                self.encoder = vae.Encoder()
    """
    assert found(code, AUDIT) == []


def test_linen_variable_update_is_not_mutation():
    code = """
        import jax.numpy as jnp
        import flax.linen as nn
        class Counter(nn.Module):
            @nn.compact
            def __call__(self, x):
                counts = self.variable("counts", "n", jnp.zeros, ())
                counts.value = counts.value + 1
                return x
        class Tracker(nn.Module):
            def setup(self):
                self.counts = self.variable("counts", "n", jnp.zeros, ())
            def __call__(self, x):
                self.counts.value = self.counts.value + 1
                return x
    """
    assert found(code) == [] and found(code, AUDIT) == []


def test_torch_in_place_ops_in_a_file_without_jax():
    code = """
        import torch
        def step(w, g, lr):
            w.sub_(lr * g)
            torch.nn.init.zeros_(w)
            torch.add(w, g, out=w)
    """
    assert found(code, AUDIT) == []
    assert [c for c, _ in found("import jax\n" + textwrap.dedent(code), AUDIT)] == ["PUR304"] * 3


def test_static_method_of_a_module_passed_on_as_a_host_callback_is_not_traced():
    code = """
        import equinox as eqx
        import jax
        class Meter(eqx.Module):
            @staticmethod
            def _show(bar, progress):
                bar[0] = progress
                print(progress)
            def step(self, progress):
                jax.debug.callback(lambda p: self._show([0.0], p), progress)
                return progress
    """
    assert found(code) == []


def test_static_predicate_over_the_leaves_of_a_traced_tree():
    code = """
        import equinox as eqx
        import jax
        import jax.numpy as jnp
        @jax.jit
        def f(y0, xs):
            if any(eqx.is_array_like(x) and jnp.iscomplexobj(x) for x in jax.tree_util.tree_leaves(y0)):
                y0 = y0.real
            if any([x > 0 for x in xs]):
                y0 = y0 + 1
            return y0
    """
    assert found(code) == [("PUR401", 9)]
