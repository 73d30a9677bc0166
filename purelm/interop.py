"""Weight conversion between the PyTorch models in `purelm.reference` and `purelm.LSTMLM`.

Only `to_torch` needs torch; reading modules and state dicts works on anything array-like.
"""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from purelm._model import LSTMLM


class StateDictError(ValueError):
    """A state dict that does not describe a supported LSTM language model."""


def from_torch(module) -> LSTMLM:
    """Copy a `purelm.reference.TorchLSTMLM` into an `LSTMLM` (tied embeddings, one layer).

    Example:
        >>> model = from_torch(TorchLSTMLM(43))
    """
    return from_torch_state_dict(module.state_dict())


def to_torch(model: LSTMLM):
    """Copy a tied, single-layer `LSTMLM` into a `purelm.reference.TorchLSTMLM`.

    Example:
        >>> lm = to_torch(from_torch(lm))   # same weights, exactly
    """
    import torch

    from purelm.reference import TorchLSTMLM

    if not model.tie_embeddings or model.num_layers != 1:
        raise ValueError("to_torch needs the tutorial's shape: one layer and tie_embeddings=True")
    (cell,) = model.cells
    arrays = {
        "embeddings": model.embedding,
        "cell.weight_ih": cell.weight_ih,
        "cell.weight_hh": cell.weight_hh,
        "cell.bias": cell.bias,
        "c_0": model.c0[0],
    }
    tensors = {name: torch.from_numpy(np.array(value)) for name, value in arrays.items()}
    module = TorchLSTMLM(model.vocab_size, model.hidden_dim).to(tensors["embeddings"].dtype)
    module.load_state_dict(tensors)
    return module


def from_torch_state_dict(state_dict) -> LSTMLM:
    """Build an `LSTMLM` from a torch state dict: a stock `nn.LSTM` language model or `TorchLSTMLM`'s own.

    Stock naming (PyTorch's word_language_model): `encoder.weight`, `rnn.weight_ih_l{k}`,
    `rnn.weight_hh_l{k}`, `rnn.bias_ih_l{k}`, `rnn.bias_hh_l{k}` for every layer, `decoder.weight`,
    `decoder.bias`. Torch's two biases are folded into one; the initial state is zero, as nn.LSTM's
    default. Raises `StateDictError` naming the first missing, unexpected or mis-shaped key.

    Example:
        >>> model = from_torch_state_dict(torch.load("lm.pt", weights_only=True))
    """
    arrays = {name: _to_numpy(value) for name, value in state_dict.items()}
    if "embeddings" in arrays:
        return _from_tutorial(arrays)
    return _from_stock(arrays)


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _take(arrays: dict, name: str, shape: tuple) -> np.ndarray:
    if name not in arrays:
        raise StateDictError(f"state dict is missing key {name!r}")
    value = arrays[name]
    if value.shape != shape:
        raise StateDictError(f"state dict key {name!r} has shape {tuple(value.shape)}, expected {shape}")
    return value


def _take_matrix(arrays: dict, name: str) -> np.ndarray:
    if name not in arrays:
        raise StateDictError(f"state dict is missing key {name!r}")
    if arrays[name].ndim != 2:
        raise StateDictError(f"state dict key {name!r} has shape {tuple(arrays[name].shape)}, expected a matrix")
    return arrays[name]


def _check_no_extra(arrays: dict, used: set) -> None:
    for name in arrays:
        if name not in used:
            raise StateDictError(f"state dict has unexpected key {name!r}")


def _from_tutorial(arrays: dict) -> LSTMLM:
    embedding = _take_matrix(arrays, "embeddings")
    vocab, dim = embedding.shape
    params = {
        "embedding": embedding,
        "weight_ih": [_take(arrays, "cell.weight_ih", (4 * dim, dim))],
        "weight_hh": [_take(arrays, "cell.weight_hh", (4 * dim, dim))],
        "bias": [_take(arrays, "cell.bias", (4 * dim,))],
        "c0": _take(arrays, "c_0", (dim,))[None],
        "head": None,
    }
    _check_no_extra(arrays, {"embeddings", "cell.weight_ih", "cell.weight_hh", "cell.bias", "c_0"})
    return _assemble(params, vocab, dim, dim)


def _from_stock(arrays: dict) -> LSTMLM:
    embedding = _take_matrix(arrays, "encoder.weight")
    vocab, embed = embedding.shape
    hidden = _take_matrix(arrays, "rnn.weight_hh_l0").shape[1]
    # Layers are numbered 0..n-1; a gap shows up below as a missing key.
    num_layers = 1 + max(int(m.group(1)) for name in arrays if (m := re.fullmatch(r"rnn\.\w+_l(\d+)", name)))
    used = {"encoder.weight", "decoder.weight", "decoder.bias"}
    params = {"embedding": embedding, "weight_ih": [], "weight_hh": [], "bias": []}
    for layer in range(num_layers):
        names = [f"rnn.{kind}_l{layer}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        used.update(names)
        params["weight_ih"].append(_take(arrays, names[0], (4 * hidden, embed if layer == 0 else hidden)))
        params["weight_hh"].append(_take(arrays, names[1], (4 * hidden, hidden)))
        params["bias"].append(_take(arrays, names[2], (4 * hidden,)) + _take(arrays, names[3], (4 * hidden,)))
    params["head"] = (_take(arrays, "decoder.weight", (vocab, hidden)), _take(arrays, "decoder.bias", (vocab,)))
    params["c0"] = np.zeros((num_layers, hidden), embedding.dtype)
    _check_no_extra(arrays, used)
    return _assemble(params, vocab, embed, hidden)


def _assemble(params: dict, vocab: int, embed: int, hidden: int) -> LSTMLM:
    num_layers = len(params["weight_ih"])
    # Shapes only: no random initialisation is computed for weights we overwrite anyway.
    skeleton = eqx.filter_eval_shape(
        LSTMLM,
        vocab,
        embed,
        hidden,
        num_layers=num_layers,
        tie_embeddings=params["head"] is None,
        key=jax.random.key(0),
    )
    leaves = [params["embedding"]]
    for layer in range(num_layers):
        leaves += [params["weight_ih"][layer], params["weight_hh"][layer], params["bias"][layer]]
    leaves.append(params["c0"])
    if params["head"] is not None:
        leaves += list(params["head"])
    return jax.tree.unflatten(jax.tree.structure(skeleton), [jnp.asarray(leaf) for leaf in leaves])
