"""Robustness: a deterministic sample of the standard library, every rule, every function checked.
The full sweep (with files/s) is benchmarks/stdlib_sweep.py."""

import ast
import sysconfig
from pathlib import Path

import pytest

from purelint import Config, decode_source, lint_file, lint_source
from purelint._analysis._positions import Positions

ROOT = Path(sysconfig.get_paths()["stdlib"])
FILES = sorted(p for p in ROOT.rglob("*.py") if "site-packages" not in p.parts)
SAMPLE = FILES[::70]


def _parses(path):
    try:
        ast.parse(path.read_bytes())
        return True
    except (SyntaxError, ValueError):
        return False


@pytest.mark.skipif(not FILES, reason="the standard library sources are not installed")
@pytest.mark.parametrize("path", SAMPLE, ids=[str(p.relative_to(ROOT)) for p in SAMPLE])
def test_stdlib_file_lints_without_crashing(path):
    config = Config(scope="all", select=("ALL",))
    try:
        source = decode_source(path.read_bytes())
    except (UnicodeDecodeError, SyntaxError, LookupError):
        pytest.skip("not decodable as Python source")
    first = lint_source(source, str(path), config=config)
    # deterministic, and every finding lies inside the file
    assert lint_source(source, str(path), config=config) == first
    lines = source.splitlines()
    for d in first:
        assert 1 <= d.line <= max(1, len(lines)) and d.line <= d.end_line, d
        if d.code != "PUR999":
            assert 1 <= d.column <= len(lines[d.line - 1]) + 1, d


@pytest.mark.parametrize("path", SAMPLE[::3], ids=[str(p.relative_to(ROOT)) for p in SAMPLE[::3]])
def test_positions_match_libcst_position_provider(path, monkeypatch):
    """Positions come from generating code for the smallest unit around a finding; they must equal
    what libcst's PositionProvider gives for the whole module."""
    config = Config(scope="all", select=("ALL",))
    source = path.read_text(encoding="utf-8", errors="replace")
    fast = lint_source(source, str(path), config=config)
    monkeypatch.setattr(Positions, "_unit_starts", lambda self: {})  # whole-module fallback
    assert lint_source(source, str(path), config=config) == fast


def test_bad_syntax_in_stdlib_test_data_is_a_finding():
    bad = [p for p in FILES if p.name.startswith("badsyntax_") and not _parses(p)][:3]
    if not bad:
        pytest.skip("no badsyntax_* files in this standard library")
    for path in bad:
        assert [d.code for d in lint_file(path)] == ["PUR999"], path
