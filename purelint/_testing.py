"""Run rules' own VALID/INVALID example tables (the tests parametrize over `example_cases`)."""

from __future__ import annotations

import textwrap

from purelint._api import lint_source
from purelint._config import Config
from purelint._registry import all_rules
from purelint._rule import Invalid, Rule, Valid

__all__ = ["check_example", "example_cases"]


def example_cases() -> list[tuple[str, type[Rule], Valid | Invalid]]:
    """(test id, rule class, example) for every example of every registered rule."""
    cases = []
    for code, rule in all_rules().items():
        for kind, table in (("valid", rule.VALID), ("invalid", rule.INVALID)):
            for index, example in enumerate(table):
                if isinstance(example, str):
                    example = Valid(example) if kind == "valid" else Invalid(example)
                cases.append((f"{code}-{kind}-{index}", rule, example))
    return cases


def check_example(rule: type[Rule], example: Valid | Invalid) -> None:
    """Lint the example with only this rule selected (unless the example's config says otherwise);
    raise AssertionError when the rule stays silent on INVALID code or fires on VALID code, or when
    fixing an INVALID example (unsafe fixes included) does not give its `expected_fix`."""
    settings = {"select": [rule.code], **example.config}
    source = textwrap.dedent(example.code)
    found = [d for d in lint_source(source, "example.py", config=Config.from_mapping(settings)) if d.code == rule.code]
    shown = textwrap.indent(source, "    | ")
    if isinstance(example, Valid):
        assert not found, f"{rule.code} fired on VALID code at {[d.location for d in found]}:\n{shown}"
        return
    assert found, f"{rule.code} stayed silent on INVALID code:\n{shown}"
    first = found[0]
    if example.line is not None:
        assert first.line == example.line, f"{rule.code} at line {first.line}, expected {example.line}:\n{shown}"
    if example.column is not None:
        assert first.column == example.column, (
            f"{rule.code} at column {first.column}, expected {example.column}:\n{shown}"
        )
    if example.expected_fix is not None:
        from purelint._runner import fix_text  # the runner imports the API this module tests

        config = Config.from_mapping(settings)
        fixed = fix_text(source, "example.py", config, unsafe=True).text
        expected = textwrap.dedent(example.expected_fix)
        assert fixed == expected, (
            f"{rule.code} fixed the example to:\n{textwrap.indent(fixed, '    | ')}\nexpected:\n{textwrap.indent(expected, '    | ')}"
        )
