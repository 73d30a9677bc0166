"""Findings as the linter reports them: `Diagnostic`s with the static rules' codes, a message that
says what was observed, the linter's output formats, the static-vs-dynamic comparison and the
summary line."""

from __future__ import annotations

import dataclasses
import json
import linecache
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from purelint import Diagnostic, load_config
from purelint._probe._frames import display_path
from purelint._probe._state import Finding, FnInfo, Recorder

if TYPE_CHECKING:
    from purelint import Config

__all__ = ["FORMATS", "Comparison", "compare", "diagnostics", "render", "render_comparison", "summary"]

FORMATS = ("text", "json", "sarif", "github")

# The static codes a run can show happening; the others (branches on tracers, torch habits...)
# either raise at trace time or cannot be seen in a running program.
OBSERVABLE = frozenset(
    {"PUR001", "PUR002", "PUR003", "PUR101", "PUR102", "PUR103", "PUR201", "PUR202", "PUR203", "PUR204", "PUR302"}
)
_FROZEN_TAIL = {
    "PUR201": ("the number it drew is frozen into the compiled function", "it draws from Python's hidden global RNG"),
    "PUR202": ("the numbers it drew are frozen into the compiled function", "it draws from NumPy's hidden global RNG"),
    "PUR203": ("the value it read is frozen into the compiled function", "the traced result depends on when it ran"),
}
_FIX = {
    "PUR001": "use `jax.debug.print`",
    "PUR002": "IO in a traced function happens once per trace, not once per call",
    "PUR003": "log outside the traced function, or use `jax.debug.print`",
    "PUR201": "use `jax.random` with an explicit key",
    "PUR202": "use `jax.random` with an explicit key",
    "PUR203": "pass the value in as an argument",
}


def _times(n: int) -> str:
    return f"{n} time{'s' * (n != 1)}"


def _ran(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _counts(owners: list[FnInfo], extra: str = "") -> str:
    """`traced 1 time, called 3 times (`f` under `jax.jit`)`, over every function a finding happened under."""
    if not owners:
        return "while tracing"
    text = f"traced {_times(sum(o.traces for o in owners))}"
    if any(o.cached for o in owners):
        text += f", called {_times(sum(o.calls for o in owners if o.cached))}"
    names = list(dict.fromkeys(f"`{o.name}`" for o in owners))
    kinds = list(dict.fromkeys(f"`{o.kind}`" for o in owners))
    return f"{text}{extra} ({', '.join(names)} under {', '.join(kinds)})"


def message(f: Finding) -> str:
    """What was observed, for one finding."""
    owners = [o for o in (f.owner, *f.others) if o is not None]
    d, owner, counts = f.detail, f.owner, _counts(owners)
    cached = any(o.cached for o in owners)
    if f.kind == "effect":
        text = f"{counts}: {f.what} ran {_ran(f.count)}"
        if f.code == "PUR001":
            text += ", printing a tracer instead of values"
        if d.get("target"):
            text += f" on `{d['target']}`"
        if f.code in _FROZEN_TAIL:
            text += "; " + _FROZEN_TAIL[f.code][0 if cached else 1]
        return f"{text}; {_FIX[f.code]}"
    if f.kind == "argument":
        change = d["change"]
        text = f"{counts}: argument `{change.path}` ({change.kind}) {change.text} while tracing"
        if change.leaked:
            text += " and now holds a tracer"
        if change.kind in ("list", "dict"):
            return (
                text + "; JAX hands a traced function copies of its list and dict arguments: the caller never sees this"
            )
        return text + "; it happens once per trace, not once per call"
    if f.kind == "global":
        if f.code == "PUR101":
            text = f"{counts}: {d['label']} changed from {d['old']} to {d['new']} while tracing"
        else:
            change = d["change"]
            text = f"{counts}: {d['label']} ({change.kind}) {change.text} while tracing"
            if change.leaked:
                text += " and now holds a leaked tracer"
        return text + ("; compiled calls never change it again" if cached else "; return new values instead")
    if f.kind == "stale":
        counts = _counts(owners, f", {owner.stale_calls} of them with the old value" if owner is not None else "")
        return f"{d['change']}; the compiled function still uses {d['uses']}: {counts}; pass it as an argument"
    return _key_message(f)


def _key_message(f: Finding) -> str:
    d, what, site = f.detail, f.detail.get("by", "a draw"), f.site
    if f.what == "loop":
        kind = f.owner.kind if f.owner is not None else "loop"
        return f"{what} draws from a key from outside the `{kind}` body: every iteration draws the same numbers; fold in the iteration index or split the key in the carry"
    if f.what == "constant":
        owner = f.owner
        assert owner is not None  # a constant key is recorded against the compiled function it is baked into
        return (
            f"{what} draws from a key that is a constant of the compiled `{owner.name}`: its {owner.calls} calls all "
            "draw the same numbers; pass the key as an argument and split it for each call"
        )
    first, inner = d["first"], d.get("inner")
    where = "while tracing, " if f.what == "traced" else ""
    again = f"{what} consumes it again" + (f" (it draws from it on {inner.short(site)})" if inner is not None else "")
    return (
        f"{where}this key was already consumed by {d['first_by']} on {first.short(site)}; {again}: the two draws are "
        "not independent; split it first (`key, sub = jax.random.split(key)`)"
    )


def _keep(f: Finding) -> bool:
    if f.kind == "key" and f.what == "constant":
        return f.owner is not None and f.owner.calls >= 2
    return True


@dataclass
class Reported:
    diagnostic: Diagnostic
    lines: frozenset[int]  # every line the same finding may be reported at (a static one may use another)
    finding: Finding | None = field(default=None, repr=False)


def diagnostics(recorder: Recorder) -> list[Reported]:
    out = []
    for f in list(recorder.findings.values()):
        if not _keep(f):
            continue
        s = f.site
        text = message(f)
        if f.context:
            text += f" [first seen in {f.context}]"
        d = Diagnostic(f.code, text, display_path(s.path), s.line, s.column, s.end_line, s.end_column, "traced")
        out.append(Reported(d, frozenset({s.line, *f.lines}), f))
    return sorted(out, key=lambda r: r.diagnostic.sort_key())


def _line(path: str, line: int) -> str | None:
    text = linecache.getline(path, line)
    return text.rstrip("\r\n") if text else None


def render(found: Iterable[Diagnostic], fmt: str, *, color: bool = False) -> str:
    """The linter's own report in `fmt` (text, json, sarif, github)."""
    # The one private import of the probe: the linter's reporters.
    from purelint._report import render as render_diagnostics

    return render_diagnostics(list(found), fmt, lines=_line, color=color)


# --- static and dynamic together --------------------------------------------------------------


@dataclass
class Comparison:
    confirmed: list[tuple[Diagnostic, Diagnostic]]  # (static, dynamic)
    dynamic_only: list[Diagnostic]
    static_only: list[Diagnostic]
    not_observable: Counter


def _key(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def compare(
    reported: list[Reported], files: Iterable[str], named: Iterable[str] = (), config: Config | None = None
) -> Comparison:
    """The static findings in `files` against what the run showed. The project's `exclude` applies to
    them, except to the `named` ones (the script on the command line), as in the linter."""
    # Here, not at the top: the linter's engine (libcst) is for `--compare` only, and the pytest
    # plugin, loaded in every pytest run, imports this module.
    from purelint import lint_paths

    named = sorted({f for f in named if os.path.isfile(f)})
    files = sorted({f for f in files if os.path.isfile(f)} - set(named))
    config = config or load_config(None, start=Path.cwd())
    static = lint_paths(named, config=config) if named else []
    static += lint_paths(files, config=config.replace(force_exclude=True)) if files else []
    static = [dataclasses.replace(s, path=display_path(s.path)) for s in static]
    observable = [s for s in static if s.code in OBSERVABLE]
    not_observable = Counter(s.code for s in static if s.code not in OBSERVABLE and s.code != "PUR999")
    matched: set[int] = set()
    confirmed, dynamic_only = [], []
    for r in reported:
        d = r.diagnostic
        hits = [
            i
            for i, s in enumerate(observable)
            if s.code == d.code and _key(s.path) == _key(d.path) and s.line in r.lines
        ]
        if hits:
            confirmed += [(observable[i], d) for i in hits if i not in matched]
            matched.update(hits)
        else:
            dynamic_only.append(d)
    static_only = [s for i, s in enumerate(observable) if i not in matched]
    return Comparison(confirmed, dynamic_only, static_only, not_observable)


def render_comparison(c: Comparison, fmt: str) -> str:
    if fmt == "json":
        return (
            json.dumps(
                {
                    "confirmed": [{"static": s.to_dict(), "dynamic": d.to_dict()} for s, d in c.confirmed],
                    "dynamic_only": [d.to_dict() for d in c.dynamic_only],
                    "static_only": [s.to_dict() for s in c.static_only],
                    "not_observable": dict(sorted(c.not_observable.items())),
                },
                indent=2,
                default=str,
            )
            + "\n"
        )
    out = [
        f"purelint probe --compare: {len(c.confirmed)} confirmed, {len(c.dynamic_only)} seen only at run time, "
        f"{len(c.static_only)} static finding{'s' * (len(c.static_only) != 1)} not seen"
    ]
    sections = (
        ("Confirmed: the static finding happened", [f"{s.location}: {s.code} {s.message}" for s, _d in c.confirmed]),
        (
            "Seen at run time, not flagged by the static linter",
            [f"{d.location}: {d.code} {d.message}" for d in c.dynamic_only],
        ),
        (
            "Static findings not seen at run time (not proof of a false finding: the code may not have run)",
            [f"{s.location}: {s.code} {s.message}" for s in c.static_only],
        ),
    )
    for title, rows in sections:
        if rows:
            out += ["", f"{title}:", *(f"  {row}" for row in rows)]
    if c.not_observable:
        counts = ", ".join(f"{code} x{n}" for code, n in sorted(c.not_observable.items()))
        out += ["", f"Static findings of kinds a run cannot show: {counts}"]
    return "\n".join(out) + "\n"


def summary(recorder: Recorder, reported: list[Reported], wall: float, spent: float) -> list[str]:
    """The probe's closing lines for stderr: findings, what it watched, its overhead; failures."""
    count = len(reported)
    files = len({r.diagnostic.path for r in reported})
    traced = [f for f in recorder.functions if f.traces]
    share = f"{spent / wall:.0%}" if wall > 0 else "0%"
    lines = [
        f"purelint probe: {count} finding{'s' * (count != 1)} in {files} file{'s' * (files != 1)}; "
        f"watched {sum(f.traces for f in traced)} traces of {len(traced)} function{'s' * (len(traced) != 1)}; "
        f"run {wall:.2f} s, of which the probe {spent:.2f} s ({share})"
    ]
    lines += [f"purelint probe: note: {note}" for note in sorted(recorder.limits)]
    lines += [f"purelint probe: internal error: {error} (findings may be incomplete)" for error in recorder.errors[:1]]
    return lines
