"""Effects while tracing: output, IO, logging, hidden random state and clocks.

Each hook is a thin replacement of the function it watches (or, for IO, one audit hook: Python
raises an audit event for `open`, `os.*`, `subprocess`, `socket` and `input`). Outside a trace a
hook costs one thread-local read and calls the original; inside one it records the effect at the
user's line (see `_frames`) and still calls the original, so the program behaves exactly as
without the probe. Only the probe's own re-traces are silenced (`STATE.quiet`).
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import logging
import os
import random
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any

from purelint._probe._frames import frame_site, user_frame
from purelint._probe._state import STATE, Patches

__all__ = ["effect", "install", "shows_tracer", "streams"]

# The text of a tracer printed by value or formatted into a string: `JitTracer(~float32[])`,
# `GradTracer(primal=1.0, ...)`, `Traced<ShapedArray(float32[])>with<...>` (older JAX).
_TRACER_TEXT = re.compile(r"\b[A-Z]\w*Tracer\(|Traced<")
_RANDOM = (
    "random",
    "uniform",
    "triangular",
    "randint",
    "choice",
    "choices",
    "randrange",
    "sample",
    "shuffle",
    "normalvariate",
    "lognormvariate",
    "expovariate",
    "vonmisesvariate",
    "gammavariate",
    "gauss",
    "betavariate",
    "paretovariate",
    "weibullvariate",
    "getrandbits",
    "randbytes",
    "binomialvariate",
    "seed",
)
_CLOCKS = (
    "time",
    "time_ns",
    "perf_counter",
    "perf_counter_ns",
    "monotonic",
    "monotonic_ns",
    "process_time",
    "process_time_ns",
    "thread_time",
    "thread_time_ns",
)
# Audit events that are IO (`sys.audit` names); `open` alone is the builtin and `io.open`.
_IO_PREFIXES = (
    "os.",
    "shutil.",
    "subprocess.",
    "socket.",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "glob.",
    "pathlib.",
    "tempfile.",
    "webbrowser.",
    "sqlite3.connect",
)
_IO_EVENTS = frozenset({"open", "builtins.input"})
# Standard modules that read files for diagnostics (source lines of a warning or a traceback):
# their IO is not the program's.
_DIAGNOSTIC = frozenset(
    {"linecache", "traceback", "inspect", "tokenize", "logging", "warnings", "importlib", "zipimport", "pkgutil"}
)
_tracer_type: type | None = None
_HERE = os.path.dirname(os.path.abspath(__file__))


def effect(code: str, what: str, frame: FrameType | None, *, stop: frozenset[str] = _DIAGNOSTIC, **detail: Any) -> None:
    """Record an effect at the user's frame at or outside `frame`, when this thread is tracing. An
    effect of a module in `stop` (logging reading the clock for its record) is that module's."""
    if STATE.tracing() is None:
        return
    with STATE.busy():
        user = user_frame(frame, stop_modules=stop)
        if user is not None:
            STATE.recorder.add(code, frame_site(user), "effect", what, STATE.owner(), **detail)


def shows_tracer(args: tuple) -> bool:
    """Whether printing `args` shows a tracer (directly, inside a container, or formatted into a string)."""
    for arg in args:
        if isinstance(arg, str):
            if _TRACER_TEXT.search(arg):
                return True
        elif _tracer_type is not None and isinstance(arg, _tracer_type):
            return True
        elif isinstance(arg, (list, tuple, dict)):
            values = arg.values() if isinstance(arg, dict) else arg
            if shows_tracer(tuple(values)[:64]):
                return True
    return False


def _hook(original: Callable, code: str, what: str) -> Callable:
    def hook(*args: Any, **kwargs: Any) -> Any:
        if STATE.active and STATE.local.regions:
            effect(code, what, sys._getframe(1))
        return original(*args, **kwargs)

    with contextlib.suppress(AttributeError, TypeError):
        functools.update_wrapper(hook, original)
    return hook


def _install_print(patches: Patches) -> None:
    original = builtins.print

    def print(*args: Any, **kwargs: Any) -> None:
        local = STATE.local
        if not (STATE.active and local.regions):
            return original(*args, **kwargs)
        if local.quiet:
            return None
        if STATE.tracing() is not None and shows_tracer(args):
            effect("PUR001", "`print`", sys._getframe(1))
        local.busy += 1  # the write below is this print's: the stream hook must not count it again
        try:
            return original(*args, **kwargs)
        finally:
            local.busy -= 1

    print.__doc__ = original.__doc__
    patches.set(builtins, "print", print)


def _install_logging(patches: Patches) -> None:
    original = logging.Logger.handle

    def handle(self: logging.Logger, record: logging.LogRecord) -> None:
        if STATE.active and STATE.local.regions:
            if STATE.local.quiet:
                return None
            effect("PUR003", "`logging`", sys._getframe(1), stop=_DIAGNOSTIC - {"logging"}, logger=record.name)
        return original(self, record)

    patches.set(logging.Logger, "handle", handle)


def _install_warnings(patches: Patches) -> None:
    original = warnings.warn

    def warn(message: Any, category: Any = None, stacklevel: int = 1, source: Any = None, **kwargs: Any) -> None:
        if STATE.active and STATE.local.regions:
            if STATE.local.quiet:
                return None
            effect("PUR003", "`warnings.warn`", sys._getframe(1), stop=_DIAGNOSTIC - {"warnings"})
        if isinstance(stacklevel, int):
            stacklevel = _stacklevel(sys._getframe(1), stacklevel)
        return original(message, category, stacklevel, source, **kwargs)

    functools.update_wrapper(warn, original)
    patches.set(warnings, "warn", warn)


def _stacklevel(caller: FrameType, stacklevel: int) -> int:
    """The `stacklevel` that names, from this hook, the frame the caller meant: one more for the
    hook's own frame, and one more for each frame of the probe's wrappers on the way."""
    level, remaining = stacklevel + 1, stacklevel - 1
    frame: FrameType | None = caller
    while remaining > 0 and frame is not None:
        frame = frame.f_back
        if frame is not None and frame.f_code.co_filename.startswith(_HERE):
            level += 1
        else:
            remaining -= 1
    return level


def _install_rng(patches: Patches) -> None:
    for name in _RANDOM:
        if hasattr(random, name):
            patches.set(random, name, _hook(getattr(random, name), "PUR201", f"`random.{name}`"))
    numpy_random = getattr(sys.modules.get("numpy"), "random", None)
    global_state = getattr(getattr(numpy_random, "mtrand", None), "_rand", None)  # the legacy global generator
    if global_state is not None:
        for name in dir(numpy_random):
            value = getattr(numpy_random, name)
            if getattr(value, "__self__", None) is global_state and not name.startswith(("get_", "set_")):
                patches.set(numpy_random, name, _hook(value, "PUR202", f"`numpy.random.{name}`"))
    for name in _CLOCKS:
        if hasattr(time, name):
            patches.set(time, name, _hook(getattr(time, name), "PUR203", f"`time.{name}`"))
    patches.set(os, "urandom", _hook(os.urandom, "PUR203", "`os.urandom`"))


_audit_installed = False


def _audit(event: str, args: tuple) -> None:
    if not STATE.active or not STATE.local.regions:
        return
    if event not in _IO_EVENTS and not event.startswith(_IO_PREFIXES):
        return
    if event == "builtins.input":
        STATE.local.prompt = True  # `input` writes its prompt to sys.stdout: part of this effect
    what = "`input`" if event == "builtins.input" else f"`{event}`"
    target = args[0] if args and isinstance(args[0], (str, bytes, os.PathLike)) else None
    effect("PUR002", what, sys._getframe(1), target=os.fsdecode(target) if target is not None else None)


class _Stream:
    """Stands in for sys.stdout or sys.stderr while some thread traces: a direct `write` from
    traced code is output that happens once per trace."""

    def __init__(self, inner: Any, name: str) -> None:
        self._inner = inner
        self._name = name

    def write(self, text: str) -> int:
        local = STATE.local
        if local.regions:
            if local.quiet:
                return len(text)
            if local.prompt:
                local.prompt = False
            else:
                effect("PUR002", f"`sys.{self._name}.write`", sys._getframe(1))
        return self._inner.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Streams:
    """sys.stdout and sys.stderr are replaced only while at least one thread traces."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.installed: list[tuple[str, _Stream]] = []

    def acquire(self) -> None:
        with self.lock:
            self.count += 1
            if self.count == 1:
                for name in ("stdout", "stderr"):
                    current = getattr(sys, name)
                    if current is not None and not isinstance(current, _Stream):
                        proxy = _Stream(current, name)
                        setattr(sys, name, proxy)
                        self.installed.append((name, proxy))

    def release(self) -> None:
        with self.lock:
            self.count -= 1
            if self.count == 0:
                while self.installed:
                    name, proxy = self.installed.pop()
                    if getattr(sys, name) is proxy:  # the program replaced it meanwhile: leave theirs
                        setattr(sys, name, proxy._inner)


streams = _Streams()


def install(patches: Patches) -> None:
    """Install every effect hook (the audit hook, which cannot be removed, only once per process)."""
    global _audit_installed, _tracer_type
    import jax.core

    _tracer_type = jax.core.Tracer
    _install_print(patches)
    _install_logging(patches)
    _install_warnings(patches)
    _install_rng(patches)
    if not _audit_installed:
        sys.addaudithook(_audit)
        _audit_installed = True
