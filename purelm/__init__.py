"""purelm: an LSTM language model as a pure Equinox pytree, with its PyTorch original."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Each public name and the private module defining it, imported on first use (PEP 562): the `purelm`
# command installs its signal handlers before JAX is loaded, and `import purelm` itself stays fast.
_EXPORTS = {
    "batch_initial_state": "purelm._model",
    "batch_loss": "purelm._train",
    "batchify": "purelm._data",
    "bits_per_byte": "purelm._evaluate",
    "CheckpointError": "purelm._checkpoint",
    "DataError": "purelm._data",
    "DataSpec": "purelm._data",
    "evaluate": "purelm._evaluate",
    "Evaluation": "purelm._evaluate",
    "from_torch": "purelm.interop",
    "from_torch_state_dict": "purelm.interop",
    "greedy": "purelm._sample",
    "GRUCell": "purelm._model",
    "keep_freed_memory": "purelm._host_memory",
    "load_checkpoint": "purelm._checkpoint",
    "load_corpus": "purelm._data",
    "load_model": "purelm._checkpoint",
    "load_torch_file": "purelm.interop",
    "LSTMCell": "purelm._model",
    "LSTMLM": "purelm._model",
    "make_train_step": "purelm._train",
    "make_train_steps": "purelm._train",
    "mean_loss": "purelm._evaluate",
    "RNNCell": "purelm._model",
    "sample": "purelm._sample",
    "save_checkpoint": "purelm._checkpoint",
    "sequence_loss": "purelm._train",
    "State": "purelm._model",
    "StateDictError": "purelm.interop",
    "to_torch": "purelm.interop",
    "token_log_probs": "purelm._train",
    "train_tutorial": "purelm._train",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'purelm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from purelm._checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
    from purelm._data import DataError, DataSpec, batchify, load_corpus
    from purelm._evaluate import Evaluation, bits_per_byte, evaluate, mean_loss
    from purelm._host_memory import keep_freed_memory
    from purelm._model import LSTMLM, GRUCell, LSTMCell, RNNCell, State, batch_initial_state
    from purelm._sample import greedy, sample
    from purelm._train import batch_loss, make_train_step, make_train_steps, sequence_loss, token_log_probs, train_tutorial
    from purelm.interop import StateDictError, from_torch, from_torch_state_dict, load_torch_file, to_torch
