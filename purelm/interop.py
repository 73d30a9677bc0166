"""Weight conversion between the PyTorch models in `purelm.reference` and `purelm.LSTMLM`.

Only `to_torch`, `to_rnn_model`, `save_rnn_model` and `load_torch_file` need torch; reading state dicts
works on anything array-like.
"""

import re
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from purelm._model._lstmlm import CELL_TYPES, LSTMLM, LSTMCell


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

    if not model.tie_embeddings or model.num_layers != 1 or model.cell != "lstm" or model.head_bias is not None:
        raise ValueError(
            "to_torch needs the tutorial's shape: one layer, an LSTM, tie_embeddings=True and no output bias"
        )
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


RNN_TYPES = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU"}


def to_rnn_model(model: LSTMLM):
    """Copy an `LSTMLM` of any shape into word_language_model's `RNNModel` (`purelm.reference.RNNModel`, the
    same modules under the same names), in float32: the inverse of `from_torch_state_dict`.

    Its state dict has their names (`encoder.weight`, `rnn.weight_ih_l0`, ..., `decoder.weight`,
    `decoder.bias`); a tied model's decoder shares the encoder's weight and gets the output bias (zeros
    where the model has none). Torch's second bias is zero but for GRU's `b_hn`. What `RNNModel` cannot
    hold is the learned initial state (`model.c0`): it starts from zeros, as their `init_hidden` does.
    The dropout rate is the model's (it acts in training mode only).

    Example:
        >>> module = to_rnn_model(model)                        # doctest: +SKIP
        >>> from_torch_state_dict(module.state_dict())          # the same function, from a zero state
    """
    import torch

    from purelm.reference import RNNModel

    def tensor(x):
        return torch.from_numpy(np.array(x, dtype=np.float32))

    hidden = model.hidden_dim
    state_dict = {"encoder.weight": tensor(model.embedding)}
    for layer, cell in enumerate(model.cells):
        bias_hh = np.zeros(cell.bias.shape, np.float32)
        if model.cell == "gru":  # b_hn sits inside the reset gate: the one bias that does not fold
            bias_hh[2 * hidden :] = np.asarray(cell.bias_hn, np.float32)  # type: ignore[union-attr]
        for name, value in (
            ("weight_ih", cell.weight_ih),
            ("weight_hh", cell.weight_hh),
            ("bias_ih", cell.bias),
            ("bias_hh", bias_hh),
        ):
            state_dict[f"rnn.{name}_l{layer}"] = tensor(value)
    weight, bias = model.head_params()
    state_dict["decoder.weight"] = tensor(weight)
    state_dict["decoder.bias"] = tensor(np.zeros(model.vocab_size) if bias is None else bias)
    with warnings.catch_warnings():
        # nn.LSTM warns about dropout with one layer, as it does in word_language_model itself.
        warnings.simplefilter("ignore", UserWarning)
        module = RNNModel(
            RNN_TYPES[model.cell],
            model.vocab_size,
            model.embed_dim,
            hidden,
            model.num_layers,
            dropout=float(model.dropout),
            tie_weights=model.tie_embeddings,
        )
    module.load_state_dict(state_dict)
    return module.eval()


def save_rnn_model(module, path, *, state_dict_only: bool = False) -> None:
    """Write an `RNNModel` from `to_rnn_model` to `path` as word_language_model's `main.py` saves one: the whole
    module pickled as their `model.RNNModel`, which their `main.py` and `generate.py` load with
    `torch.load` (their model.py on the path); or, with `state_dict_only`, its state dict alone (what
    `torch.load(path, weights_only=True)` and `RNNModel.load_state_dict` read). The file is written
    atomically.

    Example:
        >>> save_rnn_model(to_rnn_model(model), "model.pt")     # doctest: +SKIP
    """
    import pickle
    import types

    import torch

    from purelm._runtime._files import atomic_writer
    from purelm.reference import RNNModel

    class Pickler(pickle._Pickler):  # the Python pickler: the C one cannot name a class other than its own
        def save_global(self, obj, name=None):
            if obj is RNNModel:
                # Their main.py imports RNNModel from their model.py, and so finds it as `model.RNNModel`.
                self.write(pickle.GLOBAL + b"model\nRNNModel\n")
                self.memoize(obj)
            else:
                super().save_global(obj, name)

    # torch.save calls `pickle_module.Pickler(file, protocol=...)` and reads `__name__`.
    pickle_module = types.ModuleType("pickle")
    pickle_module.Pickler = Pickler  # type: ignore[attr-defined]
    with atomic_writer(path) as f:
        if state_dict_only:
            torch.save(module.state_dict(), f)
        else:
            torch.save(module, f, pickle_module=pickle_module)


def from_torch_state_dict(state_dict, *, cell: str | None = None) -> LSTMLM:
    """Build an `LSTMLM` from a torch state dict: a stock recurrent language model or `TorchLSTMLM`'s own.

    Stock naming (PyTorch's word_language_model `RNNModel`): `encoder.weight`, `rnn.weight_ih_l{k}`,
    `rnn.weight_hh_l{k}`, `rnn.bias_ih_l{k}`, `rnn.bias_hh_l{k}` for every layer, `decoder.weight`,
    `decoder.bias`. The recurrence is read from the shapes: `nn.LSTM` (4 gates) or `nn.GRU` (3 gates);
    an `nn.RNN` (1 gate) may be tanh or relu, which a state dict does not say, so it needs
    `cell="rnn_tanh"` or `cell="rnn_relu"`. A `decoder.weight` equal to `encoder.weight` (what `--tied`
    saves) imports as a tied head with `decoder.bias` as its output bias. Torch's two biases are folded
    into one where the math allows (all but GRU's `b_hn`); the initial state is zero, as torch's default.
    Raises `StateDictError` naming the first missing, unexpected or mis-shaped key.

    Example:
        >>> model = from_torch_state_dict(torch.load("lm.pt", weights_only=True))
        >>> model = from_torch_state_dict(rnn_state_dict, cell="rnn_relu")
    """
    if cell is not None and cell not in CELL_TYPES:
        raise StateDictError(f"cell must be one of {', '.join(CELL_TYPES)}; got {cell!r}")
    arrays = {name: _to_numpy(value) for name, value in state_dict.items()}
    if "embeddings" in arrays:
        if cell not in (None, "lstm"):
            raise StateDictError(f"a TorchLSTMLM state dict holds an LSTM, not cell={cell!r}")
        return _from_tutorial(arrays)
    return _from_stock(arrays, cell)


def load_torch_file(path, *, allow_pickle: bool = False) -> tuple[dict, dict]:
    """Read a `.pt` file written by `torch.save`: `(state_dict, info)`.

    A state dict loads with `weights_only=True`. A whole pickled module (what word_language_model's
    `main.py` saves) loads only with `allow_pickle=True`, because unpickling runs code from the file;
    without it this raises a `StateDictError` saying so. `info` holds what a pickled module tells and a
    state dict does not: `"cell"` ("lstm", "gru", "rnn_tanh" or "rnn_relu", from its `rnn_type` or its
    `nn.RNN`'s nonlinearity), `"tied"`, and `"class"`; it is empty for a state dict. A pickled
    word_language_model `RNNModel` loads even where their `model.py` is not importable (as
    `purelm.reference.RNNModel`). Errors are one line, free of terminal colour codes.

    Needs torch. Example:
        >>> state_dict, info = load_torch_file("model.pt", allow_pickle=True)   # doctest: +SKIP
        >>> model = from_torch_state_dict(state_dict, cell=info.get("cell"))   # doctest: +SKIP
    """
    import pickle

    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise StateDictError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise StateDictError(f"{path} is a directory, not a file saved by torch.save") from None
    except pickle.UnpicklingError as err:
        # The weights-only unpickler refuses any class it does not know: that is a pickled object. Anything
        # else it reports ("Unsupported operand ...") means the file is not a torch.save file at all.
        text = _ANSI.sub("", str(err))
        pickled = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if pickled is None:
            detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
            reason = detail.group(1).strip() if detail else _one_line(err)
            raise StateDictError(f"{path} is not a file torch.load can read ({reason})") from None
        if not allow_pickle:
            raise StateDictError(
                f"{path} holds a pickled Python object ({pickled.group(1)}, such as the whole model "
                "word_language_model's main.py saves), not a state dict; loading it runs code from the file, so "
                "it needs allow_pickle=True if you trust the file, or "
                "re-save it with torch.save(model.state_dict(), path)"
            ) from None
        loaded = _load_pickled(torch, path)
    except Exception as err:  # torch raises bare RuntimeErrors etc. for corrupt or foreign files
        raise StateDictError(f"{path} is not a file torch.load can read ({_one_line(err)})") from None
    if isinstance(loaded, torch.nn.Module):
        return _module_state_dict(path, loaded)
    if isinstance(loaded, dict) and all(isinstance(value, torch.Tensor) for value in loaded.values()):
        return dict(loaded), {}
    raise StateDictError(f"{path} holds a {type(loaded).__name__}, neither a state dict nor a torch module")


def _one_line(err: BaseException) -> str:
    """An exception's message as one plain line: terminal colour codes removed, first line only."""
    text = _ANSI.sub("", str(err)).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    return first if len(first) <= 200 else first[:197] + "..."


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def _load_pickled(torch, path):
    import pickle

    class FallbackUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            try:
                return super().find_class(module, name)
            except (ImportError, AttributeError):
                # word_language_model saves `model.RNNModel` from its own model.py; our reference class has
                # the same attributes and computes the same function.
                if name == "RNNModel":
                    from purelm.reference import RNNModel

                    return RNNModel
                raise

    # torch.load calls `pickle_module.Unpickler(file, **kwargs)` and reads a few other names from it.
    class PickleModule:
        Unpickler = FallbackUnpickler
        load = pickle.load
        __name__ = "pickle"

    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=PickleModule)
    except Exception as err:
        raise StateDictError(f"{path}: unpickling failed: {_one_line(err)}") from None


def _module_state_dict(path, module) -> tuple[dict, dict]:
    import torch

    info: dict[str, object] = {"class": type(module).__name__}
    rnn = getattr(module, "rnn", None)
    encoder, decoder = getattr(module, "encoder", None), getattr(module, "decoder", None)
    if not isinstance(rnn, torch.nn.RNNBase) or encoder is None or decoder is None:
        raise StateDictError(
            f"{path} holds a {info['class']}, not a recurrent language model (encoder, rnn, decoder) purelm can import"
        )
    if isinstance(rnn, torch.nn.LSTM):
        info["cell"] = "lstm"
    elif isinstance(rnn, torch.nn.GRU):
        info["cell"] = "gru"
    elif isinstance(rnn, torch.nn.RNN):
        info["cell"] = f"rnn_{rnn.nonlinearity}"
    else:
        raise StateDictError(f"{path} holds a {type(rnn).__name__} recurrence, not an LSTM, GRU or RNN")
    info["tied"] = decoder.weight is encoder.weight
    return {name: value.detach() for name, value in module.state_dict().items()}, info


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
    names = ("weight_ih", "weight_hh", "bias")
    layer = tuple(_take(arrays, f"cell.{name}", shape) for name, shape in zip(names, LSTMCell.shapes(dim, dim)))
    c0 = _take(arrays, "c_0", (dim,))[None]
    params = {"embedding": embedding, "layers": [layer], "c0": c0, "head": None, "head_bias": None}
    _check_no_extra(arrays, {"embeddings", "cell.weight_ih", "cell.weight_hh", "cell.bias", "c_0"})
    return _assemble(params, vocab, dim, dim)


def _from_stock(arrays: dict, cell: str | None) -> LSTMLM:
    embedding = _take_matrix(arrays, "encoder.weight")
    vocab, embed = embedding.shape
    weight_hh = _take_matrix(arrays, "rnn.weight_hh_l0")
    hidden = weight_hh.shape[1]
    cell = _stock_cell(weight_hh, cell)
    gates = _GATES[cell] * hidden
    # Layers are numbered 0..n-1; a gap shows up below as a missing key.
    num_layers = 1 + max(int(m.group(1)) for name in arrays if (m := re.fullmatch(r"rnn\.\w+_l(\d+)", name)))
    used = {"encoder.weight", "decoder.weight", "decoder.bias"}
    layers: list[tuple[np.ndarray, ...]] = []  # (weight_ih, weight_hh, bias[, GRU's b_hn]) per layer
    for layer in range(num_layers):
        names = [f"rnn.{kind}_l{layer}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        used.update(names)
        weight_ih = _take(arrays, names[0], (gates, embed if layer == 0 else hidden))
        weight_hh = _take(arrays, names[1], (gates, hidden))
        bias_ih, bias_hh = _take(arrays, names[2], (gates,)), _take(arrays, names[3], (gates,))
        if cell == "gru":
            # r and z add both biases outside any product; b_hn is multiplied by the reset gate.
            bias = bias_ih + np.concatenate([bias_hh[: 2 * hidden], np.zeros_like(bias_hh[2 * hidden :])])
            layers.append((weight_ih, weight_hh, bias, bias_hh[2 * hidden :]))
        else:
            layers.append((weight_ih, weight_hh, bias_ih + bias_hh))
    decoder = _take(arrays, "decoder.weight", (vocab, hidden)), _take(arrays, "decoder.bias", (vocab,))
    _check_no_extra(arrays, used)
    tied = embed == hidden and np.array_equal(decoder[0], embedding)
    params = {
        "embedding": embedding,
        "layers": layers,
        "c0": np.zeros((num_layers, hidden), embedding.dtype),
        "head": None if tied else decoder,
        "head_bias": decoder[1] if tied else None,
    }
    return _assemble(params, vocab, embed, hidden, cell)


_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


def _stock_cell(weight_hh: np.ndarray, cell: str | None) -> str:
    """The cell type a stock state dict holds, from `rnn.weight_hh_l0`'s rows per hidden unit."""
    rows, hidden = weight_hh.shape
    found = {4 * hidden: "lstm", 3 * hidden: "gru", hidden: "rnn"}.get(rows)
    if found is None:
        raise StateDictError(
            f"state dict key 'rnn.weight_hh_l0' has shape {(rows, hidden)}: not an nn.LSTM, nn.GRU or nn.RNN"
        )
    if found == "rnn" and cell is None:
        raise StateDictError(
            "state dict holds an nn.RNN, whose nonlinearity a state dict does not record: "
            "pass cell='rnn_tanh' or cell='rnn_relu'"
        )
    if cell is not None and cell.split("_")[0] != found:
        names = {"lstm": "an nn.LSTM", "gru": "an nn.GRU", "rnn": "an nn.RNN"}
        raise StateDictError(
            f"state dict holds {names[found]} ('rnn.weight_hh_l0' has shape {(rows, hidden)}), not cell={cell!r}"
        )
    return cell or found


def _assemble(params: dict, vocab: int, embed: int, hidden: int, cell: str = "lstm") -> LSTMLM:
    num_layers = len(params["layers"])
    # Shapes only: no random initialisation is computed for weights we overwrite anyway.
    skeleton = eqx.filter_eval_shape(
        LSTMLM,
        vocab,
        embed,
        hidden,
        num_layers=num_layers,
        tie_embeddings=params["head"] is None,
        output_bias=params["head"] is not None or params["head_bias"] is not None,
        cell=cell,
        key=jax.random.key(0),
    )
    leaves = [params["embedding"]]
    for layer in params["layers"]:
        leaves += list(layer)
    leaves.append(params["c0"])
    if params["head"] is not None:
        leaves += list(params["head"])
    if params["head_bias"] is not None:
        leaves.append(params["head_bias"])
    return jax.tree.unflatten(jax.tree.structure(skeleton), [jnp.asarray(leaf) for leaf in leaves])
