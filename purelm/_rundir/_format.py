"""A run directory's format, in one place: its files, the metadata its checkpoint carries, and how a model
or a run is read back from it.

    DIR/checkpoint.safetensors  arrays and metadata (`purelm._rundir._checkpoint`; older runs: checkpoint.npz)
    DIR/hparams.json            a readable copy of the metadata; never read back
    DIR/metrics.jsonl           one JSON record per log line and per validation
    DIR/loss.png                the loss plot (`purelm train`)
    DIR/best/                   the best model by validation, itself a model directory

The metadata's `kind` says what the checkpoint holds: "train", a resumable training state (the trees
"model", "opt_state", "states" and "key") with the run's whole configuration (`config`); or "model",
a model alone (`best/`, `purelm convert-torch`). Both record the model settings (`model`) and the
tokenizer, so a model is rebuilt from its settings and never initialised only to be overwritten.
`run_format` 2 is today's format. Runs written before it (no `run_format`; settings under `model`, no
tokenizer: bytes) are read for sampling and evaluation, not resumed.

>>> model, tokenizer, meta = load_run_model("runs/demo")  # doctest: +SKIP
>>> meta["kind"], meta["step"]                            # doctest: +SKIP
('train', 1000)
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import jax

from purelm._data._tokenizer import ByteTokenizer, Tokenizer, TokenizerError, tokenizer_from_json
from purelm._rundir._checkpoint import (
    CheckpointError,
    checkpoint_file,
    load_checkpoint,
    read_meta,
    save_checkpoint,
)
from purelm._runtime._files import append_text, atomic_write_bytes
from purelm._runtime._version import __version__
from purelm.training._config import ConfigError, DataConfig, ModelConfig, TrainingConfig

RUN_FORMAT = 2
METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss.png"
BEST_DIR = "best"

PathLike = str | os.PathLike[str]


def holds_checkpoint(directory: PathLike) -> bool:
    """Whether `directory` already holds a checkpoint (of any run)."""
    return checkpoint_file(directory) is not None


# ------------------------------------------------------------------------------------------ writing


def run_meta(
    kind: str,
    model: ModelConfig,
    tokenizer: Tokenizer,
    *,
    step: int,
    config: TrainingConfig | None = None,
    **facts: Any,
) -> dict[str, Any]:
    """The metadata of a checkpoint of `kind` ("train" or "model"): the run format, the run's configuration
    (if it has one), the model settings, the tokenizer, the step, what the caller adds (`facts`: the data
    position, the best validation, the source of a converted model, ...) and the versions that wrote it."""
    meta: dict[str, Any] = {"kind": kind, "run_format": RUN_FORMAT}
    if config is not None:
        meta["config"] = config.to_json()
    return meta | {
        "model": model.to_json(),
        "tokenizer": tokenizer.to_json(),
        "step": step,
        **facts,
        "purelm_version": __version__,
        "jax_version": jax.__version__,
    }


def save_model_directory(directory: PathLike, model, tokenizer: Tokenizer, **facts: Any) -> Path:
    """Write `model` alone as a model directory (what `purelm convert-torch` writes), at step 0."""
    meta = run_meta("model", ModelConfig.of(model), tokenizer, step=0, **facts)
    return save_checkpoint(directory, {"model": model}, meta)


def write_metrics(directory: PathLike, records: list[dict]) -> None:
    """Replace `directory`'s metrics file with `records` (a resumed run drops what came after its step)."""
    atomic_write_bytes(Path(directory) / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in records).encode())


def append_metrics(directory: PathLike, record: dict) -> None:
    """Add one record to `directory`'s metrics file."""
    append_text(Path(directory) / METRICS_FILE, json.dumps(record) + "\n")


# ------------------------------------------------------------------------------------------ reading


def read_metrics(path: Path, up_to_step: int | None = None) -> list[dict]:
    """The records of a metrics.jsonl file (a broken last line, from a killed run, is dropped)."""
    records = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line)
                if isinstance(record, dict) and (up_to_step is None or record.get("step", 0) <= up_to_step):
                    records.append(record)
    return records


def model_settings(meta: dict) -> dict | None:
    """The model settings a checkpoint's metadata records, as stored (any run format), or None."""
    settings = (meta.get("config") or {}).get("model") or meta.get("model")
    return settings if isinstance(settings, dict) else None


def model_config_of(meta: dict) -> ModelConfig:
    """The model settings in a checkpoint's metadata (any run format)."""
    settings = model_settings(meta)
    if settings is None:
        raise ConfigError("the checkpoint records no model settings")
    return ModelConfig.from_json(settings)


def stored_config(directory: PathLike, meta: dict) -> TrainingConfig | None:
    """The run configuration a checkpoint's metadata records; None for a model without one (converted)."""
    if not meta.get("config"):
        return None
    try:
        return TrainingConfig.from_json(meta["config"])
    except (ConfigError, TypeError) as err:
        raise CheckpointError(f"{directory}: {err}") from None


def tokenizer_of(directory: PathLike, meta: dict) -> Tokenizer:
    """The tokenizer a checkpoint's metadata records (bytes where it records none)."""
    try:
        return tokenizer_from_json(meta.get("tokenizer"))
    except TokenizerError as err:
        raise CheckpointError(f"{directory}: {err}") from None


def eval_layout(directory: PathLike, meta: dict, tokenizer: Tokenizer) -> tuple[int, int, str]:
    """`(batch_size, seq_len, layout)` to evaluate the model with: its run's validation layout, or, for a
    model without a run configuration, the defaults for its tokenizer (`DataConfig.untrained`)."""
    config = stored_config(directory, meta)
    data = config.data if config is not None else DataConfig.untrained(tokenizer.kind)
    return (*data.eval_shape(), data.eval_layout)


def read_training(directory: PathLike) -> tuple[TrainingConfig, Tokenizer, dict]:
    """The configuration, tokenizer and metadata of the resumable training state in `directory`."""
    meta = read_meta(directory)
    if meta.get("kind") == "model":
        raise CheckpointError(
            f"{directory} holds a model without training state (from convert-torch or a best/ copy); cannot resume it"
        )
    if meta.get("kind") == "train" and "run_format" not in meta:
        raise CheckpointError(
            f"{directory} is a run from an older purelm (run format 1): sample and eval read it, "
            "but it cannot be resumed; start a new run"
        )
    if meta.get("kind") != "train" or meta.get("run_format") != RUN_FORMAT:
        raise CheckpointError(
            f"{directory}'s checkpoint is not a purelm training checkpoint of run format {RUN_FORMAT}"
        )
    config = stored_config(directory, meta)
    if config is None:
        raise CheckpointError(f"{directory}: the checkpoint records no run configuration")
    return config, tokenizer_of(directory, meta), meta


def load_model(directory: PathLike) -> tuple[Any, dict[str, Any]]:
    """The `LSTMLM` saved in a run directory (by `purelm train` or `purelm convert-torch`), and its metadata.

    The model's structure comes from the stored settings (`purelm.training.ModelConfig`); no weights are
    initialised only to be overwritten.

    >>> model, meta = load_model("runs/demo")  # doctest: +SKIP
    >>> meta["step"], model.hidden_dim        # doctest: +SKIP
    (1000, 128)
    """
    meta = read_meta(directory)
    try:
        template = model_config_of(meta).template()
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{directory}: the checkpoint's model settings are unusable ({err})") from None
    trees, meta = load_checkpoint(directory, {"model": template})
    return trees["model"], meta


def load_run_model(directory: PathLike) -> tuple[Any, Tokenizer, dict]:
    """The model saved in a run directory (train, convert-torch or best/), its tokenizer and metadata.

    >>> model, tokenizer, meta = load_run_model("runs/demo")  # doctest: +SKIP
    """
    model, meta = load_model(directory)
    tokenizer = tokenizer_of(directory, meta)
    if tokenizer.vocab_size != model.vocab_size:
        if isinstance(tokenizer, ByteTokenizer):
            raise CheckpointError(
                f"{directory} holds a model with a vocabulary of {model.vocab_size:,} but no word list, so its ids "
                "cannot be read or written as text; convert it again with --vocab DATA_DIR"
            )
        raise CheckpointError(
            f"{directory}: the word list has {tokenizer.vocab_size:,} words but the model a "
            f"vocabulary of {model.vocab_size:,}"
        )
    return model, tokenizer, meta
