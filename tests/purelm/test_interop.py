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
from purelm._model._fused import batch_token_log_probs
from purelm.reference import RNNModel, TorchLSTMLM, TorchNNLSTMLM, train_tutorial

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


@pytest.mark.parametrize(
    "kwargs",
    [{"num_layers": 2}, {"cell": "gru", "tie_embeddings": True}, {"tie_embeddings": True, "output_bias": True}],
)
def test_to_torch_refuses_models_the_tutorial_cannot_hold(kwargs):
    model = purelm.LSTMLM(VOCAB, 6, 6, key=jax.random.key(0), **kwargs)
    with pytest.raises(ValueError, match="one layer, an LSTM, tie_embeddings=True and no output bias"):
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


# word_language_model's RNNModel (purelm.reference.RNNModel): every cell type, tied or not.
CELLS = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu"}
BATCH_TOKENS = [[3, 0, 11, 7, 7, 2, 9, 5], [1, 4, 4, 10, 0, 6, 8, 2]]


def rnn_model(rnn_type, dtype, layers, tied, seed=7):
    torch.manual_seed(seed)
    # dropout > 0 in the module: eval mode must turn it off, as a key-less purelm loss does.
    dropout = 0.3 if layers > 1 else 0.0  # torch warns about dropout without a layer to put it after
    return randomize(RNNModel(rnn_type, VOCAB, 6, 6, layers, dropout=dropout, tie_weights=tied), seed).to(dtype).eval()


def wlm_batch_log_probs(module, tokens, hidden):
    """Our convention with their module: position t is scored from the state before token t, so the first
    position comes from the incoming hidden state through their decoder."""
    log_probs, new_hidden = module(tokens, hidden)
    seq, batch = tokens.shape
    h_top = (hidden[0] if module.rnn_type == "LSTM" else hidden)[-1]
    first = torch.log_softmax(module.decoder(h_top), dim=-1)
    all_log_probs = torch.cat([first[None], log_probs.reshape(seq, batch, -1)[:-1]])
    return all_log_probs.gather(2, tokens[..., None])[..., 0], new_hidden


@eqx.filter_jit
def batched_results(model, tokens, states):
    """What training computes (`batch_token_log_probs`, the fused/batched path): summed loss, log-probs,
    final states, gradients for the model and the incoming states."""

    def loss(model, states):
        log_probs, new_states = batch_token_log_probs(model, tokens, states)
        return -jnp.sum(log_probs), (log_probs, new_states)

    (value, (log_probs, new_states)), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(model, states)
    return value, log_probs, new_states, grads


def torch_grads_as_state_dict(module, hidden_size):
    """Parameter gradients named like the state dict, each counted once where torch splits one parameter
    of ours in two (the biases) and doubled where torch shares one (the tied decoder)."""
    grads = {name: p.grad.clone() for name, p in module.named_parameters()}
    if "decoder.weight" not in grads:
        grads["decoder.weight"] = grads["encoder.weight"]
    for layer in range(module.nlayers):
        ih, hh = grads[f"rnn.bias_ih_l{layer}"], grads[f"rnn.bias_hh_l{layer}"]
        # Both biases of a gate outside any product get the same gradient; GRU's b_hn is separate.
        shared = 2 * hidden_size if module.rnn_type == "GRU" else hh.shape[0]
        assert_close(ih[:shared], hh[:shared], F64 if ih.dtype == torch.float64 else F32)
        hh[:shared] = 0
    return grads


@pytest.mark.parametrize(
    ("rnn_type", "dtype", "layers", "tied"),
    [
        ("LSTM", F64, 2, True),
        ("LSTM", F32, 1, True),
        ("GRU", F64, 2, False),
        ("GRU", F32, 2, True),
        ("RNN_TANH", F64, 2, True),
        ("RNN_RELU", F64, 2, False),
        ("RNN_RELU", F32, 1, True),
    ],
)
def test_word_language_model_matches_torch(rnn_type, dtype, layers, tied):
    """Loss, per-token log-probabilities, final state and every gradient, for each cell type, tied heads
    with their bias included, through the batched path training uses."""
    module = rnn_model(rnn_type, dtype, layers, tied)
    tokens = torch.tensor(BATCH_TOKENS).T.contiguous()  # [seq, batch], their layout
    h, c = random_torch_state((layers, 2, 6), dtype, seed=8)
    hidden = (h, c) if rnn_type == "LSTM" else h
    log_probs, new_hidden = wlm_batch_log_probs(module, tokens, hidden)
    loss = -log_probs.sum()
    loss.backward()
    grads = torch_grads_as_state_dict(module, 6)
    cell = CELLS[rnn_type]
    with jax.enable_x64(dtype == torch.float64):
        model = purelm.from_torch_state_dict(module.state_dict(), cell=cell if rnn_type.startswith("RNN") else None)
        expected_grads = purelm.from_torch_state_dict(grads, cell=cell)
        # [layers, batch, hidden] (torch) -> [batch, layers, hidden] (purelm); c is carried by every cell.
        states = (to_jax(h).transpose(1, 0, 2), to_jax(c).transpose(1, 0, 2))
        actual_loss, actual_log_probs, new_states, (model_grads, state_grads) = batched_results(
            model, jnp.array(BATCH_TOKENS), states
        )
    assert (model.cell, model.num_layers, model.tie_embeddings, model.output_bias) == (cell, layers, tied, True)
    assert_close(actual_loss, loss.item(), dtype)
    assert_close(actual_log_probs, log_probs.detach().T, dtype)
    new_h = new_hidden[0] if rnn_type == "LSTM" else new_hidden
    assert_close(new_states[0], new_h.detach().permute(1, 0, 2), dtype)
    expected_c = new_hidden[1] if rnn_type == "LSTM" else c  # cells without a cell state carry c unchanged
    assert_close(new_states[1], expected_c.detach().permute(1, 0, 2), dtype)
    jax.tree.map(lambda a, b: assert_close(a, b, dtype), model_grads, expected_grads)
    assert_close(state_grads[0], h.grad.permute(1, 0, 2), dtype)
    if rnn_type == "LSTM":
        assert_close(state_grads[1], c.grad.permute(1, 0, 2), dtype)


def test_tied_decoder_imports_as_tied_with_its_bias():
    module = rnn_model("LSTM", F32, 1, tied=True)
    model = purelm.from_torch_state_dict(module.state_dict())
    weight, bias = model.head_params()
    assert model.tie_embeddings and model.head is None
    np.testing.assert_array_equal(weight, module.encoder.weight.detach().numpy())
    np.testing.assert_array_equal(bias, module.decoder.bias.detach().numpy())
    untied = purelm.from_torch_state_dict(rnn_model("LSTM", F32, 1, tied=False).state_dict())
    assert not untied.tie_embeddings and untied.head is not None


def test_rnn_state_dict_needs_the_nonlinearity_named():
    state_dict = rnn_model("RNN_TANH", F32, 1, tied=False).state_dict()
    with pytest.raises(purelm.StateDictError, match=r"nn.RNN.*cell='rnn_tanh' or cell='rnn_relu'"):
        purelm.from_torch_state_dict(state_dict)
    assert purelm.from_torch_state_dict(state_dict, cell="rnn_relu").cell == "rnn_relu"


@pytest.mark.parametrize(
    ("rnn_type", "cell", "message"),
    [
        ("LSTM", "gru", "holds an nn.LSTM"),
        ("GRU", "rnn_tanh", "holds an nn.GRU"),
        ("GRU", "transformer", "cell must be"),
    ],
)
def test_cell_that_does_not_match_is_refused_by_name(rnn_type, cell, message):
    state_dict = rnn_model(rnn_type, F32, 1, tied=False).state_dict()
    with pytest.raises(purelm.StateDictError, match=message):
        purelm.from_torch_state_dict(state_dict, cell=cell)


def test_load_torch_file_reads_a_state_dict(tmp_path):
    module = rnn_model("GRU", F32, 2, tied=True)
    torch.save(module.state_dict(), tmp_path / "sd.pt")
    state_dict, info = purelm.load_torch_file(tmp_path / "sd.pt")
    assert info == {}
    assert set(state_dict) == set(module.state_dict())
    assert purelm.from_torch_state_dict(state_dict).cell == "gru"


def test_pickled_module_needs_allow_pickle(tmp_path):
    torch.save(rnn_model("RNN_RELU", F32, 2, tied=True), tmp_path / "model.pt")
    with pytest.raises(purelm.StateDictError, match=r"pickled.*allow_pickle=True") as refused:
        purelm.load_torch_file(tmp_path / "model.pt")
    assert "\n" not in str(refused.value) and "\x1b" not in str(refused.value)
    state_dict, info = purelm.load_torch_file(tmp_path / "model.pt", allow_pickle=True)
    assert info == {"class": "RNNModel", "cell": "rnn_relu", "tied": True}
    model = purelm.from_torch_state_dict(state_dict, cell=info["cell"])
    assert model.tie_embeddings and model.num_layers == 2


def test_pickled_word_language_model_loads_without_their_source(tmp_path, monkeypatch):
    """Their main.py pickles `model.RNNModel`; where their model.py is not importable, ours stands in."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "model.py").write_text(
        "from purelm.reference import RNNModel as Ours\n\n\nclass RNNModel(Ours):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(source))
    import model as their_model

    torch.manual_seed(0)
    module = their_model.RNNModel("LSTM", VOCAB, 6, 6, 2, dropout=0.2).eval()
    torch.save(module, tmp_path / "model.pt")
    monkeypatch.delitem(sys.modules, "model")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(source)])
    state_dict, info = purelm.load_torch_file(tmp_path / "model.pt", allow_pickle=True)
    assert info == {"class": "RNNModel", "cell": "lstm", "tied": False}
    for name, value in module.state_dict().items():
        assert torch.equal(state_dict[name], value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"not a torch file at all", "not a file torch.load can read"),
        ("linear", "not a recurrent language model"),
    ],
)
def test_bad_torch_files_give_one_line(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "linear":
        torch.save(torch.nn.Linear(2, 3), path)
    with pytest.raises(purelm.StateDictError, match=message) as refused:
        purelm.load_torch_file(path, allow_pickle=True)
    assert "\n" not in str(refused.value) and "\x1b" not in str(refused.value)
