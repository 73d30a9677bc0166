"""The command line: output formats, exit codes, stdin, statistics, unreadable files, rule docs."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from purelint._cli import main

IMPURE = "import jax\n\n@jax.jit\ndef f(x):\n    print(x)\n    return x\n"
CLEAN = "import jax\n\n@jax.jit\ndef f(x):\n    return x * 2\n"
REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json"


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    (tmp_path / "bad.py").write_text(IMPURE)
    (tmp_path / "good.py").write_text(CLEAN)
    return tmp_path


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output_has_source_line_and_caret_without_colour(files, capsys):
    code, out, err = cli(capsys, "bad.py", "good.py")
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("bad.py:5:5: PUR001 ")
    assert lines[1] == "5 |     print(x)"
    assert lines[2] == "  |     ^^^^^^^^"
    assert lines[3] == "Found 1 finding in 1 file."
    assert "\033[" not in out


def test_colour_only_when_asked_or_on_a_terminal(files, capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\033[31m" in cli(capsys, "bad.py")[1]
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\033[" not in cli(capsys, "bad.py")[1]


def test_exit_codes(files, capsys):
    assert cli(capsys, "good.py")[:2] == (0, "All checks passed!\n")
    assert cli(capsys, "bad.py")[0] == 1
    assert cli(capsys, "bad.py", "--exit-zero")[0] == 0
    assert cli(capsys, "bad.py", "--output-format", "yaml")[0] == 2
    assert cli(capsys, "bad.py", "--select", "PUR7")[0] == 2


def test_json_output_fields(files, capsys):
    code, out, _ = cli(capsys, "bad.py", "--output-format", "json")
    (item,) = json.loads(out)
    assert code == 1
    assert item["code"] == "PUR001" and item["path"] == "bad.py"
    assert (item["line"], item["column"], item["end_line"], item["end_column"]) == (5, 5, 5, 13)
    assert (
        item["scope"] == "traced" and item["fix"]["applicability"] == "unsafe" and "jax.debug.print" in item["message"]
    )
    assert json.loads(cli(capsys, "good.py", "--output-format", "json")[1]) == []


def test_sarif_output_validates_against_the_schema(files, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMA.is_file():
        pytest.skip(f"SARIF schema not found at {SCHEMA} (expected ../shared/schemas next to the repository)")
    schema = json.loads(SCHEMA.read_text())
    (files / "broken.py").write_text("def f(:\n")
    code, out, _ = cli(capsys, "bad.py", "broken.py", "good.py", "--output-format", "sarif")
    report = json.loads(out)
    jsonschema.validate(report, schema)
    results = report["runs"][0]["results"]
    assert code == 1 and [r["ruleId"] for r in results] == ["PUR001", "PUR999"]
    region = results[0]["locations"][0]["physicalLocation"]["region"]
    assert region == {
        "startLine": 5,
        "startColumn": 5,
        "endLine": 5,
        "endColumn": 13,
        "snippet": {"text": "    print(x)"},
    }
    jsonschema.validate(json.loads(cli(capsys, "good.py", "--output-format", "sarif")[1]), schema)


def test_github_annotations(files, capsys):
    code, out, _ = cli(capsys, "bad.py", "--output-format", "github")
    assert code == 1
    assert out.startswith("::error title=purelint (PUR001),file=bad.py,line=5,col=5,endLine=5,endColumn=13::PUR001 ")
    assert cli(capsys, "good.py", "--output-format", "github")[1] == ""


def test_statistics(files, capsys):
    (files / "worse.py").write_text(IMPURE.replace("print(x)", "print(x)\n    print(x)\n    open('f')"))
    code, out, _ = cli(capsys, ".", "--statistics")
    assert code == 1
    assert out.splitlines() == ["    3  PUR001  print-in-traced-function", "    1  PUR002  io-in-traced-function"]
    rows = json.loads(cli(capsys, ".", "--statistics", "--output-format", "json")[1])
    assert rows[0] == {"code": "PUR001", "name": "print-in-traced-function", "count": 3}


def test_stdin_with_filename(files, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(IMPURE.encode())))
    code, out, _ = cli(capsys, "-", "--stdin-filename", "pkg/mod.py")
    assert code == 1 and out.startswith("pkg/mod.py:5:5: PUR001") and "5 |     print(x)" in out
    (files / "pyproject.toml").write_text('[tool.purelint.per-file-ignores]\n"pkg/*.py" = ["PUR001"]\n')
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(IMPURE.encode())))
    assert cli(capsys, "-", "--stdin-filename", "pkg/mod.py")[0] == 0
    assert cli(capsys, "-", "good.py")[0] == 2


def test_unreadable_and_undecodable_files_are_reported_and_the_run_goes_on(files, capsys):
    (files / "latin.py").write_bytes(b"x = '\xe9'\n")
    (files / "cookie.py").write_bytes(b"# -*- coding: latin-1 -*-\nx = '\xe9'\n")
    code, out, err = cli(capsys, "missing.py", "latin.py", "cookie.py", "bad.py", "--output-format", "json")
    found = {(d["path"], d["code"]) for d in json.loads(out)}
    assert code == 1 and err == ""
    assert found == {("missing.py", "PUR999"), ("latin.py", "PUR999"), ("bad.py", "PUR001")}
    messages = {d["path"]: d["message"] for d in json.loads(out)}
    assert "cannot read" in messages["missing.py"] and "cannot decode" in messages["latin.py"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user for chmod 000")
def test_permission_denied_is_a_finding(files, capsys):
    locked = files / "locked.py"
    locked.write_text(CLEAN)
    locked.chmod(0)
    try:
        code, out, _ = cli(capsys, "locked.py")
    finally:
        locked.chmod(0o644)
    assert code == 1 and "PUR999" in out and "cannot read" in out


def test_rule_documentation_commands(capsys):
    code, out, _ = cli(capsys, "rule", "pur001")
    assert code == 0
    for section in (
        "# print-in-traced-function (PUR001)",
        "## What it does",
        "## Why is this bad?",
        "## Example",
        "## Use instead",
    ):
        assert section in out
    code, out, _ = cli(capsys, "rules")
    assert code == 0 and "PUR305" in out and "PUR999" in out
    assert cli(capsys, "rule", "PUR000")[0] == 2


def test_console_script_runs_as_a_process(files):
    exe = Path(sys.executable).with_name("purelint")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "purelint._cli"]
    result = subprocess.run([*command, "bad.py"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "PUR001" in result.stdout and "\033[" not in result.stdout
    assert subprocess.run([*command, "good.py"], capture_output=True, timeout=120).returncode == 0
