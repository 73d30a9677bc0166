"""A run directory written by purelm 0.1.0 before its modules were grouped into layers (run format 2; in
data/run-format-2, with its corpus): it loads, scores what it recorded, samples, and resumes to what one
uninterrupted run computes.

The directory was written with `Run.create(config, "run").train()`, `config` being `CONFIG` below, in the
data directory (so the stored data path is relative: `corpus.txt`).
"""

import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

import purelm._cli._main as cli
from purelm import load_model
from purelm._data._tokenizer import ByteTokenizer
from purelm._rundir._checkpoint import _read_all
from purelm.training import (
    DataConfig,
    ModelConfig,
    Run,
    RunConfig,
    TrainingConfig,
    load_run_model,
    read_metrics,
)

CONFIG = TrainingConfig(
    model=ModelConfig(embed_dim=4, hidden_dim=8, dropout=0.1),
    data=DataConfig(paths=("corpus.txt",), batch_size=2, seq_len=8),
    run=RunConfig(steps=4, eval_every=2, log_every=2, checkpoint_every=2),
)


@pytest.fixture
def written(tmp_path, monkeypatch):
    """A copy of the directory (runs write into themselves), the working directory its paths are relative to."""
    shutil.copytree(Path(__file__).with_name("data") / "run-format-2", tmp_path / "old")
    monkeypatch.chdir(tmp_path / "old")
    monkeypatch.setenv("PURELM_CACHE_DIR", "off")
    return tmp_path / "old"


def test_it_loads_and_scores_what_it_recorded(written, capsys):
    model, tokenizer, meta = load_run_model(written / "run")
    assert (meta["kind"], meta["run_format"], meta["step"], model.hidden_dim) == ("train", 2, 4, 8)
    assert tokenizer == ByteTokenizer()
    best, best_meta = load_model(written / "run" / "best")
    assert best_meta["kind"] == "model" and best_meta["best"]["step"] == 4
    for ours, saved in zip(jax.tree.leaves(best), jax.tree.leaves(model), strict=True):
        np.testing.assert_array_equal(ours, saved)
    recorded = read_metrics(written / "run" / "metrics.jsonl")[-1]
    run = Run.resume("run")
    assert run.evaluate().nats == pytest.approx(recorded["val_loss"], rel=1e-6)
    assert cli.main(["eval", "run"]) == 0
    out = capsys.readouterr().out
    assert f"bits per byte: {recorded['val_bpb']:.4f}" in out, out
    assert cli.main(["sample", "run", "--length", "20"]) == 0
    assert capsys.readouterr().out.startswith("def ")


def test_it_resumes_to_what_one_run_computes(written, tmp_path):
    resumed = Run.resume("run", changes={"run": {"steps": 6}})
    assert resumed.train().status == "done"
    whole = Run.create(CONFIG.replace(run={"steps": 6}), tmp_path / "whole")
    assert whole.train().status == "done"
    ours, theirs = _read_all(written / "run"), _read_all(tmp_path / "whole")
    assert sorted(ours) == sorted(theirs)
    for name in ours:  # the first four steps ran with the older code, perhaps on another CPU
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-6, err_msg=name)
    steps = [record["step"] for record in read_metrics(written / "run" / "metrics.jsonl")]
    assert steps == [2, 2, 4, 4, 6, 6]
