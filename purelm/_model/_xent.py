"""The output layer and cross-entropy, fused and chunked: log-probabilities without [tokens, vocab] logits.

`linear_log_probs(h, weight, bias, targets)` returns `log_softmax(h @ weight.T + bias)[i, targets[i]]` for
every token `i`, the scores of a language model's head. For a large vocabulary (word level: 33,278 words
for word_language_model's Wikitext-2) the straightforward version writes a `[tokens, vocab]` logits
matrix, its log-softmax, and in the backward pass its gradient: three passes over 93 MB for 700 tokens,
more memory traffic than arithmetic. Here the tokens are cut into chunks; one chunk's logits
(`[chunk, vocab]`) is the largest thing that ever exists.

How the blocks are chosen, and what is recomputed (docs/purelm-performance.md):

- Liger Kernel's fused linear cross-entropy chunks over tokens and computes the gradients *in the
  forward pass* (the chunk's softmax is at hand there), so the head's three matmuls (logits, `dh`,
  `dW`) each run once. It can, because its loss is reduced to a scalar: the cotangent is one number.
- Apple's Cut Cross-Entropy blocks over tokens *and* vocabulary, keeps only the log-sum-exp from the
  forward pass, and recomputes each block's logits in the backward pass, which works for any
  per-token cotangent at the price of a fourth matmul.
- This module returns per-token log-probabilities (what `purelm.token_log_probs` promises), so the
  cotangent is a vector. Training losses sum or average them, which makes the cotangent the same
  number for every token. So the forward pass does what Liger does, assuming that: it computes the
  gradients for a cotangent of one per token. The backward pass checks the actual cotangent: when
  it is uniform (`g[i] == g[0]` for all i, every training step) the saved gradients are scaled by
  `g[0]`; otherwise (masked or weighted losses) it recomputes chunk by chunk as Cut Cross-Entropy
  does, with the real `g`. Both are exact; only the amount of work differs.
- On a CPU the chunks are large (hundreds of tokens, the whole vocabulary), not a GPU kernel's
  on-chip tiles: the matmuls need long operands to run near the machine's peak, and a chunk of
  `[chunk, vocab]` float32 then fits in the last-level cache instead of streaming through memory.
  For small vocabularies (byte level) everything is one chunk, and the fused version is still faster
  than plain autodiff (13-30% on the head alone on a 2-core x86 CPU, `python benchmarks/profile_w.py`):
  it makes one pass fewer over the logits. So `linear_log_probs` only falls back to the plain version at
  or below `PLAIN_MAX_ELEMENTS` logits (0: never, except for an empty batch).

Every matmul accumulates in float32 (or the inputs' type when wider, float64 in the tests); the
returned log-probabilities are float32 at least, whatever the parameters' type (bfloat16 included).

Usage:

    >>> import jax, jax.numpy as jnp
    >>> from purelm._model._xent import linear_log_probs
    >>> k = jax.random.split(jax.random.key(0), 3)
    >>> h = jax.random.normal(k[0], (700, 200))
    >>> weight = jax.random.normal(k[1], (33278, 200)) * 0.05
    >>> targets = jax.random.randint(k[2], (700,), 0, 33278)
    >>> log_probs = linear_log_probs(h, weight, None, targets)
    >>> log_probs.shape, log_probs.dtype
    ((700,), dtype('float32'))
"""

import math
from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

__all__ = [
    "PLAIN_MAX_ELEMENTS",
    "chunk_count",
    "fused_token_log_probs",
    "head_log_probs",
    "head_of",
    "linear_log_probs",
    "plain_token_log_probs",
]

# At or below this many logits (tokens x vocab) the plain, materialised version is used. On a 2-core
# x86 CPU the fused version is faster at every size tried, down to config (b)'s 512 x 65
# (docs/purelm-performance.md), so only an empty batch takes the plain path.
PLAIN_MAX_ELEMENTS = 0

# Target size of one chunk's logits, in elements (24 MB of float32): for word_language_model's 700 x
# 33,278 that is 4 chunks of 175 tokens, whose matmuls are long enough to run near the CPU's matmul
# speed; smaller chunks (32-96 tokens) were slower, larger ones (350, 700) need more memory for no
# reliable gain (docs/purelm-performance.md).
CHUNK_ELEMENTS = 6 * 2**20


def head_of(model) -> tuple[Float[Array, "vocab hidden"], Float[Array, " vocab"] | None]:
    """The output layer of an `LSTMLM` as `(weight [vocab, hidden], bias [vocab] or None)`.

    Uses `model.head_params()` where the model has it; otherwise an untied `eqx.nn.Linear` head, or the
    tied embedding with the model's optional `output_bias`.

    Example:
        >>> weight, bias = head_of(model)
    """
    head_params = getattr(model, "head_params", None)
    if head_params is not None:
        return head_params()
    if model.head is None:
        return model.embedding, getattr(model, "output_bias", None)
    return model.head.weight, model.head.bias


def linear_log_probs(
    h: Float[Array, "tokens hidden"],
    weight: Float[Array, "vocab hidden"],
    bias: Float[Array, " vocab"] | None,
    targets: Int[Array, " tokens"],
) -> Float[Array, " tokens"]:
    """`log_softmax(h @ weight.T + bias)[i, targets[i]]` for every token `i`, differentiable in `h`,
    `weight` and `bias`.

    Goes through `fused_token_log_probs` (never materialises the logits) above `PLAIN_MAX_ELEMENTS`
    logits, `plain_token_log_probs` otherwise; both compute the same numbers.

    Example:
        >>> log_probs = linear_log_probs(h, weight, bias, targets)   # [tokens], float32
    """
    if h.shape[0] * weight.shape[0] <= PLAIN_MAX_ELEMENTS:
        return plain_token_log_probs(h, weight, bias, targets)
    return fused_token_log_probs(h, weight, bias, targets)


def plain_token_log_probs(h, weight, bias, targets) -> Float[Array, " tokens"]:
    """The straightforward version: the whole logits matrix, `jax.nn.log_softmax`, plain autodiff."""
    logits = jnp.matmul(h, weight.T, preferred_element_type=_accumulator(h, weight))
    if bias is not None:
        logits = logits + bias
    log_probs = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(log_probs, targets[:, None], axis=-1)[:, 0]


def fused_token_log_probs(h, weight, bias, targets, *, chunk: int | None = None) -> Float[Array, " tokens"]:
    """The chunked version with the hand-written backward pass (see the module docstring).

    `chunk` is the number of tokens per chunk (default: about `CHUNK_ELEMENTS` logits per chunk).
    """
    return _fused(chunk_count(h.shape[0], weight.shape[0], chunk), h, weight, bias, targets)


def chunk_count(tokens: int, vocab: int, chunk: int | None = None) -> int:
    """How many chunks `fused_token_log_probs` cuts `tokens` into (`chunk` tokens each at most; default:
    about `CHUNK_ELEMENTS` logits per chunk). Equal chunks, as few as the target size allows, so that the
    padding is less than one token per chunk."""
    if chunk is None:
        chunk = max(1, CHUNK_ELEMENTS // vocab)
    return math.ceil(tokens / min(chunk, tokens))


def _accumulator(*arrays):
    return jnp.promote_types(jnp.result_type(*arrays), jnp.float32)


def _chunks(count, h, targets):
    """`h` and `targets` cut into `count` equal chunks (zero-padded), and a mask of the real tokens."""
    tokens = h.shape[0]
    size = math.ceil(tokens / count)
    pad = count * size - tokens
    valid = jnp.arange(count * size) < tokens
    h = jnp.pad(h, ((0, pad), (0, 0))).reshape(count, size, -1)
    targets = jnp.pad(targets, (0, pad)).reshape(count, size)
    return h, targets, valid.reshape(count, size)


def _chunk_logits(h, weight, bias, acc):
    logits = jnp.matmul(h, weight.T, preferred_element_type=acc)
    return logits if bias is None else logits + bias.astype(acc)


def _softmax_parts(logits, targets):
    """Log-sum-exp, picked logit and the softmax of one chunk's logits."""
    top = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    exp = jnp.exp(logits - top)
    total = jnp.sum(exp, axis=-1, keepdims=True)
    lse = (top + jnp.log(total))[:, 0]
    picked = jnp.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
    return lse, picked, exp / total


def _scan_chunks(body, carry, xs, count):
    # One chunk needs no loop (and no loop-carried copy of the weight gradient).
    if count == 1:
        carry, ys = body(carry, jax.tree.map(lambda x: x[0], xs))
        return carry, jax.tree.map(lambda y: y[None], ys)
    return jax.lax.scan(body, carry, xs)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _fused(count, h, weight, bias, targets):
    acc = _accumulator(h, weight)
    h_chunks, t_chunks, _ = _chunks(count, h, targets)

    def body(_, chunk):
        h_c, t_c = chunk
        lse, picked, _ = _softmax_parts(_chunk_logits(h_c, weight, bias, acc), t_c)
        return None, picked - lse

    _, log_probs = _scan_chunks(body, None, (h_chunks, t_chunks), count)
    return log_probs.reshape(-1)[: h.shape[0]]


def _gradient_chunk(h_c, t_c, g_c, weight, bias, acc):
    """One chunk's log-probabilities and the gradients for cotangent `g_c` ([chunk], zero on padding):
    d log p[i, t_i] / d logits[i] = onehot(t_i) - softmax(logits[i])."""
    lse, picked, probs = _softmax_parts(_chunk_logits(h_c, weight, bias, acc), t_c)
    onehot = t_c[:, None] == jnp.arange(weight.shape[0])
    dlogits = g_c[:, None] * (onehot - probs)
    # The two gradient matmuls take the logits' gradient in the parameters' type (bfloat16 stays
    # bfloat16, as autodiff would), accumulating in `acc`.
    dlogits_w = dlogits.astype(jnp.result_type(h_c, weight))
    dh = jnp.matmul(dlogits_w, weight, preferred_element_type=acc)
    dweight = jax.lax.dot_general(dlogits_w, h_c, (((0,), (0,)), ((), ())), preferred_element_type=acc)
    # The bias gradient (a column sum) as a vector-matrix product: XLA CPU reduced the leading axis of a
    # [chunk, vocab] matrix 50x slower (85 ms against 1.7 ms for a 175-token chunk of (w), jax 0.10.2).
    # HIGHEST: a sum must stay a float32 sum where default-precision dots round their inputs (TF32 on GPUs).
    ones = jnp.ones(dlogits.shape[0], dlogits.dtype)
    dbias = jnp.matmul(ones, dlogits, precision=jax.lax.Precision.HIGHEST)
    return picked - lse, dh, dweight, dbias


def _gradients(count, h, weight, bias, targets, g):
    """Log-probabilities and the gradients of `sum(g * log_probs)`, chunk by chunk."""
    acc = _accumulator(h, weight)
    h_chunks, t_chunks, valid = _chunks(count, h, targets)
    g_chunks = jnp.where(valid, jnp.pad(g, (0, valid.size - g.shape[0])).reshape(valid.shape), 0).astype(acc)

    def body(sums, chunk):
        dweight_sum, dbias_sum = sums
        log_probs, dh, dweight, dbias = _gradient_chunk(*chunk, weight, bias, acc)
        return (dweight_sum + dweight, dbias_sum + dbias), (log_probs, dh)

    # The first chunk's gradients start the sums: a zero-filled [vocab, hidden] accumulator would be one
    # more pass over (and, in a fresh buffer, one more page-faulting of) a weight-sized array per step.
    chunks = (h_chunks, t_chunks, g_chunks)
    log_probs, dh, dweight, dbias = _gradient_chunk(*(c[0] for c in chunks), weight, bias, acc)
    log_probs, dh = log_probs[None], dh[None]
    if count > 1:
        (dweight, dbias), (rest_log_probs, rest_dh) = _scan_chunks(
            body, (dweight, dbias), tuple(c[1:] for c in chunks), count - 1
        )
        log_probs = jnp.concatenate([log_probs, rest_log_probs])
        dh = jnp.concatenate([dh, rest_dh])
    tokens = h.shape[0]
    return log_probs.reshape(-1)[:tokens], dh.reshape(-1, h.shape[1])[:tokens], dweight, dbias


def _fused_fwd(count, h, weight, bias, targets):
    # Gradients for a cotangent of one per token, computed while each chunk's softmax is at hand.
    log_probs, dh, dweight, dbias = _gradients(count, h, weight, bias, targets, jnp.ones(h.shape[0]))
    return log_probs, (h, weight, bias, targets, dh, dweight, dbias)


def _fused_bwd(count, saved, g):
    h, weight, bias, targets, dh, dweight, dbias = saved

    def uniform(g):
        scale = g[0].astype(dh.dtype)
        return scale * dh, scale * dweight, scale * dbias

    def general(g):
        return _gradients(count, h, weight, bias, targets, g)[1:]

    dh, dweight, dbias = jax.lax.cond(jnp.all(g == g[0]), uniform, general, g)
    return (
        dh.astype(h.dtype),
        dweight.astype(weight.dtype),
        None if bias is None else dbias.astype(bias.dtype),
        None,
    )


_fused.defvjp(_fused_fwd, _fused_bwd)


def head_log_probs(model, h: Float[Array, "*rows hidden"], targets: Int[Array, "*rows"]) -> Float[Array, "*rows"]:
    """`linear_log_probs` through a model's output layer (`head_of`), for any leading shape.

    Example:
        >>> picked = head_log_probs(model, h_in, tokens.T)     # h_in [seq, batch, hidden]
    """
    weight, bias = head_of(model)
    flat = linear_log_probs(h.reshape(-1, h.shape[-1]), weight, bias, targets.reshape(-1))
    return flat.reshape(targets.shape)
