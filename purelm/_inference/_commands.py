"""What `purelm sample` and `purelm eval` compute, as functions of a run directory (`Checkpoint`), with the
programs compiled ahead of time (`purelm._inference._aot`).

>>> run = Checkpoint("runs/demo")                                                    # doctest: +SKIP
>>> print("".join(sample_text(run, "def ", 100, seed=0, temperature=0.8, top_k=40)))  # doctest: +SKIP
>>> tokens, what = held_out_tokens(run)                                              # doctest: +SKIP
>>> evaluation, batch_size = evaluate_tokens(run, tokens, batch_size=32, seq_len=64)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from purelm._data._columns import checked_stream
from purelm._data._corpus import DataError, DataSpec, load_corpus, read_tokens
from purelm._data._metrics import Evaluation
from purelm._data._tokenizer import stream_text
from purelm._inference._aot import Checkpoint, sample_chunks, score
from purelm._rundir._format import stored_config
from purelm._runtime import _signals

# The prompt a generation continues when none is given: the start of a definition for byte-level models
# (the default corpus is Python source); for word-level ones nothing, i.e. the start of a line.
DEFAULT_PROMPTS = {"byte": "def ", "word": ""}


def sample_text(
    run: Checkpoint,
    prompt: str | None,
    length: int,
    *,
    seed: int,
    temperature: float,
    top_k: int | None,
    source: str = "the prompt",
) -> Iterator[str]:
    """The prompt and `length` tokens drawn after it, as text, in pieces as they are drawn (the tokens of
    `purelm.sample(model, jax.random.key(seed), ids, length, temperature, top_k)`). `source` names the
    prompt in the error for a word outside a word-level model's vocabulary."""
    tokenizer = run.tokenizer
    prompt = DEFAULT_PROMPTS[tokenizer.kind] if prompt is None else prompt
    ids = tokenizer.encode_prompt(prompt, source=source)
    _signals.phase("sample")
    chunks = sample_chunks(run, ids, length, seed=seed, temperature=temperature, top_k=top_k)
    return stream_text(tokenizer, prompt, chunks)


def held_out_tokens(run: Checkpoint, paths: Sequence[str] = (), include: str | None = None) -> tuple[np.ndarray, str]:
    """The tokens to score and a description of them: the files or data directory (its test.txt) given in
    `paths`, else the validation split of the data the run was trained on."""
    if paths:
        spec = DataSpec(paths=tuple(str(Path(p).absolute()) for p in paths), include=include)
        return read_tokens(spec, run.tokenizer)
    config = stored_config(run.directory, run.meta)
    if config is None:
        raise DataError(f"{run.directory} records no training data (a converted model); give the text to score")
    corpus = load_corpus(config.data.spec(), tokenizer=run.tokenizer)
    return corpus.val, f"validation split of {corpus.description.split(':')[0]}"


def evaluate_tokens(
    run: Checkpoint, tokens: np.ndarray, *, batch_size: int, seq_len: int, layout: str = "purelm"
) -> tuple[Evaluation, int]:
    """`purelm.training.score`'s numbers for the run's model, and the number of columns it used (fewer than
    `batch_size` for a short text)."""
    tokens, batch_size = checked_stream(tokens, run.vocab_size, batch_size)
    return score(run, tokens, batch_size=batch_size, seq_len=seq_len, layout=layout), batch_size
