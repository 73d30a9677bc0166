"""purelm: an LSTM language model as a pure Equinox pytree, with its PyTorch original."""

__version__ = "0.1.0"
