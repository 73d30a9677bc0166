"""Command line: `purelint check [PATHS...]` (or `purelint [PATHS...]`; with `--fix`, `--diff`, `--jobs`),
`purelint rule CODE`, `purelint rules`, `purelint server` (a language server, see `purelint._server`),
`purelint probe` (run a program and report the impurities that happen, see `purelint._probe`).

Exit codes: 0 no findings, 1 findings, 2 usage/configuration error or internal failure.

Each command imports what it needs when it runs, so `purelint --version` loads no libcst.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from purelint._config import Config

__all__ = ["main"]


def _codes(value: str) -> tuple[str, ...]:
    return tuple(c.strip().upper() for c in value.split(",") if c.strip())


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not the whole usage text
        print(f"purelint: error: {message} (see `purelint --help`)", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    from purelint._report import FORMATS

    parser = _Parser(
        prog="purelint",
        description="A JAX-aware purity linter: `purelint check PATHS` (or `purelint PATHS`). Also: `purelint rule CODE`"
        " (a rule's docs), `purelint rules` (all codes), `purelint server` (a language server for editors),"
        " `purelint probe SCRIPT` (run a program and report the impurities that happen).",
    )
    parser.add_argument("paths", nargs="*", help="files or directories to lint (default: .); `-` reads stdin")
    parser.add_argument(
        "--select",
        type=_codes,
        metavar="CODES",
        help="comma-separated codes or prefixes to enable (replaces the config's)",
    )
    parser.add_argument(
        "--extend-select", type=_codes, metavar="CODES", help="codes or prefixes to enable on top of the selection"
    )
    parser.add_argument(
        "--ignore", type=_codes, metavar="CODES", help="codes or prefixes to disable (added to the config's)"
    )
    parser.add_argument(
        "--scope", choices=("traced", "all"), help="check traced functions only (default) or every function"
    )
    parser.add_argument("--output-format", choices=FORMATS, default="text", help="report format (default: text)")
    parser.add_argument("--show-fixes", action="store_true", help="with --fix, list the fixes applied per file")
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="print the findings only: no summary, no fix counts on stderr"
    )
    parser.add_argument(
        "--exit-non-zero-on-fix", action="store_true", help="with --fix, exit 1 when something was fixed"
    )
    parser.add_argument("--output-file", "-o", type=Path, metavar="FILE", help="write the report to FILE (atomically)")
    parser.add_argument(
        "--extend-exclude", type=_globs, metavar="GLOBS", help="comma-separated globs to exclude on top of `exclude`"
    )
    parser.add_argument("--watch", "-w", action="store_true", help="lint again whenever a file changes (Ctrl-C stops)")
    # For tests: stop after this many runs, and how often to look for changes (seconds).
    parser.add_argument("--watch-runs", type=_jobs, help=argparse.SUPPRESS)
    parser.add_argument("--watch-interval", type=float, default=0.5, help=argparse.SUPPRESS)
    parser.add_argument(
        "--add-noqa", action="store_true", help="add `# noqa: CODE` to every line with a finding (not in notebooks)"
    )
    parser.add_argument("--show-files", action="store_true", help="list the files that would be linted, then stop")
    parser.add_argument(
        "--show-settings", action="store_true", help="print the settings in effect (for the first path), then stop"
    )
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    parser.add_argument("--statistics", action="store_true", help="print counts per code instead of the findings")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="read [tool.purelint] from this file instead of the nearest pyproject.toml",
    )
    parser.add_argument(
        "--stdin-filename", metavar="PATH", help="the path to report (and match config globs against) for `-`"
    )
    parser.add_argument(
        "--force-exclude", action="store_true", help="apply `exclude` to files named on the command line too"
    )
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


def _rules_command(argv: Sequence[str]) -> int:
    from purelint._registry import all_rules

    if argv:
        return _usage(f"`purelint rules` takes no arguments, got {' '.join(argv)}")
    rules = all_rules()
    width = max(len(r.name) for r in rules.values())
    print(f"{'code':<7} {'name':<{width}} {'default':<7} {'fix':<6} summary")
    for code, rule in rules.items():
        on = "on" if rule.default_on else "off"
        print(f"{code:<7} {rule.name:<{width}} {on:<7} {rule.fix_applicability or '-':<6} {rule.summary}")
    return 0


def _rule_command(argv: Sequence[str]) -> int:
    from purelint._registry import all_rules

    if len(argv) != 1:
        return _usage("usage: purelint rule CODE")
    rules = all_rules()
    code = argv[0].upper()
    if code not in rules:
        return _usage(f"unknown rule code {argv[0]!r} (see `purelint rules`)")
    sys.stdout.write(rules[code].documentation())
    return 0


def _server_command(argv: Sequence[str]) -> int:
    from purelint._server import main as serve  # pygls: only this command pays for it

    return serve(argv)


def _probe_command(argv: Sequence[str]) -> int:
    from purelint._probe import main as probe  # jax: only this command pays for it

    return probe(list(argv))


def _check_command(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    return _watch(args) if args.watch else _run(args)


def _watch(args: argparse.Namespace) -> int:
    """`--watch`: lint, then poll the files (and the configuration) and lint again when one changes."""
    import time

    from purelint._files import iter_files

    if "-" in args.paths:
        return _usage("--watch cannot read stdin")

    def state() -> dict[str, tuple[int, int]]:
        config = _load(args)
        watched = [os.fspath(f) for f in iter_files(args.paths or ["."], config)]
        watched += [os.fspath(config.source)] if config.source else []
        out = {}
        for name in watched:
            with contextlib.suppress(OSError):
                info = os.stat(name)
                out[name] = (info.st_mtime_ns, info.st_size)
        return out

    seen, runs, code = None, 0, 0
    while args.watch_runs is None or runs < args.watch_runs:
        now = state()
        if now != seen:
            if seen is not None:
                print("File change detected, linting again.", file=sys.stderr)
            # The state from before the run: a change made while it ran is seen next time round
            # (and so are --fix's own writes, which cost one more run that finds nothing to fix).
            seen = now
            code, runs = _run(args), runs + 1
            print("Watching for file changes.", file=sys.stderr, flush=True)
            continue
        time.sleep(args.watch_interval)
    return code


def _usage(message: str) -> int:
    print(f"purelint: error: {message}", file=sys.stderr)
    return 2


def _load(args: argparse.Namespace) -> Config:
    from purelint._config import load_config

    start = Path.cwd()
    first = next((p for p in args.paths if p != "-"), args.stdin_filename)
    if first:
        start = Path(first).absolute()
        start = start if start.is_dir() else start.parent
    config = load_config(args.config, start=start)
    return config.replace(
        cli_selection=(args.select, args.extend_select or (), args.ignore or ()),
        scope=args.scope,
        exclude=(*config.exclude, *args.extend_exclude) if args.extend_exclude else None,
        force_exclude=args.force_exclude or None,
        respect_gitignore=False if args.no_respect_gitignore else None,
    )


class _Lines:
    """Source lines for the reports, read on demand (stdin's text is given); a notebook's by cell."""

    def __init__(self, given: dict[str, str]) -> None:
        self.given = given
        self.cache: dict[tuple[str, int | None], list[str]] = {}

    def __call__(self, path: str, line: int, cell: int | None = None) -> str | None:
        if (path, cell) not in self.cache:
            self._read(path)
        lines = self.cache.get((path, cell), [])
        return lines[line - 1].rstrip("\r\n") if 1 <= line <= len(lines) else None

    def _read(self, path: str) -> None:
        try:
            text = self.given[path] if path in self.given else Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        self.cache[(path, None)] = text.splitlines()
        if path.endswith(".ipynb"):
            from purelint._notebook import parse_notebook
            from purelint._source import SourceError

            try:
                cells = parse_notebook(text.removeprefix("\ufeff"), path).cells
            except SourceError:
                cells = ()
            self.cache.update(((path, c.number), c.text.splitlines()) for c in cells)


def _run(args: argparse.Namespace) -> int:
    from purelint._files import iter_files
    from purelint._fix import unified_diff
    from purelint._report import render, render_fixed, render_statistics
    from purelint._runner import Outcome, cache_for, fix_stdin, lint_data, run_paths

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
            outcome = Outcome(
                lint_data(name, data, config), [], result.fixed, [unified_diff(original, result.text, name)]
            )
        else:
            outcome = Outcome([] if excluded else lint_data(name, data, config), [])
    elif args.show_files or args.show_settings:
        return _show(args, config, list(iter_files(paths, config)))
    elif args.add_noqa:
        return _add_noqa(config, list(iter_files(paths, config)), args.jobs)
    else:
        files = list(iter_files(paths, config))
        cache = None if args.no_cache else cache_for(config)
        outcome = run_paths(
            files, config, jobs=args.jobs, cache=cache, fix=args.fix, unsafe=args.unsafe_fixes, diff=args.diff
        )
    for failure in outcome.failures:  # a rule crashed on a file: report the bug, exit 2 at the end
        print(f"purelint: internal error: {failure}", file=sys.stderr)
    diagnostics = outcome.diagnostics
    report = []
    if args.diff:
        report += [d for d in outcome.diffs if d]
        if outcome.fixed and not args.quiet:
            print(f"purelint: would fix {_count(outcome.fixed)}", file=sys.stderr)
    elif args.statistics:
        report.append(render_statistics(diagnostics, "json" if args.output_format == "json" else "text"))
    else:
        if args.show_fixes and args.fix and args.output_format == "text":
            report.append(render_fixed(outcome.fixed_codes))
        color = _color() and args.output_file is None
        options = {"color": color, "unsafe": args.unsafe_fixes, "summary": not args.quiet}
        report.append(render(diagnostics, args.output_format, lines=_Lines(given), **options))
    _emit("".join(report), args.output_file)
    if args.fix and not args.diff and not args.quiet:
        print(f"purelint: fixed {_count(outcome.fixed)}", file=sys.stderr)
    if outcome.failures:
        return 2
    if args.exit_non_zero_on_fix and args.fix and outcome.fixed:
        return 1
    return 0 if args.exit_zero or not diagnostics else 1


def _emit(text: str, path: Path | None) -> None:
    """The report to stdout, or to `--output-file` (written atomically, directories created)."""
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from purelint._source import write_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text.encode("utf-8"))
    except OSError as error:
        raise _ReportError(f"cannot write {path}: {error.strerror or error}") from None


class _ReportError(Exception):
    """A report that cannot be written: one line, exit 2."""


def _add_noqa(config: Config, files: list[Path], jobs: int | None) -> int:
    """`--add-noqa`: silence every finding where it is, as Ruff's flag does; findings that a comment
    cannot silence (a line ending inside a string, PUR999) and notebook findings are left."""
    from purelint._lsp_documents import noqa_line  # the language server's "disable for this line" edit
    from purelint._noqa import Suppressions
    from purelint._runner import lint_many
    from purelint._source import read_source, write_source

    run = lint_many(files, config, jobs=jobs)
    added = 0
    for path in sorted({d.path for d in run.diagnostics if d.cell is None}):
        source = read_source(path)
        text = source.text
        for d in (d for d in run.diagnostics if d.path == path):
            edit = None if Suppressions(text).suppressed(d) else noqa_line(text, d)
            if edit is not None:
                lines = text.splitlines(keepends=True)
                old = lines[edit[0] - 1]
                lines[edit[0] - 1] = edit[1] + old[len(old.rstrip("\r\n")) :]
                text, added = "".join(lines), added + 1
        if text != source.text:
            write_source(path, text, source.encoding)
    for failure in run.failures:
        print(f"purelint: internal error: {failure}", file=sys.stderr)
    print(f"Added {added} noqa directive{'s' * (added != 1)}.", file=sys.stderr)
    return 2 if run.failures else 0


def _show(args: argparse.Namespace, config: Config, files: list[Path]) -> int:
    """`--show-files` (one path a line) and `--show-settings` (the settings in effect), as Ruff has them."""
    if args.show_files:
        _emit("".join(f"{os.fspath(f)}\n" for f in sorted(files, key=os.fspath)), args.output_file)
        return 0
    import dataclasses

    lines = [f"Settings path: {config.source or '(defaults: no [tool.purelint] found)'}"]
    lines += [f"{f.name} = {getattr(config, f.name)!r}" for f in dataclasses.fields(config) if f.name != "source"]
    lines.append(f"enabled = {sorted(config.enabled_codes(os.fspath(files[0]) if files else None))!r}")
    _emit("\n".join(lines) + "\n", args.output_file)
    return 0


def _fix_stdin(args: argparse.Namespace, config: Config, data: bytes, name: str) -> int:
    """`purelint --fix -`: the fixed source goes to stdout, the findings left to stderr."""
    from purelint._report import render
    from purelint._runner import fix_stdin

    _original, result = fix_stdin(data, name, config, unsafe=args.unsafe_fixes)
    sys.stdout.write(result.text)
    sys.stdout.flush()
    if result.remaining:
        sys.stderr.write(render(result.remaining, "text", lines=_Lines({name: result.text}), color=False))
    print(f"purelint: fixed {_count(result.fixed)}", file=sys.stderr)
    return 0 if args.exit_zero or not result.remaining else 1


def _count(number: int) -> str:
    return f"{number} finding{'s' * (number != 1)}"


def _globs(value: str) -> tuple[str, ...]:
    return tuple(g.strip() for g in value.split(",") if g.strip())


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


# Subcommand -> handler of the arguments after it. Without a known subcommand, the arguments are
# `check`'s (so `purelint src/` works as `purelint check src/`).
COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "check": _check_command,
    "rule": _rule_command,
    "rules": _rules_command,
    "server": _server_command,
    "probe": _probe_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:  # the common probe answers before any other module loads
        print(f"purelint {_version()}")
        return 0
    try:
        if argv and argv[0] in COMMANDS:
            return COMMANDS[argv[0]](argv[1:])
        return _check_command(argv)
    except SystemExit as exit_:  # argparse: --help/--version exit 0, usage errors exit 2
        return exit_.code if isinstance(exit_.code, int) else 2
    except KeyboardInterrupt:
        return _usage("interrupted")
    except BrokenPipeError:
        return 0
    except Exception as error:  # a bug in purelint: one line, no traceback, exit 2
        from purelint._config import ConfigError

        if isinstance(error, (ConfigError, _ReportError)):
            return _usage(str(error))
        print(f"purelint: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
