"""SIGINT and SIGTERM end a `purelm` command cleanly, whatever it is doing.

The console entry point (`console_main`) installs the handlers before anything heavy is imported. A
signal is always *recorded* (so an exception that some callback swallows, e.g. JAX's garbage-collection
hook, is still honoured at the next `phase()` or `check()`), and, outside `deferred()` blocks, also
*raised* as `Interrupted` (a `KeyboardInterrupt`). The training loop runs inside `deferred()`: there a
signal only sets the flag, the loop stops between two compiled calls, saves, and calls `stop()`. One exit
path prints one line and ends the process with status 128 + the signal number (130 for SIGINT, 143 for
SIGTERM), via `os._exit` so that interpreter teardown never races XLA's threads.

This module imports only the standard library: in library use it changes nothing (no handler is
installed), except that `deferred()` records a Ctrl-C in the main thread while it is active.

    with deferred():
        while not requested():
            state = compiled_step(state)
        if requested():
            save(state)
            stop(f"interrupted: checkpoint saved; continue: {resume_command(out)}")

Tests pause a command at a phase with `PURELM_TEST_PAUSE_AT=<phase>`: the process prints
`purelm-test: paused at <phase>` on stderr and waits there (up to five minutes) for a signal.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import NoReturn

HANDLED = (signal.SIGINT, signal.SIGTERM)
PAUSE_ENV = "PURELM_TEST_PAUSE_AT"
PAUSE_MARKER = "purelm-test: paused at"
_PAUSE_LIMIT_S = 300.0  # a loaded test machine may take a while to signal every paused process


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; `message` (if any) is the line the command ends with.

    >>> Interrupted(signal.SIGTERM).exit_code
    143
    """

    def __init__(self, signum: int = signal.SIGINT, message: str | None = None):
        super().__init__(signum, message)
        self.signum, self.message = int(signum), message

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        return self.message or f"interrupted by {signal_name(self.signum)}"


class _State:
    pending: int | None = None  # the first signal received and not yet acted on
    installed = False  # console_main installed the process-wide handlers
    deferring = 0  # depth of nested deferred() blocks
    exiting = False  # in the exit path: signals are only recorded
    immediate: str | None = None  # while importing: the command to end at once on a signal
    phase = "start"
    owned: set[int] = set()  # the signals install() took over
    paused: set[str] = set()


def signal_name(signum: int) -> str:
    """`SIGINT`, `SIGTERM`, ... for a signal number."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _handler(signum: int, frame) -> None:
    if _State.pending is None:
        _State.pending = signum
    if _State.immediate is not None and not _State.exiting:
        # Nothing is written yet, and an exception raised inside numpy's or jaxlib's import code can be
        # caught there and printed as a traceback: end the process here and now.
        _exit_interrupted(_State.immediate, None)
    if not _State.deferring and not _State.exiting:
        raise Interrupted(signum)


def _unraisable(previous):
    def hook(unraisable) -> None:
        # An Interrupted raised inside a callback Python cannot propagate from (gc callbacks, __del__) would
        # print "Exception ignored ..." and be lost; the flag keeps it, the next phase()/check() acts on it.
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _State.pending is not None:
            return
        previous(unraisable)

    return hook


def install() -> None:
    """Install the SIGINT/SIGTERM handlers for this process (the console entry point does it first)."""
    if _State.installed:
        return
    for signum in HANDLED:
        # A signal ignored from the start stays ignored: `nohup`, or a shell's background job, which must
        # not die of the terminal's Ctrl-C (Python itself keeps SIGINT ignored in that case).
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _handler)
            _State.owned.add(signum)
    sys.unraisablehook = _unraisable(sys.unraisablehook)
    _State.installed = True


def reclaim() -> None:
    """Point the signals `install()` took over back at this module's handler, after a library replaced it:
    `jax.distributed.initialize` installs a SIGTERM handler of its own (its preemption notifier), which would
    otherwise swallow the scheduler's SIGTERM. No-op without `install()`."""
    for signum in _State.owned:
        signal.signal(signum, _handler)


def requested() -> int | None:
    """The signal number received and not yet acted on, or None."""
    return _State.pending


def record(signum: int) -> None:
    """Act as if `signum` had arrived (a multi-process run adopts a signal another process received)."""
    if _State.pending is None:
        _State.pending = int(signum)


def check() -> None:
    """Raise `Interrupted` if a signal arrived (outside `deferred()`; there the caller polls `requested()`)."""
    if _State.pending is not None and not _State.deferring and not _State.exiting:
        raise Interrupted(_State.pending)


def phase(name: str) -> None:
    """Mark the start of a phase ("imports", "data", "compile", "step", "eval", "save", "plot", "sample").

    Honours a pending signal (see `check`), and is where `PURELM_TEST_PAUSE_AT=<name>` pauses the process
    (once) until a signal arrives, so tests can signal each phase deterministically.
    """
    _State.phase = name
    if os.environ.get(PAUSE_ENV) == name and name not in _State.paused:
        _State.paused.add(name)
        print(f"{PAUSE_MARKER} {name}", file=sys.stderr, flush=True)
        deadline = time.monotonic() + _PAUSE_LIMIT_S
        # Outside deferred() the handler raises out of this sleep; inside, the flag ends the wait.
        while _State.pending is None and time.monotonic() < deadline:
            time.sleep(0.01)
    check()


def current_phase() -> str:
    """The name given to the last `phase()` call."""
    return _State.phase


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within this block a signal only sets the flag (`requested()`), so a loop can finish its current
    compiled call, save a consistent checkpoint and then `stop()`.

    Without the console handlers (library use, main thread) a temporary handler records SIGINT, so a
    notebook's Ctrl-C stops the loop the same way; the previous handler is restored afterwards.
    """
    temporary = not _State.installed and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _handler) if temporary else None
    _State.deferring += 1
    try:
        yield
    finally:
        _State.deferring -= 1
        if temporary:
            signal.signal(signal.SIGINT, previous)


def stop(message: str | None = None) -> NoReturn:
    """Raise `Interrupted` for the pending signal (SIGINT if none) with the line the command ends with."""
    signum = _State.pending if _State.pending is not None else signal.SIGINT
    if not _State.installed:
        # Library use: the caller gets the KeyboardInterrupt; a later run in the same process starts afresh.
        _State.pending = None
    raise Interrupted(signum, message)


def resume_command(out: str | os.PathLike[str]) -> str:
    """The command that continues the run in `out` (its target and intervals are in the checkpoint).

    >>> resume_command("runs/my run")
    "purelm train --resume 'runs/my run'"
    """
    return f"purelm train --resume {shlex.quote(os.fspath(out))}"


# ------------------------------------------------------------------------------------ the console entry


def _command(argv: Sequence[str]) -> str:
    return next((arg for arg in argv if not arg.startswith("-")), "")


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _exit_interrupted(command: str, err: BaseException | None) -> NoReturn:
    _State.exiting = True
    if isinstance(err, Interrupted) and _State.pending is None:
        _State.pending = err.signum
    signum = _State.pending if _State.pending is not None else signal.SIGINT
    message = err.message if isinstance(err, Interrupted) and err.message else f"interrupted by {signal_name(signum)}"
    _flush()
    with contextlib.suppress(Exception):
        print(f"purelm {command}: {message}".replace("purelm : ", "purelm: "), file=sys.stderr)
    _flush()
    _leave_distributed()
    # Not sys.exit: a normal interpreter teardown can crash while XLA threads (a compilation, a transfer)
    # are still running. Everything worth keeping is written and flushed by now.
    os._exit(128 + signum)


def _leave_distributed() -> None:
    # os._exit skips JAX's atexit shutdown of a multi-process run; without it the other processes see this
    # one vanish and abort ("the JAX distributed service detected fatal errors") instead of exiting alike.
    jax = sys.modules.get("jax")
    if jax is not None:
        with contextlib.suppress(Exception):
            if jax.distributed.is_initialized():
                jax.distributed.shutdown()


def console_main(argv: Sequence[str] | None = None) -> NoReturn:
    """The `purelm` console script: signal handlers first, then the command line (`purelm._cli.main`)."""
    command = ""
    try:
        install()
        args = list(sys.argv[1:] if argv is None else argv)
        command = _command(args)
        _State.immediate = command
        phase("imports")
        from purelm._cli import main

        _State.immediate = None
        status = main(args)
        # The command is done: spare the interpreter's final garbage collection the hundreds of thousands
        # of objects JAX's modules hold (0.5-0.7 s of every `purelm` command's exit on our CPUs).
        gc.freeze()
        check()
    except KeyboardInterrupt as err:
        _exit_interrupted(command, err)
    except BrokenPipeError:
        # `purelm sample ... | head`: the reader left. End quietly, as a tool killed by SIGPIPE would (141);
        # stdout goes to /dev/null first so that flushing it at exit cannot raise again.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        os._exit(128 + signal.SIGPIPE)
    except SystemExit:
        if _State.pending is not None:
            _exit_interrupted(command, None)
        raise
    except BaseException as err:
        if _State.pending is not None:
            # The interrupt surfaced wrapped in another exception (raised inside a library callback).
            _exit_interrupted(command, None)
        from purelm._errors import describe_resource_error

        message = describe_resource_error(err)
        if message is None:
            raise
        _flush()
        print(f"purelm {command}: error: {message}", file=sys.stderr)
        _flush()
        os._exit(1)
    if _State.pending is not None:
        _exit_interrupted(command, None)
    sys.exit(status)


if __name__ == "__main__":
    # Run as `python -m purelm._signals ...`: use the package's copy of this module, not __main__'s.
    from purelm._signals import console_main as _entry

    _entry()
