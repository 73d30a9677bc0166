"""Bad and extreme input: each gives a clear report (or none), never a crash."""

import os

import pytest

from purelint import Config, lint_source
from purelint._runner import fix_file, lint_many

CONFIG = Config.from_mapping({"select": ["ALL"], "scope": "all"})
TRACED = "import jax\n@jax.jit\ndef f(x, key):\n"


def _lint(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    run = lint_many([path], CONFIG, jobs=1)
    assert run.failures == []
    return run.diagnostics


def test_unreadable_file(tmp_path):
    (tmp_path / "gone.py").symlink_to(tmp_path / "nowhere.py")
    run = lint_many([tmp_path / "gone.py"], CONFIG, jobs=1)
    (finding,) = run.diagnostics
    assert (finding.code, finding.line) == ("PUR999", 1)
    assert finding.message.startswith("cannot read file")


def test_non_utf8_file(tmp_path):
    (finding,) = _lint(tmp_path, "latin.py", b"x = '\xe9t\xe9'\n")
    assert finding.code == "PUR999" and "cannot decode" in finding.message and "\n" not in finding.message


def test_declared_encoding_is_honoured(tmp_path):
    data = b"# -*- coding: latin-1 -*-\n" + TRACED.encode() + b"    print('\xe9t\xe9')\n    return x\n"
    assert [(d.code, d.line, d.column) for d in _lint(tmp_path, "latin.py", data)] == [("PUR001", 5, 5)]


def test_bom_and_crlf_keep_positions_and_survive_fixing(tmp_path):
    source = (TRACED + "    y = x.detach()  # why\n    return y\n").replace("\n", "\r\n")
    path = tmp_path / "m.py"
    path.write_bytes(b"\xef\xbb\xbf" + source.encode())
    assert [(d.code, d.line, d.column) for d in lint_many([path], CONFIG, jobs=1).diagnostics] == [("PUR305", 4, 9)]
    result = fix_file(str(path), CONFIG, unsafe=False, write=True)
    assert result.fixed == 1 and result.remaining == []
    assert path.read_bytes() == b"\xef\xbb\xbf" + source.replace("x.detach()", "jax.lax.stop_gradient(x)").encode()


@pytest.mark.parametrize("data", [b"", b"\n\n", b"# only a comment", b"\xef\xbb\xbf"])
def test_empty_files(tmp_path, data):
    assert _lint(tmp_path, "empty.py", data) == []


def test_syntax_error_is_a_finding_with_its_line(tmp_path):
    (finding,) = _lint(tmp_path, "bad.py", TRACED.encode() + b"    return (x\n")
    assert finding.code == "PUR999" and finding.line >= 4


def test_fifty_thousand_lines(tmp_path):
    # What generated files usually hold: a big data table, then code.
    def function(i):
        body = "".join(f"    x = x + {k}\n" for k in range(16))
        impure = "    print(x)\n" if i % 50 == 0 else "    x = x * 2\n"
        return f"@jax.jit\ndef f{i}(x, key):\n{body}{impure}    return x\n\n"

    table = "TABLE = [\n" + "".join(f"    {i},\n" for i in range(45_000)) + "]\n\n"
    head = "import jax\n\n" + table
    data = (head + "".join(function(i) for i in range(250))).encode()
    assert data.count(b"\n") >= 50_000
    found = _lint(tmp_path, "huge.py", data)
    start = head.count("\n") + 1
    assert [(d.code, d.line) for d in found] == [("PUR001", start + i * 21 + 18) for i in range(0, 250, 50)]


@pytest.mark.parametrize(
    "expression, expected",
    [
        # A very long chain of operators: the second draw from `key` (column 53) is still found.
        ("+".join(["jax.random.normal(key)"] * 2 + ["x"] * 600), [("PUR204", 4, 53)]),
        ("(" * 150 + "x" + ")" * 150, []),
        ("[" * 90 + "x" + "]" * 90, []),
        ("-" * 600 + "x", []),
        # `x if x else x if x else ...`: each test of the traced `x` once.
        (" if x else ".join(["x"] * 300), [("PUR401", 4, column) for column in range(17, 17 + 299 * 12, 12)]),
    ],
)
def test_deeply_nested_expressions(expression, expected):
    found = lint_source(TRACED + f"    return {expression}\n", "deep.py", config=CONFIG)
    assert [(d.code, d.line, d.column) for d in found] == expected


@pytest.mark.parametrize("value", ["jnp.zeros(3)" + " + 1" * 1500, "-" * 1500 + "jnp.zeros(3)"])
def test_value_kinds_follow_long_operator_chains(value):
    # `y` is proven a JAX array however long the expression that computes it.
    source = f"import jax.numpy as jnp\ndef f():\n    y = {value}\n    y[0] = 1\n"
    assert [(d.code, d.line) for d in lint_source(source, "deep.py", config=CONFIG)] == [("PUR301", 4)]


def test_deeply_nested_blocks():
    source = TRACED + "".join("    " * (i + 1) + f"if x > {i}:\n" for i in range(90)) + "    " * 91 + "y = 1\n"
    found = lint_source(source, "deep.py", config=CONFIG)
    assert {d.code for d in found} <= {"PUR401", "PUR999"}


def test_directory_named_like_a_source_file(tmp_path):
    (tmp_path / "pkg.py").mkdir()
    (finding,) = lint_many([tmp_path / "pkg.py"], CONFIG, jobs=1).diagnostics
    assert finding.code == "PUR999" and "cannot read" in finding.message
    assert os.path.isdir(tmp_path / "pkg.py")
