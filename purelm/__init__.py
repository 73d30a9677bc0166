"""purelm: an LSTM language model as a pure Equinox pytree, with its PyTorch original."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from purelm._runtime._version import __version__ as __version__

# Each public name and the private module defining it, imported on first use (PEP 562): the `purelm`
# command installs its signal handlers before JAX is loaded, and `import purelm` itself stays fast.
_EXPORTS = {
    "batch_initial_state": "purelm._model._lstmlm",
    "batch_loss": "purelm.training._losses",
    "batchify": "purelm._data._corpus",
    "bits_per_byte": "purelm._data._metrics",
    "CheckpointError": "purelm._rundir._checkpoint",
    "DataError": "purelm._data._corpus",
    "DataSpec": "purelm._data._corpus",
    "evaluate": "purelm.training._evaluate",
    "Evaluation": "purelm._data._metrics",
    "from_torch": "purelm.interop",
    "from_torch_state_dict": "purelm.interop",
    "greedy": "purelm._inference._sample",
    "GRUCell": "purelm._model._lstmlm",
    "keep_freed_memory": "purelm._runtime._host_memory",
    "load_checkpoint": "purelm._rundir._checkpoint",
    "load_corpus": "purelm._data._corpus",
    "load_model": "purelm._rundir._format",
    "load_torch_file": "purelm.interop",
    "LSTMCell": "purelm._model._lstmlm",
    "LSTMLM": "purelm._model._lstmlm",
    "make_train_step": "purelm.training._steps",
    "make_train_steps": "purelm.training._steps",
    "mean_loss": "purelm.training._evaluate",
    "next_token_loss": "purelm.training._losses",
    "RNNCell": "purelm._model._lstmlm",
    "sample": "purelm._inference._sample",
    "save_checkpoint": "purelm._rundir._checkpoint",
    "save_rnn_model": "purelm.interop",
    "sequence_loss": "purelm.training._losses",
    "State": "purelm._model._lstmlm",
    "StateDictError": "purelm.interop",
    "to_rnn_model": "purelm.interop",
    "to_torch": "purelm.interop",
    "token_log_probs": "purelm.training._losses",
    "train_tutorial": "purelm.training._steps",
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
    from purelm._data._corpus import DataError, DataSpec, batchify, load_corpus
    from purelm._data._metrics import Evaluation, bits_per_byte
    from purelm._inference._sample import greedy, sample
    from purelm._model._lstmlm import LSTMLM, GRUCell, LSTMCell, RNNCell, State, batch_initial_state
    from purelm._rundir._checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from purelm._rundir._format import load_model
    from purelm._runtime._host_memory import keep_freed_memory
    from purelm.interop import (
        StateDictError,
        from_torch,
        from_torch_state_dict,
        load_torch_file,
        save_rnn_model,
        to_rnn_model,
        to_torch,
    )
    from purelm.training._evaluate import evaluate, mean_loss
    from purelm.training._losses import batch_loss, next_token_loss, sequence_loss, token_log_probs
    from purelm.training._steps import make_train_step, make_train_steps, train_tutorial
