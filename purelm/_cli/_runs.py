"""The commands that write a run directory out in another tool's format: `purelm export-torch` (word_language_model's
`RNNModel`) and `purelm config` (the run's settings as a TOML file for `purelm train --config`)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from purelm._cli._parser import UsageError
from purelm._data._corpus import layout_dir
from purelm._rundir._checkpoint import read_meta
from purelm._rundir._format import load_run_model, stored_config
from purelm._runtime._version import __version__
from purelm.training._config_file import config_toml


def config(args) -> int:
    directory = Path(args.dir)
    meta = read_meta(directory)
    stored = stored_config(directory, meta)
    if stored is None:
        raise UsageError(f"{directory} records no run configuration (a converted model, or a run of an older purelm)")
    header = (
        f"The configuration of the run in {directory} (step {meta.get('step')}), from purelm {__version__}.\n"
        "Replay it: purelm train --config FILE --out NEW_DIR (options given there override these settings)."
    )
    sys.stdout.write(config_toml(stored, header=header))
    return 0


def export(args) -> int:
    from purelm.interop import RNN_TYPES, save_rnn_model, to_rnn_model

    out = Path(args.out)
    if out.exists():
        raise UsageError(f"--out {out} exists; pick another path")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: no such directory {out.parent}")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UsageError("export-torch needs PyTorch: pip install 'purelm[torch]'") from None
    model, tokenizer, meta = load_run_model(args.dir)
    save_rnn_model(to_rnn_model(model), out, state_dict_only=args.state_dict)
    what = "state_dict of" if args.state_dict else "whole"
    print(
        f"exported {args.dir} -> {out}: {what} word_language_model RNNModel({RNN_TYPES[model.cell]!r}, "
        f"ntoken={model.vocab_size:,}, ninp={model.embed_dim}, nhid={model.hidden_dim}, "
        f"nlayers={model.num_layers}, tie_weights={model.tie_embeddings})"
    )
    if np.any(np.asarray(model.c0)):
        print(
            "note: RNNModel starts from a zero state (their init_hidden); this model's learned initial state is "
            "left out, which changes the scores of the first tokens of each sequence"
        )
    if tokenizer.kind != "word":
        print("note: a byte-level model; word_language_model's scripts read words, so feed it bytes yourself")
    elif not args.state_dict:
        stored = stored_config(args.dir, meta)
        data = layout_dir(stored.data.spec()) if stored is not None else None
        print(
            f"evaluate it in word_language_model's directory: python main.py --data {data or 'DATA_DIR'} "
            f"--model {RNN_TYPES[model.cell]} --epochs 0 --save {out.absolute()}"
        )
    return 0
