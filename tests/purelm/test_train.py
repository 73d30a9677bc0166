import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import purelm

VOCAB = 11
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)
jit_sequence_loss = eqx.filter_jit(purelm.sequence_loss)
jit_batch_loss = eqx.filter_jit(purelm.batch_loss)
# One optimizer and one compiled single step and multi-window step for every case below: cases with the
# same model shapes reuse each other's compilations (the restart flags are inputs, not part of the program).
ADAM = optax.adam(0.05)
ADAM_STEP = purelm.make_train_step(ADAM)
ADAM_STEPS = purelm.make_train_steps(ADAM)


@pytest.fixture(scope="module")
def model():
    # One layer keeps compilation cheap; test_model and test_interop cover stacked layers.
    model = purelm.LSTMLM(VOCAB, 4, 6, key=jax.random.key(0))
    # A non-zero learnable initial state, so "start from c0" and "start from zeros" differ.
    return eqx.tree_at(lambda m: m.c0, model, jax.random.normal(jax.random.key(1), model.c0.shape))


@pytest.fixture(scope="module")
def batch():
    return jax.random.randint(jax.random.key(2), (3, 5), 0, VOCAB)


@SETTINGS
@given(
    tokens=st.lists(st.integers(0, VOCAB - 1), min_size=2, max_size=6),
    cuts=st.lists(st.integers(1, 5), max_size=3),
)
def test_windows_with_carried_state_equal_one_pass(model, tokens, cuts):
    tokens = jnp.array(tokens)
    bounds = sorted({0, len(tokens), *(cut for cut in cuts if cut < len(tokens))})
    full_loss, full_state = jit_sequence_loss(model, tokens, model.initial_state())
    state, total = model.initial_state(), 0.0
    for start, stop in itertools.pairwise(bounds):
        loss, state = jit_sequence_loss(model, tokens[start:stop], state)
        total += loss
    np.testing.assert_allclose(total, full_loss, rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), state, full_state)


def test_sequence_loss_is_summed_token_nll(model, batch):
    log_probs, _ = eqx.filter_jit(purelm.token_log_probs)(model, batch[0])
    loss, _ = jit_sequence_loss(model, batch[0])
    assert log_probs.shape == (batch.shape[1],)
    assert bool(jnp.all(log_probs < 0))
    np.testing.assert_allclose(loss, -jnp.sum(log_probs), rtol=1e-6)


def test_batch_loss_is_the_mean_over_rows_and_tokens(model, batch):
    states = purelm.batch_initial_state(model, batch.shape[0])
    mean, new_states = jit_batch_loss(model, batch, states)
    total, _ = jit_batch_loss(model, batch, states, reduction="sum")
    rows = [jit_sequence_loss(model, row, model.initial_state()) for row in batch]
    np.testing.assert_allclose(total, sum(loss for loss, _ in rows), rtol=1e-5)
    np.testing.assert_allclose(mean, total / batch.size, rtol=1e-6)
    np.testing.assert_allclose(new_states[0][1], rows[1][1][0], rtol=1e-5)
    with pytest.raises(ValueError, match="reduction"):
        purelm.batch_loss(model, batch, states, reduction="max")


def test_none_state_starts_from_c0_and_trains_it(model, batch):
    explicit = purelm.batch_initial_state(model, batch.shape[0])
    grad = eqx.filter_jit(eqx.filter_grad(lambda m, states: purelm.batch_loss(m, batch, states)[0]))
    grad_none, grad_explicit = grad(model, None), grad(model, explicit)
    np.testing.assert_allclose(
        jit_batch_loss(model, batch, None)[0], jit_batch_loss(model, batch, explicit)[0], rtol=1e-6
    )
    assert float(jnp.abs(grad_none.c0).sum()) > 0
    assert float(jnp.abs(grad_explicit.c0).sum()) == 0


@pytest.mark.parametrize("steps_per_call", [1, 3])
def test_train_step_compiles_once_and_learns(model, batch, steps_per_call):
    traces = []

    def counting_loss(model, tokens, states):
        traces.append(tokens.shape)  # runs only while tracing
        return purelm.batch_loss(model, tokens, states)

    optimizer = optax.sgd(0.5)
    if steps_per_call == 1:
        step, batches = purelm.make_train_step(optimizer, loss=counting_loss), batch
    else:
        step, batches = purelm.make_train_steps(optimizer, loss=counting_loss), jnp.stack([batch] * steps_per_call)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    states = purelm.batch_initial_state(model, batch.shape[0])
    losses = []
    for _ in range(6):
        model, opt_state, states, loss = step(model, opt_state, batches, purelm.batch_initial_state(model, 3))
        losses.append(jnp.ravel(loss))
    losses = jnp.concatenate(losses)
    assert traces == [batch.shape]
    assert losses[-1] < losses[0]
    # Carrying the returned states is the same shape: still no retrace.
    step(model, opt_state, batches, states)
    assert traces == [batch.shape]


def test_train_step_returns_the_losses_states_without_gradient(model, batch):
    optimizer = optax.sgd(0.1)
    step = purelm.make_train_step(optimizer)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    h, c = purelm.batch_initial_state(model, batch.shape[0])
    _, _, (new_h, _), loss = step(model, opt_state, batch, (h, c))
    expected_loss, (expected_h, _) = jit_batch_loss(model, batch, (h, c))
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    np.testing.assert_allclose(new_h, expected_h, rtol=1e-6)
    # Truncated BPTT: nothing flows back through the carried state.
    through_step = jax.jit(jax.grad(lambda h: jnp.sum(step(model, opt_state, batch, (h, c))[2][0])))(h)
    through_loss = jax.jit(jax.grad(lambda h: jnp.sum(purelm.batch_loss(model, batch, (h, c))[1][0])))(h)
    assert float(jnp.abs(through_step).sum()) == 0
    assert float(jnp.abs(through_loss).sum()) > 0


@pytest.mark.parametrize("start", ["initial state", "carried state", "restart mid-call"])
@pytest.mark.parametrize("layers,tie", [(1, True), (2, False)])
def test_train_steps_equal_that_many_single_steps_bit_for_bit(start, layers, tie):
    """`make_train_steps` is a speed-up only: K windows in one call give exactly K single steps."""
    model = purelm.LSTMLM(VOCAB, 6, 6, num_layers=layers, tie_embeddings=tie, key=jax.random.key(3))
    batches = jax.random.randint(jax.random.key(4), (4, 3, 5), 0, VOCAB)
    opt_state = ADAM.init(eqx.filter(model, eqx.is_array))
    h, c = purelm.batch_initial_state(model, 3)
    states = None if start == "initial state" else (h + 0.5, c - 0.25)
    restart = [False, False, start == "restart mid-call", False]

    one = (model, opt_state, states)
    single_losses = []
    for batch, fresh in zip(batches, restart):
        *one, loss = ADAM_STEP(*one[:2], batch, None if fresh else one[2])
        single_losses.append(loss)
    *many, losses = ADAM_STEPS(model, opt_state, batches, states, restart)

    assert losses.shape == (4,)
    np.testing.assert_array_equal(losses, jnp.stack(single_losses))
    for a, b in zip(jax.tree.leaves(many), jax.tree.leaves(one), strict=True):
        np.testing.assert_array_equal(a, b)


def test_dropout_steps_with_a_key_equal_single_steps_with_its_split_keys():
    """`make_train_steps(...)(..., key=key)` gives window k the key `split(key, windows)[k]`: the same as
    single steps with those keys, bit for bit (dropout on, a tied head with its bias)."""
    model = purelm.LSTMLM(VOCAB, 6, 6, tie_embeddings=True, output_bias=True, dropout=0.3, key=jax.random.key(5))
    batches = jax.random.randint(jax.random.key(6), (3, 3, 5), 0, VOCAB)
    optimizer = optax.sgd(0.5)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    key = jax.random.key(7)
    step = purelm.make_train_step(optimizer)
    # Explicit states from the start: one compilation of the single step (None would be a second).
    states = purelm.batch_initial_state(model, 3)
    one, single_losses = (model, opt_state, states), []
    for batch, window_key in zip(batches, jax.random.split(key, 3)):
        *one, loss = step(one[0], one[1], batch, one[2], key=window_key)
        single_losses.append(loss)
    *many, losses = purelm.make_train_steps(optimizer)(model, opt_state, batches, states, key=key)
    np.testing.assert_array_equal(losses, jnp.stack(single_losses))
    for a, b in zip(jax.tree.leaves(many), jax.tree.leaves(one), strict=True):
        np.testing.assert_array_equal(a, b)
    # The head bias of a tied model trains.
    assert float(jnp.abs(many[0].head_bias).sum()) > 0


def test_bfloat16_model_trains_with_a_float32_loss():
    model = purelm.LSTMLM(
        VOCAB, 8, 8, tie_embeddings=True, output_bias=True, dropout=0.1, key=jax.random.key(8), dtype=jnp.bfloat16
    )
    assert {leaf.dtype for leaf in jax.tree.leaves(model)} == {jnp.dtype(jnp.bfloat16)}
    batch = jax.random.randint(jax.random.key(9), (4, 6), 0, VOCAB)
    optimizer = optax.sgd(1.0)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    step = purelm.make_train_step(optimizer)
    losses = []
    for k in range(5):
        # Every step from the initial state (None): one compilation.
        model, opt_state, states, loss = step(model, opt_state, batch, None, key=jax.random.key(k))
        losses.append(float(loss))
    assert loss.dtype == jnp.float32 and states[0].dtype == jnp.bfloat16
    assert {leaf.dtype for leaf in jax.tree.leaves(model)} == {jnp.dtype(jnp.bfloat16)}
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
