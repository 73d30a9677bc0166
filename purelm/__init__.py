"""purelm: an LSTM language model as a pure Equinox pytree, with its PyTorch original."""

from purelm._checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from purelm._data import DataError, DataSpec, batchify, load_corpus
from purelm._evaluate import Evaluation, bits_per_byte, evaluate, mean_loss
from purelm._model import LSTMLM, GRUCell, LSTMCell, RNNCell, State, batch_initial_state
from purelm._sample import greedy, sample
from purelm._train import (
    batch_loss,
    make_train_step,
    make_train_steps,
    sequence_loss,
    token_log_probs,
    train_tutorial,
)
from purelm.interop import StateDictError, from_torch, from_torch_state_dict, load_torch_file, to_torch

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "DataError",
    "DataSpec",
    "Evaluation",
    "GRUCell",
    "LSTMCell",
    "LSTMLM",
    "RNNCell",
    "State",
    "StateDictError",
    "batch_initial_state",
    "batch_loss",
    "batchify",
    "bits_per_byte",
    "evaluate",
    "from_torch",
    "from_torch_state_dict",
    "greedy",
    "load_checkpoint",
    "load_corpus",
    "load_model",
    "load_torch_file",
    "make_train_step",
    "make_train_steps",
    "mean_loss",
    "sample",
    "save_checkpoint",
    "sequence_loss",
    "to_torch",
    "token_log_probs",
    "train_tutorial",
]
