"""PUR900: `# noqa: PURxxx` comments that suppress nothing."""

from __future__ import annotations

import re

import libcst as cst

from purelint._rule import NOQA_COMMENT, Context, Edit, Fix, Invalid, Rule, Valid, noqa_codes

__all__ = ["UnusedNoqa"]

# Cheap test before any walking: a noqa comment naming at least one PUR code.
_MAYBE = re.compile(r"#[ \t]*noqa[ \t]*:[^\n]*PUR", re.IGNORECASE)


class UnusedNoqa(Rule):
    code = "PUR900"
    name = "unused-noqa"
    summary = "a `# noqa: PURxxx` comment that suppresses nothing"
    message = "unused `noqa`: no {codes} finding on this line to suppress"
    what = """
        Checks for `# noqa: PURxxx` comments naming purelint codes that no finding on that line
        needs (with the rules enabled in this run). Codes of other tools in the same comment are
        left alone, and so is a bare `# noqa`. The safe fix removes the unused codes, or the whole
        comment when nothing else is left in it. Off by default: enable it with
        `--extend-select PUR900` (or `extend-select = ["PUR900"]`).
    """
    why = """
        A stale suppression hides the next real problem on that line: once the code changes, the
        `noqa` silently swallows a finding nobody has looked at. It also misleads readers into
        thinking the line is impure.
    """
    example = """
        @jax.jit
        def double(x):
            return 2 * x  # noqa: PUR001
    """
    use_instead = """
        @jax.jit
        def double(x):
            return 2 * x
    """
    fix_applicability = "safe"
    # Opt-in, like Ruff's RUF100: it needs every file parsed (no fast path for files without JAX).
    default_on = False
    VALID = [
        Valid(
            "import jax\n@jax.jit\ndef f(x):\n    print(x)  # noqa: PUR001\n    return x",
            config={"select": ["PUR900", "PUR001"]},
        ),
        Valid(
            "import jax\n@jax.jit\ndef f(x):\n    print(x)  # noqa: PUR001, E501\n    return x",
            config={"select": ["PUR"]},
        ),
        "x = 1  # noqa: E501\n",
        "x = 1  # noqa\n",
        # Codes of rules that are not enabled in this run are not judged.
        Valid("x = 1  # noqa: PUR001\n", config={"select": ["PUR900", "PUR002"]}),
        Valid("s = '# noqa: PUR001'\n", config={"select": ["PUR900", "PUR001"]}),
    ]
    INVALID = [
        Invalid(
            "import jax\n@jax.jit\ndef f(x):\n    return 2 * x  # noqa: PUR001\n",
            line=4,
            column=19,
            config={"select": ["PUR900", "PUR001"]},
            expected_fix="import jax\n@jax.jit\ndef f(x):\n    return 2 * x\n",
        ),
        Invalid(
            "x = 1  # noqa: PUR102, E501\n",
            line=1,
            column=8,
            config={"select": ["PUR"]},
            expected_fix="x = 1  # noqa: E501\n",
        ),
        # Outside traced code `print` is fine by default, so its suppression is stale.
        Invalid("def f(x):\n    print(x)  # noqa: PUR001\n", line=2, config={"select": ["PUR"]}),
    ]

    def check_module(self, ctx: Context) -> None:
        if not _MAYBE.search(ctx.source):
            return
        enabled = ctx.config.enabled_codes(ctx.path)
        used: set[tuple[int, str]] = set()
        for rule, node, top, _message, _fix, _traced in ctx.pending:
            where = ctx.position(node, (top, None))
            used.update({(where.start.line, rule.code), (where.end.line, rule.code)})
        lines = ctx.source.splitlines()
        for top, statement in enumerate(ctx.module.body):
            for comment, owner in _comments(statement):
                match = NOQA_COMMENT.search(comment.value)
                if match is None or not match.group("codes"):
                    continue
                # The finding's scope is that of the function around the comment.
                function = ctx.function_of(owner) if owner is not None else None
                at = (top, function or ctx.module_scope)
                where = ctx.position(comment, at)
                codes = sorted(noqa_codes(match))
                unused = [
                    c for c in codes if c.startswith("PUR") and c in enabled and (where.start.line, c) not in used
                ]
                if unused:
                    fix = _removal(
                        lines[where.start.line - 1], where.start.line, where.start.column, comment.value, match, unused
                    )
                    ctx.report(comment, codes=" / ".join(unused), fix=fix, at=at)


def _comments(node: cst.CSTNode):
    """(comment, innermost enclosing def or None) for every comment under `node`."""
    stack: list[tuple[cst.CSTNode, cst.CSTNode | None]] = [(node, None)]
    while stack:
        current, owner = stack.pop()
        if isinstance(current, cst.Comment):
            yield current, owner
            continue
        inner = current if isinstance(current, cst.FunctionDef) else owner
        stack.extend((child, inner) for child in current.children)


def _removal(line_text: str, line: int, column: int, comment: str, match: re.Match[str], unused: list[str]) -> Fix:
    """Drop the unused codes from the comment, or the noqa part (and the spaces before it) entirely."""
    kept = [c for c in re.split(r"[\s,]+", match.group("codes")) if c and c.upper() not in unused]
    if kept:
        start, end, content = column + match.start("codes"), column + match.end("codes"), ", ".join(kept)
    else:
        rest = comment[match.end() :].lstrip()
        start, content = column + match.start(), ""
        if rest.startswith("#"):  # `# why` keeps `# why`
            end = column + len(comment) - len(rest)
        else:  # the noqa (and any note after it) goes, with the spaces before it
            end = column + (len(comment) if match.start() == 0 else match.end())
            while start > 0 and line_text[start - 1] in " \t":
                start -= 1
    message = f"Remove unused `noqa` code{'s' if len(unused) > 1 else ''} {', '.join(unused)}"
    return Fix("safe", message, (Edit(line, start + 1, line, end + 1, content),))
