"""Decoding: greedy (the tutorial's greedy_argmax) and temperature / top-k sampling, each one compiled loop."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from purelm._model._lstmlm import LSTMLM, State


def greedy(model: LSTMLM, state: State, length: int) -> Int[Array, " length"]:
    """Repeatedly take the most likely next token and feed it back, starting from `state`.

    Example:
        >>> greedy(model, model.initial_state(), 6)   # e.g. Array([ 4,  8, 15, 16, 23, 42], dtype=int32)
    """
    return _generate(model, state, jnp.zeros((0,), jnp.int32), None, None, length, None)


def sample(
    model: LSTMLM,
    key: PRNGKeyArray,
    prompt_tokens: Int[Array, " prompt"],
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
) -> Int[Array, " length"]:
    """Read `prompt_tokens` from the initial state, then draw `length` tokens; returns only the new ones.

    `temperature` is traced (changing it does not recompile); `length` and `top_k` are static.

    Example:
        >>> sample(model, jax.random.key(0), jnp.array([4, 8]), 10, temperature=0.8, top_k=5).shape
        (10,)
    """
    check_options(model, temperature, top_k)
    prompt = jnp.asarray(prompt_tokens, jnp.int32)
    return _generate(model, model.initial_state(), prompt, key, jnp.asarray(temperature), length, top_k)


def check_options(model: LSTMLM, temperature, top_k: int | None) -> None:
    """The `ValueError` for a temperature or top_k that `sample` (or `sample_stream`) cannot use."""
    if isinstance(temperature, int | float) and temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if top_k is not None and not 1 <= top_k <= model.vocab_size:
        raise ValueError(f"top_k must be between 1 and the vocabulary size {model.vocab_size}, got {top_k}")


def _choose(
    logits: Float[Array, " vocab"], key: PRNGKeyArray | None, temperature: Float[Array, ""] | None, top_k: int | None
) -> Int[Array, ""]:
    if key is None:
        return jnp.argmax(logits).astype(jnp.int32)
    logits = logits / temperature  # type: ignore[operator]  # sampling (a key) always has a temperature
    if top_k is not None:
        kth = jax.lax.top_k(logits, top_k)[0][-1]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(key, logits).astype(jnp.int32)


@eqx.filter_jit
def _generate(model, state, prompt, key, temperature, length, top_k):
    _, state = model(prompt, state)
    keys = None if key is None else jax.random.split(key, length)
    _, tokens = draw(model, state, keys, temperature, top_k, length)
    return tokens


def draw(model, state, keys, temperature, top_k, length=None):
    """The sampling loop (uncompiled): one token per key (greedy where `keys` is None, `length` steps),
    each fed back in; returns the final state and the tokens."""

    def body(state, step_key):
        token = _choose(model.next_logits(state), step_key, temperature, top_k)
        return model.step(token, state), token

    return jax.lax.scan(body, state, keys, length=length)
