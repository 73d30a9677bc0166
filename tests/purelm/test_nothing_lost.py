"""Nothing lost, and no wrong number passed off as a result: one run per run directory (a lock, and no run
replaced unasked, from the command line and from Python), prompt and honest stops (a signal abandons a long
validation, a run that reached its target says so), no temporary file left by a killed save, a full disk
named, and refusals of a contradicting --cell, a non-finite loss and a mislocated non-UTF-8 byte."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import purelm._cli._main as cli
import purelm.training._evaluate as evaluate_module
from purelm._rundir import _run as run_module
from purelm._rundir._checkpoint import CHECKPOINT_FILE, _read_all, read_meta
from purelm._runtime import _safetensors
from purelm._runtime._signals import Interrupted
from purelm.training import (
    BEST_DIR,
    METRICS_FILE,
    DataConfig,
    ModelConfig,
    Run,
    RunConfig,
    RunDirectoryError,
    SaveError,
    TrainingConfig,
    read_metrics,
)

TINY = ["--batch-size", "4", "--seq-len", "16", "--embed-dim", "8", "--hidden-dim", "16"]
PAUSED = Path(__file__).with_name("paused_purelm.py")
WAIT_S = 240


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    # 1,000 bytes: 950 training bytes = 4 streams of 237 = 14 windows of 16; 50 validation bytes.
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "text.txt"
    path.write_bytes(bytes(rng.integers(32, 127, 1000, dtype=np.uint8)))
    return path


@pytest.fixture(scope="module")
def word_dir(tmp_path_factory):
    """word_language_model's layout, with a validation split of 3,000 words: 12 calls of the scoring program."""
    root = tmp_path_factory.mktemp("words")
    rng = np.random.default_rng(1)
    vocab = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
    for name, lines in (("train.txt", 100), ("valid.txt", 300), ("test.txt", 10)):
        (root / name).write_text("".join(" ".join(rng.choice(vocab, 9)) + "\n" for _ in range(lines)))
    return root


@pytest.fixture(autouse=True)
def _no_compile_cache(monkeypatch):
    monkeypatch.setenv("PURELM_CACHE_DIR", "off")


def tiny(path, **run) -> TrainingConfig:
    return TrainingConfig(
        model=ModelConfig(embed_dim=8, hidden_dim=16),
        data=DataConfig(paths=(str(path),), batch_size=4, seq_len=16),
        run=RunConfig(**({"steps": 4, "eval_every": 2, "log_every": 2, "checkpoint_every": 2} | run)),
    )


def cli_run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line(code, err, status, *fragments):
    assert code == status, err
    assert err.count("\n") == 1 and err.startswith("purelm") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def same_arrays(a, b) -> bool:
    a, b = _read_all(a), _read_all(b)
    return sorted(a) == sorted(b) and all(np.array_equal(a[name], b[name]) for name in a)


def records(directory: Path) -> list[dict]:
    """The metrics records, without the wall-clock times."""
    return [
        {k: v for k, v in r.items() if k not in ("elapsed_s", "tokens_per_s")}
        for r in read_metrics(directory / METRICS_FILE)
    ]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*.tmp"))


# ------------------------------------------------------------------------------ one run per directory


def test_a_library_run_replaces_another_run_only_when_asked(text_file, tmp_path):
    out = tmp_path / "run"
    assert Run.create(tiny(text_file), out).train().status == "done"
    assert (out / BEST_DIR / CHECKPOINT_FILE).exists()
    before = _read_all(out)
    with pytest.raises(RunDirectoryError, match=r"already holds a run .*checkpoint\.safetensors.*overwrite=True"):
        Run.create(tiny(text_file, seed=1), out)
    # Two runs created for one fresh directory: the second to train finds the first's files.
    fresh = tmp_path / "fresh"
    first, second = Run.create(tiny(text_file), fresh), Run.create(tiny(text_file, seed=1), fresh)
    assert first.train().status == "done"
    with pytest.raises(RunDirectoryError, match="already holds a run"):
        second.train()
    with pytest.raises(RunDirectoryError, match="already holds a run"):
        Run.resume(fresh, out=out)
    assert same_arrays(fresh, out) and _read_all(out).keys() == before.keys()

    # With overwrite=True the old run's files go when the new one starts: no best/ of the old run stays
    # behind a new run that validates nothing, and the metrics are the new run's alone.
    replaced = Run.create(tiny(text_file, seed=1, eval_every=0), out, overwrite=True)
    assert (out / BEST_DIR).exists()  # nothing is removed before the run starts writing
    assert replaced.train().status == "done"
    assert not (out / BEST_DIR).exists()
    assert [r["step"] for r in read_metrics(out / METRICS_FILE)] == [2, 4]
    assert all("val_loss" not in r for r in read_metrics(out / METRICS_FILE))
    assert read_meta(out)["config"]["run"]["seed"] == 1


def _env(tmp_path: Path) -> dict:
    env = os.environ | {
        "JAX_PLATFORMS": "cpu",
        "PURELM_CACHE_DIR": str(tmp_path / "cache"),
        "PURELM_KEEP_FREED_MEMORY": "0",
    }
    env.pop("XLA_FLAGS", None)
    return env


def _purelm(tmp_path, name, argv, *, pause_at="-"):
    """A `purelm` process, its output in files; paused at `pause_at` (tests/purelm/paused_purelm.py)."""
    out, err = (tmp_path / f"{name}.out").open("wb"), (tmp_path / f"{name}.err").open("wb")
    with out, err:
        return subprocess.Popen(
            [sys.executable, str(PAUSED), pause_at, *map(str, argv)], stdout=out, stderr=err, env=_env(tmp_path)
        )


def _stderr(tmp_path, name) -> str:
    return (tmp_path / f"{name}.err").read_text()


@pytest.mark.slow
def test_two_runs_started_at_once_into_one_directory_one_is_refused(text_file, tmp_path):
    out = tmp_path / "run"
    argv = ["train", text_file, "--out", out, *TINY, "--steps", 6, "--log-every", 1, "--eval-every", 2]
    procs = [_purelm(tmp_path, name, argv) for name in ("a", "b")]
    codes = sorted(p.wait(timeout=WAIT_S) for p in procs)
    assert codes == [0, 2], [_stderr(tmp_path, name) for name in ("a", "b")]
    refused = next(name for name, p in zip("ab", procs, strict=True) if p.returncode == 2)
    err = _stderr(tmp_path, refused)
    # Which one it is depends on how far the other had got: writing (the lock) or finished (its checkpoint).
    assert err.count("\n") == 1 and ("is in use by another purelm run" in err or "already holds" in err), err
    # One run's records, not two interleaved.
    assert [r["step"] for r in read_metrics(out / METRICS_FILE) if "train_loss" in r] == [1, 2, 3, 4, 5, 6]


def test_a_directory_being_written_is_refused_to_every_other_run(capsys, text_file, tmp_path):
    out = tmp_path / "run"
    argv = ["train", text_file, "--out", out, *TINY, "--steps", 4, "--log-every", 1]
    holder = _purelm(tmp_path, "holder", argv, pause_at="step")
    try:
        deadline = time.monotonic() + WAIT_S
        while "paused at step" not in _stderr(tmp_path, "holder") and holder.poll() is None:
            assert time.monotonic() < deadline, _stderr(tmp_path, "holder")
            time.sleep(0.05)
        for argv in (
            ["train", text_file, "--out", out, *TINY, "--overwrite"],
            ["train", "--resume", out],
            ["train", "--resume", out, "--steps", 8],
        ):
            code, _, err = cli_run(capsys, *argv)
            assert_one_line(code, err, 2, f"{out} is in use by another purelm run (process {holder.pid})")
        holder.send_signal(signal.SIGTERM)
        assert holder.wait(timeout=WAIT_S) == 128 + signal.SIGTERM
    finally:
        holder.kill()
        holder.wait()
    code, _, err = cli_run(capsys, "train", "--resume", out)  # free again
    assert code == 0, err


# ------------------------------------------------------------------------------- prompt, honest stops


def _word_config(word_dir, **run) -> TrainingConfig:
    return TrainingConfig(
        model=ModelConfig(embed_dim=8, hidden_dim=16),
        data=DataConfig(paths=(str(word_dir),), tokenizer="word", batch_size=4, seq_len=4, eval_batch_size=2),
        run=RunConfig(**({"steps": 4, "eval_every": 2, "log_every": 2, "checkpoint_every": 4} | run)),
    )


def test_a_signal_abandons_a_validation_and_the_resumed_run_does_it(word_dir, tmp_path, monkeypatch):
    straight = Run.create(_word_config(word_dir), tmp_path / "straight")
    assert straight.train().status == "done"

    original, calls = evaluate_module._score_windows, []

    def scoring(*args):
        calls.append(1)
        if len(calls) == 2:  # a Ctrl-C during the first validation's second call (of 12)
            os.kill(os.getpid(), signal.SIGINT)
        return original(*args)

    monkeypatch.setattr(evaluate_module, "_score_windows", scoring)
    out = tmp_path / "split"
    with pytest.raises(Interrupted) as stopped:
        Run.create(_word_config(word_dir), out).train()
    # Acted on before the next call, not at the validation's end.
    assert len(calls) == 2
    assert str(stopped.value) == f"interrupted at step 2: checkpoint saved; continue: purelm train --resume {out}"
    meta = read_meta(out)
    assert meta["step"] == 2 and meta["validation_due"] is True
    monkeypatch.setattr(evaluate_module, "_score_windows", original)

    # The resumed run validates step 2 first: the same records and the same weights as a run never stopped.
    resumed = Run.resume(out)
    assert resumed.train().status == "done"
    assert records(out) == records(tmp_path / "straight") and any("val_loss" in r for r in records(out))
    assert same_arrays(out, tmp_path / "straight")
    assert same_arrays(out / BEST_DIR, tmp_path / "straight" / BEST_DIR)
    assert "validation_due" not in read_meta(out)


def test_a_signal_during_the_final_save_reports_a_finished_run(text_file, tmp_path, monkeypatch):
    original = run_module.save_checkpoint

    def saving(directory, trees, meta):
        if meta["kind"] == "train" and meta["step"] == 4:
            os.kill(os.getpid(), signal.SIGINT)
        return original(directory, trees, meta)

    monkeypatch.setattr(run_module, "save_checkpoint", saving)
    out = tmp_path / "run"
    with pytest.raises(Interrupted) as stopped:
        Run.create(tiny(text_file), out).train()
    assert str(stopped.value) == f"done: step 4; the run is complete and saved in {out} (SIGINT came as it ended)"
    assert read_meta(out)["step"] == 4
    assert Run.resume(out).train().status == "nothing"


def test_temporary_files_a_killed_save_left_are_removed_when_the_run_goes_on(capsys, text_file, tmp_path):
    out = tmp_path / "run"
    code, _, _ = cli_run(capsys, "train", text_file, "--out", out, *TINY, "--steps", 2, "--eval-every", 2)
    assert code == 0
    # What SIGKILL during a save leaves (atomic writes' temporary files), and a file that is not purelm's.
    left = [
        out / ".checkpoint.safetensors.k2j4h6g8.tmp",
        out / ".hparams.json.a1b2c3d4.tmp",
        out / ".metrics.jsonl.x.tmp",
    ]
    left += [out / BEST_DIR / ".checkpoint.safetensors.q9w8e7r6.tmp"]
    for path in [*left, out / ".notes.txt.tmp"]:
        path.write_bytes(b"half a checkpoint")
    code, _, err = cli_run(capsys, "train", "--resume", out, "--steps", 4)
    assert code == 0, err
    assert leftovers(out) == [".notes.txt.tmp"]


def test_a_full_disk_names_the_file_and_the_intact_checkpoint(capsys, text_file, tmp_path, monkeypatch):
    real_write, saves = _safetensors.write, []

    def write(file, tensors, metadata):
        saves.append(1)
        if len(saves) == 1:
            return real_write(file, tensors, metadata)
        file.write(b"a third of the checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what a write to a full disk raises: no name

    monkeypatch.setattr(_safetensors, "write", write)
    out = tmp_path / "run"
    argv = ["train", text_file, "--out", out, *TINY, "--steps", 4, "--checkpoint-every", 2, "--eval-every", 0]
    code, _, err = cli_run(capsys, *argv)
    assert_one_line(
        code,
        err,
        1,
        f"purelm train: error: cannot write {out / CHECKPOINT_FILE}: No space left on device; "
        f"the checkpoint of step 2 in {out} is intact",
    )
    assert read_meta(out)["step"] == 2 and leftovers(out) == []
    with pytest.raises(SaveError, match="No space left on device"):
        Run.resume(out).train()


# --------------------------------------------------------------------------- no wrong number passes


def test_convert_torch_refuses_a_cell_the_pickled_model_contradicts(capsys, tmp_path):
    torch = pytest.importorskip("torch")
    from purelm.reference import RNNModel

    torch.manual_seed(0)
    pickled = tmp_path / "rnntanh.pt"
    torch.save(RNNModel("RNN_TANH", 256, 16, 16, 1, dropout=0.0), pickled)
    out = tmp_path / "converted"
    code, _, err = cli_run(capsys, "convert-torch", pickled, "--allow-pickle", "--cell", "rnn_relu", "--out", out)
    assert_one_line(code, err, 2, f"--cell rnn_relu contradicts {pickled}, whose model is rnn_tanh")
    assert not out.exists()
    code, stdout, err = cli_run(capsys, "convert-torch", pickled, "--allow-pickle", "--cell", "rnn_tanh", "--out", out)
    assert code == 0 and "rnn_tanh" in stdout, err


def test_eval_of_a_model_with_a_non_finite_loss_is_an_error(capsys, text_file, tmp_path):
    torch = pytest.importorskip("torch")
    from purelm.reference import RNNModel

    module = RNNModel("LSTM", 256, 16, 16, 1, dropout=0.0)
    with torch.no_grad():
        module.decoder.bias[7] = float("nan")
    torch.save(module.state_dict(), tmp_path / "nan.pt")
    out = tmp_path / "nan"
    code, _, err = cli_run(capsys, "convert-torch", tmp_path / "nan.pt", "--out", out)
    assert code == 0, err
    code, stdout, err = cli_run(capsys, "eval", out, text_file)
    assert_one_line(code, err, 1, "the loss is not finite (nan nats per byte, perplexity nan)", f"model in {out}")
    assert stdout == ""


def test_a_non_utf8_byte_is_reported_at_its_offset_in_the_file(capsys, tmp_path):
    data = tmp_path / "words.txt"
    line = b"the cat sat on the mat\n"
    text = line * (100_087 // len(line))
    text += b"x" * (100_087 - len(text))
    data.write_bytes(text + b"\xff and more\n")  # the text reader decodes 8 KiB chunks: not byte 1783 of one
    code, _, err = cli_run(capsys, "train", data, "--tokenizer", "word", "--out", tmp_path / "run", *TINY)
    assert_one_line(code, err, 2, f"{data} is not UTF-8 text (byte 100,087: invalid start byte)")
