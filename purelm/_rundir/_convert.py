"""A PyTorch language model as a run directory (`purelm convert-torch`): its weights (a state_dict, or a
pickled word_language_model `RNNModel` when allowed) and, for a word-level model, the vocabulary of the
data it was trained on, rebuilt as word_language_model builds it.

>>> convert_torch("model.pt", "runs/wlm", vocab="data/wikitext-2")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from purelm._data._corpus import DataError, DataSpec, build_tokenizer, layout_dir
from purelm._data._tokenizer import ByteTokenizer, Tokenizer
from purelm._rundir._format import PathLike, save_model_directory
from purelm.training._config import ModelConfig


def _vocabulary(vocab: str) -> Tokenizer:
    root = layout_dir(DataSpec(paths=(vocab,)))
    if root is None:
        raise DataError(f"--vocab {vocab} is not a data directory with train.txt and valid.txt")
    return build_tokenizer(DataSpec(paths=(str(root),)), "word")


def convert_torch(
    path: PathLike, out: PathLike, *, vocab: str | None = None, cell: str | None = None, allow_pickle: bool = False
) -> tuple[ModelConfig, Tokenizer, Path]:
    """Convert the PyTorch model saved at `path` into the model directory `out`; `vocab` is the data
    directory of a word-level model, `cell` the nonlinearity of an `nn.RNN` one ("rnn_tanh" or "rnn_relu":
    a state_dict cannot tell). Returns the model's settings, its tokenizer and the checkpoint written."""
    from purelm.interop import StateDictError, from_torch_state_dict, load_torch_file

    tokenizer = None if vocab is None else _vocabulary(vocab)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise StateDictError("convert-torch needs PyTorch: pip install 'purelm[torch]'") from None
    state_dict, info = load_torch_file(path, allow_pickle=allow_pickle)
    recorded = (info or {}).get("cell")
    if cell is not None and recorded is not None and cell != recorded:
        # A pickled model records its cell (an nn.RNN its nonlinearity): converting it as another one gives a
        # model that computes something else.
        raise StateDictError(f"--cell {cell} contradicts {path}, whose model is {recorded}; leave --cell out")
    model = from_torch_state_dict(state_dict, cell=cell or recorded)
    if tokenizer is None:
        if model.vocab_size != 256:
            raise StateDictError(
                f"{path} has a vocabulary of {model.vocab_size:,} tokens, not 256 bytes: give --vocab DATA_DIR "
                "(the directory with the train.txt, valid.txt and test.txt it was trained on)"
            )
        tokenizer = ByteTokenizer()
    elif tokenizer.vocab_size != model.vocab_size:
        raise StateDictError(
            f"--vocab {vocab} has {tokenizer.vocab_size:,} words but {path} a vocabulary of "
            f"{model.vocab_size:,}: not the data it was trained on"
        )
    checkpoint = save_model_directory(out, model, tokenizer, source=str(Path(path).absolute()))
    return ModelConfig.of(model), tokenizer, checkpoint
