import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purelm
import purelm._inference._sample

VOCAB = 9
LENGTH = 8  # one length everywhere: each length (static) is a compilation


@pytest.fixture(scope="module")
def model():
    return purelm.LSTMLM(VOCAB, 4, 5, key=jax.random.key(0))


@pytest.fixture(scope="module")
def prompt():
    return jnp.array([1, 7, 3])


@eqx.filter_jit
def prompt_state(model, prompt):
    return model(prompt, model.initial_state())[1]


@eqx.filter_jit
def logits_along(model, prompt, generated):
    """Teacher-forced scores for each generated position."""
    logits, _ = model(jnp.concatenate([prompt, generated]), model.initial_state())
    return logits[len(prompt) :]


def test_greedy_takes_the_argmax_each_step(model, prompt):
    state = prompt_state(model, prompt)
    tokens = purelm.greedy(model, state, LENGTH)
    assert tokens.shape == (LENGTH,)
    expected = []
    step, next_logits = eqx.filter_jit(model.step), eqx.filter_jit(model.next_logits)
    for _ in range(LENGTH):
        expected.append(int(jnp.argmax(next_logits(state))))
        state = step(jnp.array(expected[-1]), state)
    assert tokens.tolist() == expected


def test_top_1_sampling_is_greedy(model, prompt):
    state = prompt_state(model, prompt)
    sampled = purelm.sample(model, jax.random.key(3), prompt, LENGTH, top_k=1)
    np.testing.assert_array_equal(sampled, purelm.greedy(model, state, LENGTH))


def test_top_k_tokens_are_among_the_k_best(model, prompt):
    sampled = purelm.sample(model, jax.random.key(4), prompt, LENGTH, temperature=3.0, top_k=3)
    logits = logits_along(model, prompt, sampled)
    ranks = jnp.sum(logits > jnp.take_along_axis(logits, sampled[:, None], axis=1), axis=1)
    assert bool(jnp.all(ranks < 3))
    assert len(set(sampled.tolist())) > 1


def test_samples_depend_only_on_the_key(model, prompt):
    first = purelm.sample(model, jax.random.key(5), prompt, LENGTH)
    again = purelm.sample(model, jax.random.key(5), prompt, LENGTH)
    other = purelm.sample(model, jax.random.key(6), prompt, LENGTH)
    np.testing.assert_array_equal(first, again)
    assert first.tolist() != other.tolist()


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_first_token_follows_the_tempered_softmax(model, prompt, temperature):
    keys = jax.random.split(jax.random.key(7), 4000)
    draws = jax.vmap(lambda key: purelm.sample(model, key, prompt, LENGTH, temperature=temperature))(keys)
    logits = logits_along(model, prompt, draws[0])[0]  # full-length draw: reuses a compilation
    expected = np.asarray(jax.nn.softmax(logits / temperature))
    observed = np.bincount(np.asarray(draws[:, 0]), minlength=VOCAB) / len(draws)
    # Four standard errors of a binomial proportion: fails for a wrong temperature, not by chance.
    np.testing.assert_array_less(
        np.abs(observed - expected), 4 * np.sqrt(expected * (1 - expected) / len(draws)) + 1e-3
    )


def test_empty_prompt_starts_from_the_initial_state(model):
    sampled = purelm.sample(model, jax.random.key(8), jnp.zeros((0,), jnp.int32), LENGTH, top_k=1)
    np.testing.assert_array_equal(sampled, purelm.greedy(model, model.initial_state(), LENGTH))


def test_sampling_compiles_one_loop(monkeypatch):
    # A fresh shape, so nothing is cached from the other tests.
    model = purelm.LSTMLM(VOCAB + 2, 3, 4, key=jax.random.key(1))
    calls = []
    choose = purelm._inference._sample._choose

    def counting_choose(*args):
        calls.append(1)  # runs only while tracing
        return choose(*args)

    monkeypatch.setattr(purelm._inference._sample, "_choose", counting_choose)
    for seed, temperature, prompt in [(0, 1.0, [1, 2]), (1, 0.7, [3, 4]), (2, 1.3, [5, 0])]:
        tokens = purelm.sample(model, jax.random.key(seed), jnp.array(prompt), 30, temperature=temperature, top_k=4)
        assert tokens.shape == (30,)
    assert len(calls) == 1


@pytest.mark.parametrize(("kwargs", "message"), [({"temperature": 0.0}, "temperature"), ({"top_k": 0}, "top_k")])
def test_bad_sampling_arguments_are_refused(model, prompt, kwargs, message):
    with pytest.raises(ValueError, match=message):
        purelm.sample(model, jax.random.key(0), prompt, 3, **kwargs)


def test_sample_is_usable_inside_jit(model, prompt):
    sample = eqx.filter_jit(lambda model, key: purelm.sample(model, key, prompt, LENGTH, temperature=0.9))
    np.testing.assert_array_equal(
        sample(model, jax.random.key(9)), purelm.sample(model, jax.random.key(9), prompt, LENGTH, temperature=0.9)
    )


@pytest.mark.parametrize("cell", ["gru", "rnn_relu"])
def test_every_cell_samples_and_decodes_greedily(cell):
    model = purelm.LSTMLM(VOCAB, 4, 5, cell=cell, dropout=0.5, key=jax.random.key(2))
    prompt = jnp.array([1, 7, 3])
    state = prompt_state(model, prompt)
    tokens = purelm.greedy(model, state, LENGTH)
    step, next_logits = eqx.filter_jit(model.step), eqx.filter_jit(model.next_logits)
    expected = []
    for _ in range(LENGTH):
        expected.append(int(jnp.argmax(next_logits(state))))
        state = step(jnp.array(expected[-1]), state)
    assert tokens.tolist() == expected
    # Sampling never drops anything: top-1 is greedy.
    np.testing.assert_array_equal(purelm.sample(model, jax.random.key(3), prompt, LENGTH, top_k=1), tokens)
