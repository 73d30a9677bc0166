"""word_language_model's evaluation layout, in numpy: a token stream cut into contiguous columns and windows.

`purelm.evaluate` and the `purelm eval` command (`purelm._inference._aot`) both score a stream this way; this module
holds the layout alone, without JAX or equinox, which the command loads only as far as it needs them.

>>> layout = Columns.of(np.arange(10, dtype=np.int32), batch_size=2, seq_len=3)
>>> layout.grid.shape        # [calls, windows per call, batch_size, seq_len]
(1, 2, 2, 3)
>>> layout.place(np.zeros(layout.grid.shape))[1:]   # every token but the first scored once
array([0., 0., 0., 0., 0., 0., 0., 0., 0.])
"""

from __future__ import annotations

import dataclasses

import numpy as np

from purelm._data._corpus import DataError
from purelm._data._tokenizer import check_ids

# Windows per compiled call: a power of two up to this many, so any stream length uses one of at most
# six compilations per (batch_size, seq_len).
MAX_WINDOWS_PER_CALL = 32
# Which tokens of a stream are scored (`Columns.of`).
LAYOUTS = ("purelm", "word_language_model")


def checked_stream(tokens, vocab_size: int, batch_size: int) -> tuple[np.ndarray, int]:
    """A text to score as `purelm eval` and `Run.evaluate` take it: at least 2 tokens, every id inside the
    vocabulary (else `DataError` / `TokenizerError`), as int32, and the number of columns, fewer than
    `batch_size` for a short text (each column needs 2 tokens).

    >>> checked_stream([1, 2, 3, 4, 5], 256, 32)
    (array([1, 2, 3, 4, 5], dtype=int32), 2)
    """
    tokens = np.asarray(tokens)
    if tokens.size < 2:
        raise DataError(f"the text to score has {tokens.size} token(s); scoring needs at least 2")
    check_ids(tokens, vocab_size, "the text to score")
    return tokens.astype(np.int32), max(1, min(batch_size, tokens.size // 2))


@dataclasses.dataclass(frozen=True)
class Columns:
    """A stream of `n` tokens laid out for scoring (see `purelm.evaluate` for the convention).

    `grid[call]` is what one compiled call reads: `[windows per call, batch_size, seq_len]` token ids, padded
    with token 0 after each column's real tokens. `place` puts the log-probabilities computed for the grid
    back at the positions of the stream.
    """

    grid: np.ndarray
    index: np.ndarray
    scored: np.ndarray
    n: int

    @classmethod
    def of(cls, tokens: np.ndarray, *, batch_size: int, seq_len: int, layout: str = "purelm") -> Columns:
        """Check `tokens` (a 1-D integer array of at least `max(2, batch_size)` ids) and lay it out.

        `layout="purelm"` scores every token but the first; `"word_language_model"` exactly the tokens
        their `evaluate()` averages over: positions 1 .. L-1 of each column of `L = n // batch_size`
        tokens (the tail `batchify` drops, and each column's first token, are context or not read)."""
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        tokens = np.asarray(tokens)
        if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError(
                f"evaluate needs a 1-D array of integer token ids, got {tokens.dtype} of shape {tokens.shape}"
            )
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"batch_size and seq_len must be positive, got {batch_size} and {seq_len}")
        n = tokens.shape[0]
        if n < max(2, batch_size):
            raise ValueError(f"evaluate needs at least max(2, batch_size={batch_size}) tokens, got {n}")
        if layout == "word_language_model" and n < 2 * batch_size:
            # Their columns score all but their first token: each needs two.
            raise ValueError(f"evaluate needs at least 2 * batch_size={batch_size} tokens in their layout, got {n}")
        length = n // batch_size
        # Column j reads tokens j*L .. (j+1)*L; the last one reads to the end of the stream.
        starts = np.arange(batch_size) * length
        if layout == "word_language_model":
            stops = starts + length
        else:
            stops = np.minimum(starts + length + 1, n)
            stops[-1] = n
        columns = int((stops - starts).max())
        windows = -(-columns // seq_len)
        per_call = min(MAX_WINDOWS_PER_CALL, 1 << (windows - 1).bit_length())
        calls = -(-windows // per_call)
        positions = np.arange(calls * per_call * seq_len)
        index = starts[:, None] + positions[None, :]
        valid = index < stops[:, None]
        # Padding reads token 0 after the real tokens of a column: it changes nothing that is kept.
        grid = np.where(valid, tokens[np.minimum(index, n - 1)], 0).astype(np.int32)
        # [calls, per_call, batch, seq_len]: window w of every column, per_call windows per compiled call.
        grid = grid.reshape(batch_size, calls, per_call, seq_len).transpose(1, 2, 0, 3)
        # Position 0 of every column is context: the first token of the stream, or one scored by the column
        # before.
        return cls(grid=grid, index=index, scored=valid & (positions[None, :] > 0), n=n)

    def place(self, log_probs: np.ndarray) -> np.ndarray:
        """The stream's log-probabilities (`[n]`, float64; NaN for a token not scored) from those of the grid
        (`[calls, windows per call, batch_size, seq_len]`, in any float dtype)."""
        out = np.full(self.n, np.nan)
        out[self.index[self.scored]] = self._scored(log_probs)
        return out

    def mean_nats(self, log_probs: np.ndarray) -> tuple[float, int]:
        """Mean negative log-likelihood of every scored token and how many there are (`evaluate`'s numbers)."""
        scored = self._scored(log_probs)
        return float(-np.sum(scored, dtype=np.float64) / scored.size), int(scored.size)

    def _scored(self, log_probs: np.ndarray) -> np.ndarray:
        """The scored tokens' log-probabilities (float64), in stream order: column by column, each in order."""
        batch_size = self.grid.shape[2]
        by_column = np.asarray(log_probs, np.float64).reshape(-1, batch_size, self.grid.shape[3])
        return by_column.transpose(1, 0, 2).reshape(batch_size, -1)[self.scored]
