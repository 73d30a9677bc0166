"""Fuzzing: purelint never raises on valid Python, its findings are deterministic, and fixing always
gives code that parses and that a second fix leaves alone."""

import ast

import libcst as cst
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from purelint import Config, lint_source
from purelint._runner import fix_text

EVERYTHING = Config.from_mapping({"select": ["ALL"], "scope": "all"})
# Deterministic (derandomize) and small: seconds, not minutes.
FAST = settings(
    max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
)


def _valid(source: str) -> bool:
    try:
        cst.parse_module(source)
        ast.parse(source)
    except Exception:
        return False
    return True


def _programs(source: str) -> st.SearchStrategy[str]:
    """Random valid programs from hypothesmith (`source`: "grammar" or "node"), built when a test first draws
    one: importing hypothesmith and building its grammar take seconds, which only the pytest process that
    runs the test should pay, not every process at collection."""
    import hypothesmith

    strategy = hypothesmith.from_grammar() if source == "grammar" else hypothesmith.from_node()
    return strategy.filter(_valid)


@FAST
@given(st.deferred(lambda: _programs("grammar")))
def test_never_raises_and_is_deterministic_on_any_program(source):
    first = lint_source(source, "fuzz.py", config=EVERYTHING)
    assert lint_source(source, "fuzz.py", config=EVERYTHING) == first
    assert all(d.code != "PUR999" for d in first)


@FAST
@given(st.deferred(lambda: _programs("node")))
def test_never_raises_on_programs_built_from_nodes(source):
    lint_source(source, "fuzz.py", config=EVERYTHING)
    fixed = fix_text(source, "fuzz.py", EVERYTHING, unsafe=True)
    ast.parse(fixed.text)


# Impure statements purelint fixes (and some it only reports), to mix into traced functions.
STATEMENTS = [
    "print(x, y)",
    "print('loss', x)  # noqa: PUR001",
    "x[i] = y",
    "x[i] += y",
    "x[0] -= 1",
    "x[i, j] *= y",
    "x[i] /= 2",
    "x[i] **= 2",
    "x.add_(y)",
    "x.mul_(2)",
    "x.sub_(y)",
    "x.div_(y)",
    "x.zero_()",
    "z = y.detach()",
    "z = (x + y).detach().sum()",
    "z = jax.random.normal(key) + jax.random.normal(key)",
    "key, sub = jax.random.split(key)",
    "z = float(x)",
    "if x > 0:\n    x = -x",
    "for _ in range(40):\n    x = x * 2",
    "x = x  # noqa: PUR001",
    "pass",
]
HEADERS = [
    "import jax\n",
    "import jax\nimport jax.numpy as jnp\n",
    "import jax as j\nimport jax\n",
    "import os\nimport jax\n",
]


@st.composite
def traced_programs(draw):
    header = draw(st.sampled_from(HEADERS))
    body = draw(st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=6))
    indent = draw(st.sampled_from(["    ", "  ", "\t"]))
    comment = draw(st.sampled_from(["", "  # keep me", "  # noqa: E501"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [f"{indent}{line}" for stmt in body for line in stmt.split("\n")]
    lines[0] += comment
    source = f"{header}\n@jax.jit\ndef step(x, y, i, j, key):{comment}\n" + "\n".join(lines) + f"\n{indent}return x\n"
    return source.replace("\n", newline)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
@given(traced_programs(), st.booleans())
def test_fixes_parse_are_idempotent_and_keep_the_rest(source, unsafe):
    before = lint_source(source, "fuzz.py", config=EVERYTHING)
    fixed = fix_text(source, "fuzz.py", EVERYTHING, unsafe=unsafe)
    ast.parse(fixed.text)
    again = fix_text(fixed.text, "fuzz.py", EVERYTHING, unsafe=unsafe)
    assert again.text == fixed.text and again.fixed == 0
    assert fixed.remaining == lint_source(fixed.text, "fuzz.py", config=EVERYTHING)
    # Line endings, and comments outside the edits, survive.
    assert ("\r\n" in fixed.text) == ("\r\n" in source)
    for comment in ("# keep me", "# noqa: E501"):
        assert fixed.text.count(comment) == source.count(comment)
    # A line whose finding is suppressed is never fixed (an unused `noqa` is PUR900's to remove).
    for line in source.splitlines():
        if "print('loss', x)  # noqa: PUR001" in line:
            assert line in fixed.text.splitlines()
    # What was fixed is no longer reported (findings may only go away or stay).
    if fixed.fixed:
        assert len(fixed.remaining) < len(before) or fixed.text != source
