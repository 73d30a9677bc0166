"""The rule API: the Rule base class, its examples, and everything a rule module may import.

A rule is a small class with a code, a message, Ruff-style docs and its own VALID/INVALID examples.
Its hooks: `visit_<NodeClass>(self, node, ctx)` methods (any libcst class name, e.g. `visit_Call`)
for nodes inside checked functions; `check_function(self, fn, ctx)` once per checked function;
`check_module(self, ctx)` once per file. It reads facts through `ctx` (names, traced parameters,
value kinds) and reports with `ctx.report(node, ...)`; see `purelint._context.Context`.

Checked functions are the traced ones (all of them with `scope = "all"`). A rule with `everywhere`
also sees untraced functions and module-level statements (`ctx.function` is None there) in every
scope, for findings that are bugs whether or not JAX traces the code (`ctx.traced` tells which).

Rule modules (`purelint/rules/`) import from this module only; a new rule also gets a line in
`purelint._registry`, the one list of every rule.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any, ClassVar

from purelint._analysis._cst import code_of, function_nodes, literal, parameters
from purelint._analysis._scopes import FunctionInfo, Scope
from purelint._analysis._taint import Taint
from purelint._context import Context, Where, build_fix
from purelint._diagnostic import Edit, Fix
from purelint._noqa import NOQA_COMMENT, noqa_codes

__all__ = [
    "NOQA_COMMENT",
    "Context",
    "Edit",
    "Fix",
    "FunctionInfo",
    "Invalid",
    "Rule",
    "Scope",
    "Taint",
    "Valid",
    "Where",
    "build_fix",
    "code_of",
    "function_nodes",
    "literal",
    "noqa_codes",
    "parameters",
]

_HANDLERS: dict[type, dict[str, str]] = {}


@dataclass(frozen=True)
class Valid:
    """Code on which the rule must stay silent; `config` holds Config overrides (e.g. {"scope": "all"})."""

    code: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Invalid:
    """Code on which the rule must fire; `line`/`column` (1-based) pin the first finding when given."""

    code: str
    line: int | None = None
    column: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    expected_fix: str | None = None


class Rule:
    """Base class of all rules. Subclasses set the class attributes below and define handlers."""

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    # Default message; `{placeholders}` are filled from the keywords given to ctx.report.
    message: ClassVar[str] = ""
    # The message for findings in code JAX does not trace (`--scope all`, or rules that run
    # everywhere), when the default one talks about tracing; same placeholders.
    untraced_message: ClassVar[str] = ""
    # Ruff's documentation sections.
    what: ClassVar[str] = ""
    why: ClassVar[str] = ""
    example: ClassVar[str] = ""
    use_instead: ClassVar[str] = ""
    default_on: ClassVar[bool] = True
    # Fire only inside traced functions, even with scope = "all" (e.g. `.item()` is fine in plain Python).
    traced_only: ClassVar[bool] = False
    # Also run on untraced code and module-level statements in the default scope (see the docstring).
    everywhere: ClassVar[bool] = False
    # "safe", "unsafe" or None: the kind of fix the rule can offer.
    fix_applicability: ClassVar[str | None] = None
    # When several findings start at one position, the highest priority wins (most specific code).
    priority: ClassVar[int] = 0
    VALID: ClassVar[list[str | Valid]] = []
    INVALID: ClassVar[list[str | Invalid]] = []

    def check_function(self, fn: FunctionInfo, ctx: Context) -> None:
        """Hook: once per checked function."""

    def check_module(self, ctx: Context) -> None:
        """Hook: once per file, after everything else (`ctx.pending` holds the findings so far)."""

    @classmethod
    def has_hook(cls, name: str) -> bool:
        """Whether the rule defines the hook `check_function` or `check_module`."""
        return getattr(cls, name) is not getattr(Rule, name)

    @classmethod
    def handlers(cls) -> dict[str, str]:
        """libcst class name -> method name, for every `visit_<Node>` this rule defines."""
        found = _HANDLERS.get(cls)
        if found is None:
            found = _HANDLERS[cls] = {a[6:]: a for a in dir(cls) if a.startswith("visit_")}
        return found

    @classmethod
    def documentation(cls) -> str:
        """The rule's page, as `purelint rule CODE` prints it (Markdown)."""
        parts = [f"# {cls.name} ({cls.code})", ""]
        flags = ["default-on" if cls.default_on else "opt-in"]
        if cls.fix_applicability:
            flags.append(f"{cls.fix_applicability} fix available")
        parts += [f"{cls.summary} ({', '.join(flags)})", ""]
        for title, body in (
            ("What it does", cls.what),
            ("Why is this bad?", cls.why),
            ("Example", cls.example),
            ("Use instead", cls.use_instead),
        ):
            body = textwrap.dedent(body).strip("\n")
            if title in ("Example", "Use instead"):
                body = f"```python\n{body}\n```"
            parts += [f"## {title}", body, ""]
        return "\n".join(parts).rstrip() + "\n"
