"""Notebooks: extracting the Python, neutralising IPython syntax, mapping lines, writing fixes back."""

import json
import pathlib
import shutil

import libcst as cst
import pytest

from purelint._diagnostic import Edit, Fix
from purelint._notebook import NotebookError, neutralise, parse_notebook, read_notebook, write_notebook

DEMO = pathlib.Path(__file__).parent / "data" / "notebook_demo.ipynb"


def _notebook(*sources, **metadata):
    cells = [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": s} for s in sources
    ]
    return json.dumps({"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"


@pytest.mark.parametrize(
    ("cell", "python"),
    [
        ("%matplotlib inline\nx = 1\n", "pass\nx = 1\n"),
        ("!pip install jax\n", "pass\n"),
        ("files = !ls\nx = %timeit -o f()\n", "pass\npass\n"),
        ("jnp.linspace?\n??jnp\n", "pass\npass\n"),
        ("for i in r:\n    %time f(i)\n    !echo a\n", "for i in r:\n    pass\n    pass\n"),
        ("!ls \\\n   -la\ny = 2\n", "pass\n\ny = 2\n"),
        ("%%bash\necho x[0] = 1\n", "\n\n"),
        ("%%time\nz = x % 3\n", "pass\nz = x % 3\n"),
        # Not IPython: a `?` in a comment or string, `%` as an operator, `!=`.
        ("s = '''\nwhy?\n!no\n'''\nx = a % b  # really?\ny = a != b\n", None),
        ("", None),
    ],
)
def test_neutralise(cell, python):
    text, masked = neutralise(cell)
    assert text == (cell if python is None else python)
    assert text.count("\n") == cell.count("\n")
    assert bool(masked) == (python is not None)
    cst.parse_module(text)


def test_unfinished_cell_still_masks_magics_it_can_see():
    text, masked = neutralise("%load_ext autoreload\nx = (1,\n")
    assert text.startswith("pass\n") and masked == {1}


def test_demo_notebook_joins_code_cells_and_maps_lines():
    nb = read_notebook(DEMO)
    cst.parse_module(nb.source)  # magics never make a parse error
    assert [c.number for c in nb.cells] == [2, 3, 4, 5, 6]  # markdown cell 1 counts, as in Jupyter
    lines = nb.source.splitlines()
    row = lines.index('    print("tracing", w)  # runs once') + 1
    assert nb.locate(row) == (4, 3)
    assert nb.locate(1) == (2, 1) and nb.is_masked(1)
    assert not nb.is_masked(row)
    assert nb.python


def test_fix_rewrites_only_the_changed_cell_source(tmp_path):
    path = tmp_path / "demo.ipynb"
    shutil.copy(DEMO, path)
    nb = read_notebook(path)
    row = nb.source.splitlines().index('    print("tracing", w)  # runs once') + 1
    fix = Fix("unsafe", "jax.debug.print", (Edit(row, 5, row, 10, "jax.debug.print"),))
    text, applied = nb.apply_fixes([fix], unsafe=True)
    assert applied == [fix]
    write_notebook(path, nb, text)
    old, new = DEMO.read_text(encoding="utf-8"), path.read_text(encoding="utf-8")
    changed = [(a, b) for a, b in zip(old.splitlines(), new.splitlines()) if a != b]
    assert changed == [
        (
            '    "    print(\\"tracing\\", w)  # runs once\\n",',
            '    "    jax.debug.print(\\"tracing\\", w)  # runs once\\n",',
        )
    ]
    assert len(old) + len("jax.debug.") == len(new)
    again = read_notebook(path)
    assert again.source == nb.source.replace("    print(", "    jax.debug.print(")
    assert json.loads(new)["cells"][3]["outputs"] == json.loads(old)["cells"][3]["outputs"]


def test_import_added_after_imports_lands_in_that_cell():
    text = _notebook(["import jax"], ["y = x.detach()\n"])
    nb = parse_notebook(text)
    fix = Fix(
        "safe", "sg", (Edit(2, 5, 2, 15, "jax.lax.stop_gradient(x)"), Edit(2, 1, 2, 1, "import jax.numpy as jnp\n"))
    )
    new, _applied = nb.apply_fixes([fix])
    cells = json.loads(new)["cells"]
    assert cells[0]["source"] == ["import jax\n", "import jax.numpy as jnp"]
    assert cells[1]["source"] == ["y = jax.lax.stop_gradient(x)\n"]
    assert parse_notebook(new).source == "import jax\nimport jax.numpy as jnp\ny = jax.lax.stop_gradient(x)\n"


def test_fixes_on_magic_lines_or_across_cells_are_refused():
    nb = parse_notebook(_notebook("%time x[0] = 1\n", "a = 1\n", "b = 2"))
    on_magic = Fix("safe", "m", (Edit(1, 7, 1, 15, "x = x.at[0].set(1)"),))
    across = Fix("safe", "x", (Edit(2, 1, 3, 2, "c"),))
    assert nb.apply_fixes([on_magic, across]) == (nb.text, [])


def test_string_sources_stay_strings_and_compact_lists_stay_compact():
    text = json.dumps(
        {
            "cells": [
                {"cell_type": "code", "source": "a = 1\nb = 2"},
                {"cell_type": "code", "source": ["c = 3\n", "d = 4"]},
            ]
        }
    )
    nb = parse_notebook(text)
    fixes = [Fix("safe", "a", (Edit(1, 5, 1, 6, "10"),)), Fix("safe", "c", (Edit(3, 5, 3, 6, "30"),))]
    new, _ = nb.apply_fixes(fixes)
    assert new == text.replace('"a = 1', '"a = 10').replace('"c = 3', '"c = 30')


def test_non_ascii_is_written_the_way_the_file_had_it():
    escaped = json.dumps({"cells": [{"cell_type": "code", "source": ["s = '\u00e9'\n", "x = 1\n"]}]}, indent=1)
    raw = json.dumps(
        {"cells": [{"cell_type": "code", "source": ["s = '\u00e9'\n", "x = 1\n"]}]}, indent=1, ensure_ascii=False
    )
    for text in (escaped, raw):
        nb = parse_notebook(text)
        new, _ = nb.apply_fixes([Fix("safe", "x", (Edit(2, 5, 2, 6, "2"),))])
        assert new == text.replace("x = 1", "x = 2")


def test_bom_is_kept(tmp_path):
    path = tmp_path / "b.ipynb"
    path.write_bytes(b"\xef\xbb\xbf" + _notebook(["x = 1\n"]).encode())
    nb = read_notebook(path)
    text, _ = nb.apply_fixes([Fix("safe", "x", (Edit(1, 5, 1, 6, "2"),))])
    write_notebook(path, nb, text)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_notebook(path).source == "x = 2\n"


def test_other_kernels_are_not_python():
    assert not parse_notebook(_notebook(["x <- 1"], language_info={"name": "R"})).python
    assert parse_notebook(_notebook(["x = 1"], kernelspec={"language": "python"})).python


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "invalid JSON at line 1"),
        ("[]", "no 'cells' list"),
        ('{"cells": [{"cell_type": "code", "source": 3}]}', "cell 1"),
    ],
)
def test_broken_notebooks_are_one_clear_line(text, problem):
    with pytest.raises(NotebookError) as info:
        parse_notebook(text, "nb.ipynb")
    assert problem in str(info.value) and str(info.value).startswith("nb.ipynb:")
    assert "\n" not in str(info.value)
