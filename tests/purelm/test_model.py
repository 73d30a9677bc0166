import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import purelm

VOCAB = 13
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)


def random_state(key, layers, hidden):
    k_h, k_c = jax.random.split(key)
    return jax.random.normal(k_h, (layers, hidden)), jax.random.normal(k_c, (layers, hidden))


@pytest.fixture(scope="module", params=["tied-1", "untied-2", "gru-tied-bias-2"])
def model(request):
    if request.param == "tied-1":
        return purelm.LSTMLM(VOCAB, 6, 6, tie_embeddings=True, key=jax.random.key(0))
    if request.param == "gru-tied-bias-2":
        model = purelm.LSTMLM(
            VOCAB, 6, 6, num_layers=2, cell="gru", tie_embeddings=True, output_bias=True, key=jax.random.key(2)
        )
        return eqx.tree_at(lambda m: m.head_bias, model, jax.random.normal(jax.random.key(3), (VOCAB,)))
    return purelm.LSTMLM(VOCAB, 5, 7, num_layers=2, key=jax.random.key(1))


@eqx.filter_jit
def call(model, tokens, state):
    return model(tokens, state)


@eqx.filter_jit
def step_by_step(model, tokens, state):
    def body(state, token):
        return model.step(token, state), model.next_logits(state)

    state, logits = jax.lax.scan(body, state, tokens)
    return logits, state


def test_model_is_a_pytree_of_arrays(model):
    leaves = jax.tree.leaves(model)
    assert all(isinstance(leaf, jax.Array) for leaf in leaves)
    head_leaves = 2 if not model.tie_embeddings else int(model.output_bias)
    cell_leaves = {"lstm": 3, "gru": 4}[model.cell]
    assert len(leaves) == 1 + cell_leaves * model.num_layers + 1 + head_leaves


def test_cell_layout_matches_torch_convention():
    cell = purelm.LSTMCell(3, 5, key=jax.random.key(0))
    assert cell.weight_ih.shape == (20, 3)
    assert cell.weight_hh.shape == (20, 5)
    assert cell.bias.shape == (20,)
    x = jax.random.normal(jax.random.key(1), (3,))
    h, c = random_state(jax.random.key(2), 1, 5)
    ifgo = cell.weight_ih @ x + cell.weight_hh @ h[0] + cell.bias
    i, f, g, o = ifgo[:5], ifgo[5:10], ifgo[10:15], ifgo[15:]
    expected_c = jax.nn.sigmoid(f) * c[0] + jax.nn.sigmoid(i) * jnp.tanh(g)
    expected_h = jax.nn.sigmoid(o) * jnp.tanh(expected_c)
    new_h, new_c = cell(x, (h[0], c[0]))
    np.testing.assert_allclose(new_c, expected_c, rtol=1e-6)
    np.testing.assert_allclose(new_h, expected_h, rtol=1e-6)


def test_gru_cell_follows_torch_equations():
    cell = purelm.GRUCell(3, 5, key=jax.random.key(0))
    shapes = (cell.weight_ih.shape, cell.weight_hh.shape, cell.bias.shape, cell.bias_hn.shape)
    assert shapes == ((15, 3), (15, 5), (15,), (5,))
    x = jax.random.normal(jax.random.key(1), (3,))
    h, c = random_state(jax.random.key(2), 1, 5)
    gi, gh = cell.weight_ih @ x + cell.bias, cell.weight_hh @ h[0]
    r = jax.nn.sigmoid(gi[:5] + gh[:5])
    z = jax.nn.sigmoid(gi[5:10] + gh[5:10])
    n = jnp.tanh(gi[10:] + r * (gh[10:] + cell.bias_hn))
    new_h, new_c = cell(x, (h[0], c[0]))
    np.testing.assert_allclose(new_h, (1 - z) * n + z * h[0], rtol=1e-6)
    np.testing.assert_array_equal(new_c, c[0])  # no cell state: c is carried unchanged


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell_follows_torch_equations(nonlinearity):
    cell = purelm.RNNCell(3, 5, nonlinearity=nonlinearity, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (3,))
    h, c = random_state(jax.random.key(2), 1, 5)
    pre = cell.weight_ih @ x + cell.weight_hh @ h[0] + cell.bias
    new_h, new_c = cell(x, (h[0], c[0]))
    np.testing.assert_allclose(new_h, jnp.tanh(pre) if nonlinearity == "tanh" else jnp.maximum(pre, 0), rtol=1e-6)
    np.testing.assert_array_equal(new_c, c[0])


def test_head_params_cover_every_head():
    untied = purelm.LSTMLM(VOCAB, 4, 6, key=jax.random.key(0))
    tied = purelm.LSTMLM(VOCAB, 6, 6, tie_embeddings=True, key=jax.random.key(0))
    biased = purelm.LSTMLM(VOCAB, 6, 6, tie_embeddings=True, output_bias=True, key=jax.random.key(0))
    assert untied.head_params() == (untied.head.weight, untied.head.bias) and untied.output_bias
    assert tied.head_params() == (tied.embedding, None) and not tied.output_bias
    weight, bias = biased.head_params()
    assert weight is biased.embedding and biased.output_bias
    np.testing.assert_array_equal(bias, np.zeros(VOCAB))  # word_language_model starts its decoder bias at 0
    # The bias adds to the logits; the random weights are those of the model without it.
    np.testing.assert_array_equal(biased.embedding, tied.embedding)
    biased = eqx.tree_at(lambda m: m.head_bias, biased, jnp.arange(VOCAB, dtype=jnp.float32))
    h = jnp.ones(6)
    np.testing.assert_allclose(biased.project(h), tied.project(h) + jnp.arange(VOCAB), rtol=1e-6)


def test_initial_state_is_tanh_of_learnable_c0(model):
    model = eqx.tree_at(lambda m: m.c0, model, jnp.full_like(model.c0, 0.5))
    h, c = model.initial_state()
    np.testing.assert_allclose(h, np.tanh(0.5) * np.ones_like(h), rtol=1e-6)
    np.testing.assert_allclose(c, 0.5 * np.ones_like(c))


@SETTINGS
@given(tokens=st.lists(st.integers(0, VOCAB - 1), min_size=6, max_size=6), seed=st.integers(0, 2**16))
def test_scan_over_layers_equals_token_by_token(model, tokens, seed):
    # One length keeps this to one compilation per model; the tokens and the state vary.
    tokens = jnp.array(tokens)
    state = random_state(jax.random.key(seed), model.num_layers, model.hidden_dim)
    logits, new_state = call(model, tokens, state)
    expected_logits, expected_state = step_by_step(model, tokens, state)
    assert logits.shape == (len(tokens), VOCAB)
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), new_state, expected_state)


def test_first_logits_come_from_the_incoming_state(model):
    state = random_state(jax.random.key(3), model.num_layers, model.hidden_dim)
    logits, _ = call(model, jnp.array([2, 5, 0, 1, 12, 3]), state)
    np.testing.assert_allclose(logits[0], model.next_logits(state), rtol=1e-6)


def test_empty_sequence_keeps_the_state(model):
    state = random_state(jax.random.key(4), model.num_layers, model.hidden_dim)
    logits, new_state = call(model, jnp.zeros((0,), jnp.int32), state)
    assert logits.shape == (0, VOCAB)
    jax.tree.map(np.testing.assert_array_equal, new_state, state)


def test_batch_initial_state_repeats_the_initial_state(model):
    h, c = purelm.batch_initial_state(model, 4)
    assert h.shape == c.shape == (4, model.num_layers, model.hidden_dim)
    np.testing.assert_array_equal(c[3], model.c0)
    np.testing.assert_array_equal(h[0], model.initial_state()[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tie_embeddings": True}, "embed_dim == hidden_dim"),
        ({"num_layers": 0}, "num_layers"),
        ({"cell": "transformer"}, "cell must be one of lstm, gru, rnn_tanh, rnn_relu"),
        ({"output_bias": False}, "untied head always has a bias"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_hyperparameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        purelm.LSTMLM(VOCAB, 4, 6, key=jax.random.key(0), **kwargs)


def test_dtype_is_respected():
    with jax.enable_x64(True):
        model = purelm.LSTMLM(VOCAB, 4, 6, num_layers=2, key=jax.random.key(0), dtype=jnp.float64)
        assert {leaf.dtype for leaf in jax.tree.leaves(model)} == {jnp.dtype("float64")}
