"""`purelint probe [OPTIONS] SCRIPT [ARGS...]` and `purelint probe [OPTIONS] -m MODULE [ARGS...]`.

The program runs as `python SCRIPT ARGS...` (or `python -m MODULE ARGS...`) would run it, in this
process, with the probe watching. Its output and exit status are its own: the report goes to
stderr (or `--output FILE`) after it ends, then one summary line. Exit status: the program's
(2 when the probe cannot start; with `--exit-nonzero-on-finding`, 1 when the program succeeded
but the probe found something).
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import io
import os
import runpy
import sys
import traceback
import types
from collections.abc import Sequence
from importlib.machinery import SourceFileLoader
from typing import Any, NoReturn

from purelint._probe import _report
from purelint._probe._control import ProbeError, start, stop, write_report
from purelint._probe._state import clock

__all__ = ["main"]

USAGE = "purelint probe [OPTIONS] (SCRIPT | -m MODULE) [ARGS...]"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"purelint probe: error: {message} (see `purelint probe --help`)", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="purelint probe",
        usage=USAGE,
        description="Run a Python program with JAX's transformations watched, and report the impurities that happened "
        "(with the static rules' codes). The program's own output and exit status are unchanged.",
    )
    parser.add_argument(
        "-m", dest="module", metavar="MODULE", help="run a library module as a script, like `python -m`"
    )
    parser.add_argument(
        "--output-format", choices=_report.FORMATS, default="text", help="report format (default: text)"
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stderr")
    parser.add_argument(
        "--compare", action="store_true", help="compare with the static linter on the files the program ran"
    )
    parser.add_argument(
        "--exit-nonzero-on-finding",
        action="store_true",
        help="exit 1 when the program succeeded but the probe found something",
    )
    parser.add_argument("--no-summary", action="store_true", help="leave out the summary line")
    return parser


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    """The probe's own options, and the program with its arguments (everything from SCRIPT, or
    from the argument after `-m`, on)."""
    takes_value = {"-m", "--output-format", "-o", "--output"}
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            return argv[:index], argv[index + 1 :]
        if arg in takes_value:
            if arg == "-m":
                return argv[: index + 2], argv[index + 2 :]
            index += 2
            continue
        if arg.startswith("-m") and len(arg) > 2:  # `-mpytest`
            return [*argv[:index], "-m", arg[2:]], argv[index + 1 :]
        if not arg.startswith("-") or arg == "-":
            return argv[:index], argv[index:]
        index += 1
    return argv, []


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[2:] if argv is None else argv)
    try:
        own, program = _split(argv)
        args = _parser().parse_args(own)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.module is None and not program:
        print(f"purelint probe: error: nothing to run; usage: {USAGE}", file=sys.stderr)
        return 2
    if args.compare and args.output_format in ("sarif", "github"):
        print("purelint probe: error: --compare reports as text or json", file=sys.stderr)
        return 2
    if args.module is None and not os.path.isfile(program[0]):
        print(f"purelint probe: error: no such file: {program[0]}", file=sys.stderr)
        return 2
    try:
        start()
    except ProbeError as error:
        print(f"purelint probe: error: {error}", file=sys.stderr)
        return 2
    began = clock()
    try:
        status = _run(args.module, program)
    finally:
        wall = clock() - began
        recorder = stop()
    try:
        reported = _report.diagnostics(recorder)
        script = [os.path.abspath(program[0])] if args.module is None else []
        write_report(
            reported,
            recorder,
            args.output or "stderr",
            args.output_format,
            compare=args.compare,
            wall=wall,
            files=script,
            summary=not args.no_summary,
        )
    except Exception as error:  # the probe's failure: one line, the program's outcome stands
        print(f"purelint probe: internal error while reporting: {type(error).__name__}: {error}", file=sys.stderr)
        return status or 2
    if status == 0 and args.exit_nonzero_on_finding and reported:
        return 1
    return status


def _run(module: str | None, program: list[str]) -> int:
    """Run the program as `python` would, in this process; returns its exit status."""
    saved_argv, saved_path0 = sys.argv[:], sys.path[0] if sys.path else None
    try:
        if module is not None:
            sys.argv = [module, *program]
            sys.path[0:1] = [os.getcwd()]
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(program)
            sys.path[0:1] = [os.path.dirname(os.path.abspath(program[0]))]
            _run_script(os.path.abspath(program[0]))
        return 0
    except SystemExit as exit_:
        return _exit_status(exit_.code)
    except KeyboardInterrupt:
        _print_exception(*sys.exc_info())
        return 130
    except BaseException:
        _print_exception(*sys.exc_info())
        return 1
    finally:
        sys.argv = saved_argv
        if saved_path0 is not None:
            sys.path[0:1] = [saved_path0]
        _flush()


def _run_script(path: str) -> None:
    """As `python path` runs it: a fresh `__main__` with an absolute `__file__`."""
    with io.open_code(path) as handle:
        code = compile(handle.read(), path, "exec")
    main = types.ModuleType("__main__")
    main.__dict__.update(
        __file__=path, __cached__=None, __builtins__=builtins, __loader__=SourceFileLoader("__main__", path)
    )
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _print_exception(kind: type, error: BaseException, tb: Any) -> None:
    """As Python prints an uncaught exception: without the frames of `runpy` and of the probe."""
    for exception in _chain(error):
        exception.__traceback__ = _without_probe(exception.__traceback__)
    try:
        sys.excepthook(kind, error, error.__traceback__)
    except Exception:
        traceback.print_exception(kind, error, error.__traceback__)


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        exception = todo.pop()
        if exception is None or any(exception is s for s in seen):
            continue
        seen.append(exception)
        todo += [exception.__cause__, exception.__context__]
    return seen


def _without_probe(tb: Any) -> Any:
    """A copy of the traceback `tb` without the probe's and runpy's frames."""
    here = os.path.dirname(os.path.abspath(__file__))
    kept = []
    while tb is not None:
        frame = tb.tb_frame
        if not (frame.f_code.co_filename.startswith(here) or frame.f_globals.get("__name__") == "runpy"):
            kept.append(tb)
        tb = tb.tb_next
    rebuilt = None
    for entry in reversed(kept):
        rebuilt = types.TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rebuilt


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
