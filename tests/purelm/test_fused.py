"""The fused batched LSTM layer against plain autodiff of the same math (values and every gradient)."""

from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purelm._model._fused import (
    batch_token_log_probs,
    dropout_masks,
    gru_recurrence,
    lstm_layer,
    lstm_layers,
    lstm_lm_window,
    rnn_recurrence,
)
from purelm._model._lstmlm import LSTMLM, batch_initial_state
from purelm.training._losses import batch_loss, sequence_loss, token_log_probs

TOLERANCE = {jnp.float64: 1e-10, jnp.float32: 1e-5}


def reference_layer(weight_ih, weight_hh, bias, xs, h0, c0):
    """The textbook cell, one step at a time, differentiated by jax itself."""

    def step(carry, x):
        h, c = carry
        pre = x @ weight_ih.T + h @ weight_hh.T + bias
        i, f, g, o = jnp.split(pre, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    (h, c), hs = jax.lax.scan(step, (h0, c0), xs)
    return hs, (h, c)


def reference_layers(params, xs, h0, c0):
    finals = []
    for k, (weight_ih, weight_hh, bias) in enumerate(params):
        xs, final = reference_layer(weight_ih, weight_hh, bias, xs, h0[:, k], c0[:, k])
        finals.append(final)
    return xs, (jnp.stack([h for h, _ in finals], 1), jnp.stack([c for _, c in finals], 1))


def random_layer(key, seq, batch, inp, hidden, dtype):
    k = jax.random.split(key, 6)
    shapes = [
        (4 * hidden, inp),
        (4 * hidden, hidden),
        (4 * hidden,),
        (seq, batch, inp),
        (batch, hidden),
        (batch, hidden),
    ]
    return [jax.random.normal(kk, shape, dtype) for kk, shape in zip(k, shapes)]


def assert_close(actual, expected, dtype):
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert a.shape == e.shape and a.dtype == e.dtype
        np.testing.assert_allclose(a, e, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


def check_against_reference(fused, reference, args, dtype, key):
    """Values, then gradients of a random linear functional of every output with respect to every input."""
    shapes = jax.eval_shape(reference, *args)
    keys = jax.random.split(key, len(jax.tree.leaves(shapes)))
    weights = [jax.random.normal(k, x.shape, dtype) for k, x in zip(keys, jax.tree.leaves(shapes))]
    # Both paths, values and gradients, in a single jit, keyed by the functions so that repeated calls with
    # arrays of the same shapes (hypothesis examples) reuse one compilation.
    actual, expected = _both(fused, reference, weights, *args)
    assert_close(actual, expected, dtype)


@partial(jax.jit, static_argnums=(0, 1))
def _both(fused, reference, weights, *args):
    def value_and_grads(function):
        def objective(*a):
            outputs = function(*a)
            return sum(jnp.sum(w * y) for w, y in zip(weights, jax.tree.leaves(outputs))), outputs

        return jax.grad(objective, argnums=tuple(range(len(args))), has_aux=True)

    return value_and_grads(fused)(*args), value_and_grads(reference)(*args)


# Shapes are fixed per dtype (each shape is a compilation); hypothesis varies the values: the scale of the
# weights and inputs (small to saturating gates) and the random draw.
LAYER_SHAPE = {"seq": 5, "batch": 3, "inp": 4, "hidden": 3}


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
@settings(max_examples=6, deadline=None, derandomize=True)
@given(scale=st.floats(0.05, 4.0), seed=st.integers(0, 2**16))
def test_layer_matches_autodiff(dtype, scale, seed):
    with jax.enable_x64(dtype == jnp.float64):
        key, sub = jax.random.split(jax.random.key(seed))
        args = [scale * a for a in random_layer(key, *LAYER_SHAPE.values(), dtype)]
        check_against_reference(lstm_layer, reference_layer, args, dtype, sub)


def reference_gru(weight_hh, bias_hn, xproj, h0):
    """nn.GRU's step written out, differentiated by jax itself."""

    def step(h, x):
        x_r, x_z, x_n = jnp.split(x, 3, axis=-1)
        h_r, h_z, h_n = jnp.split(h @ weight_hh.T, 3, axis=-1)
        r, z = jax.nn.sigmoid(x_r + h_r), jax.nn.sigmoid(x_z + h_z)
        n = jnp.tanh(x_n + r * (h_n + bias_hn))
        h = (1 - z) * n + z * h
        return h, h

    h, hs = jax.lax.scan(step, h0, xproj)
    return hs, h


def reference_rnn(nonlinearity, weight_hh, xproj, h0):
    act = jnp.tanh if nonlinearity == "tanh" else jax.nn.relu

    def step(h, x):
        h = act(x + h @ weight_hh.T)
        return h, h

    h, hs = jax.lax.scan(step, h0, xproj)
    return hs, h


@pytest.mark.parametrize("kind", ["gru", "tanh", "relu"])
def test_gru_and_rnn_recurrences_match_autodiff(kind):
    seq, batch, hidden = 5, 3, 4
    gates = 3 * hidden if kind == "gru" else hidden
    with jax.enable_x64(True):
        k = jax.random.split(jax.random.key(11), 5)
        weight_hh = jax.random.normal(k[0], (gates, hidden), jnp.float64)
        bias_hn = jax.random.normal(k[1], (hidden,), jnp.float64)
        xproj = jax.random.normal(k[2], (seq, batch, gates), jnp.float64)
        h0 = jax.random.normal(k[3], (batch, hidden), jnp.float64)
        if kind == "gru":
            check_against_reference(gru_recurrence, reference_gru, (weight_hh, bias_hn, xproj, h0), jnp.float64, k[4])
        else:
            fused = partial(rnn_recurrence, kind)
            reference = partial(reference_rnn, kind)
            check_against_reference(fused, reference, (weight_hh, xproj, h0), jnp.float64, k[4])


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_layer_stack_matches_autodiff(dtype):
    seq, batch, inp, hidden, layers = 5, 3, 4, 3, 2
    with jax.enable_x64(dtype == jnp.float64):
        keys = jax.random.split(jax.random.key(1), layers + 4)
        params = [
            tuple(random_layer(keys[k], 1, 1, inp if k == 0 else hidden, hidden, dtype)[:3]) for k in range(layers)
        ]
        xs = jax.random.normal(keys[-1], (seq, batch, inp), dtype)
        h0, c0 = (jax.random.normal(k, (batch, layers, hidden), dtype) for k in keys[-3:-1])
        check_against_reference(
            lambda p, x, h, c: lstm_layers(p, x, h, c), reference_layers, (params, xs, h0, c0), dtype, keys[-4]
        )


@pytest.mark.parametrize(("layers", "vocab"), [(1, 7), (2, 7), (1, 40)])
def test_embedding_window_matches_autodiff(layers, vocab):
    """Vocabulary 7 (< 10 tokens) takes the projected-table path, 40 the per-token projection."""
    embed, hidden, batch, seq = 3, 4, 2, 5
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.key(2), layers + 5)
        embedding = jax.random.normal(keys[0], (vocab, embed), jnp.float64)
        params = [
            tuple(random_layer(keys[1 + k], 1, 1, embed if k == 0 else hidden, hidden, jnp.float64)[:3])
            for k in range(layers)
        ]
        tokens = jax.random.randint(keys[-1], (batch, seq), 0, vocab)
        h0, c0 = (jax.random.normal(k, (batch, layers, hidden), jnp.float64) for k in keys[-3:-1])

        def reference(emb, p, h, c):
            return reference_layers(p, emb[tokens.T], h, c)

        def fused(emb, p, h, c):
            return lstm_lm_window(emb, p, tokens, h, c)

        check_against_reference(fused, reference, (embedding, params, h0, c0), jnp.float64, keys[-4])


def test_state_carries_across_windows():
    """Two windows, the second starting from the first's final state, equal one window of both."""
    with jax.enable_x64(True):
        key, sub = jax.random.split(jax.random.key(3))
        weight_ih, weight_hh, bias, xs, h0, c0 = random_layer(key, 8, 2, 3, 4, jnp.float64)

        def split_run(weight_hh, xs, h0, c0):
            first, state = lstm_layer(weight_ih, weight_hh, bias, xs[:5], h0, c0)
            second, state = lstm_layer(weight_ih, weight_hh, bias, xs[5:], *state)
            return jnp.concatenate([first, second]), state

        def whole_run(weight_hh, xs, h0, c0):
            return reference_layer(weight_ih, weight_hh, bias, xs, h0, c0)

        check_against_reference(split_run, whole_run, (weight_hh, xs, h0, c0), jnp.float64, sub)


@pytest.mark.parametrize(("layers", "tie"), [(1, False), (2, False), (1, True)])
def test_model_log_probs_match_per_sequence_model(layers, tie):
    """The fused batch path equals `jax.vmap` of the per-sequence model, gradients included."""
    with jax.enable_x64(True):
        key, k_tok, k_state, k_w = jax.random.split(jax.random.key(4), 4)
        model = LSTMLM(11, 6, 6, num_layers=layers, tie_embeddings=tie, key=key, dtype=jnp.float64)
        tokens = jax.random.randint(k_tok, (3, 7), 0, 11)
        h0, c0 = batch_initial_state(model, 3)
        h0 = h0 + jax.random.normal(k_state, h0.shape, jnp.float64)

        def per_sequence(model, h0, c0):
            return jax.vmap(token_log_probs, in_axes=(None, 0, 0))(model, tokens, (h0, c0))

        def fused(model, h0, c0):
            return batch_token_log_probs(model, tokens, (h0, c0))

        check_against_reference(fused, per_sequence, (model, h0, c0), jnp.float64, k_w)


@pytest.mark.parametrize("start_from_model", [True, False])
def test_batch_loss_equals_vmap_of_sequence_loss(start_from_model):
    """`purelm.batch_loss` (fused) against the per-sequence definition, values and every gradient,
    including the learnable initial state when `states=None`."""
    with jax.enable_x64(True):
        key, k_tok, k_c0, k_state = jax.random.split(jax.random.key(5), 4)
        model = LSTMLM(9, 5, 4, num_layers=2, key=key, dtype=jnp.float64)
        model = eqx.tree_at(lambda m: m.c0, model, jax.random.normal(k_c0, model.c0.shape, jnp.float64))
        tokens = jax.random.randint(k_tok, (3, 6), 0, 9)
        states = (
            None
            if start_from_model
            else jax.tree.map(
                lambda x: x + jax.random.normal(k_state, x.shape, jnp.float64), batch_initial_state(model, 3)
            )
        )

        def per_sequence(model):
            start = batch_initial_state(model, 3) if states is None else states
            losses, final = jax.vmap(sequence_loss, in_axes=(None, 0, 0))(model, tokens, start)
            return jnp.sum(losses) / tokens.size, final

        def fused(model):
            return batch_loss(model, tokens, states)

        check_against_reference(fused, per_sequence, (model,), jnp.float64, k_state)


def per_sequence_window(model, tokens, h0, c0, masks):
    """The layer stack as the per-sequence cells compute it (`cell.scan` under `jax.vmap`), with dropout
    masks applied to every layer's input and to the top output: the definition the batched paths follow."""
    xs = model.embedding[tokens.T]
    finals = []
    for k, cell in enumerate(model.cells):
        xs = xs * masks[k]
        xs, final = jax.vmap(cell.scan, in_axes=(1, 0), out_axes=(1, 0))(xs, (h0[:, k], c0[:, k]))
        finals.append(final)
    h_in = jnp.concatenate([h0[None, :, -1], xs[:-1]]) * masks[-1]
    weight, bias = model.head_params()
    logits = h_in @ weight.T + (0 if bias is None else bias)
    picked = jnp.take_along_axis(jax.nn.log_softmax(logits), tokens.T[..., None], axis=-1)[..., 0]
    return picked.T, (jnp.stack([h for h, _ in finals], 1), jnp.stack([c for _, c in finals], 1))


# LSTM (lstm_lm_window) and GRU (scan_lm_window, which RNN models share) place the masks in separate code.
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_dropout_masks_sit_where_word_language_model_puts_them(cell):
    """With a key, the batched loss equals the per-sequence cells with the masks on the embeddings, between
    the layers and on the top output (values and every gradient); 12 tokens >= 11 words, so an LSTM without
    dropout would take the gathered-table path: dropout must turn it off."""
    with jax.enable_x64(True):
        key, k_bias, k_state, k_tok, k_drop, k_w = jax.random.split(jax.random.key(6), 6)
        model = LSTMLM(
            11,
            5,
            5,
            num_layers=2,
            cell=cell,
            tie_embeddings=True,
            output_bias=True,
            dropout=0.4,
            key=key,
            dtype=jnp.float64,
        )
        model = eqx.tree_at(lambda m: m.head_bias, model, jax.random.normal(k_bias, (11,), jnp.float64))
        tokens = jax.random.randint(k_tok, (2, 6), 0, 11)
        h0, c0 = (x + jax.random.normal(k_state, x.shape, jnp.float64) for x in batch_initial_state(model, 2))
        masks = dropout_masks(model, k_drop, tokens.shape)
        assert [m.shape for m in masks] == [(6, 2, 5)] * 3
        for mask in masks:
            assert set(np.unique(np.asarray(mask))) == {0.0, 1 / 0.6}
        kept = np.mean([np.mean(np.asarray(m) > 0) for m in masks])
        assert 0.4 < kept < 0.8

        def fused(model, h0, c0):
            return batch_token_log_probs(model, tokens, (h0, c0), key=k_drop)

        def reference(model, h0, c0):
            return per_sequence_window(model, tokens, h0, c0, masks)

        check_against_reference(fused, reference, (model, h0, c0), jnp.float64, k_w)


def test_no_key_means_no_dropout():
    model = LSTMLM(11, 5, 5, dropout=0.5, key=jax.random.key(7))
    undropped = LSTMLM(11, 5, 5, key=jax.random.key(7))  # the same weights: dropout draws none
    tokens = jax.random.randint(jax.random.key(8), (2, 6), 0, 11)
    states = batch_initial_state(model, 2)
    assert dropout_masks(model, None, tokens.shape) is None
    assert dropout_masks(undropped, jax.random.key(9), tokens.shape) is None
    loss = eqx.filter_jit(batch_loss)
    plain = float(loss(model, tokens, states)[0])
    assert plain == float(loss(undropped, tokens, states)[0])
    assert plain != float(loss(model, tokens, states, key=jax.random.key(9))[0])


@pytest.mark.parametrize("cell", ["gru"])
def test_other_cells_batched_path_matches_per_sequence_model(cell):
    """GRU and RNN models take `scan_lm_window`: equal to `jax.vmap` of the per-sequence model (RNN models
    through the same function are compared with torch in test_interop)."""
    with jax.enable_x64(True):
        key, k_tok, k_state, k_w = jax.random.split(jax.random.key(10), 4)
        model = LSTMLM(9, 4, 5, cell=cell, key=key, dtype=jnp.float64)
        tokens = jax.random.randint(k_tok, (3, 6), 0, 9)
        h0, c0 = (x + jax.random.normal(k_state, x.shape, jnp.float64) for x in batch_initial_state(model, 3))

        def per_sequence(model, h0, c0):
            return jax.vmap(token_log_probs, in_axes=(None, 0, 0))(model, tokens, (h0, c0))

        def fused(model, h0, c0):
            return batch_token_log_probs(model, tokens, (h0, c0))

        check_against_reference(fused, per_sequence, (model, h0, c0), jnp.float64, k_w)
