"""Models word_language_model's main.py saved, scored by their `evaluate()` and by `purelm eval --layout
word_language_model`: the two perplexities and their relative difference.

Their side runs their main.py's `evaluate()` (`purelm.reference.wlm_evaluate`, its loop restated: batchify
into 10 columns, `get_batch` windows of 35 tokens, the last one shorter, zero initial state, `total_loss +=
len(data) * loss`, divided by `len(data_source) - 1`) on the pickled model, with their `data.Corpus` building
the vocabulary, at full precision (their main.py prints 2 decimals). purelm's side converts the same file with
`purelm convert-torch --allow-pickle --vocab DATA` and scores the data's valid.txt in a subprocess.

    python benchmarks/word_language_model_eval.py --wlm ~/examples/word_language_model --data DATA model.pt ...
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

EVAL_BATCH, BPTT = 10, 35


def their_evaluate(wlm: Path, data: Path, model_file: Path) -> tuple[float, int]:
    """Mean loss in nats over their evaluation set of valid.txt, and how many tokens it averages."""
    import torch

    from purelm.reference import wlm_evaluate

    sys.path.insert(0, str(wlm))
    import data as their_data  # their data.py; their model.py is what the pickle loads

    torch.set_num_threads(1)
    corpus = their_data.Corpus(str(data))
    model = torch.load(model_file, weights_only=False)
    nats, column = wlm_evaluate(model, corpus.valid, eval_batch_size=EVAL_BATCH, bptt=BPTT)
    return nats, EVAL_BATCH * (column - 1)


def purelm_evaluate(data: Path, model_file: Path, scratch: Path) -> dict:
    purelm = str(Path(sys.executable).with_name("purelm"))
    out = scratch / model_file.stem
    convert = [purelm, "convert-torch", str(model_file), "--allow-pickle", "--vocab", str(data), "--out", str(out)]
    subprocess.run(convert, check=True, capture_output=True)
    command = [purelm, "eval", str(out), str(data / "valid.txt"), "--layout", "word_language_model", "--json"]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wlm", type=Path, required=True, help="their word_language_model folder (data.py, model.py)")
    parser.add_argument("--data", type=Path, required=True, help="the data directory the models were trained on")
    parser.add_argument("models", type=Path, nargs="+", help="files their main.py saved (--save)")
    args = parser.parse_args(argv)
    print("| model | their evaluate(): ppl | purelm eval: ppl | words | relative difference |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="wlm_eval_") as scratch:
        for model_file in args.models:
            nats, count = their_evaluate(args.wlm, args.data, model_file)
            ours = purelm_evaluate(args.data, model_file, Path(scratch))
            if ours["count"] != count:
                print(f"{model_file.name}: purelm scored {ours['count']} words, theirs {count}", file=sys.stderr)
                return 1
            theirs = math.exp(nats)
            print(
                f"| {model_file.name} | {theirs:.10f} | {ours['perplexity']:.10f} | {count:,} | "
                f"{ours['perplexity'] / theirs - 1:+.1e} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
