"""`purelm.evaluate`: every token but the first scored once, word_language_model's numbers for theirs."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purelm
import purelm.training._evaluate
from purelm.training._evaluate import scored_log_probs

VOCAB = 12
BATCH, BPTT = 10, 35
# 37 tokens per column and a tail of 7 that batchify drops: two windows per column.
N_TOKENS = BATCH * 37 + 7


def stream(n, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, n)


@pytest.fixture(scope="module")
def model():
    model = purelm.LSTMLM(VOCAB, 6, 6, num_layers=2, tie_embeddings=True, output_bias=True, key=jax.random.key(0))
    # A non-zero learnable initial state: every column must start from it.
    return eqx.tree_at(lambda m: m.c0, model, jax.random.normal(jax.random.key(1), model.c0.shape))


def test_every_column_starts_from_the_initial_state_and_overlaps_by_one(model):
    tokens = stream(N_TOKENS)
    log_probs = scored_log_probs(model, tokens, batch_size=BATCH, seq_len=BPTT)
    assert np.isnan(log_probs[0]) and np.all(np.isfinite(log_probs[1:]))
    length = N_TOKENS // BATCH
    score = eqx.filter_jit(purelm.token_log_probs)
    for column in range(BATCH):
        start = column * length
        stop = N_TOKENS if column == BATCH - 1 else start + length + 1
        expected, _ = score(model, jnp.asarray(tokens[start:stop]))
        # The column's first token is context; it was scored by the column before (or is the stream's first).
        np.testing.assert_allclose(log_probs[start + 1 : stop], expected[1:], rtol=2e-5, atol=1e-6)


def test_evaluation_counts_every_token_but_the_first(model):
    tokens = stream(N_TOKENS, seed=1)
    result = purelm.evaluate(model, tokens, batch_size=BATCH, seq_len=BPTT)
    log_probs = scored_log_probs(model, tokens, batch_size=BATCH, seq_len=BPTT)
    assert result.count == N_TOKENS - 1
    assert result.nats == pytest.approx(-np.mean(log_probs[1:]), rel=1e-12)
    assert result.perplexity == pytest.approx(math.exp(result.nats), rel=1e-12)
    assert result.bits_per_token == pytest.approx(result.nats / math.log(2), rel=1e-12)
    # The window length changes no number.
    other = purelm.evaluate(model, tokens, batch_size=BATCH, seq_len=8)
    assert other.count == result.count
    assert other.nats == pytest.approx(result.nats, rel=1e-6)


def test_stream_lengths_share_compilations(model, monkeypatch):
    traces = []
    original = purelm.training._evaluate.batch_token_log_probs

    def counting(*args, **kwargs):
        traces.append(args[1].shape)  # runs only while tracing
        return original(*args, **kwargs)

    monkeypatch.setattr(purelm.training._evaluate, "batch_token_log_probs", counting)
    # A batch size no other test uses, so nothing is cached; 2 windows per column for all three lengths.
    for n in (7 * 40 + 3, 7 * 45, 7 * 50 + 6):
        purelm.evaluate(model, stream(n), batch_size=7, seq_len=BPTT)
    assert traces == [(7, BPTT)]


@pytest.mark.parametrize(
    ("tokens", "kwargs", "message"),
    [
        (np.arange(5) % VOCAB, {}, "at least"),
        (np.array([1, VOCAB, 2] * 5), {"batch_size": 2}, "token ids"),
        (np.ones((3, 4), int), {"batch_size": 2}, "1-D"),
        (np.arange(20) % VOCAB, {"seq_len": 0}, "positive"),
    ],
)
def test_bad_input_is_refused(model, tokens, kwargs, message):
    with pytest.raises(ValueError, match=message):
        purelm.evaluate(model, tokens, **kwargs)


def test_word_language_model_evaluate_gives_the_same_numbers():
    """Their `evaluate()` (written here from their main.py: batchify, get_batch, NLLLoss) on their RNNModel,
    and purelm.evaluate on the converted model: each token they score gets the same log-probability, and
    the perplexity over their tokens is theirs."""
    torch = pytest.importorskip("torch")
    from purelm.reference import RNNModel

    torch.manual_seed(0)
    module = RNNModel("LSTM", VOCAB, 6, 6, 2, dropout=0.2, tie_weights=True).eval()
    with torch.no_grad():
        module.decoder.bias.uniform_(-0.5, 0.5)
    tokens = stream(N_TOKENS, seed=2)

    data = torch.tensor(tokens)
    length = len(data) // BATCH
    source = data[: length * BATCH].view(BATCH, -1).t().contiguous()  # batchify: [length, batch]
    hidden = module.init_hidden(BATCH)
    theirs = torch.full((length, BATCH), float("nan"), dtype=torch.float64)
    total_loss = 0.0
    with torch.no_grad():
        for i in range(0, length - 1, BPTT):
            seq_len = min(BPTT, length - 1 - i)
            inputs, targets = source[i : i + seq_len], source[i + 1 : i + 1 + seq_len]
            output, hidden = module(inputs, hidden)
            total_loss += len(inputs) * torch.nn.functional.nll_loss(output, targets.reshape(-1)).item()
            picked = output.reshape(seq_len, BATCH, VOCAB).gather(2, targets[..., None])[..., 0]
            theirs[i + 1 : i + 1 + seq_len] = picked.double()
    their_loss = total_loss / (length - 1)

    model = purelm.from_torch_state_dict(module.state_dict())
    ours = scored_log_probs(model, tokens, batch_size=BATCH, seq_len=BPTT)
    # Token j*L + t is row t of column j in their layout.
    positions = np.arange(BATCH)[None, :] * length + np.arange(length)[:, None]
    their_rows = theirs.numpy()[1:]
    np.testing.assert_allclose(ours[positions[1:]], their_rows, rtol=1e-5, atol=1e-6)
    our_loss_on_their_tokens = -np.mean(ours[positions[1:]])
    assert math.exp(our_loss_on_their_tokens) == pytest.approx(math.exp(their_loss), rel=1e-6)
    # And ours scores the rest too: each column's first token but the stream's, and the tail.
    result = purelm.evaluate(model, tokens, batch_size=BATCH, seq_len=BPTT)
    assert result.count == N_TOKENS - 1 > BATCH * (length - 1)
