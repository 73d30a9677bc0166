"""The GitHub Actions workflow in docs/purelint.md parses and uses real purelint options."""

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from purelint._cli import _parser

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (pre-commit, in the dev extra, brings it)")

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "purelint.md"
# Inputs of github/codeql-action/upload-sarif (its action.yml).
UPLOAD_SARIF_INPUTS = {
    "sarif_file",
    "checkout_path",
    "ref",
    "sha",
    "token",
    "matrix",
    "category",
    "wait-for-processing",
}


def workflow():
    section = DOCS.read_text(encoding="utf-8").split("\n## GitHub Actions\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    return yaml.safe_load(block)


def commands(run):
    """Each shell command of a `run:` script: lines, split at `;`, `&&`, `||` and `|`, redirections cut."""
    for line in run.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set(";&|"):
                if words:
                    yield words
                words = []
            elif token and set(token) <= set("<>"):
                words.append(None)  # what follows a redirection is a file name, not an argument
            elif words and words[-1] is None:
                words[-1:] = []
            else:
                words.append(token)


def test_the_workflow_parses_and_uploads_the_sarif_it_writes():
    flow = workflow()
    assert flow["name"] and flow[True if True in flow else "on"]  # YAML 1.1 reads the key `on` as true
    (job,) = flow["jobs"].values()
    assert job["permissions"]["security-events"] == "write" and job["runs-on"]
    steps = job["steps"]
    assert all(("uses" in step) != ("run" in step) for step in steps)
    assert all(re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", step["uses"]) for step in steps if "uses" in step)
    (upload,) = [s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")]
    assert set(upload["with"]) <= UPLOAD_SARIF_INPUTS
    sarif_runs = [s["run"] for s in steps if "--output-format sarif" in s.get("run", "")]
    assert sarif_runs and all(f"> {upload['with']['sarif_file']}" in run for run in sarif_runs)


def test_every_purelint_command_line_uses_real_options():
    runs = [step["run"] for step in workflow()["jobs"]["purelint"]["steps"] if "run" in step]
    lines = [words for run in runs for words in commands(run) if words[0] == "purelint"]
    formats = set()
    for words in lines:
        args = _parser().parse_args(words[1:])  # an unknown option or value exits 2 here
        formats.add(args.output_format)
    assert formats == {"github", "sarif"}


def test_the_install_line_names_the_light_distribution():
    name = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
    runs = [step["run"] for step in workflow()["jobs"]["purelint"]["steps"] if "run" in step]
    (install,) = [words for run in runs for words in commands(run) if words[:2] == ["pip", "install"]]
    assert name == "purelint" and install[2].split(" @ ")[0] == name
    assert "#subdirectory=" not in install[2]  # the root of the repository is the linter
