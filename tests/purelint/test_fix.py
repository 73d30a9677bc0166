"""The edit model: applying edits and fixes, diffs, encodings, line endings, atomic writes, imports."""

import os

import libcst as cst
import pytest

from purelint._analysis._imports import reference
from purelint._analysis._model import build_model
from purelint._diagnostic import Edit, Fix
from purelint._fix import apply_edits, apply_fixes, fix_to_json, select_fixes, unified_diff
from purelint._source import SourceError, read_source, source_of, write_atomic, write_source


def test_apply_edits_replaces_inserts_and_deletes():
    source = "a = 1\nb = 2\nc = 3\n"
    edits = [Edit(1, 5, 1, 6, "10"), Edit(2, 1, 3, 1, ""), Edit(3, 6, 3, 6, "  # three")]
    assert apply_edits(source, edits) == "a = 10\nc = 3  # three\n"


def test_apply_edits_rejects_overlap_and_out_of_range():
    with pytest.raises(ValueError):
        apply_edits("abcdef\n", [Edit(1, 1, 1, 4, "x"), Edit(1, 3, 1, 5, "y")])
    with pytest.raises(ValueError):
        apply_edits("abc\n", [Edit(5, 1, 5, 1, "x")])
    with pytest.raises(ValueError):
        apply_edits("abc\n", [Edit(1, 9, 1, 9, "x")])


def test_new_lines_follow_the_file_line_ending():
    assert apply_edits("x = 1\r\ny = 2\r\n", [Edit(2, 1, 2, 1, "import jax\n")]) == "x = 1\r\nimport jax\r\ny = 2\r\n"
    # Text that already carries CRLF is left alone.
    assert apply_edits("x\r\n", [Edit(1, 1, 1, 1, "a\r\n")]) == "a\r\nx\r\n"


def test_select_fixes_skips_unsafe_unless_asked_and_collisions():
    source = "x[i] = v\nprint(a)\n"
    safe = Fix("safe", "at", (Edit(1, 1, 1, 9, "x = x.at[i].set(v)"),))
    clash = Fix("safe", "clash", (Edit(1, 3, 1, 4, "j"),))
    unsafe = Fix("unsafe", "print", (Edit(2, 1, 2, 6, "jax.debug.print"),))
    new, applied = apply_fixes(source, [clash, unsafe, safe])
    assert applied in ([safe], [clash])
    assert "print(a)" in new
    new, applied = apply_fixes(source, [safe, unsafe], unsafe=True)
    assert new == "x = x.at[i].set(v)\njax.debug.print(a)\n"
    assert applied == [safe, unsafe]


def test_identical_import_edits_land_once():
    source = "import os\ny.detach()\nz.detach()\n"
    imp = Edit(2, 1, 2, 1, "import jax\n")
    first = Fix("safe", "a", (Edit(2, 1, 2, 11, "jax.lax.stop_gradient(y)"), imp))
    second = Fix("safe", "b", (Edit(3, 1, 3, 11, "jax.lax.stop_gradient(z)"), imp))
    new, applied = apply_fixes(source, [first, second])
    assert new == "import os\nimport jax\njax.lax.stop_gradient(y)\njax.lax.stop_gradient(z)\n"
    assert len(applied) == 2


def test_fix_with_edits_out_of_range_or_self_overlapping_is_skipped():
    bad = Fix("safe", "far", (Edit(9, 1, 9, 2, "x"),))
    twisted = Fix("safe", "self", (Edit(1, 1, 1, 3, "x"), Edit(1, 2, 1, 4, "y")))
    assert select_fixes("ab\n", [bad, twisted]) == ([], [])


def test_fix_json_matches_ruff_shape():
    fix = Fix("unsafe", "Use `jax.debug.print`", (Edit(3, 5, 3, 10, "jax.debug.print"),))
    assert fix_to_json(fix) == {
        "applicability": "unsafe",
        "message": "Use `jax.debug.print`",
        "edits": [
            {
                "content": "jax.debug.print",
                "location": {"row": 3, "column": 5},
                "end_location": {"row": 3, "column": 10},
            }
        ],
    }


def test_unified_diff():
    diff = unified_diff("a\nb\n", "a\nc\n", "m.py")
    assert diff.splitlines() == ["--- m.py", "+++ m.py", "@@ -1,2 +1,2 @@", " a", "-b", "+c"]
    assert unified_diff("same\n", "same\n", "m.py") == ""
    assert "\\ No newline at end of file" in unified_diff("a", "b", "m.py")


@pytest.mark.parametrize(
    ("data", "encoding", "text"),
    [
        (b"x = 1\n", "utf-8", "x = 1\n"),
        (b"\xef\xbb\xbfx = '\xc3\xa9'\r\n", "utf-8-sig", "x = '\xe9'\r\n"),
        (b"# -*- coding: latin-1 -*-\nx = '\xe9'\n", "iso-8859-1", "# -*- coding: latin-1 -*-\nx = '\xe9'\n"),
        (b"", "utf-8", ""),
    ],
)
def test_source_of_keeps_the_encoding(data, encoding, text):
    source = source_of(data, "m.py")
    assert (source.encoding, source.text) == (encoding, text)
    assert source.text.encode(source.encoding) == data


@pytest.mark.parametrize("data", [b"x = '\xff\xfe'\n", b"# coding: klingon\nx = 1\n"])
def test_undecodable_source_is_one_clear_line(data):
    with pytest.raises(SourceError) as info:
        source_of(data, "bad.py")
    assert str(info.value).startswith("bad.py: cannot decode")
    assert "\n" not in str(info.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(SourceError, match=r"missing\.py: cannot read"):
        read_source(tmp_path / "missing.py")
    with pytest.raises(SourceError, match="cannot read"):
        read_source(tmp_path)  # a directory


def test_write_source_keeps_bom_crlf_and_mode(tmp_path):
    path = tmp_path / "m.py"
    original = b"\xef\xbb\xbf# caf\xc3\xa9\r\nx[i] = v\r\n"
    path.write_bytes(original)
    os.chmod(path, 0o751)
    source = read_source(path)
    fixed = apply_edits(source.text, [Edit(2, 1, 2, 9, "x = x.at[i].set(v)")])
    write_source(path, fixed, source.encoding)
    assert path.read_bytes() == b"\xef\xbb\xbf# caf\xc3\xa9\r\nx = x.at[i].set(v)\r\n"
    assert os.stat(path).st_mode & 0o777 == 0o751
    assert os.listdir(tmp_path) == ["m.py"]


def test_failed_write_leaves_the_file_and_no_debris(tmp_path, monkeypatch):
    path = tmp_path / "m.py"
    path.write_bytes(b"old\n")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_atomic(path, b"new\n")
    assert path.read_bytes() == b"old\n"
    assert os.listdir(tmp_path) == ["m.py"]


@pytest.mark.parametrize(
    ("source", "qualname", "spelled", "fixed"),
    [
        ("import jax.numpy as np_\nx = 1\n", "jax.numpy.zeros_like", "np_.zeros_like", None),
        ("from jax import numpy as J\n", "jax.numpy.zeros_like", "J.zeros_like", None),
        ("import jax as j\n", "jax.lax.stop_gradient", "j.lax.stop_gradient", None),
        ("from jax import lax\n", "jax.lax.stop_gradient", "lax.stop_gradient", None),
        ("import equinox as eqx\n", "equinox.filter_jit", "eqx.filter_jit", None),
        ("import jax\n", "jax.numpy.zeros_like", "jnp.zeros_like", "import jax\nimport jax.numpy as jnp\n"),
        (
            '"""Doc."""\nfrom __future__ import annotations\nimport os\n\ny = 1\n',
            "jax.debug.print",
            "jax.debug.print",
            '"""Doc."""\nfrom __future__ import annotations\nimport os\nimport jax\n\ny = 1\n',
        ),
        (
            "#!/usr/bin/env python\n# licence\n\nx = 1\n",
            "jax.lax.stop_gradient",
            "jax.lax.stop_gradient",
            "#!/usr/bin/env python\n# licence\n\nimport jax\nx = 1\n",
        ),
        ("", "jax.numpy.zeros_like", "jnp.zeros_like", "import jax.numpy as jnp\n"),
        ("import os", "jax.debug.print", "jax.debug.print", "import os\nimport jax"),
        (
            "import os\r\nx = 1\r\n",
            "jax.numpy.zeros_like",
            "jnp.zeros_like",
            "import os\r\nimport jax.numpy as jnp\r\nx = 1\r\n",
        ),
        # `jnp` means something else here: spell it through a plain `import jax`.
        ("jnp = 3\n", "jax.numpy.zeros_like", "jax.numpy.zeros_like", "import jax\njnp = 3\n"),
        ("import jax\njnp = 3\n", "jax.numpy.zeros_like", "jax.numpy.zeros_like", None),
        ("", "equinox.filter_jit", "eqx.filter_jit", "import equinox as eqx\n"),
    ],
)
def test_reference_respects_aliases_and_adds_imports_once(source, qualname, spelled, fixed):
    module = cst.parse_module(source)
    name, edit = reference(build_model(module), qualname)
    assert name == spelled
    if fixed is None:
        assert edit is None
    else:
        new = apply_edits(source, [edit])
        assert new == fixed
        # Once added, the import is found: a second request adds nothing.
        assert reference(build_model(cst.parse_module(new)), qualname) == (spelled, None)
