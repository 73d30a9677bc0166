"""PUR999: files that do not parse (the engine reports them; this class carries the docs)."""

from __future__ import annotations

from purelint._rule import Invalid, Rule

__all__ = ["SyntaxErrorRule"]


class SyntaxErrorRule(Rule):
    code = "PUR999"
    name = "syntax-error"
    summary = "the file cannot be read, decoded or parsed"
    message = "file does not parse"
    what = """
        Reports a file that is not valid Python (with the line and column of the first error),
        and a file that cannot be read or decoded. The rest of the run goes on.
    """
    why = "Nothing in such a file can be checked, so it must not pass silently."
    example = """
        def step(x:
            return x
    """
    use_instead = """
        def step(x):
            return x
    """
    VALID = ["x = 1\n", ""]
    INVALID = [Invalid("def f(:\n    pass\n", line=1, column=7), Invalid("x = (\n", line=1, column=5)]
