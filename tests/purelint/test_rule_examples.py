import pytest

from purelint._testing import check_example, example_cases

CASES = example_cases()


@pytest.mark.parametrize(("rule", "example"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_example(rule, example):
    check_example(rule, example)


def test_every_rule_has_both_tables_and_docs():
    from purelint import all_rules

    for code, rule in all_rules().items():
        assert rule.VALID and rule.INVALID, code
        assert rule.name and rule.summary and rule.message, code
        for section in (rule.what, rule.why, rule.example, rule.use_instead):
            assert section.strip(), code
