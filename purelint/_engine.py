"""Lint one decoded source text with given rule instances: parse once, build the semantic model
(scopes, name resolution, trace routes: `purelint._analysis`), dispatch the rules over the nodes they
asked for, and turn their reports into findings (one per position, noqa comments applied).

One iterative walk records everything the model and the rules need, so there is no second walk and
no libcst metadata provider; positions are computed only for the statements that hold findings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import libcst as cst

from purelint._analysis._cst import cpython_parse
from purelint._analysis._scopes import FunctionInfo
from purelint._analysis._tracing import analyze
from purelint._context import Context
from purelint._diagnostic import Diagnostic
from purelint._noqa import Suppressions
from purelint._rule import Rule

__all__ = ["RuleCrash", "check_source"]

# A file without these words cannot import a JAX transformation, so nothing in it is traced.
_MAY_TRACE = re.compile(r"\b(?:jax|equinox|flax|haiku|optax)\b")


def _syntax_error(path: str, error: Exception, source: str) -> Diagnostic:
    """PUR999 at CPython's location and wording when CPython rejects the code too (libcst's
    positions for errors are rougher), else at libcst's."""
    try:
        cpython_parse(source)
    except SyntaxError as cpython:
        line, column, text = cpython.lineno or 1, cpython.offset or 1, cpython.msg
    except (ValueError, MemoryError, RecursionError) as cpython:
        line, column, text = 1, 1, str(cpython)
    else:
        if isinstance(error, cst.ParserSyntaxError):
            line, column, text = error.editor_line, error.editor_column, error.message
        else:
            line, column, text = 1, 1, f"{type(error).__name__}: {error}"
    text = (text.removeprefix("parser error: ").splitlines() or ["invalid syntax"])[0]
    return Diagnostic("PUR999", f"file does not parse: {text}", path, line, column, line, column)


def check_source(
    source: str, path: str, config: Any, rules: list[Rule], line_names: Callable[[int], str] | None = None
) -> list[Diagnostic]:
    """Lint one decoded source text with the given rule instances; never raises on bad code.
    `line_names` names a line of the source in messages (notebooks: "line 3 of cell 2")."""
    scope_all = config.scope == "all"
    # Rules that run everywhere report JAX code only, so a file that never mentions JAX is skipped.
    has_module_hooks = any(r.has_hook("check_module") for r in rules)
    needs_parse = any(r.has_hook("check_module") and not r.everywhere for r in rules)
    if not scope_all and not needs_parse and not _may_trace(source, config):
        try:
            cpython_parse(source)
            return []  # nothing is traced in this file, and module-level code is never flagged
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            pass  # let libcst decide, and report its error
    try:
        module = cst.parse_module(source)
    except Exception as error:  # libcst raises ParserSyntaxError, and RecursionError on deep nesting
        return [_syntax_error(path, error, source)] if any(r.code == "PUR999" for r in rules) else []
    handlers: dict[str, list[tuple[Rule, Any]]] = {}
    for rule in rules:
        for node_type, method in rule.handlers().items():
            handlers.setdefault(node_type, []).append((rule, getattr(rule, method)))
    model = analyze(module, handlers, getattr(config, "extra_transforms", ()))
    ctx = Context(model, source, path, config)
    if line_names is not None:
        ctx.line_names = line_names
    anywhere = any(r.everywhere for r in rules)
    node: cst.CSTNode = module
    try:
        for node, scope, parent, top, store in model.events:
            if isinstance(scope, FunctionInfo):
                checked = scope.traced or scope_all
                function: FunctionInfo | None = scope
            elif scope is model.module_scope and anywhere:
                checked, function = False, None
            else:
                continue
            if not checked and not anywhere:
                continue
            found = handlers.get(type(node).__name__)
            if found is None:
                continue
            ctx.function, ctx.parent, ctx.is_store, ctx.top = function, parent, store, top  # type: ignore[assignment]
            traced = function is not None and function.traced
            for rule, method in found:
                if (checked and (traced or not rule.traced_only)) or rule.everywhere:
                    ctx.rule = rule
                    method(node, ctx)
        function_rules = [r for r in rules if r.has_hook("check_function")]
        for fn in model.functions if function_rules else ():
            checked = fn.traced or scope_all
            ctx.function, ctx.parent, ctx.top = fn, None, fn.top
            node = fn.node if fn.node is not None else module
            for rule in function_rules:
                if (checked and (fn.traced or not rule.traced_only)) or rule.everywhere:
                    ctx.rule = rule
                    rule.check_function(fn, ctx)
        for rule in rules if has_module_hooks else ():
            if rule.has_hook("check_module"):
                ctx.rule, ctx.function, node = rule, None, module  # type: ignore[assignment]
                rule.check_module(ctx)
    except Exception as error:
        line = ctx.positions.get(node, ctx.top, ctx.function).start.line if node is not module else 1
        raise RuleCrash(
            f"rule {ctx.rule.code} crashed at {path}:{line}: {type(error).__name__}: {error}", ctx.rule.code
        ) from error
    return _finish(ctx, Suppressions(source))


class RuleCrash(RuntimeError):
    """A rule raised on some input: a purelint bug, reported with the rule code and location.
    `code` is the rule's code, so callers can lint on without that rule."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def _may_trace(source: str, config: Any) -> bool:
    if _MAY_TRACE.search(source):
        return True
    return any(name.split(".")[0] in source for name in getattr(config, "extra_transforms", ()))


def _finish(ctx: Context, suppressions: Suppressions) -> list[Diagnostic]:
    best: dict[tuple[int, int], tuple[Rule, Diagnostic]] = {}
    for (rule, node, top, message, fix, traced), function in zip(ctx.pending, ctx.pending_functions):
        where = ctx.positions.get(node, top, function)
        diagnostic = Diagnostic(
            rule.code,
            message,
            ctx.path,
            where.start.line,
            where.start.column + 1,
            where.end.line,
            where.end.column + 1,
            "traced" if traced else "untraced",
            fix,
        )
        key = (diagnostic.line, diagnostic.column)
        held = best.get(key)
        if held is None or (rule.priority, held[1].code) > (held[0].priority, rule.code):
            best[key] = (rule, diagnostic)
    kept = [d for _rule, d in best.values() if not suppressions.suppressed(d)]
    return sorted(kept, key=Diagnostic.sort_key)
