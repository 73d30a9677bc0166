"""Command line: `purelint [PATHS...]` (with `--fix`, `--diff`, `--jobs`), `purelint rule CODE`, `purelint rules`,
`purelint server` (a language server, see `purelint._server`), `purelint probe` (run a program and report the
impurities that happen, see `purelint._probe`).

Exit codes: 0 no findings, 1 findings, 2 usage/configuration error or internal failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn
from collections.abc import Sequence

from purelint._config import Config, ConfigError, load_config
from purelint._files import iter_files
from purelint._fix import unified_diff
from purelint._report import FORMATS, render, render_statistics
from purelint._rule import all_rules
from purelint._runner import Outcome, cache_for, fix_stdin, lint_data, run_paths

__all__ = ["main"]


def _codes(value: str) -> tuple[str, ...]:
    return tuple(c.strip().upper() for c in value.split(",") if c.strip())


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not the whole usage text
        print(f"purelint: error: {message} (see `purelint --help`)", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="purelint",
        description="A JAX-aware purity linter. Also: `purelint rule CODE` (a rule's docs), `purelint rules` (all codes), `purelint server` (a language server for editors), `purelint probe SCRIPT` (run a program and report the impurities that happen).",
    )
    parser.add_argument("paths", nargs="*", help="files or directories to lint (default: .); `-` reads stdin")
    parser.add_argument("--select", type=_codes, metavar="CODES", help="comma-separated codes or prefixes to enable (replaces the config's)")
    parser.add_argument("--extend-select", type=_codes, metavar="CODES", help="codes or prefixes to enable on top of the selection")
    parser.add_argument("--ignore", type=_codes, metavar="CODES", help="codes or prefixes to disable (added to the config's)")
    parser.add_argument("--scope", choices=("traced", "all"), help="check traced functions only (default) or every function")
    parser.add_argument("--output-format", choices=FORMATS, default="text", help="report format (default: text)")
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    parser.add_argument("--statistics", action="store_true", help="print counts per code instead of the findings")
    parser.add_argument("--config", type=Path, metavar="FILE", help="read [tool.purelint] from this file instead of the nearest pyproject.toml")
    parser.add_argument("--stdin-filename", metavar="PATH", help="the path to report (and match config globs against) for `-`")
    parser.add_argument("--force-exclude", action="store_true", help="apply `exclude` to files named on the command line too")
    parser.add_argument("--no-respect-gitignore", action="store_true", help="lint files that .gitignore lists")
    parser.add_argument("--fix", action="store_true", help="apply safe fixes in place; exit 1 only if findings remain")
    parser.add_argument("--unsafe-fixes", action="store_true", help="with --fix or --diff, apply unsafe fixes too")
    parser.add_argument("--diff", action="store_true", help="print the fixes as a unified diff and change nothing")
    parser.add_argument("--jobs", "-j", type=_jobs, metavar="N", help="lint N files at a time (default: all cores)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write .purelint_cache/")
    parser.add_argument("--version", action="version", version=f"purelint {_version()}")
    return parser


def _version() -> str:
    from purelint import __version__

    return __version__


def _rule_command(argv: Sequence[str]) -> int:
    rules = all_rules()
    if argv[0] == "rules":
        if len(argv) > 1:
            return _usage(f"`purelint rules` takes no arguments, got {' '.join(argv[1:])}")
        width = max(len(r.name) for r in rules.values())
        print(f"{'code':<7} {'name':<{width}} {'default':<7} {'fix':<6} summary")
        for code, rule in rules.items():
            on = "on" if rule.default_on else "off"
            print(f"{code:<7} {rule.name:<{width}} {on:<7} {rule.fix_applicability or '-':<6} {rule.summary}")
        return 0
    if len(argv) != 2:
        return _usage("usage: purelint rule CODE")
    code = argv[1].upper()
    if code not in rules:
        return _usage(f"unknown rule code {argv[1]!r} (see `purelint rules`)")
    sys.stdout.write(rules[code].documentation())
    return 0


def _usage(message: str) -> int:
    print(f"purelint: error: {message}", file=sys.stderr)
    return 2


def _load(args: argparse.Namespace) -> Config:
    start = Path.cwd()
    first = next((p for p in args.paths if p != "-"), args.stdin_filename)
    if first:
        start = Path(first).absolute()
        start = start if start.is_dir() else start.parent
    config = load_config(args.config, start=start)
    return config.replace(
        select=args.select,
        ignore=(*config.ignore, *args.ignore) if args.ignore else None,
        extend_select=(*config.extend_select, *args.extend_select) if args.extend_select else None,
        scope=args.scope,
        force_exclude=args.force_exclude or None,
        respect_gitignore=False if args.no_respect_gitignore else None,
    )


class _Lines:
    """Source lines for the text report, read on demand (stdin's text is given)."""

    def __init__(self, given: dict[str, str]) -> None:
        self.cache = {path: text.splitlines() for path, text in given.items()}

    def __call__(self, path: str, line: int) -> str | None:
        if path not in self.cache:
            try:
                self.cache[path] = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                self.cache[path] = []
        lines = self.cache[path]
        return lines[line - 1].rstrip("\r\n") if 1 <= line <= len(lines) else None


def _run(args: argparse.Namespace) -> int:
    config = _load(args)
    paths = args.paths or ["."]
    if "-" in paths and len(paths) > 1:
        return _usage("`-` (stdin) cannot be combined with other paths")
    if args.unsafe_fixes and not (args.fix or args.diff):
        return _usage("--unsafe-fixes only makes sense with --fix or --diff")
    given: dict[str, str] = {}
    if paths == ["-"]:
        name = args.stdin_filename or "-"
        data = sys.stdin.buffer.read()
        given[name] = data.decode("utf-8", errors="replace")
        excluded = config.force_exclude and args.stdin_filename and config.is_excluded(name)
        if args.fix and not args.diff and not excluded:
            return _fix_stdin(args, config, data, name)
        if args.diff and not excluded:
            original, result = fix_stdin(data, name, config, unsafe=args.unsafe_fixes)
            outcome = Outcome(lint_data(name, data, config), [], result.fixed, [unified_diff(original, result.text, name)])
        else:
            outcome = Outcome([] if excluded else lint_data(name, data, config), [])
    else:
        files = list(iter_files(paths, config))
        cache = None if args.no_cache else cache_for(config)
        outcome = run_paths(
            files, config, jobs=args.jobs, cache=cache, fix=args.fix, unsafe=args.unsafe_fixes, diff=args.diff
        )
    for failure in outcome.failures:  # a rule crashed on a file: report the bug, exit 2 at the end
        print(f"purelint: internal error: {failure}", file=sys.stderr)
    diagnostics = outcome.diagnostics
    if args.diff:
        sys.stdout.write("".join(d for d in outcome.diffs if d))
        if outcome.fixed:
            print(f"purelint: would fix {_count(outcome.fixed)}", file=sys.stderr)
    elif args.statistics:
        sys.stdout.write(render_statistics(diagnostics, "json" if args.output_format == "json" else "text"))
    else:
        sys.stdout.write(render(diagnostics, args.output_format, lines=_Lines(given), color=_color()))
    if args.fix and not args.diff:
        print(f"purelint: fixed {_count(outcome.fixed)}", file=sys.stderr)
    sys.stdout.flush()
    if outcome.failures:
        return 2
    return 0 if args.exit_zero or not diagnostics else 1


def _fix_stdin(args: argparse.Namespace, config: Config, data: bytes, name: str) -> int:
    """`purelint --fix -`: the fixed source goes to stdout, the findings left to stderr."""
    _original, result = fix_stdin(data, name, config, unsafe=args.unsafe_fixes)
    sys.stdout.write(result.text)
    sys.stdout.flush()
    if result.remaining:
        sys.stderr.write(render(result.remaining, "text", lines=_Lines({name: result.text}), color=False))
    print(f"purelint: fixed {_count(result.fixed)}", file=sys.stderr)
    return 0 if args.exit_zero or not result.remaining else 1


def _count(number: int) -> str:
    return f"{number} finding{'s' * (number != 1)}"


def _jobs(value: str) -> int:
    try:
        jobs = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--jobs takes a whole number, not {value!r}") from None
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"--jobs must be at least 1, not {jobs}")
    return jobs


def _color() -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(os.environ.get("FORCE_COLOR")) or sys.stdout.isatty()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in ("rule", "rules"):
            return _rule_command(argv)
        if argv and argv[0] == "server":  # imports pygls, so only this command pays for it
            from purelint._server import main as serve

            return serve(argv[1:])
        if argv and argv[0] == "probe":  # imports jax, so only this command pays for it
            from purelint._probe import main as probe

            return probe(argv[1:])
        args = _parser().parse_args(argv)
        return _run(args)
    except SystemExit as exit_:  # argparse: --help/--version exit 0, usage errors exit 2
        return exit_.code if isinstance(exit_.code, int) else 2
    except ConfigError as error:
        return _usage(str(error))
    except KeyboardInterrupt:
        return _usage("interrupted")
    except BrokenPipeError:
        return 0
    except Exception as error:  # a bug in purelint: one line, no traceback, exit 2
        print(f"purelint: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
