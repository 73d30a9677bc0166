"""How a loss reads: mean nats per token, as bits per byte for byte-level models and as perplexity for
word-level ones (word_language_model prints perplexity), in one place for every record and every line
purelm prints.

>>> format_loss(1.6005, "byte")
'2.3090 bits/byte'
>>> format_loss(5.0, "word", "eval", count=217_646)
'perplexity 148.41 (loss 5.0000, 217,646 words)'
>>> unit_metric(5.0, "word")
('perplexity', 148.4131591025766)
"""

from __future__ import annotations

import dataclasses
import math

# The lines a loss appears in, by the tokenizer's unit. Fields: `bits`, `perplexity`, `nats`, and what the
# caller adds (`count` tokens scored, the evaluation layout `batch_size` and `seq_len`).
_FORMATS = {
    "byte": {
        "line": "{bits:.4f} bits/byte",
        "short": "{bits:.3f} bits/byte",
        "eval": "{bits:.4f} bits/byte, perplexity {perplexity:.3f} ({count:,} bytes)",
        "report": "bits per byte: {bits:.4f}\nperplexity:    {perplexity:.4f}  (per byte; loss {nats:.4f} nats)",
    },
    "word": {
        "line": "perplexity {perplexity:.2f}",
        "short": "ppl {perplexity:.2f}",
        "eval": "perplexity {perplexity:.2f} (loss {nats:.4f}, {count:,} words)",
        "report": "perplexity: {perplexity:.4f}  (per word; loss {nats:.6f} nats; batch {batch_size}, "
        "seq-len {seq_len})",
    },
}


def bits_per_byte(nats: float) -> float:
    """Convert a per-byte loss in nats to bits.

    >>> round(bits_per_byte(math.log(256)), 6)  # a uniform guess over 256 bytes
    8.0
    """
    return nats / math.log(2)


def perplexity(nats: float) -> float:
    """`exp(nats)`, capped short of float overflow (a diverging run's loss can be huge)."""
    return math.exp(min(nats, 700))


def unit_metric(nats: float, unit: str) -> tuple[str, float]:
    """The number a loss in `unit`s is read as, and its name in metrics records: `("bpb", bits per byte)`
    for bytes, `("perplexity", perplexity)` for words."""
    if unit == "byte":
        return "bpb", bits_per_byte(nats)
    return "perplexity", perplexity(nats)


def format_loss(nats: float, unit: str, style: str = "line", **details) -> str:
    """A loss of `nats` per `unit` as printed: `style` "line" (summaries), "short" (the progress line),
    "eval" (a validation during training; needs `count`) or "report" (`purelm eval`; word runs need
    `batch_size` and `seq_len`)."""
    values = {"nats": nats, "bits": bits_per_byte(nats), "perplexity": perplexity(nats), **details}
    return _FORMATS["byte" if unit == "byte" else "word"][style].format(**values)


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
        # inf for a loss past exp's range (a diverged model), not an OverflowError.
        ppl = math.exp(nats) if nats < 709 or not math.isfinite(nats) else math.inf
        return cls(nats=nats, count=count, perplexity=ppl, bits_per_token=bits_per_byte(nats))
