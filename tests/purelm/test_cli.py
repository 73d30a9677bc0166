"""The `purelm` command line: training runs and their files, exact resume, sample, eval, convert-torch, and
one-line errors (exit 2, no traceback, nothing half-written) for every kind of bad input."""

import io
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import purelm._cli._main as cli
from purelm._rundir._checkpoint import CHECKPOINT_FILE, _read_all, load_checkpoint
from purelm._rundir._format import load_model
from purelm.training._progress import Progress, format_duration

# Tiny and shared by every run, so the compiled step and evaluation are reused across tests.
TINY = ["--batch-size", "4", "--seq-len", "16", "--embed-dim", "8", "--hidden-dim", "16"]
WORDS = ["def", "return", "self", "x", "=", "+", "(", ")", ":", "import", "for", "in", "if", "\n", "    "]


def _text(seed: int, words: int) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, words))


@pytest.fixture
def corpus(tmp_path):
    """A directory of 12 small text files (both splits non-empty) and a one-file corpus of 3 windows."""
    root = tmp_path / "corpus"
    root.mkdir()
    for i in range(12):
        (root / f"mod{i}.py").write_text(_text(i, 300))
    return root


@pytest.fixture
def short_file(tmp_path):
    # 262 bytes: 249 training bytes = 4 streams of 62 = 3 windows of 16 per epoch; 13 validation bytes.
    path = tmp_path / "short.txt"
    path.write_bytes(_text(99, 200).encode()[:262])
    return path


@pytest.fixture(autouse=True)
def _no_compile_cache(monkeypatch):
    # main() turns on JAX's persistent cache; tests must not write into the user's ~/.cache.
    monkeypatch.setenv("PURELM_CACHE_DIR", "off")


def run(capsys, *argv):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exited:  # argparse's own errors and --help
        code = exited.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("purelm"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_train_writes_checkpoint_metrics_and_plot(capsys, corpus, tmp_path):
    out = tmp_path / "run"
    code, stdout, _ = run(
        capsys, "train", corpus, "--out", out, *TINY, "--steps", 6, "--log-every", 2, "--eval-every", 4
    )
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0].startswith(f"data: {corpus}: 12 files")
    assert [line.split("  ")[0] for line in lines if line.startswith("step")] == ["step 2/6", "step 4/6", "step 6/6"]
    assert all("loss" in line and "tok/s" in line and "ETA" in line for line in lines if line.startswith("step"))
    assert sum(line.startswith("eval  step") for line in lines) == 2
    assert f"loss plot: {out / 'loss.png'}" in lines
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "train_bpb" in r] == [2, 4, 6]
    assert [r["step"] for r in records if "val_bpb" in r] == [4, 6]
    for r in records:
        if "train_bpb" in r:
            assert r["train_bpb"] == pytest.approx(r["train_loss"] / math.log(2))
    assert (out / "loss.png").read_bytes().startswith(b"\x89PNG")
    meta = json.loads((out / "hparams.json").read_text())
    assert meta["step"] == 6 and meta["model"]["hidden_dim"] == 16 and meta["config"]["data"]["batch_size"] == 4
    assert meta["config"]["run"] == meta["config"]["run"] | {"steps": 6, "log_every": 2, "eval_every": 4}
    assert meta["data"]["paths"] == [str(corpus)] and meta["position"]["window"] == 6
    assert (out / "best" / CHECKPOINT_FILE).is_file() and "best: " in stdout

    # eval on the run's own validation split reproduces the number logged at the end of training.
    code, stdout, _ = run(capsys, "eval", out)
    assert code == 0
    bpb = float(stdout.split("bits per byte:")[1].split()[0])
    perplexity = float(stdout.split("perplexity:")[1].split()[0])
    assert bpb == pytest.approx(records[-1]["val_bpb"], abs=1e-4)
    assert perplexity == pytest.approx(2**bpb, rel=1e-3)

    # sample: the prompt, then bytes; reproducible from the seed.
    code, first, _ = run(capsys, "sample", out, "--prompt", "def ", "--length", 40, "--seed", 3)
    assert code == 0 and first.startswith("def ") and len(first.encode()) > 40
    assert run(capsys, "sample", out, "--prompt", "def ", "--length", 40, "--seed", 3)[1] == first


def _state_arrays(directory):
    return {k: v for k, v in _read_all(directory).items()}


def test_resume_continues_bit_identically(capsys, short_file, tmp_path):
    common = [short_file, *TINY, "--eval-every", 0]
    straight, split = tmp_path / "straight", tmp_path / "split"
    # 3 windows per epoch: one call of 8 steps restarts from the initial state at steps 3 and 6 ...
    assert (
        run(capsys, "train", *common, "--out", straight, "--steps", 8, "--log-every", 8, "--steps-per-call", 8)[0] == 0
    )
    # ... against single steps to step 4 (mid-epoch: the carried state comes from the checkpoint), then
    # a resumed run in one call of 4 steps.
    assert run(capsys, "train", *common, "--out", split, "--steps", 4, "--log-every", 1)[0] == 0
    code, stdout, _ = run(capsys, "train", "--resume", split, "--steps", 8, "--log-every", 4, "--steps-per-call", 4)
    assert code == 0 and f"resuming {split} at step 4 (target 8)" in stdout
    a, b = _state_arrays(straight), _state_arrays(split)
    assert sorted(a) == sorted(b)
    assert any(name.startswith("opt_state") for name in a) and "states[0]" in a and "key" in a
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name
    # Nothing left to do is not an error.
    code, stdout, _ = run(capsys, "train", "--resume", split, "--steps", 8)
    assert code == 0 and "nothing to do" in stdout


def test_resume_without_options_continues_to_the_stored_target_and_intervals(capsys, short_file, tmp_path):
    from purelm.training import Callback, DataConfig, ModelConfig, Run, RunConfig, TrainingConfig

    class StopAt2(Callback):
        def on_log(self, run, record):
            if record["step"] == 2:
                run.request_stop()

    out = tmp_path / "run"
    # A run of target 5 with its own intervals, stopped at step 2 (as Ctrl-C would) through the library.
    config = TrainingConfig(
        model=ModelConfig(embed_dim=8, hidden_dim=16),
        data=DataConfig(paths=(str(short_file),), batch_size=4, seq_len=16),
        run=RunConfig(steps=5, log_every=1, eval_every=0),
    )
    assert Run.create(config, out, callbacks=[StopAt2()], progress=False).train().status == "stopped"
    code, stdout, _ = run(capsys, "train", "--resume", out)
    assert code == 0 and f"resuming {out} at step 2 (target 5)" in stdout
    assert [line.split("  ")[0] for line in stdout.splitlines() if line.startswith("step")] == [
        "step 3/5",
        "step 4/5",
        "step 5/5",
    ]
    assert json.loads((out / "hparams.json").read_text())["step"] == 5


def test_an_out_path_that_is_a_file_is_refused(capsys, short_file):
    code, _, err = run(capsys, "train", short_file, "--out", short_file, *TINY)
    assert_one_line_error(code, err, "exists and is not a directory")


@pytest.mark.parametrize(
    ("make", "extra", "fragments"),
    [
        (lambda d: d / "missing", [], ["no such file or directory:", "missing"]),
        (lambda d: (d / "empty").mkdir() or d / "empty", [], ["no files matching '*' under"]),
        (
            lambda d: (d / "txt").mkdir() or ((d / "txt" / "a.txt").write_text("a") and d / "txt"),
            ["--include", "*.py"],
            ["no files matching '*.py' under"],
        ),
        (lambda d: (d / "zero.txt").write_text("") or d / "zero.txt", [], ["corpus is empty: 1 file(s), 0 bytes"]),
        (
            lambda d: (d / "tiny.txt").write_text("x" * 60) and d / "tiny.txt",
            [],
            ["training split has 57 bytes, shorter than one batch of windows", "--batch-size 4 x --seq-len 16"],
        ),
        (
            lambda d: (d / "ok.txt").write_text("x" * 600) and d / "ok.txt",
            ["--embed-dim", "8", "--tied"],
            ["--tied needs --embed-dim equal to --hidden-dim, got 8 and 16"],
        ),
        (
            lambda d: (d / "ok.txt").write_text("x" * 600) and d / "ok.txt",
            ["--anneal", "0.5"],
            ["--anneal must be above 1"],
        ),
        (
            lambda d: (d / "latin1.txt").write_bytes(b"caf\xe9 " * 200) and d / "latin1.txt",
            ["--tokenizer", "word"],
            ["latin1.txt is not UTF-8 text (byte 3"],
        ),
        (
            lambda d: (d / "ok.txt").write_text("x" * 600) and d / "ok.txt",
            ["--devices", "64"],
            ["--devices 64 asks for more devices than"],
        ),
    ],
)
def test_bad_training_input_is_one_line_and_writes_nothing(capsys, tmp_path, make, extra, fragments):
    data = make(tmp_path)
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", data, "--out", out, *TINY, "--steps", 2, *extra)
    assert_one_line_error(code, err, *fragments)
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--steps", "0", "--out", "x"],
        ["train", "--lr", "fast", "--out", "x"],
        ["train", "--lr", "inf", "--out", "x"],
        ["train", "--lr", "nan", "--out", "x"],
        ["train", "--lr", "0", "--out", "x"],
        ["train", "--lr", "-1", "--out", "x"],
        ["train", "--dropout", "1", "--out", "x"],
        ["train", "--optimizer", "lion", "--out", "x"],
        ["train", "--cell", "transformer", "--out", "x"],
        ["sample"],
        ["frobnicate"],
        ["sample", "d", "--temperature", "-1"],
    ],
)
def test_bad_command_lines_are_one_line(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1 and "error:" in err and "Traceback" not in err


def test_resume_refuses_mismatches(capsys, corpus, short_file, tmp_path):
    out = tmp_path / "run"
    assert run(capsys, "train", short_file, "--out", out, *TINY, "--steps", 2, "--eval-every", 0)[0] == 0
    code, _, err = run(capsys, "train", "--resume", out, "--hidden-dim", 32, "--steps", 4)
    assert_one_line_error(code, err, "--hidden-dim 32 differs from the run's 16; a resumed run keeps it")
    code, _, err = run(capsys, "train", "--resume", out, "--optimizer", "sgd")
    assert_one_line_error(code, err, "--optimizer sgd differs from the run's adam")
    code, _, err = run(capsys, "train", corpus, "--resume", out, "--steps", 4)
    assert_one_line_error(code, err, "the data does not match the checkpoint", "fingerprint")
    code, _, err = run(capsys, "train", short_file, "--out", out, *TINY)
    assert_one_line_error(code, err, "already holds a checkpoint", f"--resume {out}")
    code, _, err = run(capsys, "train", short_file, *TINY)
    assert_one_line_error(code, err, "train needs --out DIR")


def test_bad_checkpoints_are_refused_by_every_command(capsys, short_file, tmp_path):
    out = tmp_path / "run"
    assert run(capsys, "train", short_file, "--out", out, *TINY, "--steps", 1, "--eval-every", 0)[0] == 0
    path = out / CHECKPOINT_FILE
    path.write_bytes(path.read_bytes()[:-200])
    for argv in (["sample", out], ["eval", out], ["train", "--resume", out, "--steps", 3]):
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, "is corrupt or truncated")
    code, _, err = run(capsys, "sample", tmp_path / "nowhere")
    assert_one_line_error(code, err, "no such checkpoint directory")
    code, _, err = run(capsys, "eval", tmp_path)
    assert_one_line_error(code, err, "holds no checkpoint")


def test_missing_matplotlib_is_one_line_and_no_plot(capsys, short_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "run"
    code, stdout, _ = run(capsys, "train", short_file, "--out", out, *TINY, "--steps", 1, "--eval-every", 0)
    assert code == 0
    assert "matplotlib is not installed (pip install 'purelm[plot]'), so there is no loss plot" in stdout
    assert not (out / "loss.png").exists()


def test_convert_torch_then_sample_and_eval(capsys, corpus, tmp_path):
    torch = pytest.importorskip("torch")
    import purelm
    from purelm.reference import TorchNNLSTMLM

    torch.manual_seed(0)
    module = TorchNNLSTMLM(256, 8, 16, num_layers=2)
    pt = tmp_path / "lm.pt"
    torch.save(module.state_dict(), pt)
    out = tmp_path / "converted"
    code, stdout, _ = run(capsys, "convert-torch", pt, "--out", out)
    assert code == 0 and "vocabulary 256 (bytes)" in stdout and "hidden 16, 2 layer(s)" in stdout
    model, meta = load_model(out)
    expected = purelm.from_torch_state_dict(module.state_dict())
    assert np.array_equal(np.asarray(model.embedding), np.asarray(expected.embedding))
    assert meta["kind"] == "model" and meta["model"]["num_layers"] == 2 and meta["tokenizer"] == {"kind": "byte"}
    assert run(capsys, "sample", out, "--length", 10)[0] == 0
    code, stdout, _ = run(capsys, "eval", out, corpus)
    assert code == 0 and "bits per byte:" in stdout
    # A fresh model knows nothing: about 8 bits per byte.
    assert 7 < float(stdout.split("bits per byte:")[1].split()[0]) < 9
    code, _, err = run(capsys, "train", "--resume", out)
    assert_one_line_error(code, err, "without training state", "cannot resume it")


@pytest.fixture
def word_dir(tmp_path):
    """word_language_model's layout, small: train.txt, valid.txt, test.txt (a word only test.txt has)."""
    root = tmp_path / "words"
    root.mkdir()
    rng = np.random.default_rng(1)
    vocab = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "@-@", "="]
    for name, lines in (("train.txt", 60), ("valid.txt", 12), ("test.txt", 12)):
        text = "".join(" ".join(rng.choice(vocab, 7)) + " \n" for _ in range(lines))
        (root / name).write_text(text + ("zebra\n" if name == "test.txt" else ""), encoding="utf-8")
    return root


def test_word_model_from_torch_pickle_scores_words_and_samples_words(capsys, word_dir, tmp_path):
    torch = pytest.importorskip("torch")
    import purelm
    from purelm._data._tokenizer import WordTokenizer, read_lines
    from purelm.reference import RNNModel

    words = WordTokenizer.build(read_lines(word_dir / name) for name in ("train.txt", "valid.txt", "test.txt"))
    torch.manual_seed(0)
    module = RNNModel("LSTM", words.vocab_size, 16, 16, 2, dropout=0.2, tie_weights=True)
    pickled = tmp_path / "model.pt"
    torch.save(module, pickled)  # what word_language_model's main.py saves: the whole module
    code, _, err = run(capsys, "convert-torch", pickled, "--vocab", word_dir, "--out", tmp_path / "refused")
    assert_one_line_error(code, err, "--allow-pickle", "re-save it")
    assert "\x1b" not in err and not (tmp_path / "refused").exists()
    code, _, err = run(capsys, "convert-torch", pickled, "--allow-pickle", "--out", tmp_path / "novocab")
    assert_one_line_error(code, err, f"vocabulary of {words.vocab_size} tokens", "give --vocab DATA_DIR")
    out = tmp_path / "run"
    code, stdout, _ = run(capsys, "convert-torch", pickled, "--allow-pickle", "--vocab", word_dir, "--out", out)
    assert code == 0 and f"vocabulary {words.vocab_size} (words)" in stdout and "tied head: True with bias" in stdout

    # eval DATA_DIR scores its test.txt, every word but the first, as purelm.evaluate does (batch 10, bptt 35).
    code, stdout, _ = run(capsys, "eval", out, word_dir)
    assert code == 0, stdout
    ids = words.encode_lines(read_lines(word_dir / "test.txt"))
    expected = purelm.evaluate(purelm.from_torch_state_dict(module.state_dict()), ids, batch_size=10, seq_len=35)
    assert f"evaluated {ids.size - 1:,} words" in stdout
    assert float(stdout.split("perplexity:")[1].split()[0]) == pytest.approx(expected.perplexity, abs=1e-4)
    assert float(stdout.split("loss")[1].split()[0]) == pytest.approx(expected.nats, abs=1e-6)

    code, stdout, _ = run(capsys, "sample", out, "--length", 12, "--seed", 1)
    assert code == 0 and set(stdout.split()) <= set(words.words)

    # Text with a word the model has never seen cannot be scored.
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("the cat sat on the hippopotamus\n")
    code, _, err = run(capsys, "eval", out, unknown)
    assert_one_line_error(code, err, "line 1 has the word 'hippopotamus'", "not in the run's vocabulary")
    code, _, err = run(capsys, "sample", out, "--prompt", "the hippopotamus")
    assert_one_line_error(code, err, "'hippopotamus'")
    (word_dir / "test.txt").unlink()
    code, _, err = run(capsys, "eval", out, word_dir)
    assert_one_line_error(code, err, "has no test.txt to score")
    (word_dir / "valid.txt").write_text("a whole new vocabulary here\n")
    code, _, err = run(capsys, "convert-torch", pickled, "--allow-pickle", "--vocab", word_dir, "--out", tmp_path / "x")
    assert_one_line_error(
        code, err, f"but {pickled} a vocabulary of {words.vocab_size}", "not the data it was trained on"
    )
    assert not (tmp_path / "x").exists()


def test_word_training_run_on_a_data_directory(capsys, word_dir, tmp_path):
    out = tmp_path / "run"
    code, stdout, _ = run(
        capsys,
        "train",
        word_dir,
        "--out",
        out,
        "--tokenizer",
        "word",
        "--embed-dim",
        16,
        "--hidden-dim",
        16,
        "--tied",
        "--dropout",
        0.2,
        "--optimizer",
        "sgd",
        "--lr",
        20,
        "--grad-clip",
        0.25,
        "--anneal",
        4,
        "--batch-size",
        4,
        "--seq-len",
        8,
        "--steps",
        4,
        "--log-every",
        2,
        "--eval-every",
        2,
    )
    assert code == 0, stdout
    assert f"data: {word_dir} (train.txt/valid.txt/test.txt)" in stdout and "vocabulary 14 words" in stdout
    assert "tied, dropout 0.2" in stdout and "optimizer: sgd lr 20, grad clip 0.25, anneal /4" in stdout
    assert "validation perplexity" in stdout
    meta = json.loads((out / "hparams.json").read_text())
    assert meta["tokenizer"] == {"kind": "word", "vocab_size": 14}
    assert meta["config"]["model"]["output_bias"] is True and meta["config"]["data"]["eval_tokens"] is None
    code, stdout, _ = run(capsys, "eval", out)
    assert code == 0 and "words" in stdout and "perplexity:" in stdout


def test_convert_torch_refuses_bad_files(capsys, tmp_path):
    torch = pytest.importorskip("torch")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    code, _, err = run(capsys, "convert-torch", garbage, "--out", tmp_path / "a")
    assert_one_line_error(code, err, "garbage.pt")
    wrong = tmp_path / "wrong.pt"
    torch.save({"encoder.weight": torch.zeros(5, 3)}, wrong)
    code, _, err = run(capsys, "convert-torch", wrong, "--out", tmp_path / "b")
    assert_one_line_error(code, err, "missing key")
    code, _, err = run(capsys, "convert-torch", tmp_path / "none.pt", "--out", tmp_path / "c")
    assert_one_line_error(code, err, "no such file")
    code, _, err = run(capsys, "convert-torch", wrong, "--vocab", tmp_path, "--out", tmp_path / "d")
    assert_one_line_error(code, err, "is not a data directory with train.txt and valid.txt")
    assert not any((tmp_path / d).exists() for d in "abcd")


def test_progress_plain_lines_and_terminal_bar():
    plain = io.StringIO()
    progress = Progress(total=10, start=0, tokens_per_step=100, log_every=5, stream=plain, tty=False)
    for step in range(1, 11):
        progress.update(step, loss=2.0)
    progress.message("eval")
    lines = plain.getvalue().splitlines()
    assert lines[0].startswith("step  5/10  ") and lines[1].startswith("step 10/10  ")
    assert "loss 2.0000 (2.885 bits/byte)" in lines[0] and lines[2] == "eval"

    bar = io.StringIO()
    progress = Progress(total=4, start=0, tokens_per_step=100, stream=bar, tty=True)
    progress.update(1, loss_fn=lambda: 1.0)
    progress.message("eval line")
    progress.update(4, loss=0.5)
    progress.close()
    text = bar.getvalue()
    assert text.startswith("\r[" + "#" * 6 + "-" * 18 + "] step 1/4")
    assert "\r\x1b[Keval line\n" in text
    assert "[" + "#" * 24 + "] step 4/4" in text and text.endswith("\n")
    assert format_duration(75.4) == "1:15" and format_duration(3725) == "1:02:05"


def test_loaded_model_matches_checkpoint(capsys, short_file, tmp_path):
    out = tmp_path / "run"
    assert run(capsys, "train", short_file, "--out", out, *TINY, "--steps", 1, "--eval-every", 0)[0] == 0
    model, meta = load_model(out)
    trees, _ = load_checkpoint(out, {"model": model})
    assert np.array_equal(trees["model"].embedding, model.embedding) and meta["step"] == 1


def test_divergence_is_one_line_exit_1_and_saves_nothing(capsys, short_file, tmp_path):
    out = tmp_path / "run"
    code, _, err = run(
        capsys,
        "train",
        short_file,
        "--out",
        out,
        *TINY,
        "--optimizer",
        "sgd",
        "--lr",
        "1e12",
        "--grad-clip",
        0,
        "--steps",
        4,
        "--log-every",
        2,
        "--checkpoint-every",
        2,
        "--eval-every",
        0,
    )
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "training diverged by step 2" in err and "nothing saved" in err and "try a smaller --lr" in err
    assert not (out / CHECKPOINT_FILE).exists()


def test_checkpoints_of_older_runs_are_read_but_not_resumed(capsys, short_file, tmp_path):
    import jax

    from purelm import LSTMLM, save_checkpoint

    old = tmp_path / "old"
    hparams = {
        "vocab_size": 256,
        "embed_dim": 8,
        "hidden_dim": 16,
        "num_layers": 1,
        "tie_embeddings": False,
        "dtype": "float32",
    }
    model = LSTMLM(256, 8, 16, key=jax.random.key(0))
    save_checkpoint(old, {"model": model}, {"kind": "train", "model": hparams, "train": {"batch_size": 4}, "step": 3})
    code, _, err = run(capsys, "train", "--resume", old)
    assert_one_line_error(code, err, "older purelm (run format 1)", "cannot be resumed; start a new run")
    code, stdout, _ = run(capsys, "eval", old, short_file)
    assert code == 0 and "bits per byte:" in stdout
    # A model whose ids are words, saved without its word list, cannot be read as bytes.
    words = tmp_path / "words"
    big = LSTMLM(300, 8, 16, key=jax.random.key(0))
    save_checkpoint(words, {"model": big}, {"kind": "model", "model": hparams | {"vocab_size": 300}, "step": 0})
    for argv in (["eval", words, short_file], ["sample", words]):
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, "vocabulary of 300 but no word list", "--vocab DATA_DIR")


def test_a_config_file_replays_a_run_and_options_override_it(capsys, short_file, tmp_path):
    first = tmp_path / "first"
    common = [*TINY, "--steps", 4, "--eval-every", 0, "--log-every", 2]
    assert run(capsys, "train", short_file, "--out", first, *common, "--lr", 0.01, "--seed", 3)[0] == 0
    code, toml, _ = run(capsys, "config", first)
    assert code == 0 and toml.startswith(f"# The configuration of the run in {first} (step 4)")
    assert '[optim]\noptimizer = "adam"\nlr = 0.01\n' in toml and f'paths = ["{short_file}"]' in toml
    path = tmp_path / "run.toml"
    path.write_text(toml)
    replay = tmp_path / "replay"
    assert run(capsys, "train", "--config", path, "--out", replay)[0] == 0
    ours, theirs = _state_arrays(first), _state_arrays(replay)
    assert sorted(ours) == sorted(theirs) and all(np.array_equal(ours[k], theirs[k]) for k in ours)
    # Options on the command line win over the file.
    assert run(capsys, "train", "--config", path, "--out", tmp_path / "over", "--steps", 2, "--lr", 0.5)[0] == 0
    config = json.loads((tmp_path / "over" / "hparams.json").read_text())["config"]
    assert (config["run"]["steps"], config["optim"]["lr"], config["run"]["seed"]) == (2, 0.5, 3)

    # What is wrong names the file's setting, or the option that set it.
    path.write_text("[model]\nhidden = 32\n")
    code, _, err = run(capsys, "train", "--config", path, "--out", tmp_path / "x")
    assert_one_line_error(code, err, f"{path}: unknown setting model.hidden; the model settings are vocab_size, embed")
    path.write_text("[model]\nembed_dim = 0\n")
    code, _, err = run(capsys, "train", short_file, "--config", path, "--out", tmp_path / "x")
    assert_one_line_error(code, err, f"model.embed_dim in {path} must be a finite positive number, got 0")
    code, _, err = run(capsys, "train", short_file, "--config", path, "--out", tmp_path / "x", "--embed-dim", -1)
    assert_one_line_error(code, err, "--embed-dim: must be a finite positive number, got -1")
    path.write_text("[model]\nhidden_dim = 32\n")
    code, _, err = run(capsys, "train", "--resume", first, "--config", path)
    assert_one_line_error(code, err, f"model.hidden_dim=32 in {path} differs from the run's 16; a resumed run keeps it")
    code, _, err = run(capsys, "train", "--resume", first, "--config", path, "--hidden-dim", 8)
    assert_one_line_error(code, err, "--hidden-dim 8 differs from the run's 16")
    code, _, err = run(capsys, "train", "--config", tmp_path / "missing.toml", "--out", tmp_path / "x")
    assert_one_line_error(code, err, "missing.toml: No such file or directory")
    code, _, err = run(capsys, "config", tmp_path / "nowhere")
    assert_one_line_error(code, err, "no such checkpoint directory")


def test_version_and_device_errors_are_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert re.fullmatch(r"purelm \d+\.\d+\.\S+ \(jax \S+, jaxlib \S+, Python \S+\)\n", capsys.readouterr().out)

    import jax

    if jax.devices()[0].platform != "cpu":
        pytest.skip("checks what a CPU-only machine says")
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"} | {"PURELM_CACHE_DIR": "off"}
    command = [sys.executable, "-m", "purelm._cli", "eval", str(tmp_path)]
    for extra, variables, message in (
        ([], {"JAX_PLATFORMS": "cuda"}, "purelm eval: error: JAX_PLATFORMS=cuda: JAX cannot start that kind of device"),
        (["--device", "tpu"], {}, "purelm eval: error: --device tpu: JAX cannot start that kind of device here"),
        (["--device", "cpu"], {}, f"purelm eval: error: {tmp_path} holds no checkpoint"),  # past the device check
    ):
        done = subprocess.run(command + extra, env=env | variables, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith(message), done.stderr


def test_no_gpu_support_is_one_line(monkeypatch):
    from purelm._runtime import _platforms

    monkeypatch.setattr(_platforms.pkgutil, "iter_modules", lambda: [])
    with pytest.raises(_platforms.DeviceError, match="--device gpu: this JAX has no GPU support installed"):
        _platforms.use("gpu")


def test_log_to_is_checked_before_training(capsys, short_file, tmp_path, monkeypatch):
    from purelm._cli import _train

    code, _, err = run(capsys, "train", short_file, "--out", tmp_path / "x", "--log-to", "csv,wandb")
    assert_one_line_error(code, err, "--log-to: 'csv,wandb': name one or more of jsonl, csv, tensorboard")
    real = _train.importlib.util.find_spec
    monkeypatch.setattr(_train.importlib.util, "find_spec", lambda name: None if name == "tensorboardX" else real(name))
    code, _, err = run(capsys, "train", short_file, "--out", tmp_path / "x", "--log-to", "tensorboard")
    assert_one_line_error(code, err, "--log-to tensorboard needs tensorboardX: pip install 'purelm[tensorboard]'")
    assert not (tmp_path / "x").exists()


def _their_rnn_model(torch):
    """word_language_model's `model.RNNModel` as their main.py and generate.py use one after `torch.load`,
    restated from its documented structure: the modules `drop`, `encoder`, `rnn`, `decoder` and the attributes
    `ntoken`, `rnn_type`, `nhid`, `nlayers` its pickled state holds (unpickling calls no `__init__`)."""

    class RNNModel(torch.nn.Module):
        def forward(self, input, hidden):
            output, hidden = self.rnn(self.drop(self.encoder(input)), hidden)
            decoded = self.decoder(self.drop(output)).view(-1, self.ntoken)
            return torch.nn.functional.log_softmax(decoded, dim=1), hidden

        def init_hidden(self, bsz):
            zeros = next(self.parameters()).new_zeros(self.nlayers, bsz, self.nhid)
            return (zeros, zeros.clone()) if self.rnn_type == "LSTM" else zeros

    RNNModel.__module__, RNNModel.__qualname__ = "model", "RNNModel"  # their main.py's `from model import RNNModel`
    return RNNModel


def test_export_torch_is_evaluated_by_their_scripts_as_purelm_scores_it(capsys, word_dir, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    import types

    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from purelm._data._tokenizer import read_lines
    from purelm._rundir._format import load_run_model, save_model_directory
    from purelm.reference import wlm_evaluate
    from purelm.training._evaluate import scored_log_probs

    out = tmp_path / "run"
    tiny = ["--embed-dim", 8, "--hidden-dim", 8, "--batch-size", 4, "--seq-len", 8, "--eval-every", 0]
    argv = ["train", word_dir, "--tokenizer", "word", "--out", out, *tiny, "--steps", 6, "--layers", 2, "--tied"]
    assert run(capsys, *argv, "--cell", "gru")[0] == 0
    code, stdout, _ = run(capsys, "export-torch", out, "--out", tmp_path / "trained.pt")
    assert code == 0 and "note: RNNModel starts from a zero state" in stdout  # its learned c0 is dropped
    assert f"python main.py --data {word_dir} --model GRU --epochs 0 --save " in stdout
    # RNNModel has no initial state to learn: their evaluation is purelm's of the model started from zeros.
    model, tokenizer, _ = load_run_model(out)
    model = eqx.tree_at(lambda m: m.c0, model, jnp.zeros_like(model.c0))
    save_model_directory(tmp_path / "zero", model, tokenizer)
    exported = tmp_path / "model.pt"
    code, stdout, _ = run(capsys, "export-torch", tmp_path / "zero", "--out", exported)
    assert code == 0 and "RNNModel('GRU', ntoken=" in stdout and "note" not in stdout

    # Loaded as their main.py and generate.py load it: torch.load with their allowed classes.
    model_py = types.ModuleType("model")
    model_py.RNNModel = _their_rnn_model(torch)
    monkeypatch.setitem(sys.modules, "model", model_py)
    nn = torch.nn
    with torch.serialization.safe_globals(
        [model_py.RNNModel, nn.Dropout, nn.Linear, nn.GRU, nn.LSTM, nn.RNN, nn.Embedding]
    ):
        theirs = torch.load(exported)
    theirs.rnn.flatten_parameters()
    assert type(theirs) is model_py.RNNModel and theirs.decoder.weight is theirs.encoder.weight
    ids = tokenizer.encode_lines(read_lines(word_dir / "test.txt"))
    loss, column = wlm_evaluate(theirs, ids)
    log_probs = scored_log_probs(model, ids, batch_size=10, seq_len=35)
    # Their tokens: each column's, but its first; purelm scores them with the same context.
    scored = np.concatenate([log_probs[j * column + 1 : (j + 1) * column] for j in range(10)])
    assert loss == pytest.approx(-np.mean(scored), rel=1e-6)
    output, _ = theirs(torch.tensor([[3]]), theirs.init_hidden(1))  # generate.py's first step
    assert output.shape == (1, tokenizer.vocab_size)

    # The state_dict alone, with their names, reads without pickle and converts back to the same model.
    code, _, _ = run(capsys, "export-torch", tmp_path / "zero", "--out", tmp_path / "sd.pt", "--state-dict")
    state_dict = torch.load(tmp_path / "sd.pt", weights_only=True)
    assert list(state_dict)[:2] == ["encoder.weight", "rnn.weight_ih_l0"] and "rnn.bias_hh_l1" in state_dict
    assert run(capsys, "convert-torch", tmp_path / "sd.pt", "--vocab", word_dir, "--out", tmp_path / "back")[0] == 0
    back, _, _ = load_run_model(tmp_path / "back")
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(model), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)
    code, _, err = run(capsys, "export-torch", tmp_path / "zero", "--out", exported)
    assert_one_line_error(code, err, f"--out {exported} exists")


def test_convert_torch_speaks_in_options(capsys, tmp_path):
    torch = pytest.importorskip("torch")
    from purelm.reference import RNNModel

    path = tmp_path / "rnn.pt"
    torch.save(RNNModel("RNN_TANH", 20, 8, 8, 1, dropout=0.0).state_dict(), path)
    code, _, err = run(capsys, "convert-torch", path, "--out", tmp_path / "x")
    assert_one_line_error(code, err, "pass --cell rnn_tanh or --cell rnn_relu")
    code, stdout, _ = run(capsys, "convert-torch", "--help")
    assert code == 0 and "a state_dict, or (with --allow-pickle) a whole pickled model" in " ".join(stdout.split())
