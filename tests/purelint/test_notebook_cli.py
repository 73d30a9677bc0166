"""Notebooks on the command line: discovery, `path:cell N:line:col`, JSON `cell`, `--fix`."""

import json
import pathlib
import shutil

import pytest

from purelint._cli import main

DEMO = pathlib.Path(__file__).parent / "data" / "notebook_demo.ipynb"


def test_notebooks_are_found_and_reported_by_cell(tmp_path, capsys):
    shutil.copy(DEMO, tmp_path / "demo.ipynb")
    assert main([str(tmp_path), "--no-cache"]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'demo.ipynb'}:cell 4:3:5: PUR001" in out
    assert "Found 1 finding in 1 file." in out


def test_json_carries_the_cell(tmp_path, capsys):
    shutil.copy(DEMO, tmp_path / "demo.ipynb")
    main([str(tmp_path / "demo.ipynb"), "--no-cache", "--output-format", "json"])
    (finding,) = json.loads(capsys.readouterr().out)
    assert (finding["cell"], finding["line"], finding["column"], finding["code"]) == (4, 3, 5, "PUR001")


def test_fix_rewrites_only_that_cell(tmp_path, capsys):
    path = tmp_path / "demo.ipynb"
    shutil.copy(DEMO, path)
    assert main([str(path), "--no-cache", "--fix", "--unsafe-fixes"]) == 0
    old, new = DEMO.read_text(encoding="utf-8").splitlines(), path.read_text(encoding="utf-8").splitlines()
    changed = [(a, b) for a, b in zip(old, new) if a != b]
    assert len(old) == len(new) and len(changed) == 1
    assert "jax.debug.print('tracing {}', w)" in changed[0][1]


def test_fix_reports_what_is_left_by_cell(tmp_path, capsys):
    # A safe fix lands and an unsafe one is left: the leftover finding is reported at its cell.
    cell = "import jax\nimport jax.numpy as jnp\nx = jnp.arange(10)\nx[0] = 10\n\n@jax.jit\ndef f(y):\n    print(y)\n    return y\n"
    notebook = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# title"},
            {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": cell},
        ],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "left.ipynb"
    path.write_text(json.dumps(notebook))
    assert main([str(path), "--no-cache", "--fix"]) == 1
    out = capsys.readouterr().out
    assert f"{path}:cell 2:8:5: PUR001" in out
    assert "x = x.at[0].set(10)" in json.loads(path.read_text())["cells"][1]["source"]


def test_broken_notebook_is_a_finding_not_a_crash(tmp_path, capsys):
    (tmp_path / "broken.ipynb").write_text("{ not json")
    assert main([str(tmp_path), "--no-cache"]) == 1
    assert "PUR999" in capsys.readouterr().out


def test_pre_commit_hook_runs_on_notebooks():
    yaml = pytest.importorskip("yaml")
    identify = pytest.importorskip("identify.identify")
    (hook,) = yaml.safe_load((pathlib.Path(__file__).parents[2] / ".pre-commit-hooks.yaml").read_text())
    assert set(hook["types_or"]) & identify.tags_from_filename("analysis.ipynb") == {"jupyter"}
    assert set(hook["types_or"]) & identify.tags_from_filename("model.py") == {"python"}
