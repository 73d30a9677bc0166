"""The fixes each rule offers: what they write, safe versus unsafe, imports, and what they leave alone."""

import json
import textwrap

import pytest

from purelint import Config, lint_source
from purelint._report import render
from purelint._runner import fix_text

ALL = Config.from_mapping({"select": ["ALL"], "extend-select": ["PUR900"]})


def _fix(body, *, unsafe=True, header="import jax\n", config=ALL):
    source = (
        header
        + "@jax.jit\ndef f(x: jax.Array, y, i, key):\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
        + "    return x\n"
    )
    result = fix_text(source, "m.py", config, unsafe=unsafe)
    assert fix_text(result.text, "m.py", config, unsafe=unsafe).text == result.text  # idempotent
    lines = result.text.splitlines()
    return "\n".join(lines[lines.index("def f(x: jax.Array, y, i, key):") + 1 : -1]), result


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("x[i] = y\n", "    x = x.at[i].set(y)"),
        ("x[i] += y\n", "    x = x.at[i].add(y)"),
        ("x[i] -= y\n", "    x = x.at[i].subtract(y)"),
        ("x[i, 0] *= 2 * y\n", "    x = x.at[i, 0].multiply(2 * y)"),
        ("x[1:] /= y\n", "    x = x.at[1:].divide(y)"),
        ("x[i] **= 2\n", "    x = x.at[i].power(2)"),
        ("x[i] = jax.numpy.minimum(x[i], y)\n", "    x = x.at[i].min(y)"),
        ("x[i] = jax.numpy.maximum(y, x[i])\n", "    x = x.at[i].max(y)"),
        ("x[i] = 1, 2  # pair\n", "    x = x.at[i].set((1, 2))  # pair"),
    ],
)
def test_item_assignment_fix_is_safe(before, after):
    body, result = _fix(before, unsafe=False)
    assert body == after and result.remaining == []


def test_detach_fix_is_safe_and_adds_jax_when_missing():
    source = "import equinox as eqx\n\n@eqx.filter_jit\ndef f(q):\n    return q.detach().max()\n"
    result = fix_text(source, "m.py", ALL, unsafe=False)
    assert (
        result.text
        == "import equinox as eqx\nimport jax\n\n@eqx.filter_jit\ndef f(q):\n    return jax.lax.stop_gradient(q).max()\n"
    )
    body, _ = _fix("y = x.detach()\n", header="import jax as j\nimport jax\n")
    assert body == "    y = j.lax.stop_gradient(x)"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("print(x)\n", "    jax.debug.print('{}', x)"),
        ("print('x =', x, y)\n", "    jax.debug.print('x = {} {}', x, y)"),
        ("print(f'loss {x:.3f} at {i!r} {{not}}')\n", "    jax.debug.print('loss {:.3f} at {!r} {{not}}', x, i)"),
        ("print()\n", "    jax.debug.print('')"),
    ],
)
def test_print_fix_is_unsafe(before, after):
    assert _fix(before, unsafe=False)[0] == "    " + before.strip()
    assert _fix(before)[0] == after


def test_print_with_keywords_is_reported_but_not_fixed():
    body, result = _fix("print(x, end='')\n")
    assert body == "    print(x, end='')" and [d.code for d in result.remaining] == ["PUR001"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("y.add_(x)\n", "    y = y + x"),
        ("y.sub_(x * 2)\n", "    y = y - (x * 2)"),
        ("y.mul_(x + 1)\n", "    y = y * (x + 1)"),
        ("y.div_(2)\n", "    y = y / 2"),
        ("y.zero_()\n", "    y = jnp.zeros_like(y)"),
    ],
)
def test_torch_in_place_fix_is_unsafe(before, after):
    assert _fix(before, unsafe=False)[0] == "    " + before.strip()
    body, _result = _fix(before, header="import jax\nimport jax.numpy as jnp\n")
    assert body == after


def test_in_place_calls_inside_expressions_or_with_options_stay():
    body, result = _fix("z = y.add_(x)\ny.add_(x, alpha=2)\ny.grad.zero_()\n")
    assert body == "    z = y.add_(x)\n    y.add_(x, alpha=2)\n    y.grad.zero_()"
    assert {d.code for d in result.remaining} == {"PUR304"}


def test_zeros_like_import_is_added_once():
    body, result = _fix("y.zero_()\nx.zero_()\n")
    assert body == "    y = jnp.zeros_like(y)\n    x = jnp.zeros_like(x)"
    assert result.text.count("import jax.numpy as jnp") == 1


def test_noqa_lines_are_never_fixed_and_unused_noqa_goes():
    body, _result = _fix("print(x)  # noqa: PUR001\nx[i] = y  # noqa: PUR001, E501\n")
    assert body == "    print(x)  # noqa: PUR001\n    x = x.at[i].set(y)  # noqa: E501"


def test_json_fix_field_carries_the_edit_in_ruffs_shape():
    source = "import jax\n@jax.jit\ndef f(x: jax.Array, i):\n    x[i] = 0\n    return x\n"
    findings = lint_source(source, "m.py", config=ALL)
    (item,) = json.loads(render(findings, "json", lines=lambda path, line: None))
    assert item["fix"] == {
        "applicability": "safe",
        "message": "Use `x = x.at[i].set(...)`",
        "edits": [
            {
                "content": "x = x.at[i].set(0)",
                "location": {"row": 4, "column": 5},
                "end_location": {"row": 4, "column": 13},
            }
        ],
    }


def test_detach_on_a_parenthesised_expression_keeps_one_pair():
    assert _fix("y = (x * y).detach()\n")[0] == "    y = jax.lax.stop_gradient(x * y)"
