"""Metrics for other tools, besides `DIR/metrics.jsonl`: a CSV table (`DIR/metrics.csv`) and TensorBoard event
files (`DIR/tensorboard/`, with the optional `tensorboardX`). Each is a callback fed every metrics record
(`Callback.on_record`); a resumed run drops what came after its step, as metrics.jsonl does.

>>> run = Run.create(config, "runs/x", log_to=("jsonl", "csv", "tensorboard"))  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from purelm._runtime._files import atomic_write_bytes
from purelm.training._callback import Callback

LOGGERS = ("jsonl", "csv", "tensorboard")
CSV_FILE = "metrics.csv"
TENSORBOARD_DIR = "tensorboard"


class CSVLogger(Callback):
    """`DIR/metrics.csv`: one row per metrics record (a log line or a validation), one column per metric of
    either kind, empty where a record has none (the validation columns of a log line, for instance)."""

    def __init__(self):
        self.columns: list[str] = []

    def on_start(self, run) -> None:
        if not run.writer:
            return
        metric = "bpb" if run.tokenizer.unit == "byte" else "perplexity"
        self.columns = ["step", "train_loss", f"train_{metric}", "lr", "elapsed_s", "tokens_per_s"]
        self.columns += ["val_loss", "val_perplexity"] + (["val_bpb"] if metric == "bpb" else [])
        self.columns += ["val_tokens", "improved"]
        run.out.mkdir(parents=True, exist_ok=True)
        # Rewritten whole: a resumed run keeps the rows up to its step and drops the rest.
        atomic_write_bytes(self._path(run), self._rows([{c: c for c in self.columns}, *run.records]))

    def on_record(self, run, record: dict) -> None:
        if run.writer:
            with self._path(run).open("ab") as f:
                f.write(self._rows([record]))

    @staticmethod
    def _path(run) -> Path:
        return Path(run.out) / CSV_FILE

    def _rows(self, records: Sequence[dict]) -> bytes:
        text = io.StringIO()
        writer = csv.DictWriter(text, self.columns, extrasaction="ignore", lineterminator="\n")
        writer.writerows(records)
        return text.getvalue().encode("utf-8")


def _summary_writer():
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError(
            "TensorBoard logging needs tensorboardX: pip install 'purelm[tensorboard]' (or tensorboardX)"
        ) from None
    return SummaryWriter


class TensorBoardLogger(Callback):
    """TensorBoard event files in `DIR/tensorboard/`: every number of every record as a scalar at its step
    (`train/loss`, `train/bpb`, `val/perplexity`, `lr`, `tokens_per_s`, ...). A resumed run purges what an
    earlier process logged after its step. Needs `tensorboardX` (`pip install 'purelm[tensorboard]'`)."""

    def __init__(self):
        self._writer_type = _summary_writer()
        self._writer = None
        self._start = 0
        self._purge_step: int | None = None

    def on_start(self, run) -> None:
        self._start = run.step_count
        self._purge_step = run.step_count + 1 if run.step_count else None

    def on_record(self, run, record: dict) -> None:
        if not run.writer:
            return
        if self._writer is None:
            directory = Path(run.out) / TENSORBOARD_DIR
            # The file's name has the second it was made in: a resumed run needs one of its own.
            suffix = f".{os.getpid()}.{self._start}"
            self._writer = self._writer_type(str(directory), purge_step=self._purge_step, filename_suffix=suffix)
        for key, value in record.items():
            if key != "step" and isinstance(value, int | float) and not isinstance(value, bool):
                tag = key.replace("_", "/", 1) if key.startswith(("train_", "val_")) else key
                self._writer.add_scalar(tag, value, record["step"])
        if "val_loss" in record:
            self._writer.flush()

    def on_end(self, run, result) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def loggers(names: Sequence[str]) -> list[Callback]:
    """The callbacks that write the metrics `names` asks for ("csv", "tensorboard"; "jsonl" is always written)."""
    unknown = [name for name in names if name not in LOGGERS]
    if unknown:
        raise ValueError(f"log_to names {', '.join(LOGGERS)}; got {unknown[0]!r}")
    kinds = {"csv": CSVLogger, "tensorboard": TensorBoardLogger}
    return [kinds[name]() for name in dict.fromkeys(names) if name in kinds]
