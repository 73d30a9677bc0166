"""A notebook finding is reported as its cell and the line in that cell, the same way every time:
fresh, from a warm cache, after `--fix`, with `--diff`, in every output format, with its source line."""

import json

import pytest

from purelint._cli import main

CELLS = [
    "import jax\nimport jax.numpy as jnp\n",
    "x = 1\n",
    "@jax.jit\ndef f(x, key):\n    a = jax.random.normal(key, (2,))\n    b = jax.random.normal(key, (2,))\n"
    "    y = x.detach()\n    print(y)\n    return a + b + y\n",
]
REUSE = "n.ipynb:cell 3:4:27: PUR204 PRNG key `key` is reused: `jax.random.normal` on line 3 of cell 3 already used it"


@pytest.fixture
def notebook(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    cells = [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None} for c in CELLS]
    meta = {"kernelspec": {"name": "python3", "language": "python"}, "language_info": {"name": "python"}}
    text = json.dumps({"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}, indent=1)
    (tmp_path / "n.ipynb").write_text(text)
    return tmp_path / "n.ipynb"


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_the_same_cell_and_line_fresh_cached_fixed_and_diffed(notebook, capsys):
    fresh = run(capsys, "n.ipynb", "--output-format", "concise")[1]
    assert REUSE in fresh
    assert run(capsys, "n.ipynb", "--output-format", "concise")[1] == fresh  # written to the cache
    assert run(capsys, "n.ipynb", "--output-format", "concise")[1] == fresh  # read from it
    code, out = run(capsys, "n.ipynb", "--diff", "--no-cache")
    assert code == 1 and "y = jax.lax.stop_gradient(x)" in out  # the diff, on the notebook's JSON
    code, out = run(capsys, "n.ipynb", "--fix", "--no-cache", "--output-format", "concise")
    assert code == 1 and REUSE in out and "n.ipynb:cell 3:6:5: PUR001" in out and "PUR305" not in out
    assert "line 6 already" not in out  # not a line of the joined source


def test_text_shows_the_cells_source_line(notebook, capsys):
    out = run(capsys, "n.ipynb", "--no-cache", "--select", "PUR001")[1].splitlines()
    assert out[:3] == [
        "n.ipynb:cell 3:6:5: PUR001 `print()` runs once, at trace time, and shows tracers; use `jax.debug.print`",
        "6 |     print(y)",
        "  |     ^^^^^^^^",
    ]


def test_github_and_sarif_name_the_cell(notebook, capsys):
    out = run(capsys, "n.ipynb", "--no-cache", "--select", "PUR001", "--output-format", "github")[1]
    assert out.startswith("::error title=purelint (PUR001) in cell 3,file=n.ipynb,line=6,col=5,")
    assert "::PUR001 cell 3, line 6: `print()`" in out
    report = json.loads(run(capsys, "n.ipynb", "--no-cache", "--select", "PUR001", "--output-format", "sarif")[1])
    (result,) = report["runs"][0]["results"]
    assert result["message"]["text"].startswith("cell 3, line 6: `print()`")
    assert result["properties"]["cell"] == 3
    region = result["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["snippet"]) == (6, {"text": "    print(y)"})
