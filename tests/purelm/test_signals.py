"""SIGINT and SIGTERM end `purelm train`, `sample` and `eval` cleanly in every phase.

Real signals go to real `purelm` processes. `paused_purelm.py PHASE` runs the command so that it prints a
marker and waits at that phase, so each signal lands in its phase deterministically (no sleeps). The processes share
a persistent compilation cache and, after one warm-up run, start together, each being signalled as soon as
its marker appears: the file's wall time is about that of a few short runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import runpy
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from purelm import load_model
from purelm._rundir._checkpoint import CHECKPOINT_FILE
from purelm._runtime import _signals
from purelm._runtime._signals import Interrupted, deferred, install, requested, resume_command, stop

PAUSED = Path(__file__).with_name("paused_purelm.py")  # the command, paused at a phase or "-" (see there)
PAUSE_MARKER = runpy.run_path(str(PAUSED))["MARKER"]
TINY = ["--batch-size", "4", "--seq-len", "16", "--embed-dim", "8", "--hidden-dim", "16"]
TRAIN = [*TINY, "--steps", "4", "--log-every", "1", "--eval-every", "2"]
WAIT_S = 240  # to reach the phase; generous: the suite's machine may be shared
STOP_S = 60  # from the signal to the end of the process

# name: (command, phase to pause at, signal). The train runs pause in every phase of a run.
CASES = {
    "train-imports": ("train", "imports", signal.SIGINT),
    "train-data": ("train", "data", signal.SIGTERM),
    "train-compile": ("train", "compile", signal.SIGINT),
    "train-step": ("train", "step", signal.SIGTERM),
    "train-eval": ("train", "eval", signal.SIGINT),
    "eval-eval": ("eval", "eval", signal.SIGTERM),
    "sample-long": ("sample", None, signal.SIGINT),  # signalled once output streams
}
STEPPED = {"train-compile", "train-step", "train-eval"}  # a step was taken: a checkpoint and a resume command


@contextlib.contextmanager
def _not_ignored() -> Iterator[None]:
    """A test run started in the background (a CI script, `make test &`) ignores SIGINT, children inherit
    that, and the entry point rightly keeps an inherited SIG_IGN. The processes here stand for a terminal's
    command, so they are started with no signal ignored (a Python handler is reset to the default by exec)."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum, handler in saved.items():
        if handler is signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


class Proc:
    """One `purelm` process with its output in files (no pipe can fill up and block it)."""

    def __init__(self, root: Path, name: str, argv: list[str], env: dict, pause_at: str | None):
        self.name, self.root, self.pause_at = name, root, pause_at
        self.stdout_path, self.stderr_path = root / f"{name}.out", root / f"{name}.err"
        command = [sys.executable, str(PAUSED), pause_at or "-"]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err, _not_ignored():
            self.popen = subprocess.Popen([*command, *argv], stdout=out, stderr=err, env=env)
        self.signalled_at: float | None = None
        self.timed_out = False

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def ready(self) -> bool:
        """Whether it is paused at its phase (or, unpaused, has started writing its output)."""
        return PAUSE_MARKER in self.stderr if self.pause_at else self.stdout_path.stat().st_size > 0

    def send(self, signum: int) -> None:
        self.popen.send_signal(signum)
        self.signalled_at = time.monotonic()

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def _start(lab, name: str, argv: list[str], pause_at: str | None) -> Proc:
    return Proc(lab["root"], name, argv, lab["env"], pause_at)


def _drive(procs: dict[str, Proc], signals: dict[str, int]) -> None:
    """Signal every process as soon as it is ready; wait until all have ended (killing, and marking, any
    that has not reached its phase in WAIT_S or not ended STOP_S after its signal)."""
    start = time.monotonic()
    try:
        while any(p.popen.poll() is None for p in procs.values()):
            now = time.monotonic()
            for name, proc in procs.items():
                if proc.popen.poll() is not None:
                    continue
                if proc.signalled_at is None and proc.ready():
                    proc.send(signals[name])
                elif now - (start if proc.signalled_at is None else proc.signalled_at) > (
                    WAIT_S if proc.signalled_at is None else STOP_S
                ):
                    proc.timed_out = True
                    proc.kill()
            time.sleep(0.05)
    finally:
        for proc in procs.values():
            proc.kill()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("signals")
    corpus = root / "corpus"
    corpus.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        (corpus / f"f{i}.txt").write_bytes(bytes(rng.integers(32, 127, 1500, dtype=np.uint8)))
    cache = root / "cache"
    env = os.environ | {
        "JAX_PLATFORMS": "cpu",
        # One persistent compilation cache for every process of this file: only the first one compiles.
        "PURELM_CACHE_DIR": str(cache),
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
    env.pop("XLA_FLAGS", None)
    return {"root": root, "corpus": corpus, "env": env}


@pytest.fixture(scope="module")
def finished(lab):
    """The warm-up: a run signalled (SIGTERM) while it draws its plot, after its last step and save."""
    out = lab["root"] / "finished"
    proc = _start(lab, "train-plot", ["train", str(lab["corpus"]), "--out", str(out), *TRAIN], "plot")
    _drive({"train-plot": proc}, {"train-plot": signal.SIGTERM})
    return proc, out


@pytest.fixture(scope="module")
def ended(lab, finished):
    """Every case of CASES, run side by side, each signalled in its phase."""
    _, run_dir = finished
    procs = {}
    for name, (command, pause_at, _) in CASES.items():
        if command == "train":
            argv = ["train", str(lab["corpus"]), "--out", str(lab["root"] / name), *TRAIN]
        elif command == "eval":
            argv = ["eval", str(run_dir), str(lab["corpus"])]
        else:  # far more than a test could wait for if the generation were one compiled call
            argv = ["sample", str(run_dir), "--prompt", "ab", "--length", "20000000"]
        procs[name] = _start(lab, name, argv, pause_at)
    _drive(procs, {name: case[2] for name, case in CASES.items()})
    return procs


def _assert_clean_exit(proc: Proc, signum: int, command: str) -> str:
    """The exit status 128 + signum, no traceback, and one closing line on stderr; returns that line."""
    out, err = proc.stdout, proc.stderr
    assert proc.signalled_at is not None, f"{proc.name} never reached its phase: {err[-2000:]}"
    assert not proc.timed_out, f"{proc.name} still ran {STOP_S} s after the signal: {out[-500:]} {err[-2000:]}"
    assert proc.popen.returncode == 128 + signum, (proc.popen.returncode, out[-2000:], err[-2000:])
    for text in (out, err):
        assert "Traceback" not in text and "Exception ignored" not in text, text[-3000:]
    lines = [line for line in err.splitlines() if not line.startswith((PAUSE_MARKER, "[Gloo]"))]
    assert lines and lines[-1].startswith(f"purelm {command}: interrupted"), err[-2000:]
    return lines[-1]


@pytest.mark.parametrize("name", list(CASES))
def test_signal_in_each_phase_ends_cleanly(ended, lab, name):
    proc = ended[name]
    command, _pause_at, signum = CASES[name]
    last = _assert_clean_exit(proc, signum, command)
    if command != "train":
        return
    out = lab["root"] / name
    if name not in STEPPED:
        assert last.endswith(f"interrupted by {signal.Signals(signum).name}"), last
        assert not (out / CHECKPOINT_FILE).exists()
        return
    match = re.fullmatch(r"purelm train: interrupted at step (\d+): checkpoint saved; continue: (.+)", last)
    assert match, last
    assert match.group(2) == resume_command(out)
    _, meta = load_model(out)
    assert meta["step"] == int(match.group(1)) >= 1


def test_the_printed_command_resumes_the_run(ended, lab):
    last = _assert_clean_exit(ended["train-step"], signal.SIGTERM, "train")
    command = shlex.split(last.split("continue: ", 1)[1])
    assert command[:3] == ["purelm", "train", "--resume"]
    proc = _start(lab, "resumed", command[1:], None)
    assert proc.popen.wait(timeout=WAIT_S) == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert load_model(lab["root"] / "train-step")[1]["step"] == 4


def test_signal_while_plotting_keeps_the_finished_checkpoint(finished):
    proc, out = finished
    last = _assert_clean_exit(proc, signal.SIGTERM, "train")
    assert last == "purelm train: interrupted by SIGTERM"
    assert load_model(out)[1]["step"] == 4


def test_a_long_sample_streams_and_stops_within_a_chunk(ended):
    proc = ended["sample-long"]
    # Output was streaming when the signal came, and the process ended long before 20M tokens.
    assert proc.stdout.startswith("ab") and len(proc.stdout) > 2
    assert len(proc.stdout.encode()) < 20_000_000


def test_deferred_records_a_library_ctrl_c_and_stop_raises_it():
    with deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler runs at the next bytecode boundary; it must not raise here
        assert requested() == signal.SIGINT
    with pytest.raises(Interrupted) as info:
        stop("saved; continue: x")
    assert isinstance(info.value, KeyboardInterrupt) and info.value.exit_code == 130
    assert str(info.value) == "saved; continue: x"
    assert requested() is None  # library use: the next run starts afresh
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_ignored_from_the_start_stays_ignored(monkeypatch):
    monkeypatch.setattr(_signals._State, "installed", False)
    previous = {signum: signal.getsignal(signum) for signum in _signals.HANDLED}
    hook = sys.unraisablehook
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `nohup` or a shell's background job inherits
        install()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is _signals._handler
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.unraisablehook = hook


def test_the_entry_point_installs_its_handlers_before_importing_jax(lab):
    probe = "import sys, purelm._cli._entry; print(sorted(m for m in ('jax', 'numpy') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=lab["env"], timeout=WAIT_S, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_signal_while_importing_ends_at_once_even_if_library_code_catches_it(lab):
    # numpy's and jaxlib's import code catch exceptions and print them; during the imports phase the handler
    # ends the process itself instead of raising into that code.
    probe = textwrap.dedent(
        """
        import os, signal, time, traceback
        from purelm._runtime import _signals
        _signals.install()
        _signals._State.immediate = "train"
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except BaseException:
            traceback.print_exc()
        print("survived")
        """
    )
    with _not_ignored():
        result = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=lab["env"], timeout=WAIT_S
        )
    assert (result.returncode, result.stdout, result.stderr) == (130, "", "purelm train: interrupted by SIGINT\n")
