"""A compiled function, watched: calls counted, stale programs found, keys followed across calls.

The stale check is "trace twice", made cheap. After each trace the probe keeps fingerprints of the
globals and closure cells the function reads (`FnInfo.snapshot`). A call that hits JAX's cache
compares them with the current values; only when one changed does it ask JAX for the cached
program (`.trace()` on the same arguments, a cache lookup) and trace the function afresh, quietly
(output swallowed, random states and globals restored), and compare the two programs, constants
included. Different programs: the compiled function runs on a value that no longer holds.
"""

from __future__ import annotations

import functools
import re
import sys
import types
from typing import Any

from purelint._probe import _keys
from purelint._probe._locate import def_site, read_site
from purelint._probe._snapshot import Saved, explain, fingerprint, fingerprints
from purelint._probe._state import ORIGINALS, STATE, FnInfo, wraps

__all__ = ["JitProxy"]

_CHECKS = 20  # re-traces per function at most: a global that changes on every call costs no more
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # reprs of callables inside a program differ per object


class JitProxy:
    """Stands in for what `jax.jit` (or `eqx.filter_jit`) returned; everything else is forwarded."""

    def __init__(self, jitted: Any, traced: Any, flavor: str, options: dict) -> None:
        self._jitted = jitted
        self._traced = traced
        self._flavor = flavor
        self._options = options
        self._stale: list | None = None  # fingerprints already found stale
        self._checks = 0
        wraps(self, jitted)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jitted, name)

    def __repr__(self) -> str:
        return repr(self._jitted)

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        if self._flavor == "eqx":
            return sys.modules["equinox"].Partial(self, instance)
        return types.MethodType(self, instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # pytest: the compiled function, not the probe, raised
        local = STATE.local
        info = self._traced.info
        if not STATE.active or local.busy or local.quiet or info is None:
            return self._jitted(*args, **kwargs)
        if local.regions:  # called while tracing another function: its keys are that trace's
            out = self._jitted(*args, **kwargs)
            if info.consumed:
                with STATE.busy():
                    _keys.passed_in_trace(info, args, kwargs, sys._getframe(1))
            return out
        traces = info.traces
        out = self._jitted(*args, **kwargs)
        info.calls += 1
        # The common call (nothing consumed as a key, no global read) costs no more than this.
        if info.consumed or (info.traces == traces and info.deps):
            with STATE.busy():
                if info.consumed:
                    _keys.passed(info, args, kwargs, sys._getframe(1))
                if info.traces == traces and info.deps:
                    self._check_stale(info, args, kwargs)
        return out

    # --- the stale check ---------------------------------------------------------------------

    def _check_stale(self, info: FnInfo, args: tuple, kwargs: dict) -> None:
        current = fingerprints(info.deps)
        if current == info.snapshot:
            return
        if current == self._stale:
            info.stale_calls += 1
            return
        if info.unsafe:  # its trace did IO or changed an argument: a re-trace would do it again
            return
        if self._checks >= _CHECKS:
            STATE.recorder.limits.add(f"the stale check of `{info.name}` stopped after {_CHECKS} re-traces")
            return
        self._checks += 1
        differs = self._differs(info, args, kwargs)
        if differs is None:
            return
        if not differs:
            info.snapshot = current
            return
        self._stale = current
        info.stale_calls += 1
        for index, (then, now) in enumerate(zip(info.snapshot, current)):
            if then != now:
                dep = info.deps[index]
                site = read_site(dep.code, dep.name) or def_site(dep.code)
                change, uses = explain(dep, then, info.shown[index], dep.get())
                STATE.recorder.add("PUR103", site, "stale", f"`{dep.name}`", info, change=change, uses=uses)

    def _differs(self, info: FnInfo, args: tuple, kwargs: dict) -> bool | None:
        """Whether tracing now gives another program than the cached one (None: cannot tell)."""
        traced = self._traced
        saved = Saved(info.deps)
        runs = traced.quiet_runs
        try:
            with STATE.quiet():
                cached = self._program(self._jitted, args, kwargs)
                if traced.quiet_runs != runs:  # not a cache hit after all: nothing to compare with
                    return None
                fresh_fn = functools.wraps(traced.fn)(lambda *a, **k: traced(*a, **k))
                make = ORIGINALS["equinox.filter_jit" if self._flavor == "eqx" else "jax.jit"]
                fresh = self._program(make(fresh_fn, **self._options), args, kwargs)
        finally:
            saved.restore()
        return cached != fresh or _holds_old_numpy(info, cached)

    def _program(self, jitted: Any, args: tuple, kwargs: dict) -> tuple:
        if self._flavor == "eqx":
            return (_ADDRESS.sub("", jitted.lower(*args, **kwargs).as_text()),)
        closed = jitted.trace(*args, **kwargs).jaxpr
        return (_ADDRESS.sub("", str(closed.jaxpr)), tuple(_Const(c) for c in closed.consts))


def _holds_old_numpy(info: FnInfo, program: tuple) -> bool:
    """A NumPy global changed in place: JAX keeps the constant it converted from it (keyed on the
    array), so even a fresh trace gets the old values. Stale when the program holds a constant of
    its shape and none with its current values."""
    import numpy

    consts = [c.value for c in program[1]] if len(program) > 1 else []
    for dep, then in zip(info.deps, info.snapshot):
        value = dep.get()
        if not (isinstance(value, numpy.ndarray) and then[0] == "ndarray" and then[1] == id(value)):
            continue
        if then == fingerprint(value):
            continue
        shaped = [c for c in consts if getattr(c, "shape", None) == value.shape]
        if shaped and not any(numpy.array_equal(numpy.asarray(c), value.astype(c.dtype)) for c in shaped):
            return True
    return False


class _Const:
    """A program constant compared by value (arrays element by element)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Const):
            return NotImplemented
        a, b = self.value, other.value
        if hasattr(a, "shape") and hasattr(b, "shape"):
            import numpy

            return (
                a.shape == b.shape
                and a.dtype == b.dtype
                and bool(numpy.array_equal(numpy.asarray(a), numpy.asarray(b)))
            )
        try:
            return bool(a == b)
        except Exception:  # an object without a meaningful equality: compare identities
            return a is b

    __hash__ = None  # type: ignore[assignment]
