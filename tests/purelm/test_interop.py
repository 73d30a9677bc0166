"""Parity with PyTorch: the tutorial model and a stock nn.LSTM language model, float64 and float32."""

import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import purelm
from purelm.reference import TorchLSTMLM, TorchNNLSTMLM, train_tutorial

VOCAB = 12
TOKENS = [3, 0, 11, 7, 7, 2, 9, 5]
# (rtol, atol) per dtype; atol only guards entries that are zero up to rounding.
TOLERANCE = {torch.float64: (1e-9, 1e-12), torch.float32: (1e-5, 1e-6)}
F64, F32 = torch.float64, torch.float32


def randomize(module, seed):
    """Non-zero biases and initial states: every parameter drawn from U(-0.5, 0.5)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.rand(param.shape, generator=generator, dtype=param.dtype) - 0.5)
    return module


def random_torch_state(shape, dtype, seed):
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(shape, generator=generator, dtype=dtype, requires_grad=True) for _ in range(2))


def to_jax(tensor):
    return jnp.asarray(tensor.detach().numpy())


def assert_close(actual, expected, dtype):
    rtol, atol = TOLERANCE[dtype]
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


@eqx.filter_jit
def jax_results(model, tokens, state):
    """Loss, per-token log-probabilities, final state, gradients for the model and the incoming state."""
    (loss, (log_probs, new_state)), grads = jax.value_and_grad(
        lambda m, s: _loss_with_aux(m, tokens, s), argnums=(0, 1), has_aux=True
    )(model, state)
    return loss, log_probs, new_state, grads


def _loss_with_aux(model, tokens, state):
    log_probs, new_state = purelm.token_log_probs(model, tokens, state)
    return -jnp.sum(log_probs), (log_probs, new_state)


def tutorial_log_probs(lm, tokens, hc):
    """Per-token log-probabilities with the tutorial model's own forward, one token at a time."""
    log_probs = []
    for token in tokens:
        loss, hc = lm(tokens.new_tensor([token]), hc)
        log_probs.append(-loss.item())
    return log_probs


def stock_log_probs(module, tokens, hc):
    """The tutorial's convention for a stock model: position t is scored from the state before token t."""
    logits, new_hc = module(tokens, hc)
    logits = torch.cat([module.decoder(hc[0][-1:]), logits[:-1]])
    return torch.log_softmax(logits, dim=-1)[torch.arange(len(tokens)), tokens], new_hc


@pytest.mark.parametrize(("dtype", "start"), [(F64, "learned"), (F64, "random"), (F32, "random")])
def test_tutorial_model_matches_torch(dtype, start):
    lm = randomize(TorchLSTMLM(VOCAB, dim=5), seed=1).to(dtype)
    tokens = torch.tensor(TOKENS)
    hc = lm.hc_0 if start == "learned" else random_torch_state((5,), dtype, seed=2)
    loss, (h, c) = lm(tokens, hc)
    loss.backward()
    expected_log_probs = tutorial_log_probs(lm, tokens, hc)
    with jax.enable_x64(dtype == torch.float64):
        # c_0 gets no gradient when the sequence starts from a given state.
        grads = {name: torch.zeros_like(p) if p.grad is None else p.grad for name, p in lm.named_parameters()}
        grads = purelm.from_torch_state_dict(grads)
        model = purelm.from_torch(lm)
        state = None if start == "learned" else (to_jax(hc[0])[None], to_jax(hc[1])[None])
        actual_loss, log_probs, new_state, (model_grads, state_grads) = jax_results(model, jnp.array(TOKENS), state)
        assert model.embedding.dtype == jnp.dtype(str(dtype).removeprefix("torch."))
    assert_close(actual_loss, loss.item(), dtype)
    assert_close(log_probs, expected_log_probs, dtype)
    assert_close(new_state[0][0], h.detach(), dtype)
    assert_close(new_state[1][0], c.detach(), dtype)
    jax.tree.map(lambda a, b: assert_close(a, b, dtype), model_grads, grads)
    assert np.abs(np.asarray(grads.cells[0].bias)).min() > 0
    if start == "random":
        assert_close(state_grads[0][0], hc[0].grad, dtype)
        assert_close(state_grads[1][0], hc[1].grad, dtype)


@pytest.mark.parametrize(("dtype", "layers"), [(F64, 1), (F64, 3), (F32, 3)])
def test_stock_nn_lstm_model_matches_torch(dtype, layers):
    torch.manual_seed(3)
    module = TorchNNLSTMLM(VOCAB, 4, 6, num_layers=layers).to(dtype)
    tokens = torch.tensor(TOKENS)
    hc = random_torch_state((layers, 6), dtype, seed=4)
    log_probs, (h, c) = stock_log_probs(module, tokens, hc)
    loss = -log_probs.sum()
    loss.backward()
    grads = {name: p.grad for name, p in module.named_parameters()}
    for layer in range(layers):
        # d loss / d bias_ih == d loss / d bias_hh == d loss / d (their sum): count it once.
        assert_close(grads[f"rnn.bias_ih_l{layer}"], grads[f"rnn.bias_hh_l{layer}"], dtype)
        grads[f"rnn.bias_hh_l{layer}"] = torch.zeros_like(grads[f"rnn.bias_hh_l{layer}"])
    with jax.enable_x64(dtype == torch.float64):
        model = purelm.from_torch_state_dict(module.state_dict())
        grads = purelm.from_torch_state_dict(grads)
        state = (to_jax(hc[0]), to_jax(hc[1]))
        actual_loss, actual_log_probs, new_state, (model_grads, state_grads) = jax_results(
            model, jnp.array(TOKENS), state
        )
    assert model.num_layers == layers and not model.tie_embeddings
    assert_close(actual_loss, loss.item(), dtype)
    assert_close(actual_log_probs, log_probs.detach(), dtype)
    assert_close(new_state[0], h.detach(), dtype)
    assert_close(new_state[1], c.detach(), dtype)
    jax.tree.map(lambda a, b: assert_close(a, b, dtype), model_grads, grads)
    assert_close(state_grads[0], hc[0].grad, dtype)
    assert_close(state_grads[1], hc[1].grad, dtype)


def test_twenty_sgd_steps_keep_the_parameters_equal():
    lm = randomize(TorchLSTMLM(VOCAB, dim=5), seed=5).double()
    with jax.enable_x64(True):
        model = purelm.from_torch(lm)
        # 10 epochs of two windows: 20 SGD steps, state carried within an epoch.
        model, losses = purelm.train_tutorial(model, TOKENS[:6], window=3, learning_rate=0.1, epochs=10)
        lm, torch_losses = train_tutorial(lm, TOKENS[:6], window=3, learning_rate=0.1, epochs=10)
        expected = purelm.from_torch(lm)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12), model, expected)
    np.testing.assert_allclose(losses, torch_losses, rtol=1e-8)
    assert losses[-1] < losses[0]


def test_round_trip_is_exact():
    lm = randomize(TorchLSTMLM(VOCAB, dim=5), seed=6)
    back = purelm.to_torch(purelm.from_torch(lm))
    assert isinstance(back, TorchLSTMLM)
    for (name, expected), (other, actual) in zip(lm.state_dict().items(), back.state_dict().items(), strict=True):
        assert name == other
        assert torch.equal(expected, actual)
    model = purelm.LSTMLM(VOCAB, 5, 5, tie_embeddings=True, key=jax.random.key(0))
    again = purelm.from_torch(purelm.to_torch(model))
    assert eqx.tree_equal(jax.tree.structure(model), jax.tree.structure(again))
    jax.tree.map(np.testing.assert_array_equal, model, again)


def test_to_torch_refuses_models_the_tutorial_cannot_hold():
    model = purelm.LSTMLM(VOCAB, 4, 6, num_layers=2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="one layer"):
        purelm.to_torch(model)


def test_state_dict_of_numpy_arrays_is_accepted():
    state_dict = {name: value.numpy() for name, value in TorchNNLSTMLM(VOCAB, 4, 6, num_layers=2).state_dict().items()}
    model = purelm.from_torch_state_dict(state_dict)
    np.testing.assert_array_equal(model.cells[1].bias, state_dict["rnn.bias_ih_l1"] + state_dict["rnn.bias_hh_l1"])
    np.testing.assert_array_equal(model.c0, np.zeros((2, 6), np.float32))


def stock_state_dict():
    return dict(TorchNNLSTMLM(VOCAB, 4, 6, num_layers=2).state_dict())


@pytest.mark.parametrize("key", list(stock_state_dict()))
def test_missing_key_is_named(key):
    state_dict = stock_state_dict()
    del state_dict[key]
    with pytest.raises(purelm.StateDictError, match=f"missing key '{key}'"):
        purelm.from_torch_state_dict(state_dict)


@pytest.mark.parametrize("key", ["rnn.weight_ih_l1", "rnn.bias_hh_l0", "decoder.bias", "decoder.weight"])
def test_mis_shaped_key_is_named(key):
    state_dict = stock_state_dict()
    state_dict[key] = state_dict[key][:-1]
    with pytest.raises(purelm.StateDictError, match=f"key '{key}' has shape"):
        purelm.from_torch_state_dict(state_dict)


@pytest.mark.parametrize("key", ["rnn.weight_ih_l0_reverse", "rnn.weight_hr_l0", "cell.extra"])
def test_unexpected_key_is_named(key):
    state_dict = stock_state_dict()
    state_dict[key] = torch.zeros(3)
    with pytest.raises(purelm.StateDictError, match=f"unexpected key '{key}'"):
        purelm.from_torch_state_dict(state_dict)


def test_tutorial_state_dict_errors_name_the_key():
    state_dict = dict(TorchLSTMLM(VOCAB, dim=5).state_dict())
    del state_dict["c_0"]
    with pytest.raises(purelm.StateDictError, match="missing key 'c_0'"):
        purelm.from_torch_state_dict(state_dict)
    assert issubclass(purelm.StateDictError, ValueError)


def test_import_purelm_does_not_import_torch():
    code = "import sys, purelm; assert 'torch' not in sys.modules, 'purelm imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)
