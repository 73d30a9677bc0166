"""`purelint.probe()` in a program, the pytest plugin, and what the probe costs when unused.

The in-process tests import JAX into the test process; the probe puts back everything it replaced
when the block ends (checked below)."""

import builtins
import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import purelint

REPO = Path(__file__).resolve().parents[2]


def run(argv, cwd, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, **kwargs)


def test_the_probe_is_imported_lazily_and_imports_neither_jax_nor_numpy():
    code = (
        "import sys, purelint; probe = purelint.probe; import purelint._probe._pytest; "
        "from purelint._cli import main; main(['--version']); "
        "print(sorted(m for m in ('jax', 'numpy', 'equinox', 'torch') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().endswith("[]")
    code = "import sys, purelint; print('purelint._probe' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_the_pytest_plugin_alone_loads_nothing_heavy():
    """pytest imports the plugin in every run of an environment with purelint installed."""
    heavy = ("jax", "numpy", "libcst", "purelint._engine", "purelint._probe._control")
    code = f"import sys, purelint._probe._pytest; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_probe_is_public():
    assert "probe" in purelint.__all__ and purelint.probe is purelint._probe.probe
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        purelint.nothing  # noqa: B018


def test_the_context_manager_reports_and_puts_everything_back(capsys):
    jax = pytest.importorskip("jax")
    import random

    originals = (builtins.print, jax.jit, jax.lax.scan, jax.random.normal, random.random, time.time, sys.stdout)
    with purelint.probe(output=None) as watched:

        @jax.jit
        def noisy(x):
            print("x =", x)
            return x + random.random()

        values = [float(noisy(1.0)) for _ in range(3)]
    assert len(set(values)) == 1
    first = inspect.unwrap(noisy).__code__.co_firstlineno  # the decorator's line
    assert [(d.code, d.line) for d in watched.findings] == [("PUR001", first + 2), ("PUR201", first + 3)]
    assert watched.findings[0].message.startswith("traced 1 time, called 3 times (`")
    assert (builtins.print, jax.jit, jax.lax.scan, jax.random.normal, random.random, time.time, sys.stdout) == originals
    assert float(noisy(2.0)) == pytest.approx(values[0] + 1)  # still works after the block, unwatched
    assert capsys.readouterr().err == ""  # output=None: no report


def test_the_decorator_and_a_report_to_a_file(tmp_path, capsys):
    jax = pytest.importorskip("jax")
    report = tmp_path / "report.json"

    @purelint.probe(output=str(report), output_format="json")
    def train():
        key = jax.random.key(0)
        return jax.random.normal(key) + jax.random.uniform(key)

    train()
    (finding,) = json.loads(report.read_text())
    assert finding["code"] == "PUR204" and "already consumed by `jax.random.normal`" in finding["message"]
    assert capsys.readouterr().err.startswith("purelint probe: 1 finding in 1 file")


def test_a_probe_inside_a_running_probe_only_watches():
    pytest.importorskip("jax")
    with purelint.probe(output=None) as outer:
        with purelint.probe(output=None) as inner:
            pass
        assert inner.findings == []
    assert outer.findings == []


def test_an_exception_in_the_block_propagates():
    jax = pytest.importorskip("jax")
    with pytest.raises(ZeroDivisionError), purelint.probe(output=None):
        jax.jit(lambda x: x + 1)(1)
        1 / 0  # noqa: B018
    assert builtins.print is print


def test_the_probes_own_failure_is_one_line_and_the_program_goes_on(monkeypatch, capsys):
    jax = pytest.importorskip("jax")
    from purelint._probe import _snapshot

    def broken(*args, **kwargs):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(_snapshot, "dependencies", broken)
    with purelint.probe():
        result = jax.jit(lambda x: x * 3)(2.0)
    assert float(result) == 6.0
    err = capsys.readouterr().err
    assert (
        err.count("purelint probe: internal error: RuntimeError: broken on purpose (findings may be incomplete)\n") == 1
    )


def test_the_pytest_plugin_reports_findings_and_fails_the_run(tmp_path):
    (tmp_path / "test_it.py").write_text(
        "import jax\n\nSCALE = 2.0\n\n\n@jax.jit\ndef scaled(x):\n    print('x is', x)\n    return x * SCALE\n\n\n"
        "def test_one():\n    assert scaled(1.0) == 2.0\n\n\ndef test_two():\n    assert scaled(2.0) == 4.0\n"
    )
    (tmp_path / "test_clean.py").write_text(
        "import jax\n\n\ndef test_pure():\n    assert jax.jit(lambda x: x + 1)(1) == 2\n"
    )
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q"]
    dirty = run([*base, "--purelint-probe", "test_it.py"], tmp_path)
    assert dirty.returncode == 1 and "2 passed" in dirty.stdout, dirty.stdout
    assert "test_it.py:8:5: PUR001 traced 1 time, called 2 times (`scaled` under `jax.jit`)" in dirty.stdout
    assert "[first seen in test_it.py::test_one]" in dirty.stdout
    clean = run(
        [
            *base,
            "--purelint-probe",
            "--purelint-probe-format",
            "json",
            "--purelint-probe-output",
            "out.json",
            "test_clean.py",
        ],
        tmp_path,
    )
    assert clean.returncode == 0 and json.loads((tmp_path / "out.json").read_text()) == []
    unwatched = run([*base, "test_it.py"], tmp_path)
    assert unwatched.returncode == 0 and "purelint" not in unwatched.stdout


def test_without_jax_the_probe_says_so_in_one_line(tmp_path):
    (tmp_path / "hello.py").write_text("print('hello')\n")
    code = (
        "import sys; sys.modules['jax'] = None; from purelint._cli import main; sys.exit(main(['probe', 'hello.py']))"
    )
    result = run([sys.executable, "-c", code], tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("purelint probe: error: the probe needs JAX (")
    assert (
        result.stderr.endswith("install it with `pip install 'purelint[probe]'`\n") and result.stderr.count("\n") == 1
    )
