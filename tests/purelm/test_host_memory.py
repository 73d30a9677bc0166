"""keep_freed_memory: glibc reuses freed blocks instead of page-faulting fresh ones, and `purelm train`
turns it on (unless PURELM_KEEP_FREED_MEMORY=0)."""

import subprocess
import sys
import textwrap

import pytest

import purelm
import purelm._cli._train as cli_train
from purelm._runtime._host_memory import _glibc

needs_glibc = pytest.mark.skipif(_glibc() is None, reason="glibc's malloc only")

# Allocates, touches and frees a 64 MB block five times (what a compiled step does with its buffers) and
# prints the minor page faults that took, with or without keep_freed_memory() first.
CYCLES = textwrap.dedent("""
    import ctypes, resource, sys
    import purelm
    applied = purelm.keep_freed_memory() if sys.argv[1] == "keep" else None
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)
    print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode):
    out = subprocess.run(
        [sys.executable, "-c", CYCLES, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@needs_glibc
def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    pages = (64 << 20) // 4096
    applied, default = _faults("default")
    assert applied == "None" and default >= 4 * pages  # every cycle maps fresh pages
    applied, kept = _faults("keep")
    assert applied == "True" and kept < 1.5 * pages  # only the first cycle does


def test_is_public_and_idempotent_in_a_subprocess():
    code = "import purelm; print(purelm.keep_freed_memory(), purelm.keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(_glibc() is not None)] * 2
    assert "keep_freed_memory" in purelm.__all__


@pytest.mark.parametrize(("env", "called"), [("1", True), ("0", False), ("off", False)])
def test_purelm_train_turns_it_on_unless_told_not_to(monkeypatch, tmp_path, env, called):
    calls = []
    monkeypatch.setattr(cli_train, "keep_freed_memory", lambda: calls.append(True))
    monkeypatch.setenv("PURELM_KEEP_FREED_MEMORY", env)

    class Stop(Exception):
        pass

    def stop(_changes):  # the call comes first: stop before any data is read or model built
        raise Stop

    monkeypatch.setattr(cli_train, "_given", stop)
    with pytest.raises(Stop):
        cli_train.train(_Args())
    assert calls == ([True] if called else [])


class _Args:
    coordinator = num_processes = process_id = device = None
    distributed = False
