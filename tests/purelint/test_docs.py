"""Rule documentation: the generated docs file stays in sync, and every page has Ruff's sections."""

import pytest

from purelint import _docs as docs_module
from purelint import all_rules
from purelint._cli import main
from purelint._docs import DOCS, expected_files, rules_markdown, rules_table


def test_docs_files_are_generated_from_the_rules():
    files = expected_files()
    assert DOCS / "purelint-rules.md" in files
    for path, text in files.items():
        assert path.read_text(encoding="utf-8") == text, "run: python -m purelint._docs --write"
    assert rules_markdown() == files[DOCS / "purelint-rules.md"]


def test_readme_carries_the_generated_rules_table():
    readme = DOCS.parent / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert "<!-- purelint-rules-table:start" in text and rules_table() in text
    assert expected_files()[readme] == text


def test_check_and_write_modes(tmp_path, monkeypatch):
    guide = tmp_path / "purelint.md"
    guide.write_text(
        "intro\n<!-- purelint-rules-table:start (generated) -->\nold\n<!-- purelint-rules-table:end -->\nmore\n"
    )
    monkeypatch.setattr(docs_module, "DOCS", tmp_path)
    assert docs_module.main(["--check"]) == 1
    assert docs_module.main(["--write"]) == 0
    assert docs_module.main(["--check"]) == 0
    assert (
        guide.read_text()
        == "intro\n<!-- purelint-rules-table:start (generated) -->\n"
        + rules_table()
        + "<!-- purelint-rules-table:end -->\nmore\n"
    )
    assert docs_module.main(["--bogus"]) == 2


def test_table_lists_every_rule_with_default_and_fix():
    rows = rules_table().splitlines()[2:]
    assert [row.split(" | ")[0].strip("| ") for row in rows] == list(all_rules())
    by_code = {row.split(" | ")[0].strip("| "): row.split(" | ") for row in rows}
    assert by_code["PUR900"][3:] == ["off", "safe |"]
    assert by_code["PUR403"][3:] == ["on", "unsafe |"]


@pytest.mark.parametrize("code", ["PUR204", "PUR401", "PUR402", "PUR403", "PUR404", "PUR900"])
def test_rule_page_has_ruff_sections(code, capsys):
    assert main(["rule", code]) == 0
    page = capsys.readouterr().out
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert section in page
    assert page.count("```python") == 2


def test_rules_listing_has_every_code(capsys):
    assert main(["rules"]) == 0
    listing = capsys.readouterr().out
    for code, rule in all_rules().items():
        line = next(line for line in listing.splitlines() if line.startswith(code))
        assert rule.summary in line
