"""The library surface: lint_source, lint_paths, Diagnostic, and what importing purelint pulls in."""

import json
import subprocess
import sys

import purelint
from purelint import Config, Diagnostic, lint_paths, lint_source

IMPURE = "import jax\n@jax.jit\ndef f(x):\n    print(x)\n    return x\n"


def test_public_api_is_exported():
    for name in ("lint_source", "lint_paths", "lint_file", "Diagnostic", "Config", "Rule", "Fix", "Edit"):
        assert name in purelint.__all__ and hasattr(purelint, name)


def test_importing_purelint_imports_neither_jax_nor_torch():
    code = "import sys, purelint; purelint.lint_source('import jax\\n'); print(sorted(m for m in ('jax', 'torch', 'equinox') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_lint_source_returns_diagnostics_with_every_field():
    (d,) = lint_source(IMPURE)
    assert isinstance(d, Diagnostic)
    assert d.to_dict() == {
        "code": "PUR001",
        "message": d.message,
        "path": "<string>",
        "line": 4,
        "column": 5,
        "end_line": 4,
        "end_column": 13,
        "scope": "traced",
        # print's fix is unsafe: jax.debug.print runs on every call, asynchronously
        "fix": {
            "applicability": "unsafe",
            "message": "Use `jax.debug.print`",
            "edits": (
                {"line": 4, "column": 5, "end_line": 4, "end_column": 13, "content": "jax.debug.print('{}', x)"},
            ),
        },
        "cell": None,
    }
    assert Diagnostic.from_dict(json.loads(json.dumps(d.to_dict()))) == d


def test_lint_paths_walks_directories_in_a_stable_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.py").write_text(IMPURE)
    (tmp_path / "a.py").write_text(IMPURE)
    (tmp_path / "notes.txt").write_text(IMPURE)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "c.py").write_text(IMPURE)
    found = lint_paths([tmp_path], config=Config(root=tmp_path))
    assert [(d.path, d.code) for d in found] == [
        (str(tmp_path / "a.py"), "PUR001"),
        (str(tmp_path / "b" / "z.py"), "PUR001"),
    ]


def test_the_code_being_checked_is_never_executed(tmp_path):
    marker = tmp_path / "ran"
    source = f"import jax\nopen({str(marker)!r}, 'w').write('x')\n@jax.jit\ndef f(x):\n    print(x)\n"
    assert [d.code for d in lint_source(source, config=Config(scope="all"))] == ["PUR001"]
    assert not marker.exists()
