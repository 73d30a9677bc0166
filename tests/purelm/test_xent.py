"""The fused, chunked output layer + cross-entropy against the straightforward loss and its autodiff."""

import types

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purelm
from purelm._model import _xent
from purelm._model._xent import fused_token_log_probs, head_of, linear_log_probs, plain_token_log_probs

TOKENS, HIDDEN, VOCAB = 37, 6, 50


def reference(h, weight, bias, targets):
    """The loss as written in textbooks: materialised logits, log-softmax, pick."""
    logits = h @ weight.T + (0 if bias is None else bias)
    return jax.nn.log_softmax(logits)[jnp.arange(h.shape[0]), targets]


def inputs(dtype, seed=0):
    k = jax.random.split(jax.random.key(seed), 5)
    h = jax.random.normal(k[0], (TOKENS, HIDDEN), dtype)
    weight = jax.random.normal(k[1], (VOCAB, HIDDEN), dtype)
    bias = jax.random.normal(k[2], (VOCAB,), dtype)
    targets = jax.random.randint(k[3], (TOKENS,), 0, VOCAB)
    weights = jax.random.normal(k[4], (TOKENS,), dtype)
    return h, weight, bias, targets, weights


def gradients(fn, h, weight, bias, targets, cotangent):
    """Value and gradients of `sum(cotangent * fn(...))` with respect to h, weight and bias."""
    loss = lambda h, weight, bias: jnp.sum(cotangent * fn(h, weight, bias, targets))
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(h, weight, bias)


# chunk 8: five chunks, the last one padded with three tokens; 37: one chunk; 100: larger than the input.
# Uniform: what a mean or summed loss gives (the saved-gradient path); weighted: the recomputing path.
@pytest.mark.parametrize(
    ("chunk", "with_bias", "cotangent"),
    [(8, True, "uniform"), (8, False, "weighted"), (37, False, "uniform"), (100, True, "weighted")],
)
def test_fused_matches_reference_float64(chunk, with_bias, cotangent):
    with jax.enable_x64(True):
        h, weight, bias, targets, weights = inputs(jnp.float64)
        bias = bias if with_bias else None
        g = jnp.full(TOKENS, -1.0 / TOKENS) if cotangent == "uniform" else weights
        fused = lambda *a: fused_token_log_probs(*a, chunk=chunk)
        np.testing.assert_allclose(fused(h, weight, bias, targets), reference(h, weight, bias, targets), atol=1e-12)
        value, grads = gradients(fused, h, weight, bias, targets, g)
        value_ref, grads_ref = gradients(reference, h, weight, bias, targets, g)
        np.testing.assert_allclose(value, value_ref, rtol=1e-12)
        assert (grads[2] is None) == (not with_bias)
        for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref), strict=True):
            np.testing.assert_allclose(got, want, atol=1e-9, rtol=1e-9)


def test_general_path_handles_zero_cotangents():
    # A mask (zeros for some tokens) is not uniform: the recomputing path must skip those tokens exactly.
    with jax.enable_x64(True):
        h, weight, bias, targets, _ = inputs(jnp.float64, seed=1)
        mask = (jnp.arange(TOKENS) % 3 != 0).astype(jnp.float64)
        fused = lambda *a: fused_token_log_probs(*a, chunk=10)
        _, grads = gradients(fused, h, weight, bias, targets, mask)
        _, grads_ref = gradients(reference, h, weight, bias, targets, mask)
        for got, want in zip(grads, grads_ref, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-9, rtol=1e-9)
        np.testing.assert_array_equal(grads[0][::3], 0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_low_precision_accumulates_in_float32(dtype):
    h, weight, bias, targets, _ = inputs(jnp.float32, seed=2)
    low = [x.astype(dtype) for x in (h, weight, bias)]
    g = jnp.full(TOKENS, 1.0 / TOKENS)
    value, grads = gradients(lambda *a: fused_token_log_probs(*a, chunk=8), *low, targets, g)
    # The reference sees the same rounded inputs, computed in float32 throughout.
    value_ref, grads_ref = gradients(reference, *[x.astype(jnp.float32) for x in low], targets, g)
    assert fused_token_log_probs(*low, targets).dtype == jnp.float32
    tolerance = 1e-5 if dtype == jnp.float32 else 2e-2
    np.testing.assert_allclose(value, value_ref, rtol=tolerance)
    for got, want in zip(grads, grads_ref, strict=True):
        assert got.dtype == dtype
        np.testing.assert_allclose(got.astype(jnp.float32), want, atol=tolerance * float(jnp.abs(want).max()))


def test_dispatch_by_size(monkeypatch):
    h, weight, bias, targets, _ = inputs(jnp.float32)

    def uses_fused():
        jaxpr = jax.make_jaxpr(lambda h: linear_log_probs(h, weight, bias, targets))(h)
        return "custom_vjp" in str(jaxpr)

    monkeypatch.setattr(_xent, "PLAIN_MAX_ELEMENTS", TOKENS * VOCAB)
    assert not uses_fused()
    monkeypatch.setattr(_xent, "PLAIN_MAX_ELEMENTS", TOKENS * VOCAB - 1)
    assert uses_fused()
    np.testing.assert_allclose(
        linear_log_probs(h, weight, bias, targets), plain_token_log_probs(h, weight, bias, targets), rtol=1e-5
    )


def test_no_reduction_over_the_tokens_of_a_chunk():
    # XLA CPU reduced the leading (token) axis of a [chunk, vocab] matrix 50x slower than a vector-matrix
    # product (85 ms against 1.7 ms per chunk at (w)'s shapes; it was half of a (w) training step). The bias
    # gradient is such a column sum: the training path must compute it as a dot. This checks the traced
    # program (the form), not a timing.
    h, weight, bias, targets, _ = inputs(jnp.float32)
    loss = lambda h, weight, bias: -jnp.mean(fused_token_log_probs(h, weight, bias, targets, chunk=8))
    jaxpr = jax.make_jaxpr(jax.grad(loss, argnums=(0, 1, 2)))(h, weight, bias)

    def equations(jaxpr):
        for eqn in jaxpr.eqns:
            yield eqn
            for param in eqn.params.values():
                for sub in param if isinstance(param, tuple | list) else (param,):
                    inner = getattr(sub, "jaxpr", sub)  # a ClosedJaxpr holds a Jaxpr
                    if hasattr(inner, "eqns"):
                        yield from equations(inner)

    found = list(equations(jaxpr.jaxpr))
    assert any(eqn.primitive.name == "dot_general" for eqn in found)
    column_sums = [
        eqn
        for eqn in found
        if eqn.primitive.name == "reduce_sum"
        and eqn.invars[0].aval.shape[-1:] == (VOCAB,)
        and eqn.invars[0].aval.ndim == 2
        and 0 in eqn.params["axes"]
    ]
    assert column_sums == []


def test_head_of_untied_tied_and_tied_with_bias():
    untied = purelm.LSTMLM(11, 4, 5, key=jax.random.key(0))
    weight, bias = head_of(untied)
    assert weight.shape == (11, 5) and bias.shape == (11,)
    tied = purelm.LSTMLM(11, 5, 5, tie_embeddings=True, key=jax.random.key(0))
    weight, bias = head_of(tied)
    assert weight is tied.embedding or np.array_equal(weight, tied.embedding)
    # A tied model with an output bias, and a model with its own `head_params`, whichever the model has.
    bare = types.SimpleNamespace(head=None, embedding=jnp.ones((3, 2)), output_bias=jnp.arange(3.0))
    assert head_of(bare)[1] is bare.output_bias
    custom = types.SimpleNamespace(head_params=lambda: ("w", "b"))
    assert head_of(custom) == ("w", "b")


@pytest.mark.parametrize("tied", [False, True])
def test_batch_loss_through_the_fused_head(monkeypatch, tied):
    # Force the fused head on a small model; `batch_loss` and its gradient must still equal the
    # per-sequence model's (which materialises its logits), float64.
    monkeypatch.setattr(_xent, "PLAIN_MAX_ELEMENTS", 0)
    monkeypatch.setattr(_xent, "CHUNK_ELEMENTS", 3 * 19)  # 3 tokens per chunk: several chunks, padded
    with jax.enable_x64(True):
        # Tied with word_language_model's output bias: the bias's gradient comes through the fused head too.
        extra = {"output_bias": True} if tied else {}
        model = purelm.LSTMLM(19, 5, 5, tie_embeddings=tied, key=jax.random.key(3), dtype=jnp.float64, **extra)
        tokens = jax.random.randint(jax.random.key(4), (2, 7), 0, 19)

        def vmapped(model):
            losses, _ = jax.vmap(purelm.sequence_loss, in_axes=(None, 0))(model, tokens)
            return jnp.sum(losses) / tokens.size

        def fused(model):
            return purelm.batch_loss(model, tokens)[0]

        assert "custom_vjp" in str(jax.make_jaxpr(fused)(model))
        # Compiled whole: op by op, every small op would compile on its own.
        value, grads = eqx.filter_jit(eqx.filter_value_and_grad(fused))(model)
        value_ref, grads_ref = eqx.filter_jit(eqx.filter_value_and_grad(vmapped))(model)
        np.testing.assert_allclose(value, value_ref, rtol=1e-12)
        for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref), strict=True):
            np.testing.assert_allclose(got, want, atol=1e-9, rtol=1e-9)
