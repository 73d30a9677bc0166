"""The loss plot (train and validation bits per byte, or nats per word, against step), drawn with
matplotlib's Agg backend."""

from __future__ import annotations

import os
from collections.abc import Sequence


def plot_losses(records: Sequence[dict], path: str | os.PathLike[str], *, title: str = "") -> str | None:
    """Draw `records` (metrics.jsonl lines) to a PNG at `path`, atomically.

    Returns None on success, or a one-line reason when there is no plot (matplotlib missing, no data).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'purelm[plot]'), so there is no loss plot"
    from purelm._runtime._files import atomic_writer

    # Byte runs plot bits per byte; word runs (no *_bpb records) their loss in nats per word.
    per_byte = any("train_bpb" in r or "val_bpb" in r for r in records)
    train_key, val_key = ("train_bpb", "val_bpb") if per_byte else ("train_loss", "val_loss")
    train = [(r["step"], r[train_key]) for r in records if train_key in r]
    val = [(r["step"], r[val_key]) for r in records if val_key in r]
    if not train and not val:
        return "no metrics recorded yet, so there is no loss plot"
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    try:
        if train:
            ax.plot(*zip(*train, strict=True), label="train", linewidth=1.2)
        if val:
            ax.plot(*zip(*val, strict=True), label="validation", marker="o", markersize=3.5, linewidth=1.2)
        ax.set_xlabel("step")
        ax.set_ylabel("bits per byte" if per_byte else "loss (nats per word)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        with atomic_writer(path) as f:
            fig.savefig(f, format="png")
    finally:
        plt.close(fig)
    return None
