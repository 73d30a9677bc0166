"""PRNG keys consumed twice, for raw `uint32` keys and typed keys alike.

Every `jax.random` function that consumes its key (the samplers, `split`, `bits`; not `fold_in`,
`key_data`, `wrap_key_data` or `clone`) is watched. A key is one array object: consuming the
same object twice is reuse, whatever its value (two `PRNGKey(0)` calls are two keys, as in JAX's
own checker). The probe follows keys

- on concrete values, across the whole run (a weak registry of consumed arrays);
- inside one trace, by tracer identity (two draws from one key in a jitted body), except across
  the branches of one `cond`/`switch`, of which only one runs;
- across calls of a compiled function: the trace tells which argument leaves the body consumes,
  so passing an already consumed key to it again is reuse;
- into loop bodies: a key from outside a `scan`/`fori_loop`/`while_loop` body drawn from inside it
  gives every iteration the same numbers; a concrete key drawn while tracing a compiled function
  is a constant of it, the same on every call.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

from purelint._probe._frames import USER, Site, Spot, frame_kind
from purelint._probe._state import STATE, FnInfo, Patches, wraps

__all__ = ["install", "passed", "passed_in_trace"]

# `jax.random` names that do not consume their key (or are not functions of a key).
_NOT_CONSUMING = frozenset(
    {
        "PRNGKey",
        "key",
        "key_data",
        "key_impl",
        "key_dtype",
        "wrap_key_data",
        "fold_in",
        "clone",
        "random_gamma_p",
    }
)
_registry: dict[int, tuple[Any, Spot, str]] = {}  # id(key) -> (weak or strong reference, where, consumer)
_tracer_type: type = type(None)


def _user_site(frame: Any) -> Spot | None:
    """The first user frame at or outside `frame`, through library code: a key a library consumes
    (`eqx.nn.Linear(..., key=key)`) is consumed where the user handed it over."""
    while frame is not None:
        if frame_kind(frame) == USER:
            return Spot(frame)
        frame = frame.f_back
    return None


def _ref(key: Any) -> Any:
    ident = id(key)  # bound now: the callback runs when the key is gone
    try:
        return weakref.ref(key, lambda _ref: _registry.pop(ident, None))
    except TypeError:
        return lambda: key


def _exclusive(a: tuple, b: tuple) -> bool:
    """Two branch paths that part in one cond: only one of them runs."""
    branches = dict(a)
    return any(call in branches and branches[call] != index for call, index in b)


def _reuse(
    site: Spot,
    what: str,
    first: Spot,
    first_what: str,
    how: str,
    owner: FnInfo | None = None,
    inner: Site | None = None,
    frame: Any = None,
) -> None:
    where = site.site
    STATE.recorder.add(
        "PUR204",
        where,
        "key",
        how,
        owner,
        by=what,
        first=first.site,
        first_by=first_what,
        inner=inner,
        lines=_callers(frame, where.path),
    )


def _callers(frame: Any, path: str) -> list[int]:
    """The lines of `path` on the stack: a reuse inside a helper is also a reuse at the call that
    handed the helper the key (where the static linter reports it)."""
    lines = []
    while frame is not None:
        if frame.f_code.co_filename == path:
            lines.append(frame.f_lineno)
        frame = frame.f_back
    return lines


def _concrete(key: Any, site: Spot, what: str, *, tracing: bool, inner: Site | None = None, frame: Any = None) -> None:
    entry = _registry.get(id(key))
    if entry is not None and entry[0]() is key:
        if not (tracing and entry[1] == site):  # a compiled function traced again: reported as a constant key
            _reuse(site, what, entry[1], entry[2], "reused", inner=inner, frame=frame)
        if tracing:
            return
    _registry[id(key)] = (_ref(key), site, what)


def consume(key: Any, what: str, frame: Any) -> None:
    """`key` is consumed by `what` (e.g. "`jax.random.normal`") called from `frame`."""
    site = _user_site(frame)
    if site is None:
        return
    local = STATE.local
    stack = [] if local.regions and local.regions[-1].host else local.regions  # a host callback runs eagerly
    innermost = stack[-1] if stack else None
    info = innermost.info if innermost is not None else None
    loop = info is not None and info.loop
    if not isinstance(key, _tracer_type):
        owner = STATE.owner() if stack else None
        compiled = owner is not None and owner.cached  # a constant of the compiled program
        if loop:
            _reuse(site, what, site, what, "loop", info)
        elif compiled:
            STATE.recorder.add("PUR204", site.site, "key", "constant", owner, by=what)
        _concrete(key, site, what, tracing=compiled, frame=frame)
        return
    if innermost is None:
        return
    entry = local.keys.get(id(key))
    if entry is not None and entry[0] is key and not _exclusive(entry[3], innermost.branch):
        _reuse(site, what, entry[1], entry[2], "traced", STATE.owner(), frame=frame)
    else:
        local.keys[id(key)] = (key, site, what, innermost.branch)
    for region in stack:
        found = region.inputs.get(id(key))
        if found is not None and found[1] is key and region.info is not None and found[0] not in region.info.consumed:
            region.info.consumed[found[0]] = site.site
    if loop and innermost.trace is not None and id(key) not in innermost.inputs:
        if getattr(key, "_trace", innermost.trace) is not innermost.trace:
            _reuse(site, what, site, what, "loop", info)


def _leaves(args: tuple, kwargs: dict) -> list:
    return sys.modules["jax"].tree_util.tree_leaves((args, kwargs))


def passed(info: FnInfo, args: tuple, kwargs: dict, frame: Any) -> None:
    """A compiled function that consumes some of its arguments as keys was called with them."""
    site = _user_site(frame)
    if site is None:
        return
    leaves = _leaves(args, kwargs)
    for index, inner in info.consumed.items():
        if index < len(leaves) and not isinstance(leaves[index], _tracer_type):
            _concrete(leaves[index], site, f"`{info.name}`", tracing=False, inner=inner, frame=frame)


def passed_in_trace(info: FnInfo, args: tuple, kwargs: dict, frame: Any) -> None:
    """The same, called while tracing another function: its key arguments are that trace's."""
    leaves = _leaves(args, kwargs)
    for index in info.consumed:
        if index < len(leaves):
            consume(leaves[index], f"`{info.name}`", frame)


def _hook(original: Any, name: str) -> Any:
    what = f"`jax.random.{name}`"

    def hook(*args: Any, **kwargs: Any) -> Any:
        local = STATE.local
        if STATE.active and not (local.busy or local.quiet):
            key = args[0] if args else kwargs.get("key")
            if key is not None:
                with STATE.busy():
                    consume(key, what, sys._getframe(1))
            local.busy += 1  # a draw that calls another `jax.random` function consumes once
            try:
                return original(*args, **kwargs)
            finally:
                local.busy -= 1
        return original(*args, **kwargs)

    wraps(hook, original)
    return hook


def install(patches: Patches) -> None:
    global _tracer_type
    import jax.random

    _tracer_type = jax.core.Tracer
    _registry.clear()
    for name in dir(jax.random):
        value = getattr(jax.random, name)
        if name.startswith("_") or name in _NOT_CONSUMING or not callable(value) or isinstance(value, type):
            continue
        patches.set(jax.random, name, _hook(value, name))
