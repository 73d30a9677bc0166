"""The cache and --jobs on the command line: a warm run parses nothing; output does not depend on jobs."""

import ast

import libcst
import pytest

from purelint._cli import main

SOURCES = {
    "a.py": "import jax\n\n@jax.jit\ndef f(x):\n    print(x)\n    return x\n",
    "b.py": "def plain(x):\n    return x + 1\n",
    "c.py": "import jax\n\n@jax.jit\ndef g(x, key):\n    return jax.random.normal(key) + jax.random.normal(key)\n",
}


@pytest.fixture
def project(tmp_path, monkeypatch):
    for name, text in SOURCES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "pyproject.toml").write_text('[tool.purelint]\nscope = "traced"\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def parses(monkeypatch):
    """Counts every parse purelint does (libcst for analysis, ast for the quick syntax check)."""
    count = []
    real_cst, real_ast = libcst.parse_module, ast.parse
    monkeypatch.setattr(libcst, "parse_module", lambda *a, **k: count.append(1) or real_cst(*a, **k))
    monkeypatch.setattr(ast, "parse", lambda *a, **k: count.append(1) or real_ast(*a, **k))
    return count


def test_warm_run_parses_nothing(project, parses, capsys):
    assert main([".", "--jobs", "1"]) == 1
    cold = capsys.readouterr().out
    assert len(parses) >= 3
    parses.clear()
    assert main([".", "--jobs", "1"]) == 1
    assert capsys.readouterr().out == cold
    assert parses == []
    assert (project / ".purelint_cache").is_dir()


def test_changed_file_and_changed_config_miss(project, parses, capsys):
    main([".", "--jobs", "1"])
    parses.clear()
    (project / "b.py").write_text("def plain(x):\n    return x + 2\n")
    main([".", "--jobs", "1"])
    assert len(parses) == 1
    parses.clear()
    main([".", "--jobs", "1", "--select", "PUR001"])
    assert len(parses) >= 3
    capsys.readouterr()


def test_no_cache_parses_every_time_and_writes_nothing(project, parses, capsys):
    main([".", "--jobs", "1", "--no-cache"])
    first = len(parses)
    main([".", "--jobs", "1", "--no-cache"])
    assert len(parses) == 2 * first
    assert not (project / ".purelint_cache").exists()
    capsys.readouterr()


def test_output_does_not_depend_on_jobs(project, capsys):
    main([".", "--no-cache", "--jobs", "1", "--output-format", "json"])
    serial = capsys.readouterr().out
    main([".", "--no-cache", "--jobs", "2", "--output-format", "json"])
    assert capsys.readouterr().out == serial


def test_bad_jobs_value_is_a_usage_error(project, capsys):
    assert main([".", "--jobs", "0"]) == 2
    assert "--jobs" in capsys.readouterr().err
