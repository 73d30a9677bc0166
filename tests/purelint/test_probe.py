"""`purelint probe` end to end: real programs run under the probe in a subprocess.

The programs live in data/probe/; a `# expect: CODE` comment marks each line where the probe must
report CODE, exactly once. Every program is also run without the probe: its output and exit
status must be the same.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from purelint import Diagnostic
from purelint._probe._report import render

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data" / "probe"
EXPECT = re.compile(r"# expect: (PUR\d{3})")
STDIN = "alice\n"  # effects.py's traced `input()` reads one line


def expected(program: Path) -> list[tuple[int, str]]:
    lines = program.read_text().splitlines()
    return sorted((number, match.group(1)) for number, line in enumerate(lines, 1) for match in EXPECT.finditer(line))


def run(argv, cwd, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, input=STDIN, timeout=300, **kwargs)


def probe(cwd, *args):
    return run([sys.executable, "-m", "purelint", "probe", *args], cwd)


_runs: dict[tuple, tuple] = {}


@pytest.fixture(scope="module")
def probed_findings(tmp_path_factory):
    """The findings of a program under the probe, after checking that it ran as it runs without it:
    same exit status, and the same output unless `same_output=False`. Each program runs both ways
    once per module."""

    def findings(program: Path, *program_args: str, same_output: bool = True) -> list[dict]:
        key = (program, program_args)
        if key not in _runs:
            cwd = tmp_path_factory.mktemp("probe")
            plain = run([sys.executable, str(program), *program_args], cwd)
            report = cwd / "report.json"
            watched = probe(
                cwd, "--no-summary", "--output-format", "json", "-o", str(report), str(program), *program_args
            )
            _runs[key] = plain, watched, json.loads(report.read_text()) if report.exists() else None
        plain, watched, found = _runs[key]
        assert watched.returncode == plain.returncode, watched.stderr
        if same_output:
            assert (watched.stdout, watched.stderr) == (plain.stdout, plain.stderr)
        return found

    return findings


@pytest.mark.parametrize("name", ["tutorial", "transforms", "effects", "keys", "stale", "pure"])
def test_each_impurity_is_reported_once_at_its_line_and_the_program_runs_as_without_the_probe(probed_findings, name):
    program = DATA / f"{name}.py"
    found = probed_findings(program)
    assert sorted((d["line"], d["code"]) for d in found) == expected(program)
    assert all(d["path"] == str(program) or Path(d["path"]).resolve() == program for d in found)
    assert all(d["scope"] == "traced" for d in found)


def test_the_tutorials_messages_say_what_was_observed(probed_findings):
    found = {d["code"]: d["message"] for d in probed_findings(DATA / "tutorial.py")}
    assert found["PUR001"].startswith("traced 1 time, called 3 times (`impure_fn_4` under `jax.jit`): `print` ran once")
    assert found["PUR103"].startswith(
        "global `nr_executions` was 7 at trace time and is 8 now; the compiled function still uses 7: "
        "traced 1 time, called 3 times, 2 of them with the old value"
    )
    assert "global `nr_executions` changed from 3 to 4 while tracing" in found["PUR101"]
    assert "argument `xs` (list) grew from 2 to 3 items" in found["PUR302"]
    assert "`random.random` ran once; the number it drew is frozen into the compiled function" in found["PUR201"]


def test_an_exception_and_exit_status_come_through_unchanged(probed_findings, tmp_path):
    # The same traceback (none of the probe's frames in it), the same exit status 1; `sys.exit(3)`.
    program = DATA / "failing.py"
    assert probed_findings(program) == []
    plain, _watched, _found = _runs[(program, ())]
    assert plain.returncode == 1 and plain.stderr.rstrip().endswith("ValueError: boom after 4.0")
    assert probed_findings(program, "3") == []
    assert _runs[(program, ("3",))][0].returncode == 3


def test_the_project_examples(probed_findings):
    # Impure on purpose: the four functions that run, each once; torch_style_step never runs. (Its
    # "random" noise is unseeded: only the exit status can be compared.)
    found = probed_findings(REPO / "examples" / "purity.py", same_output=False)
    assert sorted((d["line"], d["code"]) for d in found) == [
        (50, "PUR103"),
        (67, "PUR001"),
        (73, "PUR102"),
        (79, "PUR201"),
    ]
    assert probed_findings(REPO / "examples" / "linear_regression.py") == []


@pytest.mark.slow
def test_the_tutorial_in_both_frameworks_gives_no_finding(probed_findings):
    assert probed_findings(REPO / "examples" / "lost_numbers.py") == []


@pytest.mark.slow
def test_purelm_train_gives_no_finding(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("def f(x):\n    return x + 1\n" * 400)
    script = Path(sys.executable).parent / "purelm"
    command = [str(script)] if script.exists() else ["-m", "purelm._signals"]
    found = probe(
        tmp_path,
        "--output-format",
        "json",
        "-o",
        "report.json",
        *command,
        "train",
        str(data),
        "--out",
        "run",
        "--steps",
        "6",
        "--embed-dim",
        "8",
        "--hidden-dim",
        "16",
        "--batch-size",
        "4",
        "--seq-len",
        "16",
        "--eval-every",
        "3",
        "--log-every",
        "3",
        "--no-compile-cache",
    )
    assert found.returncode == 0, found.stderr
    assert json.loads((tmp_path / "report.json").read_text()) == []
    assert "purelint probe: 0 findings" in found.stderr


def test_text_report_with_source_lines_and_the_summary_line(tmp_path):
    text = probe(tmp_path, "--exit-nonzero-on-finding", str(DATA / "tutorial.py"))
    assert text.returncode == 1  # the program succeeded, the probe found something
    assert "tutorial.py:42:5: PUR001 traced 1 time" in text.stderr
    assert "42 |     print(x)  # expect: PUR001\n   |     ^^^^^^^^" in text.stderr
    assert re.search(
        r"purelint probe: 5 findings in 1 file; watched \d+ traces of \d+ functions; run [\d.]+ s, "
        r"of which the probe [\d.]+ s \(\d+%\)\n$",
        text.stderr,
    )


def test_the_linters_other_formats(probed_findings):
    found = [Diagnostic.from_dict(d) for d in probed_findings(DATA / "tutorial.py")]
    assert render(found, "github").count("::error title=purelint (PUR") == 5
    sarif = json.loads(render(found, "sarif"))
    rules = {r["id"]: r["name"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert rules == {
        "PUR001": "print-in-traced-function",
        "PUR101": "global-rebinding",
        "PUR103": "mutable-global-read",
        "PUR201": "python-random",
        "PUR302": "argument-mutation",
    }


def test_compare_with_the_static_linter(tmp_path):
    result = probe(
        tmp_path, "--compare", "--output-format", "json", "-o", "compare.json", str(REPO / "examples" / "purity.py")
    )
    assert result.returncode == 0
    compared = json.loads((tmp_path / "compare.json").read_text())
    assert sorted((s["static"]["line"], s["static"]["code"]) for s in compared["confirmed"]) == [
        (50, "PUR103"),
        (67, "PUR001"),
        (73, "PUR102"),
        (79, "PUR201"),
    ]
    assert compared["dynamic_only"] == []
    assert [(s["line"], s["code"]) for s in compared["static_only"]] == [(90, "PUR302")]  # torch_style_step never ran
    assert compared["not_observable"] == {"PUR304": 1, "PUR305": 1}
    # The tutorial's functions are jitted at run time (`jax.jit(fn)` in a loop): only the probe sees them traced.
    text = probe(tmp_path, "--compare", str(DATA / "tutorial.py")).stderr
    assert text.startswith("purelint probe --compare: 0 confirmed, 5 seen only at run time, 0 static findings not seen")


def test_probe_a_test_suite_with_dash_m(tmp_path):
    (tmp_path / "test_scaled.py").write_text(
        "import jax\n\n\n@jax.jit\ndef scaled(x):\n    print('x is', x)\n    return 2 * x\n\n\n"
        "def test_one():\n    assert scaled(1.0) == 2.0\n\n\ndef test_two():\n    assert scaled(2.0) == 4.0\n"
    )
    result = probe(tmp_path, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "test_scaled.py")
    assert result.returncode == 0 and "2 passed" in result.stdout
    assert "test_scaled.py:6:5: PUR001 traced 1 time, called 2 times (`scaled` under `jax.jit`)" in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "purelint probe: error: nothing to run"),
        (["missing.py"], "purelint probe: error: no such file: missing.py"),
        (["--compare", "--output-format", "sarif", "x.py"], "purelint probe: error: --compare reports as text or json"),
        (["--output-format", "xml", "x.py"], "purelint probe: error: argument --output-format: invalid choice"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(tmp_path, argv, message):
    result = probe(tmp_path, *argv)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
