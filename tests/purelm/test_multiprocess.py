"""Two real processes on localhost (CPU, gloo collectives) train exactly like one process with two devices.

Process 0 and 1 each own one CPU device; the reference is one process with two (forced host devices). The
multi-process run is started with `--coordinator/--num-processes/--process-id` and stopped by a SIGTERM that
only process 0 receives (both must stop after the same step and save together); it is then resumed with
the same settings from `JAX_COORDINATOR_ADDRESS/JAX_NUM_PROCESSES/JAX_PROCESS_ID`.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from purelm._rundir._checkpoint import _read_all
from purelm._runtime._parallel import DeviceError, distributed_settings

PAUSED = Path(__file__).with_name("paused_purelm.py")  # the command, paused at a phase or "-" (see there)
PAUSE_MARKER = runpy.run_path(str(PAUSED))["MARKER"]
TINY = [
    "--batch-size",
    "4",
    "--seq-len",
    "16",
    "--embed-dim",
    "8",
    "--hidden-dim",
    "16",
    "--log-every",
    "1",
    "--eval-every",
    "2",
]
WAIT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(argv: list[str], env: dict, log: Path, pause_at: str | None = None) -> subprocess.Popen:
    command = [sys.executable, str(PAUSED), pause_at or "-"]
    with log.open("wb") as f:
        return subprocess.Popen([*command, *argv], stdout=f, stderr=subprocess.STDOUT, env=env)


def _finish(procs: dict[Path, subprocess.Popen], status: int = 0) -> None:
    try:
        for log, proc in procs.items():
            assert proc.wait(timeout=WAIT_S) == status, log.read_text()[-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _arrays(out: Path) -> dict[str, np.ndarray]:
    return _read_all(out)


def _losses(out: Path) -> list[tuple]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r.get("train_loss"), r.get("val_loss")) for r in records]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    base = os.environ | {
        "JAX_PLATFORMS": "cpu",
        "PURELM_CACHE_DIR": str(cache),
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
    for name in ("XLA_FLAGS", "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        base.pop(name, None)
    return base


@pytest.mark.slow
def test_two_processes_match_two_devices_bit_for_bit_and_resume(tmp_path, env):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        (corpus / f"f{i}.txt").write_bytes(bytes(rng.integers(32, 127, 1500, dtype=np.uint8)))
    one, two = tmp_path / "one-process", tmp_path / "two-processes"

    # The reference (4 steps in one go, two devices in one process) side by side with the two-process run,
    # configured by options, which process 0 pauses before its second step until it gets a SIGTERM.
    reference = _launch(
        ["train", str(corpus), "--out", str(one), *TINY, "--steps", "4", "--devices", "2"],
        env | {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
        tmp_path / "one.log",
    )
    port = _free_port()
    first = {}
    for i in range(2):
        log = tmp_path / f"first{i}.log"
        first[log] = _launch(
            [
                "train",
                str(corpus),
                "--out",
                str(two),
                *TINY,
                "--steps",
                "4",
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ],
            env,
            log,
            pause_at="step" if i == 0 else None,
        )
    process0 = next(iter(first.values()))
    try:
        while PAUSE_MARKER not in (tmp_path / "first0.log").read_text():
            assert process0.poll() is None, (tmp_path / "first0.log").read_text()[-3000:]
            time.sleep(0.05)
        process0.send_signal(signal.SIGTERM)
    finally:
        _finish(first, 128 + signal.SIGTERM)
    _finish({tmp_path / "one.log": reference})
    for i in range(2):
        log = (tmp_path / f"first{i}.log").read_text()
        assert "Traceback" not in log
        last = log.strip().splitlines()[-1]
        match = re.fullmatch(r"purelm train: interrupted at step 2: checkpoint saved; continue: (.*)", last)
        assert match, log[-2000:]
    resume = shlex.split(match.group(1))
    assert resume[:3] == ["purelm", "train", "--resume"]
    assert "on 2 cpu devices" in (tmp_path / "first0.log").read_text()
    assert "step 1/4" not in (tmp_path / "first1.log").read_text()  # only process 0 prints and writes

    # Resume across processes with the printed command, configured by the environment.
    port = _free_port()
    procs = {}
    for i in range(2):
        log = tmp_path / f"resume{i}.log"
        settings = {"JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(i)}
        procs[log] = _launch(resume[1:], env | settings, log)
    _finish(procs)
    assert "resuming" in (tmp_path / "resume0.log").read_text()

    assert _losses(two) == _losses(one)
    reference, got = _arrays(one), _arrays(two)
    assert got.keys() == reference.keys()
    for name in reference:
        assert np.array_equal(got[name], reference[name]), name


def test_settings_from_options_environment_and_slurm():
    assert distributed_settings(environ={}) is None
    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
    assert distributed_settings(environ=env) == {
        "coordinator_address": "10.0.0.1:1234",
        "num_processes": 4,
        "process_id": 3,
    }
    # Options win over the environment.
    assert distributed_settings("h:1", 2, 0, environ=env) == {
        "coordinator_address": "h:1",
        "num_processes": 2,
        "process_id": 0,
    }
    slurm = {
        "SLURM_JOB_ID": "7",
        "SLURM_STEP_NODELIST": "n[1-2]",
        "SLURM_NTASKS": "2",
        "SLURM_PROCID": "1",
        "SLURM_LOCALID": "0",
    }
    # An srun step of two tasks: JAX's Slurm detection fills in everything.
    assert distributed_settings(environ=slurm) == {
        "coordinator_address": None,
        "num_processes": None,
        "process_id": None,
    }
    assert distributed_settings(environ=slurm | {"SLURM_STEP_NUM_TASKS": "1"}) is None  # one task: one process
    assert distributed_settings(auto=True, environ={}) is not None  # --distributed: let JAX detect the cluster


@pytest.mark.parametrize(
    ("args", "environ", "message"),
    [
        (("127.0.0.1:5000", None, 0), {}, "needs --num-processes (or JAX_NUM_PROCESSES) too"),
        (
            (None, None, None),
            {"JAX_COORDINATOR_ADDRESS": "h:1"},
            "needs --num-processes (or JAX_NUM_PROCESSES) and --process-id (or JAX_PROCESS_ID) too",
        ),
        (("127.0.0.1", 2, 0), {}, "--coordinator must be HOST:PORT, got '127.0.0.1'"),
        (("h:1", 2, 2), {}, "--process-id must be between 0 and 1, got 2"),
        (("h:1", 0, 0), {}, "--num-processes must be at least 1, got 0"),
        (
            (None, None, None),
            {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"},
            "JAX_NUM_PROCESSES='two' is not a non-negative integer",
        ),
    ],
)
def test_incomplete_or_bad_settings_are_named(args, environ, message):
    with pytest.raises(DeviceError) as info:
        distributed_settings(*args, environ=environ)
    assert message in str(info.value)
