"""SIGINT and SIGTERM end a `purelm` command cleanly, whatever it is doing, at whatever moment.

Python runs a signal handler in the main thread between two bytecodes: inside numpy's or jaxlib's import
code, or inside C++ code that has called back into Python. An exception raised there can be caught and
printed as a traceback, or reach C++ frames that cannot pass it on (an abort, "terminate called after
throwing an instance of 'nanobind::python_error'", or a segmentation fault). So the handler never raises;
it only records the signal. The console entry point (`purelm._cli._entry.console_main`) installs it before
anything heavy is imported, together with a watcher thread that `signal.set_wakeup_fd` wakes the moment a
signal arrives, whatever the main thread is doing, and that acts on it:

- Outside `deferred()` blocks (start-up, reading data, the summary; `purelm sample` and `eval` throughout)
  there is nothing to save: the watcher ends the process at once with one line on stderr and exit status
  128 + the signal number (130 for SIGINT, 143 for SIGTERM), via `os._exit`, so that no exception unwinds
  through foreign code and interpreter teardown never races XLA's threads.
- Inside `deferred()` (the training loop) and `shielded()` (a file being written) it only records. The loop
  stops between two compiled calls, saves, and calls `stop()`, which raises `Interrupted` (a
  `KeyboardInterrupt`) at that well-defined point; `check()` raises it between two pieces of work
  (`interruptible()` lets it raise inside the loop, for a validation that is abandoned and done again).
  A signal still pending when the outermost such block ends is raised there.

`phase()` names what the command is doing (tests pause a command at a phase). This module imports only
the standard library: in library use it changes nothing (no handler, no thread), except that `deferred()`
records a Ctrl-C in the main thread while it is active.

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
from collections.abc import Callable, Iterator
from typing import ClassVar, NoReturn

HANDLED = (signal.SIGINT, signal.SIGTERM)
# How long the watcher's exit may wait on the main thread's locks (a flush of stdout while it writes into a
# full pipe) before the process ends anyway.
_EXIT_WAIT_S = 2.0


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
    installed = False  # the console entry point installed the handlers and the watcher
    command = ""  # the `purelm` command running, for the line an exit prints
    deferring = 0  # depth of nested deferred()/shielded() blocks: while > 0 the watcher only records
    raise_at = 0  # check() raises at this deferring depth or less (interruptible() raises it)
    exiting = False
    last_words: Callable[[str], str] | None = None  # see exit_message()
    phase = "start"
    owned: ClassVar[set[int]] = set()  # the signals install() took over
    # Taken to change `deferring`, and by the thread that ends the process, which keeps it: so no deferred
    # block (a file being written) starts once the process is ending. Never taken by the signal handler.
    lock: ClassVar[threading.Lock] = threading.Lock()


def signal_name(signum: int) -> str:
    """`SIGINT`, `SIGTERM`, ... for a signal number."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _handler(signum: int, frame) -> None:
    # Record only: this runs wherever the main thread happens to be (see the module docstring).
    if _State.pending is None:
        _State.pending = signum


def install(command: str = "") -> None:
    """Take SIGINT and SIGTERM over for this process (the console entry point does it first): a handler
    that records, and the watcher thread that acts. `command` names the command in the line an exit prints."""
    _State.command = command
    if _State.installed:
        return
    # The wakeup file first: once a handler is in place, every signal reaches the watcher.
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    threading.Thread(target=_watch, args=(read_end,), name="purelm-signals", daemon=True).start()
    for signum in HANDLED:
        # A signal ignored from the start stays ignored: `nohup`, or a shell's background job, which must
        # not die of the terminal's Ctrl-C (Python itself keeps SIGINT ignored in that case).
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _handler)
            _State.owned.add(signum)
    _State.installed = True


def _watch(fd: int) -> None:
    """The watcher thread: one byte per signal arrives on `fd` (the wakeup file)."""
    while True:
        try:
            received = os.read(fd, 64)
        except OSError:
            return
        if not received:
            return
        for signum in received:
            if signum in _State.owned:
                _arrived(signum)


def _arrived(signum: int) -> None:
    record(signum)
    _State.lock.acquire()
    if _State.deferring:
        _State.lock.release()  # the block in progress acts on it
        return
    _end_process(_interrupted_line(None), 128 + (_State.pending or signum), locked=True)


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
    """Raise `Interrupted` if a signal arrived, outside `deferred()` (there the caller polls `requested()`)
    or inside `interruptible()`."""
    signum = _State.pending
    if signum is None or _State.exiting or _State.deferring > _State.raise_at:
        return
    if not _State.installed and not _State.deferring:
        _State.pending = None  # library use: raised to the caller; a later run starts afresh
    raise Interrupted(signum)


def phase(name: str) -> None:
    """Mark the start of a phase ("imports", "data", "compile", "step", "eval", "save", "plot", "sample"),
    honouring a pending signal (see `check`)."""
    _State.phase = name
    check()


def current_phase() -> str:
    """The name given to the last `phase()` call."""
    return _State.phase


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Within this block (a file being written) a signal is only recorded; leaving it (the outermost block,
    or an `interruptible()` one) raises `Interrupted` for a signal that arrived meanwhile."""
    with _State.lock:
        _State.deferring += 1
    try:
        yield
    finally:
        with _State.lock:
            _State.deferring -= 1
    check()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within this block a signal only sets the flag (`requested()`), so a loop can finish its current
    compiled call, save a consistent checkpoint and then `stop()`; one it leaves pending is raised at the end.

    Without the console handlers (library use, main thread) a temporary handler records SIGINT, so a
    notebook's Ctrl-C stops the loop the same way; the previous handler is restored afterwards.
    """
    temporary = not _State.installed and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _handler) if temporary else None
    try:
        with shielded():
            yield
    finally:
        if temporary:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within this block, even inside `deferred()`, `check()` raises for a pending signal: for work that is
    abandoned and done again later (a validation) rather than finished before the loop stops."""
    saved, _State.raise_at = _State.raise_at, _State.deferring
    try:
        yield
    finally:
        _State.raise_at = saved


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


def exit_message(line: Callable[[str], str] | None) -> None:
    """From now on a signal that ends the command at once ends it with `line(signal name)` instead of
    `interrupted by SIG...` (a finished run says so while it prints its summary); None: the default."""
    _State.last_words = line


# ------------------------------------------------------------------------------------ ending the process


def _interrupted_line(err: BaseException | None) -> str:
    signum = _State.pending if _State.pending is not None else signal.SIGINT
    if isinstance(err, Interrupted) and err.message:
        message = err.message
    elif _State.last_words is not None:
        message = _State.last_words(signal_name(signum))
    else:
        message = f"interrupted by {signal_name(signum)}"
    return _line(message)


def _line(message: str) -> str:
    return f"purelm {_State.command}: {message}".replace("purelm : ", "purelm: ")


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _within(seconds: float, work: Callable[[], None]) -> None:
    """Run `work` in a helper thread, giving up on it after `seconds` (it may wait on a lock forever)."""
    helper = threading.Thread(target=work, daemon=True)
    helper.start()
    helper.join(seconds)


def _end_process(line: str, status: int, *, locked: bool = False) -> NoReturn:
    """Print `line` on stderr and end the process with `status`, from any thread, once: a second caller
    waits here for the first one's `os._exit`."""
    if not locked:
        _State.lock.acquire()
    _State.exiting = True
    _within(_EXIT_WAIT_S, _flush)
    with contextlib.suppress(OSError):
        # A direct write: the main thread may hold sys.stderr's lock.
        os.write(2, (line + "\n").encode("utf-8", "replace"))
    if threading.current_thread() is threading.main_thread():
        _leave_distributed()
    else:  # the watcher: the main thread may be inside JAX, holding what leaving needs
        _within(5 * _EXIT_WAIT_S, _leave_distributed)
    # Not sys.exit: a normal interpreter teardown can crash while XLA threads (a compilation, a transfer)
    # are still running. Everything worth keeping is written and flushed by now.
    os._exit(status)


def exit_interrupted(command: str, err: BaseException | None) -> NoReturn:
    """End the process for the pending signal (or `err`, an `Interrupted`): one line on stderr, the one
    `err` carries or `interrupted by SIG...`, and exit status 128 + the signal number."""
    _State.command = command
    if isinstance(err, Interrupted) and _State.pending is None:
        _State.pending = err.signum
    signum = _State.pending if _State.pending is not None else signal.SIGINT
    _end_process(_interrupted_line(err), 128 + signum)


def exit_with_error(command: str, message: str) -> NoReturn:
    """End the process with `purelm COMMAND: error: MESSAGE` on stderr and exit status 1, without the
    interpreter's teardown (see `exit_interrupted`)."""
    _State.command = command
    _end_process(_line(f"error: {message}"), 1)


def _leave_distributed() -> None:
    # os._exit skips JAX's atexit shutdown of a multi-process run; without it the other processes see this
    # one vanish and abort ("the JAX distributed service detected fatal errors") instead of exiting alike.
    jax = sys.modules.get("jax")
    if jax is not None:
        with contextlib.suppress(Exception):
            if jax.distributed.is_initialized():
                jax.distributed.shutdown()
