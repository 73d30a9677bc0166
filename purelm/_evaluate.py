"""Held-out scoring: `evaluate` (every token of a stream, word_language_model's convention) and `mean_loss`."""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from purelm._fused import batch_token_log_probs
from purelm._model import LSTMLM, batch_initial_state
from purelm._train import batch_loss

# Windows per compiled call of `evaluate`: a power of two up to this many, so any stream length uses one
# of at most six compilations per (batch_size, seq_len).
_MAX_WINDOWS_PER_CALL = 32


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What `evaluate` measured: mean negative log-likelihood per scored token (`nats`), how many tokens
    were scored (`count`), `perplexity = exp(nats)` and `bits_per_token = nats / ln 2`."""

    nats: float
    count: int
    perplexity: float
    bits_per_token: float

    @classmethod
    def from_nats(cls, nats: float, count: int) -> Evaluation:
        """The evaluation of `count` tokens with mean negative log-likelihood `nats`."""
        return cls(nats=nats, count=count, perplexity=math.exp(nats), bits_per_token=nats / math.log(2))


def evaluate(model: LSTMLM, tokens, *, batch_size: int = 10, seq_len: int = 35) -> Evaluation:
    """Score every token of a stream but the first, exactly as word_language_model's `evaluate()` does.

    The convention: the `N` tokens are cut into `batch_size` contiguous columns as word_language_model's
    `batchify` cuts them (column length `L = N // batch_size`), and every column starts from the model's
    initial state. Column `j` reads tokens `j*L .. (j+1)*L`: one token more than its share, so the token
    that starts column `j+1` is scored at the end of column `j`, and the last column continues through the
    `N % batch_size` tail tokens that `batchify` drops. So every token except the very first is scored
    exactly once (`count == N - 1`; the first token is context only, nothing precedes it), and every
    token word_language_model scores is scored with the same context and the same state. Columns are read
    in windows of `seq_len` tokens with the state carried (the windows change no number, only memory).

    One compiled program serves every stream length: the windows are padded to a fixed shape, and a
    `jax.lax.scan` runs a power-of-two number of them (at most 32) per call.

    Example:
        >>> result = evaluate(model, jnp.array(test_ids), batch_size=10, seq_len=35)   # doctest: +SKIP
        >>> result.perplexity, result.count                                            # doctest: +SKIP
    """
    log_probs = scored_log_probs(model, tokens, batch_size=batch_size, seq_len=seq_len)
    scored = log_probs[1:]
    return Evaluation.from_nats(float(-np.sum(scored, dtype=np.float64) / scored.size), int(scored.size))


def scored_log_probs(model: LSTMLM, tokens, *, batch_size: int = 10, seq_len: int = 35) -> np.ndarray:
    """The log-probability `evaluate` gives each token of the stream (`[N]`, float64; NaN for the first).

    Example:
        >>> scored_log_probs(model, jnp.array([4, 8, 15, 16, 23, 42]), batch_size=2, seq_len=2)   # doctest: +SKIP
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"evaluate needs a 1-D array of integer token ids, got {tokens.dtype} of shape {tokens.shape}")
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be positive, got {batch_size} and {seq_len}")
    n = tokens.shape[0]
    if n < max(2, batch_size):
        raise ValueError(f"evaluate needs at least max(2, batch_size={batch_size}) tokens, got {n}")
    if n and (tokens.min() < 0 or tokens.max() >= model.vocab_size):
        raise ValueError(f"token ids must be in [0, {model.vocab_size}), got {tokens.min()}..{tokens.max()}")
    length = n // batch_size
    # Column j reads tokens j*L .. (j+1)*L; the last one reads to the end of the stream.
    starts = np.arange(batch_size) * length
    stops = np.minimum(starts + length + 1, n)
    stops[-1] = n
    columns = int((stops - starts).max())
    windows = -(-columns // seq_len)
    per_call = min(_MAX_WINDOWS_PER_CALL, 1 << (windows - 1).bit_length())
    calls = -(-windows // per_call)
    positions = np.arange(calls * per_call * seq_len)
    index = starts[:, None] + positions[None, :]
    valid = index < stops[:, None]
    # Padding reads token 0 after the real tokens of a column: it changes nothing that is kept.
    grid = np.where(valid, tokens[np.minimum(index, n - 1)], 0).astype(np.int32)
    # [calls, per_call, batch, seq_len]: window w of every column, per_call windows per compiled call.
    grid = grid.reshape(batch_size, calls, per_call, seq_len).transpose(1, 2, 0, 3)
    states = batch_initial_state(model, batch_size)
    pieces = []
    for call in range(calls):
        states, log_probs = _score_windows(model, jnp.asarray(grid[call]), states)
        pieces.append(log_probs)
    log_probs = np.concatenate([np.asarray(piece, np.float64) for piece in jax.device_get(pieces)])
    log_probs = log_probs.transpose(1, 0, 2).reshape(batch_size, -1)
    out = np.full(n, np.nan)
    # Position 0 of every column is context: the first token of the stream, or one scored by the column before.
    scored = valid & (positions[None, :] > 0)
    out[index[scored]] = log_probs[scored]
    return out


@eqx.filter_jit
def _score_windows(model, windows, states):
    def body(states, batch):
        log_probs, states = batch_token_log_probs(model, batch, states)
        return states, log_probs.astype(jnp.promote_types(log_probs.dtype, jnp.float32))

    return jax.lax.scan(body, states, windows)


@eqx.filter_jit
def mean_loss(model: LSTMLM, windows: Int[Array, "windows batch seq"]) -> Float[Array, ""]:
    """Mean negative log-likelihood per token (nats) of `windows`, each row one contiguous stream.

    Window `w + 1` of a row continues from the state after window `w` (as in training), so the number
    matches what a truncated-BPTT-trained model sees. Unlike `evaluate`, each row's first token is scored
    from the initial state and only whole windows are read: use `evaluate` to score a held-out stream.

    >>> mean_loss(model, eval_windows(corpus.val, 32, 64))  # doctest: +SKIP
    """

    def body(states, batch):
        total, states = batch_loss(model, batch, states, reduction="sum")
        return states, total

    _, totals = jax.lax.scan(body, batch_initial_state(model, windows.shape[1]), windows)
    return jnp.sum(totals) / windows.size


def bits_per_byte(nats: float) -> float:
    """Convert a per-byte loss in nats to bits.

    >>> round(bits_per_byte(math.log(256)), 6)  # a uniform guess over 256 bytes
    8.0
    """
    return nats / math.log(2)
