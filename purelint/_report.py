"""Output formats: text (source line and caret, coloured on a terminal), concise (one line each), json,
sarif 2.1.0, github (workflow annotations), junit (XML) and gitlab (Code Quality), the last two in Ruff's shapes."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence

from purelint._diagnostic import Diagnostic
from purelint._fix import fix_to_json

__all__ = ["FORMATS", "RULES_URL", "render", "render_fixed", "render_statistics", "rule_url"]

FORMATS = ("text", "concise", "json", "sarif", "github", "junit", "gitlab")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
RULES_URL = "https://github.com/purelm/purelm/blob/main/docs/purelint-rules.md"
# SARIF levels: "error" for what fails or silently computes the wrong thing under tracing, "note" for
# housekeeping, "warning" for the rest (mutation, impurity: wrong only in some uses).
_ERRORS = frozenset({"PUR204", "PUR301", "PUR305", "PUR401", "PUR402", "PUR999"})
_NOTES = frozenset({"PUR404", "PUR900"})

# (path, 1-based line[, notebook cell]) -> the text of that line, or None when unavailable
LineSource = Callable[..., "str | None"]

_RESET, _BOLD, _RED, _CYAN = "\033[0m", "\033[1m", "\033[31m", "\033[36m"


def all_rules() -> dict:
    from purelint._registry import all_rules  # the rules import libcst: only a report that names them pays

    return all_rules()


def rule_url(code: str, base: str = RULES_URL) -> str:
    """The rule's section of the rules reference (GitHub's anchor for `## <name> (<code>)`)."""
    rules = all_rules()
    name = rules[code].name if code in rules else code
    return f"{base}#{name}-{code.lower()}"


def sarif_level(code: str) -> str:
    return "error" if code in _ERRORS else "note" if code in _NOTES else "warning"


def render(
    diagnostics: Sequence[Diagnostic],
    fmt: str,
    *,
    lines: LineSource,
    color: bool = False,
    unsafe: bool = False,
    summary: bool = True,
) -> str:
    """The whole report for a run, ending with a newline (empty for github with no findings).

    In text, `[*]` marks a finding that `--fix` would fix (with `unsafe`, unsafe fixes count too)."""
    if fmt == "json":
        return json.dumps([_json(d) for d in diagnostics], indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(_sarif(diagnostics, lines), indent=2) + "\n"
    if fmt == "github":
        return "".join(_github(d) + "\n" for d in diagnostics)
    if fmt == "junit":
        return _junit(diagnostics)
    if fmt == "gitlab":
        return json.dumps(_gitlab(diagnostics, lines), indent=2) + "\n"
    return _text(diagnostics, lines if fmt == "text" else None, color, unsafe, summary)


def _json(d: Diagnostic) -> dict:
    """A finding as JSON; its fix in Ruff's shape (`location`/`end_location` rows and columns)."""
    return {**d.to_dict(), "fix": fix_to_json(d.fix) if d.fix is not None else None}


def _paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{_RESET}" if color else text


def _fixable(d: Diagnostic, unsafe: bool) -> bool:
    return d.fix is not None and (unsafe or d.fix.applicability == "safe")


def _plural(count: int, word: str, plural: str = "s") -> str:
    return f"{count} {word}{plural * (count != 1)}"


def _fix_summary(diagnostics: Sequence[Diagnostic], unsafe: bool) -> list[str]:
    """Ruff's lines on what `--fix` would do: "[*] N fixable with `--fix` (M unsafe fixes available ...)."."""
    fixable = sum(_fixable(d, unsafe) for d in diagnostics)
    hidden = sum(d.fix is not None and not _fixable(d, unsafe) for d in diagnostics)
    extra = f"{_plural(hidden, 'unsafe fix', 'es')} available with `--fix --unsafe-fixes`"
    if fixable:
        return [f"[*] {fixable} fixable with `--fix`" + (f" ({extra})." if hidden else ".")]
    return [f"{extra}."] if hidden else []


def _text(diagnostics: Sequence[Diagnostic], lines: LineSource | None, color: bool, unsafe: bool, summary: bool) -> str:
    """The text report; without `lines` (concise), no source lines; without `summary`, no count lines."""
    out = []
    for d in diagnostics:
        mark = " [*]" if _fixable(d, unsafe) else ""
        out.append(f"{_paint(d.location, _BOLD, color)}: {_paint(d.code, _BOLD + _RED, color)}{mark} {d.message}")
        source = _line(d, lines) if lines is not None else None
        if source is not None:
            number = str(d.line)
            end = d.end_column if d.end_line == d.line else len(source) + 1
            width = max(1, end - d.column)
            # Keep tabs in the margin so the caret lines up under the code.
            margin = "".join(c if c == "\t" else " " for c in source[: d.column - 1])
            gutter = _paint(f"{number} |", _CYAN, color)
            blank = _paint(" " * len(number) + " |", _CYAN, color)
            out.append(f"{gutter} {source}")
            out.append(f"{blank} {margin}{_paint('^' * width, _RED, color)}")
    count = len(diagnostics)
    if not summary:
        return "".join(line + "\n" for line in out)
    if count:
        files = len({d.path for d in diagnostics})
        out.append(f"Found {_plural(count, 'finding')} in {_plural(files, 'file')}.")
        out += _fix_summary(diagnostics, unsafe)
    else:
        out.append("All checks passed!")
    return "\n".join(out) + "\n"


def _escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def _in_cell(d: Diagnostic) -> str:
    """ "cell 3, line 4: " for a notebook finding (whose line counts inside the cell), else ""."""
    return f"cell {d.cell}, line {d.line}: " if d.cell is not None else ""


def _github(d: Diagnostic) -> str:
    title = f"purelint ({d.code})" + (f" in cell {d.cell}" if d.cell is not None else "")
    props = (
        f"title={_escape(title, prop=True)},file={_escape(d.path, prop=True)},"
        f"line={d.line},col={d.column},endLine={d.end_line},endColumn={d.end_column}"
    )
    return f"::error {props}::{_escape(f'{d.code} {_in_cell(d)}{d.message}')}"


def _sarif(diagnostics: Sequence[Diagnostic], lines: LineSource) -> dict:
    from purelint import __version__

    rules = all_rules()
    used = sorted({d.code for d in diagnostics})
    index = {code: i for i, code in enumerate(used)}
    descriptors = []
    for code in used:
        rule = rules.get(code)
        descriptor: dict = {"id": code, "defaultConfiguration": {"level": sarif_level(code)}}
        if rule is not None:
            descriptor.update(
                name=rule.name,
                shortDescription={"text": rule.summary},
                fullDescription={"text": " ".join(rule.what.split())},
                help={"text": f"{rule.summary}. See `purelint rule {code}`.", "markdown": rule.documentation()},
                helpUri=rule_url(code),
            )
        descriptors.append(descriptor)
    results = []
    for d, digest in zip(diagnostics, _fingerprints(diagnostics, lines)):
        region: dict[str, object] = {
            "startLine": d.line,
            "startColumn": d.column,
            "endLine": d.end_line,
            "endColumn": d.end_column,
        }
        if text := _snippet(d, lines):
            region["snippet"] = {"text": text}
        result = {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": sarif_level(d.code),
            "message": {"text": _in_cell(d) + d.message},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(d.path)}, "region": region}}],
            "partialFingerprints": {"purelintFingerprint/v1": digest},
            "properties": {"scope": d.scope} if d.cell is None else {"scope": d.scope, "cell": d.cell},
        }
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "purelint",
                        "version": __version__,
                        "rules": descriptors,
                    }
                },
                "results": results,
            }
        ],
    }


def _line(d: Diagnostic, lines: LineSource) -> str | None:
    """The finding's first source line (in its cell, for a notebook)."""
    return lines(d.path, d.line) if d.cell is None else lines(d.path, d.line, d.cell)


def _snippet(d: Diagnostic, lines: LineSource) -> str:
    return _line(d, lines) or ""


def _fingerprints(diagnostics: Sequence[Diagnostic], lines: LineSource) -> list[str]:
    """Stable across commits: a hash of the rule, the file, the line's text (not its number) and which
    occurrence of that triple this is, so moving code up or down keeps a finding's fingerprint."""
    seen: Counter = Counter()
    out = []
    for d in diagnostics:
        key = (d.code, d.path, d.cell, " ".join(_snippet(d, lines).split()) or d.message)
        seen[key] += 1
        out.append(hashlib.sha256(repr((*key, seen[key])).encode()).hexdigest()[:32])
    return out


def _gitlab(diagnostics: Sequence[Diagnostic], lines: LineSource) -> list[dict]:
    """GitLab Code Quality entries, as Ruff writes them."""
    severity = {"error": "major", "warning": "minor", "note": "info"}
    return [
        {
            "check_name": d.code,
            "description": f"{d.code}: {d.message}",
            "severity": severity[sarif_level(d.code)],
            "fingerprint": digest,
            "location": {
                "path": d.path,
                "positions": {
                    "begin": {"line": d.line, "column": d.column},
                    "end": {"line": d.end_line, "column": d.end_column},
                },
            },
        }
        for d, digest in zip(diagnostics, _fingerprints(diagnostics, lines))
    ]


def _junit(diagnostics: Sequence[Diagnostic]) -> str:
    """JUnit XML as Ruff writes it: a test suite per file, a failing test case per finding."""
    from xml.sax.saxutils import escape, quoteattr

    count = len(diagnostics)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuites name="purelint" tests="{count or 1}" skipped="0" failures="{count}" errors="0">',
    ]
    by_path: dict[str, list[Diagnostic]] = {}
    for d in diagnostics:
        by_path.setdefault(d.path, []).append(d)
    for path, found in by_path.items():
        out.append(
            f'    <testsuite name={quoteattr(path)} tests="{len(found)}" skipped="0" errors="0" '
            f'failures="{len(found)}" package="org.purelint">'
        )
        classname = quoteattr(path.removesuffix(".py"))
        for d in found:
            where = f"cell {d.cell}, " if d.cell is not None else ""
            out += [
                f'        <testcase name="org.purelint.{d.code}" classname={classname} line="{d.line}" '
                f'column="{d.column}">',
                "            <properties>",
                f'                <property name="severity" value="{sarif_level(d.code)}"/>',
                "            </properties>",
                f"            <failure message={quoteattr(d.message)}>{where}line {d.line}, col {d.column}, "
                f"{escape(d.message)}</failure>",
                "        </testcase>",
            ]
        out.append("    </testsuite>")
    if not diagnostics:
        out += [
            '    <testsuite name="purelint" tests="1" skipped="0" errors="0" failures="0" package="org.purelint">',
            '        <testcase name="No errors found" classname="purelint"/>',
            "    </testsuite>",
        ]
    out.append("</testsuites>")
    return "\n".join(out) + "\n"


def _uri(path: str) -> str:
    from pathlib import PurePath
    from urllib.parse import quote

    posix = PurePath(path).as_posix()
    return ("file://" + quote(posix)) if PurePath(path).is_absolute() else quote(posix)


def render_fixed(fixed: dict[str, Counter]) -> str:
    """`--fix --show-fixes`: what was fixed, per file and code, as Ruff lists it."""
    if not fixed:
        return ""
    rules = all_rules()
    out = [f"Fixed {_plural(sum(sum(c.values()) for c in fixed.values()), 'finding')}:"]
    for path, counts in sorted(fixed.items()):
        out.append(f"- {path}:")
        out += [f"    {n} \u00d7 {code} ({rules[code].name})" for code, n in sorted(counts.items()) if code in rules]
    return "\n".join(out) + "\n\n"


def render_statistics(diagnostics: Sequence[Diagnostic], fmt: str) -> str:
    """Counts per code, most frequent first (`--statistics`)."""
    rules = all_rules()
    counts = sorted(Counter(d.code for d in diagnostics).items(), key=lambda item: (-item[1], item[0]))
    rows = [{"code": c, "name": rules[c].name if c in rules else "", "count": n} for c, n in counts]
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    return "".join(f"{r['count']:>5}  {r['code']}  {r['name']}\n" for r in rows)
