"""`--fix`, `--unsafe-fixes`, `--diff` on the command line: files, exit codes, stdin."""

import io
import json
import sys

from purelint._cli import main

IMPURE = "import jax\n\n@jax.jit\ndef f(x: jax.Array, i):\n    x[i] = 0\n    print(x)\n    return x\n"


def _run(args, capsys):
    code = main([*args, "--no-cache"])
    out, err = capsys.readouterr()
    return code, out, err


def test_fix_applies_safe_fixes_and_exit_reflects_what_remains(tmp_path, capsys):
    path = tmp_path / "m.py"
    path.write_text(IMPURE)
    code, out, err = _run([str(path), "--fix"], capsys)
    assert code == 1  # the print remains: its fix is unsafe
    assert path.read_text() == IMPURE.replace("x[i] = 0", "x = x.at[i].set(0)")
    assert "PUR001" in out and "PUR301" not in out
    assert "fixed 1 finding" in err
    code, out, err = _run([str(path), "--fix", "--unsafe-fixes"], capsys)
    assert code == 0
    assert "jax.debug.print('{}', x)" in path.read_text()
    assert "All checks passed!" in out


def test_diff_changes_nothing(tmp_path, capsys):
    path = tmp_path / "m.py"
    path.write_text(IMPURE)
    code, out, err = _run([str(path), "--diff", "--unsafe-fixes"], capsys)
    assert code == 1
    assert path.read_text() == IMPURE
    assert f"--- {path}" in out and "-    x[i] = 0" in out and "+    x = x.at[i].set(0)" in out
    assert "+    jax.debug.print('{}', x)" in out
    assert "would fix 2 findings" in err


def test_nothing_to_fix_exits_zero(tmp_path, capsys):
    path = tmp_path / "m.py"
    path.write_text("import jax\n\n@jax.jit\ndef f(x):\n    return x\n")
    assert _run([str(path), "--fix"], capsys)[0] == 0
    assert _run([str(path), "--diff"], capsys)[:2] == (0, "")


def test_json_output_after_fixing_lists_what_remains(tmp_path, capsys):
    path = tmp_path / "m.py"
    path.write_text(IMPURE)
    code, out, _ = _run([str(path), "--fix", "--output-format", "json"], capsys)
    (finding,) = json.loads(out)
    assert (code, finding["code"], finding["fix"]["applicability"]) == (1, "PUR001", "unsafe")


def test_fix_from_stdin_prints_the_fixed_source(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(IMPURE.encode())))
    code, out, err = _run(["-", "--fix", "--stdin-filename", "m.py"], capsys)
    assert out == IMPURE.replace("x[i] = 0", "x = x.at[i].set(0)")
    assert code == 1 and "PUR001" in err


def test_unsafe_fixes_without_fix_or_diff_is_a_usage_error(tmp_path, capsys):
    code, _, err = _run([str(tmp_path), "--unsafe-fixes"], capsys)
    assert code == 2 and "--unsafe-fixes" in err


def test_print_in_untraced_code_is_never_rewritten(tmp_path, capsys):
    # Untraced code prints on every call already; `jax.debug.print` would change what is printed.
    source = "import torch\n\n\ndef report(losses):\n    print('loss', losses[-1])\n"
    path = tmp_path / "m.py"
    path.write_text(source)
    code, out, err = _run([str(path), "--select", "ALL", "--scope", "all", "--fix", "--unsafe-fixes"], capsys)
    assert (code, path.read_text()) == (1, source)
    assert "PUR001" in out and "fixed 0 findings" in err


def test_item_assignment_on_an_argument_of_unknown_kind_is_an_unsafe_fix(tmp_path, capsys):
    # The argument may be a dict: `--fix` leaves it alone, `--unsafe-fixes` rewrites it with `.at`.
    source = "import jax\n\n@jax.jit\ndef f(x, i, v):\n    x[i] = v\n    x[0] += v\n    return x\n"
    path = tmp_path / "m.py"
    path.write_text(source)
    code, out, _ = _run([str(path), "--fix"], capsys)
    assert (code, path.read_text()) == (1, source)
    assert out.count("PUR302") == 2
    code, out, _ = _run([str(path), "--fix", "--unsafe-fixes"], capsys)
    assert code == 0
    assert path.read_text() == source.replace("x[i] = v", "x = x.at[i].set(v)").replace(
        "x[0] += v", "x = x.at[0].add(v)"
    )
