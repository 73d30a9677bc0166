"""purelm._runtime._jit.filter_jit: the semantics of `eqx.filter_jit` (what is traced, what is static, what comes
back, when it compiles again), checked against `eqx.filter_jit` itself where both can run."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import purelm
from purelm._runtime._jit import filter_jit
from purelm.training._steps import _update


class Tagged(eqx.Module):
    """A module with an array, a non-array leaf (a plain field) and a static field."""

    value: jax.Array
    label: str
    scale: float = eqx.field(static=True)


def counting(traces):
    """A function that records each trace: what it saw as static, and which leaves were traced."""

    def function(tagged, x, flag=None, *, key=None, extra=1):
        traces.append((tagged.label, tagged.scale, flag, extra, x.shape))
        y = tagged.value * tagged.scale + jnp.sum(x) * extra
        if key is not None:
            y = y + jax.random.normal(key, ())
        # Outputs: a module (array + non-array leaf), a tuple with None, a string and a Python int.
        return Tagged(y, tagged.label + "!", tagged.scale), (None, f"flag={flag}", x.shape[0])

    return function


def run_both(calls):
    """Run the same calls through `eqx.filter_jit` and `filter_jit`: both results and trace logs."""
    results = {}
    for name, wrap in (("equinox", eqx.filter_jit), ("purelm", filter_jit)):
        traces = []
        jitted = wrap(counting(traces))
        results[name] = ([jitted(*args, **kwargs) for args, kwargs in calls], traces)
    return results


def assert_same_trees(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if eqx.is_array(x):
            assert eqx.is_array(y) and x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
        else:
            assert type(x) is type(y) and x == y


def test_traces_and_results_match_equinox():
    tagged = Tagged(jnp.float32(2.0), "a", 3.0)
    x, key = jnp.arange(3.0), jax.random.key(0)
    calls = [
        ((tagged, x), {}),
        ((tagged, x + 1), {}),  # new values, same shapes: no trace
        ((tagged, np.arange(3.0, dtype=np.float32)), {}),  # a NumPy array is traced too: no trace
        ((Tagged(jnp.float32(5.0), "a", 3.0), x), {}),  # a new array in the module: no trace
        ((Tagged(jnp.float32(5.0), "b", 3.0), x), {}),  # a new non-array leaf: traces
        ((Tagged(jnp.float32(5.0), "a", 4.0), x), {}),  # a new static field: traces
        ((tagged, jnp.arange(4.0)), {}),  # a new shape: traces
        ((tagged, x, "on"), {}),  # a static positional argument: traces
        ((tagged, x), {"flag": "on"}),  # the same, passed by keyword: bound to it, no trace
        ((tagged, x), {"key": key}),  # a typed PRNG key, keyword-only: traces once
        ((tagged, x), {"key": jax.random.key(1)}),  # another key: no trace
        ((tagged, x), {"key": None, "extra": 2}),  # `key=None` given explicitly, a static int: traces
        ((tagged, x), {"extra": 2, "key": None}),  # keyword order does not matter
    ]
    both = run_both(calls)
    (equinox_results, equinox_traces), (purelm_results, purelm_traces) = both["equinox"], both["purelm"]
    assert purelm_traces == equinox_traces
    assert len(purelm_traces) == 7
    for a, b in zip(equinox_results, purelm_results, strict=True):
        assert_same_trees(a, b)
    # The non-array outputs come back as the function returned them.
    module, (nothing, text, length) = purelm_results[-1]
    assert (module.label, module.scale, nothing, text, length) == ("a!", 3.0, None, "flag=None", 3)


def test_each_compilation_returns_its_own_output_structure():
    traces = []

    @filter_jit
    def split(x):
        traces.append(x.shape)
        # The output's structure and its non-array leaves depend on the input's shape.
        return tuple(x[i] for i in range(x.shape[0])), f"{x.shape[0]} parts"

    for n in (2, 3, 2, 3):
        parts, text = split(jnp.arange(float(n)))
        assert len(parts) == n and text == f"{n} parts"
        np.testing.assert_array_equal(jnp.stack(parts), jnp.arange(float(n)))
    assert traces == [(2,), (3,)]
    # The dtype is part of the key as well.
    parts, text = split(jnp.arange(2, dtype=jnp.int32))
    assert traces == [(2,), (3,), (2,)] and parts[1].dtype == jnp.int32 and text == "2 parts"


def test_an_unhashable_static_leaf_is_named():
    class Unhashable:
        __hash__ = None

    function = filter_jit(lambda x, options=None, *more, key=None: x + 1)
    with pytest.raises(ValueError, match=r"argument 'options' \(at \['scale'\]\[1\]\) is a Unhashable, not an array"):
        function(jnp.ones(2), options={"scale": (1, Unhashable())})
    with pytest.raises(
        ValueError, match=r"^filter_jit: argument 'options' is a Unhashable, not an array, so it is static"
    ):
        function(jnp.ones(2), Unhashable())
    with pytest.raises(ValueError, match=r"argument 3 is a Unhashable"):
        function(jnp.ones(2), None, 1, Unhashable())
    with pytest.raises(ValueError, match=r"argument 'key' \(at \[0\]\) is a Unhashable"):
        function(jnp.ones(2), key=[Unhashable()])


def test_errors_of_the_function_itself_pass_through():
    @filter_jit
    def fails(x):
        raise ValueError("from inside")

    with pytest.raises(ValueError, match=r"^from inside"):
        fails(jnp.ones(2))


class Affine(eqx.Module):
    weight: jax.Array
    traced: list = eqx.field(static=True)

    def __call__(self, x):
        self.traced.append(isinstance(self.weight, jax.core.Tracer))
        return self.weight * x


def test_a_module_as_the_function_has_its_arrays_traced():
    """As in `eqx.filter_jit`: the function is flattened with the arguments, so its arrays are inputs."""
    affine = Affine(jnp.float32(3.0), [])
    jitted = filter_jit(affine)
    np.testing.assert_array_equal(jitted(jnp.arange(2.0)), [0.0, 3.0])
    assert affine.traced == [True]


def test_wraps_the_function():
    def documented(x):
        """Doubles."""
        return 2 * x

    jitted = filter_jit(documented)
    assert jitted.__wrapped__ is documented and jitted.__name__ == "documented" and jitted.__doc__ == "Doubles."


def test_a_train_step_equals_equinox_filter_jit_bit_for_bit():
    """The compiled program is the same, so are the numbers: two steps from `None`, with a key.
    (No dropout, SGD, an untied head: each feature costs seconds of compilation, twice, and changes
    nothing about the wrapper; test_train compares dropout and Adam steps across make_train_steps.)"""
    model = purelm.LSTMLM(7, 5, 5, key=jax.random.key(0))
    batch = jax.random.randint(jax.random.key(1), (2, 4), 0, 7)
    optimizer = optax.sgd(0.5)
    update = _update(optimizer, purelm.batch_loss)
    outputs = []
    for step in (eqx.filter_jit(update), purelm.make_train_step(optimizer)):
        carry = (model, optimizer.init(eqx.filter(model, eqx.is_array)), None)
        for k in range(2):
            *carry, loss = step(*carry[:2], batch, carry[2], key=jax.random.key(k))
        outputs.append((*carry, loss))
    assert_same_trees(*outputs)
