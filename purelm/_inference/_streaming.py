"""Sampling in fixed-size chunks, so a long generation streams its output and stays interruptible.

`purelm.sample` draws all `length` tokens in one compiled call: Python (and so Ctrl-C) gets control back
only at the end. `sample_stream` yields the same tokens (same key, same draws) in chunks of `chunk`
tokens, from one compiled program whatever `length` is (the last chunk is padded and cut), and checks
for a signal between chunks.

>>> for tokens in sample_stream(model, jax.random.key(0), prompt, 100_000, temperature=0.8):  # doctest: +SKIP
...     sys.stdout.buffer.write(bytes(tokens.tolist()))
"""

from __future__ import annotations

from collections.abc import Iterator

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int, PRNGKeyArray

from purelm._inference._sample import check_options, draw
from purelm._model._lstmlm import LSTMLM
from purelm._runtime import _signals

DEFAULT_CHUNK = 256


def sample_stream(
    model: LSTMLM,
    key: PRNGKeyArray,
    prompt_tokens: Int[Array, " prompt"],
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    *,
    chunk: int = DEFAULT_CHUNK,
) -> Iterator[np.ndarray]:
    """Yield the `length` tokens `purelm.sample(model, key, prompt_tokens, length, temperature, top_k)` draws,
    as numpy int32 arrays of at most `chunk` tokens each."""
    check_options(model, temperature, top_k)
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    if length <= 0:
        return
    # The keys `sample` splits for the whole length, so chunked and one-call sampling draw the same tokens.
    keys = jax.random.split(key, length)
    state = _read_prompt(model, model.initial_state(), jnp.asarray(prompt_tokens, jnp.int32))
    scale = jnp.asarray(temperature)
    previous: tuple[Array, int] | None = None
    for start in range(0, length, chunk):
        _signals.check()
        part = keys[start : start + chunk]
        count = part.shape[0]
        if count < chunk:  # pad the last chunk so its shape (and compiled program) is the usual one
            part = jnp.concatenate([part, jnp.repeat(part[-1:], chunk - count, axis=0)])
        # Dispatch the next chunk before handing out the previous one: the device draws while the caller
        # decodes and prints.
        state, tokens = _draw(model, state, part, scale, top_k)
        if previous is not None:
            yield np.asarray(jax.device_get(previous[0]))[: previous[1]]
        previous = (tokens, count)
    _signals.check()
    assert previous is not None  # length > 0: the loop ran at least once
    yield np.asarray(jax.device_get(previous[0]))[: previous[1]]


@eqx.filter_jit
def _read_prompt(model, state, prompt):
    return model(prompt, state)[1]


@eqx.filter_jit
def _draw(model, state, keys, temperature, top_k):
    return draw(model, state, keys, temperature, top_k)
