"""What the probe knows while a program runs: which functions are being traced on this thread, and
the findings so far.

A *region* is one run of a user function's Python body under a JAX transformation (a trace). The
transformation wrappers push a region while the body runs, so the effect hooks only have to ask
"is this thread inside a region?" (`tracing()`), a thread-local read. Host callbacks push a HOST
region: code that JAX calls back at run time is not traced. While the probe re-traces a function
itself (to see whether its compiled program went stale) the thread is *quiet*: hooks swallow the
re-trace's output and record nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from purelint._probe._frames import Site, Spot

__all__ = ["HOST", "STATE", "Finding", "FnInfo", "Patches", "Recorder", "Region", "wraps"]

HOST = "host"
clock = time.perf_counter  # bound before any hook replaces it

ORIGINALS: dict[str, Any] = {}  # "jax.jit" -> the unpatched function (the stale check re-traces with it)


@dataclass(eq=False)
class FnInfo:
    """One transformed user function: what it is and how often it was traced and called."""

    name: str
    kind: str  # "jax.jit", "jax.lax.scan body", ...
    code: CodeType | None
    cached: bool = False  # a compiled cache stands between calls and traces (jit-like)
    loop: bool = False  # a loop body: one trace serves every iteration
    traces: int = 0
    calls: int = 0
    stale_calls: int = 0
    unsafe: bool = False  # its trace did IO or changed an argument: the stale check must not re-trace it
    consumed: dict[int, Site] = field(default_factory=dict)  # argument leaf -> where the body consumed it as a key
    deps: list = field(default_factory=list)  # the globals and closure cells its body reads (`_snapshot.Dep`)
    snapshot: list = field(default_factory=list)  # their fingerprints when it was last traced
    shown: list = field(default_factory=list)  # and their descriptions, for messages


class Region:
    """One trace in progress on this thread."""

    __slots__ = ("before", "branch", "call", "codes", "host", "info", "inputs", "trace")

    def __init__(self, info: FnInfo | None, branch: tuple = (), *, host: bool = False) -> None:
        self.info = info  # None for a library's own function (whose callees may still be the user's)
        self.host = host  # a host callback: not traced
        self.inputs: dict[int, tuple[int, Any]] = {}  # id(input tracer) -> (leaf index, tracer)
        self.trace: Any = None  # the JAX trace of the inputs (loop bodies: is a key from outside?)
        self.branch = branch  # (cond call, branch index) pairs it lies in: branches exclude each other
        self.codes: set[str] = set()  # codes of the effects seen while it ran
        self.call: tuple | None = None  # (wrapper, args, kwargs) of the traced call
        self.before: tuple | None = None  # what the trace may change, as it was before (`_transforms`)


class _Local(threading.local):
    def __init__(self) -> None:
        self.regions: list[Region] = []
        self.quiet = 0
        self.busy = 0  # inside a probe hook: effects of the probe's own work are not the program's
        self.conds: list[list[int]] = []  # cond/switch calls in progress: [call id, next branch, depth]
        self.keys: dict[int, tuple[Any, Spot, str, tuple]] = {}  # keys consumed in the trace in progress
        self.prompt = False  # `input` is about to write its prompt
        self.reported: set[int] = set()  # containers whose change the trace in progress reported


@dataclass(eq=False)
class Finding:
    code: str
    site: Site
    kind: str  # effect, argument, global, stale, key
    what: str  # the effect, in backticks: "`print`"
    owner: FnInfo | None
    count: int = 0
    others: list[FnInfo] = field(default_factory=list)  # further functions it happened under
    detail: dict = field(default_factory=dict)
    lines: set[int] = field(default_factory=set)  # other lines the same finding may be reported at
    context: str | None = None  # the test that first showed it, under pytest


class Recorder:
    """The findings of one probe run, deduplicated by (code, location, what)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.findings: dict[tuple, Finding] = {}
        self.functions: list[FnInfo] = []
        self.errors: list[str] = []
        self.spent = 0.0  # seconds inside the probe's own bookkeeping
        self.context: str | None = None
        self.limits: set[str] = set()  # things the probe gave up on, for the summary

    def function(self, info: FnInfo) -> FnInfo:
        with self.lock:
            self.functions.append(info)
        return info

    def add(self, code: str, site: Site, kind: str, what: str, owner: FnInfo | None, **detail: Any) -> Finding:
        key = (code, site.path, site.line, site.column, kind, what)
        with self.lock:
            finding = self.findings.get(key)
            if finding is None:
                lines = set(detail.pop("lines", ()))
                finding = self.findings[key] = Finding(
                    code, site, kind, what, owner, 0, [], detail, lines, self.context
                )
            else:
                finding.lines.update(detail.pop("lines", ()))
                for name, value in detail.items():
                    finding.detail.setdefault(name, value)
                if owner is not None and owner is not finding.owner and owner not in finding.others:
                    finding.others.append(owner)
            finding.count += 1
        if owner is not None and code in ("PUR002", "PUR302"):
            owner.unsafe = True
        if kind == "effect":
            for region in STATE.local.regions:
                region.codes.add(code)
        return finding

    def fail(self, error: BaseException) -> None:
        with self.lock:
            if len(self.errors) < 5:
                self.errors.append(f"{type(error).__name__}: {error}")


class _State:
    """The process-wide switch and the current recorder (one probe runs at a time)."""

    def __init__(self) -> None:
        self.active = False
        self.recorder = Recorder()
        self.local = _Local()

    def tracing(self) -> Region | None:
        """The innermost region when this thread is tracing user-observable code, else None."""
        if not self.active:
            return None
        local = self.local
        if local.quiet or local.busy or not local.regions:
            return None
        region = local.regions[-1]
        return None if region.host else region

    def owner(self) -> FnInfo | None:
        """The function an effect is charged to: the outermost cached (jit-like) function being
        traced, else the innermost traced one."""
        infos = [r.info for r in self.local.regions if r.info is not None]
        for info in infos:
            if info.cached:
                return info
        return infos[-1] if infos else None

    def branch_path(self) -> tuple[tuple[int, int], ...]:
        regions = self.local.regions
        return regions[-1].branch if regions else ()

    @contextmanager
    def host(self) -> Iterator[None]:
        """Run a host callback: not traced, whatever the stack around it."""
        self.local.regions.append(Region(None, host=True))
        try:
            yield
        finally:
            self.local.regions.pop()

    @contextmanager
    def quiet(self) -> Iterator[None]:
        self.local.quiet += 1
        try:
            yield
        finally:
            self.local.quiet -= 1

    def busy(self) -> _Busy:
        """The probe's own work: its effects are not the program's; the time is the probe's; an
        exception in it is recorded, never passed to the program."""
        return _Busy(self)


class _Busy:
    """`STATE.busy()`: a class rather than a generator, as it runs on every watched call."""

    __slots__ = ("start", "state")

    def __init__(self, state: _State) -> None:
        self.state = state

    def __enter__(self) -> None:
        self.state.local.busy += 1
        self.start = clock()

    def __exit__(self, kind: Any, error: Any, tb: Any) -> bool:
        state = self.state
        state.local.busy -= 1
        state.recorder.spent += clock() - self.start
        if isinstance(error, Exception):  # the probe's failure never reaches the program
            state.recorder.fail(error)
            return True
        return False


STATE = _State()


def wraps(wrapper: Any, wrapped: Any) -> None:
    """Give a wrapper object the wrapped callable's names, docstring and `__wrapped__` (JAX and
    `inspect.signature` follow it to the signature)."""
    wrapper.__wrapped__ = wrapped
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        with suppress(AttributeError):
            setattr(wrapper, attr, getattr(wrapped, attr))


_MISSING = object()


class Patches:
    """Attributes replaced while the probe runs, put back in reverse order when it stops."""

    def __init__(self) -> None:
        self.saved: list[tuple[Any, str, Any]] = []

    def set(self, owner: Any, name: str, value: Any) -> Any:
        """Replace `owner.name` by `value`; returns the original."""
        current = getattr(owner, name, None)
        original = owner.__dict__.get(name, _MISSING) if isinstance(owner, type) else getattr(owner, name, _MISSING)
        self.saved.append((owner, name, original))
        setattr(owner, name, value)
        return current

    def restore(self) -> None:
        while self.saved:
            owner, name, original = self.saved.pop()
            try:
                if original is _MISSING:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)
            except (AttributeError, TypeError):
                pass
