"""Held-out scoring: `evaluate` (every token of a stream, word_language_model's convention), `score` (the
same for any text a run validates on) and `mean_loss`.

Training validates with these; the `purelm eval` command runs `score_windows` compiled ahead of time
(`purelm._inference._aot`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from purelm._data._columns import Columns, checked_stream
from purelm._data._metrics import Evaluation
from purelm._model._fused import batch_token_log_probs
from purelm._model._lstmlm import LSTMLM, batch_initial_state
from purelm._runtime import _signals
from purelm.training._losses import batch_loss


def evaluate(model: LSTMLM, tokens, *, batch_size: int = 10, seq_len: int = 35, layout: str = "purelm") -> Evaluation:
    """Score every token of a stream but the first, in word_language_model's layout (`layout="purelm"`), or
    exactly the tokens their `evaluate()` averages over (`layout="word_language_model"`).

    The convention: the `N` tokens are cut into `batch_size` contiguous columns as word_language_model's
    `batchify` cuts them (column length `L = N // batch_size`), and every column starts from the model's
    initial state. Column `j` reads tokens `j*L .. (j+1)*L`: one token more than its share, so the token
    that starts column `j+1` is scored at the end of column `j`, and the last column continues through the
    `N % batch_size` tail tokens that `batchify` drops. So every token except the very first is scored
    exactly once (`count == N - 1`; the first token is context only, nothing precedes it), and every
    token word_language_model scores is scored with the same context and the same state. Columns are read
    in windows of `seq_len` tokens with the state carried (the windows change no number, only memory).

    `layout="word_language_model"` averages over their tokens alone: positions 1 .. L-1 of each column
    (`count == batch_size * (L - 1)`), so a model whose initial state is zero (converted from torch, or
    trained with `learn_initial_state=False`) gets the perplexity their script prints, to float rounding.

    One compiled program serves every stream length: the windows are padded to a fixed shape, and a
    `jax.lax.scan` runs a power-of-two number of them (at most 32) per call.

    Example:
        >>> result = evaluate(model, jnp.array(test_ids), batch_size=10, seq_len=35)   # doctest: +SKIP
        >>> result.perplexity, result.count                                            # doctest: +SKIP
    """
    columns, log_probs = _score_columns(model, tokens, batch_size=batch_size, seq_len=seq_len, layout=layout)
    return Evaluation.from_nats(*columns.mean_nats(log_probs))


def score(model, tokens: np.ndarray, *, batch_size: int, seq_len: int, layout: str = "purelm") -> Evaluation:
    """Score `tokens` with `purelm.evaluate` (word_language_model's layout: `batch_size` contiguous columns,
    `seq_len` windows; every token but the first, or with `layout="word_language_model"` theirs). Short texts
    use fewer columns."""
    tokens, batch_size = checked_stream(tokens, model.vocab_size, batch_size)
    return evaluate(model, tokens, batch_size=batch_size, seq_len=seq_len, layout=layout)


def scored_log_probs(
    model: LSTMLM, tokens, *, batch_size: int = 10, seq_len: int = 35, layout: str = "purelm"
) -> np.ndarray:
    """The log-probability `evaluate` gives each token of the stream (`[N]`, float64; NaN for a token it
    does not score: the first, and with `layout="word_language_model"` each column's first and the tail).

    Example:
        >>> scored_log_probs(model, jnp.array([4, 8, 15, 16, 23, 42]), batch_size=2, seq_len=2)   # doctest: +SKIP
    """
    columns, log_probs = _score_columns(model, tokens, batch_size=batch_size, seq_len=seq_len, layout=layout)
    return columns.place(log_probs)


def _score_columns(model: LSTMLM, tokens, *, batch_size: int, seq_len: int, layout: str) -> tuple[Columns, np.ndarray]:
    """The stream laid out in columns, and the log-probabilities of its grid."""
    columns = Columns.of(tokens, batch_size=batch_size, seq_len=seq_len, layout=layout)
    tokens = np.asarray(tokens)
    if tokens.min() < 0 or tokens.max() >= model.vocab_size:
        raise ValueError(f"token ids must be in [0, {model.vocab_size}), got {tokens.min()}..{tokens.max()}")
    states = batch_initial_state(model, batch_size)
    pieces = []
    for windows in columns.grid:
        # A pending signal stops a long evaluation between two calls (inside the training loop it raises only
        # within `interruptible()`). Each call is waited for (no queue of calls to wait behind when stopping;
        # a call scores up to 32 windows, so the overlap lost is small): a signal acts within one call.
        _signals.check()
        # device_put, not jnp.asarray: the latter compiles a program per distinct shape (JAX 0.10).
        states, log_probs = _score_windows(model, jax.device_put(windows), states)
        pieces.append(log_probs.block_until_ready())
    return columns, np.stack(jax.device_get(pieces))


def score_windows(model, windows, states):
    """The log-probability of every token of `windows` (`[count, batch, seq]`, the windows read in order,
    the state carried from one to the next) and the states after them; uncompiled (`purelm._inference._aot` compiles
    it ahead of time for the `purelm eval` command)."""

    def body(states, batch):
        log_probs, states = batch_token_log_probs(model, batch, states)
        return states, log_probs.astype(jnp.promote_types(log_probs.dtype, jnp.float32))

    return jax.lax.scan(body, states, windows)


_score_windows = eqx.filter_jit(score_windows)


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
