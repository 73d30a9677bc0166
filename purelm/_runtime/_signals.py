"""SIGINT and SIGTERM end a `purelm` command cleanly, whatever it is doing.

The console entry point (`purelm._cli._entry.console_main`) installs the handlers before anything heavy
is imported. A signal is always *recorded* (so an exception that some callback swallows, e.g. JAX's
garbage-collection hook, is still honoured at the next `phase()` or `check()`), and, outside `deferred()`
blocks, also *raised* as `Interrupted` (a `KeyboardInterrupt`). The training loop runs inside `deferred()`: there a
signal only sets the flag, the loop stops between two compiled calls, saves, and calls `stop()`. One exit
path (`exit_interrupted`) prints one line and ends the process with status 128 + the signal number (130
for SIGINT, 143 for SIGTERM), via `os._exit` so that interpreter teardown never races XLA's threads.

This module imports only the standard library: in library use it changes nothing (no handler is
installed), except that `deferred()` records a Ctrl-C in the main thread while it is active.

    with deferred():
        while not requested():
            state = compiled_step(state)
        if requested():
            save(state)
            stop(f"interrupted: checkpoint saved; continue: {resume_command(out)}")
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from typing import ClassVar, NoReturn

HANDLED = (signal.SIGINT, signal.SIGTERM)


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
    installed = False  # the console entry point installed the process-wide handlers
    deferring = 0  # depth of nested deferred() blocks
    exiting = False  # in the exit path: signals are only recorded
    immediate: str | None = None  # while importing: the command to end at once on a signal
    phase = "start"
    owned: ClassVar[set[int]] = set()  # the signals install() took over


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
        exit_interrupted(_State.immediate, None)
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
    """Mark the start of a phase ("imports", "data", "compile", "step", "eval", "save", "plot", "sample"),
    honouring a pending signal (see `check`)."""
    _State.phase = name
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


# ------------------------------------------------------------------------------------ ending the process


@contextlib.contextmanager
def ending_at_once(command: str) -> Iterator[None]:
    """Within this block (the console entry point's imports) a signal ends the process at once, with the
    line `purelm COMMAND: interrupted by SIG...`, instead of raising `Interrupted`: an exception raised
    inside numpy's or jaxlib's import code can be caught there and printed as a traceback."""
    _State.immediate = command
    try:
        yield
    finally:
        _State.immediate = None


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def exit_interrupted(command: str, err: BaseException | None) -> NoReturn:
    """End the process for the pending signal (or `err`, an `Interrupted`): one line on stderr, the one
    `err` carries or `interrupted by SIG...`, and exit status 128 + the signal number."""
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


def exit_with_error(command: str, message: str) -> NoReturn:
    """End the process with `purelm COMMAND: error: MESSAGE` on stderr and exit status 1, without the
    interpreter's teardown (see `exit_interrupted`)."""
    _flush()
    print(f"purelm {command}: error: {message}", file=sys.stderr)
    _flush()
    os._exit(1)


def _leave_distributed() -> None:
    # os._exit skips JAX's atexit shutdown of a multi-process run; without it the other processes see this
    # one vanish and abort ("the JAX distributed service detected fatal errors") instead of exiting alike.
    jax = sys.modules.get("jax")
    if jax is not None:
        with contextlib.suppress(Exception):
            if jax.distributed.is_initialized():
                jax.distributed.shutdown()
