"""Habits Ruff users bring, end to end through the command line: the `check` subcommand, Ruff's
selection precedence, `[*]` marks and the fixable summary, `--show-fixes`, a light `--version`."""

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from purelint._cli import COMMANDS, main

SOURCE = "import jax\n\n@jax.jit\ndef f(x):\n    print(x)\n    y = x.detach()\n    return y\n"


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    (tmp_path / "m.py").write_text(SOURCE)
    return tmp_path


def cli(capsys, *argv):
    code = main(["--no-cache", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def check(capsys, *argv):
    code = main(["check", "--no-cache", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_subcommand_is_the_bare_form(project, capsys):
    assert check(capsys, "m.py") == cli(capsys, "m.py")
    assert check(capsys, "m.py")[0] == 1
    assert set(COMMANDS) >= {"check", "rule", "rules", "server"}


def test_fixable_marks_and_summary_as_ruff_prints_them(project, capsys):
    out = check(capsys, "m.py")[1].splitlines()
    assert out[0].startswith("m.py:5:5: PUR001 `print()`")  # unsafe fix only: no mark
    assert out[3].startswith("m.py:6:9: PUR305 [*] `.detach()`")
    assert out[-2:] == [
        "Found 2 findings in 1 file.",
        "[*] 1 fixable with `--fix` (1 unsafe fix available with `--fix --unsafe-fixes`).",
    ]
    out = check(capsys, "m.py", "--select", "PUR001")[1].splitlines()
    assert out[-1] == "1 unsafe fix available with `--fix --unsafe-fixes`."
    out = check(capsys, "m.py", "--select", "PUR305")[1].splitlines()
    assert out[-1] == "[*] 1 fixable with `--fix`."


def test_show_fixes_lists_what_was_fixed(project, capsys):
    code, out, err = check(capsys, "m.py", "--fix", "--show-fixes")
    assert code == 1 and "fixed 1 finding" in err
    assert out.startswith("Fixed 1 finding:\n- m.py:\n    1 \u00d7 PUR305 (torch-ism)\n\n")
    assert "stop_gradient" in (project / "m.py").read_text()


def test_command_line_select_overrides_the_files_ignore(project, capsys):
    (project / "pyproject.toml").write_text('[tool.purelint]\nignore = ["PUR001"]\n')
    assert "PUR001" not in check(capsys, "m.py")[1]
    code, out, _ = check(capsys, "m.py", "--select", "PUR001")
    assert code == 1 and "PUR001" in out and "PUR305" not in out
    code, out, _ = check(capsys, "m.py", "--extend-select", "PUR001")
    assert code == 1 and "PUR001" in out and "PUR305" in out
    # the command line's ignore still wins over its select, and a longer code beats a prefix
    assert check(capsys, "m.py", "--select", "PUR001", "--ignore", "PUR001")[0] == 0
    code, out, _ = check(capsys, "m.py", "--select", "PUR0", "--ignore", "PUR")
    assert code == 1 and "PUR001" in out
    code, out, _ = check(capsys, "m.py", "--select", "PUR001", "--ignore", "PUR0")
    assert code == 1 and "PUR001" in out


def test_version_loads_no_libcst():
    probe = "import sys; from purelint._cli import main; main(['--version']); print('libcst' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "False" and out.startswith("purelint ")
    probe = "import sys, purelint; print('libcst' in sys.modules, purelint.lint_source is not None)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "schemas" / "sarif-schema-2.1.0.json"


def test_sarif_rules_levels_and_fingerprints(project, capsys):
    report = json.loads(check(capsys, "m.py", "--output-format", "sarif")[1])
    if SCHEMA.is_file():
        jsonschema = pytest.importorskip("jsonschema")
        jsonschema.validate(report, json.loads(SCHEMA.read_text()))
    run = report["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["PUR001"]["helpUri"].endswith("purelint-rules.md#print-in-traced-function-pur001")
    assert {r["ruleId"]: r["level"] for r in run["results"]} == {"PUR001": "warning", "PUR305": "error"}
    assert rules["PUR305"]["defaultConfiguration"] == {"level": "error"}
    first = {r["ruleId"]: r["partialFingerprints"] for r in run["results"]}
    assert run["results"][0]["locations"][0]["physicalLocation"]["region"]["snippet"] == {"text": "    print(x)"}
    # code moved down by a few lines, and a second identical line: the first keeps its fingerprint
    (project / "m.py").write_text("\n\n\n" + SOURCE.replace("    print(x)\n", "    print(x)\n    print(x)\n"))
    results = json.loads(check(capsys, "m.py", "--output-format", "sarif")[1])["runs"][0]["results"]
    prints = [r["partialFingerprints"] for r in results if r["ruleId"] == "PUR001"]
    assert prints[0] == first["PUR001"] and prints[1] != prints[0]
    assert [r["partialFingerprints"] for r in results if r["ruleId"] == "PUR305"] == [first["PUR305"]]


def test_concise_junit_and_gitlab_formats(project, capsys):
    code, out, _ = check(capsys, "m.py", "--output-format", "concise")
    assert code == 1 and out.splitlines()[:2] == [
        "m.py:5:5: PUR001 `print()` runs once, at trace time, and shows tracers; use `jax.debug.print`",
        "m.py:6:9: PUR305 [*] `.detach()` is a PyTorch habit that fails on traced JAX arrays; "
        "use `jax.lax.stop_gradient(x)`",
    ]
    suites = ElementTree.fromstring(check(capsys, "m.py", "--output-format", "junit")[1])
    assert (suites.tag, suites.get("tests"), suites.get("failures")) == ("testsuites", "2", "2")
    (suite,) = suites
    assert suite.get("name") == "m.py" and suite.get("package") == "org.purelint"
    case = suite[0]
    assert (case.get("name"), case.get("classname"), case.get("line"), case.get("column")) == (
        "org.purelint.PUR001",
        "m",
        "5",
        "5",
    )
    assert case.find("failure").text.startswith("line 5, col 5, `print()`")
    entries = json.loads(check(capsys, "m.py", "--output-format", "gitlab")[1])
    assert [(e["check_name"], e["severity"]) for e in entries] == [("PUR001", "minor"), ("PUR305", "major")]
    assert entries[0]["location"] == {
        "path": "m.py",
        "positions": {"begin": {"line": 5, "column": 5}, "end": {"line": 5, "column": 13}},
    }
    assert len({e["fingerprint"] for e in entries}) == 2
    (project / "m.py").write_text("x = 1\n")
    clean = ElementTree.fromstring(check(capsys, "m.py", "--output-format", "junit")[1])
    assert clean[0][0].get("name") == "No errors found"
    assert check(capsys, "m.py", "--output-format", "gitlab")[1] == "[]\n"


def test_quiet_output_file_and_exit_non_zero_on_fix(project, capsys):
    code, out, err = check(capsys, "m.py", "-q")
    assert code == 1 and "Found" not in out and "fixable" not in out and out.startswith("m.py:5:5: PUR001")
    code, out, err = check(capsys, "m.py", "--output-file", "reports/lint.txt", "--output-format", "concise")
    assert code == 1 and out == ""
    assert (project / "reports" / "lint.txt").read_text().startswith("m.py:5:5: PUR001")
    assert not [p for p in (project / "reports").iterdir() if p.name.startswith(".purelint-")]  # no temp left
    (project / "blocker").write_text("")
    code, _, err = check(capsys, "m.py", "--output-file", "blocker/lint.txt")
    assert code == 2 and err.startswith("purelint: error: cannot write blocker/lint.txt") and err.count("\n") == 1
    code, out, err = check(capsys, "m.py", "--select", "PUR305", "--fix", "--exit-non-zero-on-fix")
    assert code == 1 and "All checks passed!" in out
    assert check(capsys, "m.py", "--select", "PUR305", "--fix", "--exit-non-zero-on-fix")[0] == 0  # nothing to fix
    code, out, err = check(capsys, "m.py", "--select", "PUR001", "--fix", "--unsafe-fixes", "-q")
    assert (code, out, err) == (0, "", "")


def test_show_files_show_settings_and_extend_exclude(project, capsys):
    (project / "gen").mkdir()
    (project / "gen" / "g.py").write_text("x = 1\n")
    (project / "pyproject.toml").write_text('[tool.purelint]\nignore = ["PUR001"]\n')
    assert check(capsys, "--show-files", ".")[:2] == (0, "gen/g.py\nm.py\n")
    assert check(capsys, "--show-files", ".", "--extend-exclude", "gen")[1] == "m.py\n"
    code, out, _ = check(capsys, "--show-settings", "m.py", "--select", "PUR0")
    assert code == 0 and f"Settings path: {project / 'pyproject.toml'}" in out
    assert "ignore = ('PUR001',)" in out and "enabled = ['PUR001', 'PUR002', 'PUR003']" in out


def test_add_noqa_silences_every_finding_in_place(project, capsys):
    (project / "two.py").write_text("import jax\n@jax.jit\ndef g(x):\n    print(x); print(x)  # noqa: PUR305\n")
    code, out, err = check(capsys, "--add-noqa", "m.py", "two.py")
    assert (code, out, err) == (0, "", "Added 3 noqa directives.\n")
    assert "    print(x)  # noqa: PUR001\n    y = x.detach()  # noqa: PUR305\n" in (project / "m.py").read_text()
    assert (project / "two.py").read_text().endswith("print(x); print(x)  # noqa: PUR305, PUR001\n")
    assert check(capsys, "m.py", "two.py")[:2] == (0, "All checks passed!\n")
    assert check(capsys, "--add-noqa", "m.py")[2] == "Added 0 noqa directives.\n"


def test_watch_lints_again_when_a_file_changes(project):
    command = [sys.executable, "-m", "purelint", "check", "--watch", "--watch-runs", "2", "--watch-interval", "0.05"]
    command += ["--no-cache", "--output-format", "concise", "m.py"]
    env = {**os.environ, "NO_COLOR": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as process:
        try:
            first = [process.stdout.readline() for _ in range(4)]
            assert first[0].startswith("m.py:5:5: PUR001") and first[2] == "Found 2 findings in 1 file.\n"
            (project / "m.py").write_text("import jax\n\n@jax.jit\ndef f(x):\n    return x\n")
            out, err = process.communicate(timeout=60)
        finally:
            process.kill()
    assert out == "All checks passed!\n"
    assert "File change detected, linting again." in err and err.count("Watching for file changes.") == 2
    assert process.returncode == 0


def test_the_language_server_starts_without_libcst():
    pytest.importorskip("pygls")
    probe = "import sys, purelint._server; print('libcst' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]
