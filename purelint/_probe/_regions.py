"""One trace of a watched function: the region around it, and what it changed.

`run` is what a `_transforms.Traced` wrapper does when JAX calls it to trace: it pushes a region
(so the effect hooks know this thread is tracing), takes snapshots of what the trace may change (the
arguments' Python containers, the bindings and contents of the globals and closure cells the
function reads, the global random states) and compares them when the body returns. A host callback
that runs meanwhile may change state legitimately: `rebase` takes the snapshots again after it.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any

from purelint._probe import _effects, _snapshot
from purelint._probe._locate import def_site, global_sites, mutation_sites, read_site
from purelint._probe._state import STATE, FnInfo, Region

__all__ = ["rebase", "run"]

tracer_type: type = type(None)  # jax.core.Tracer, set when the probe starts


def run(w: Any, args: tuple, kwargs: dict) -> Any:
    """Run `w.fn` as one trace: a region around it, snapshots before, changes reported after."""
    __tracebackhide__ = True
    local = STATE.local
    regions = local.regions
    branch = regions[-1].branch if regions else ()
    if local.conds and local.conds[-1][2] == len(regions):  # a branch of the cond in progress
        cond = local.conds[-1]
        branch = (*branch, (cond[0], cond[1]))
        cond[1] += 1
    info = w.info
    if local.quiet:
        w.quiet_runs += 1
    if not regions:
        local.reported.clear()
    region = Region(info, branch)
    owner = None
    if info is not None and not local.quiet:
        with STATE.busy():
            _before(w, info, region, args, kwargs)
    regions.append(region)
    if region.before is not None:
        owner = STATE.owner()
    if len(regions) == 1:
        _effects.streams.acquire()
    try:
        return w.fn(*args, **kwargs)
    finally:
        regions.pop()
        if not regions:
            _effects.streams.release()
            local.keys.clear()
        if region.before is not None:
            with STATE.busy():
                _after(w, info, owner, region)


def _named(w: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The arguments of a call of `w.fn`, by parameter name."""
    fn = w.fn
    try:
        if w.signature is None:
            w.signature = inspect.signature(fn)
        named = dict(w.signature.bind_partial(*args, **kwargs).arguments)
    except (TypeError, ValueError):
        named = {f"argument {i}": a for i, a in enumerate(args)} | kwargs
    if isinstance(fn, types.MethodType):
        named = {"self": fn.__self__, **named}
    return named


def _before(w: Any, info: FnInfo, region: Region, args: tuple, kwargs: dict) -> None:
    info.traces += 1
    if info.cached or info.loop:
        leaves = sys.modules["jax"].tree_util.tree_leaves((args, kwargs))
        region.inputs = {id(leaf): (i, leaf) for i, leaf in enumerate(leaves) if isinstance(leaf, tracer_type)}
        region.trace = next((getattr(leaf, "_trace", None) for _, leaf in region.inputs.values()), None)
    region.call = (w, args, kwargs)
    region.before = _state_of(w, info, args, kwargs)


def rebase() -> None:
    """After a host callback: what it changed (a call counter, a log) is not the traced code's doing,
    so the regions around it compare against the state as the callback left it."""
    for region in STATE.local.regions:
        if region.before is not None:
            assert region.call is not None and region.info is not None  # `_before` set them with `before`
            w, args, kwargs = region.call
            region.before = _state_of(w, region.info, args, kwargs)


def _state_of(w: Any, info: FnInfo, args: tuple, kwargs: dict) -> tuple:
    """What a trace may change: the arguments' containers, the bindings and contents of the globals
    it reads, the global random states."""
    arguments = _snapshot.snapshot_containers(list(_named(w, args, kwargs).items())) if w.direct else []
    if w.deps is None:
        w.deps = _snapshot.dependencies(w.user)
    bindings = [(dep, dep.get()) for dep in w.deps]
    contents = _snapshot.snapshot_containers([(str(i), value) for i, (_dep, value) in enumerate(bindings)], depth=0)
    # Random state drawn through names the hooks do not see (`from random import random` before the
    # probe started): checked where a draw is frozen into a program; an eager grad draws every call.
    rng = _snapshot.rng_states() if info.cached or info.loop else None
    return arguments, bindings, contents, rng


def _after(w: Any, info: FnInfo, owner: FnInfo | None, region: Region) -> None:
    assert region.before is not None  # `run` calls it only after `_before`
    arguments, bindings, contents, rng = region.before
    recorder, owner, code = STATE.recorder, owner or info, w.user.__code__
    reported = STATE.local.reported  # a change an inner trace reported is that trace's
    for change in _snapshot.diff_containers(arguments, _is_tracer):
        if change.container in reported:
            continue
        reported.add(change.container)
        sites = mutation_sites(code, change.root)
        site = sites[0] if sites else def_site(code)
        recorder.add(
            "PUR302", site, "argument", f"`{change.root}`", owner, change=change, lines=[s.line for s in sites]
        )
    seen: set[tuple[int, str]] = set()
    for dep, old in bindings:
        key = (id(dep.namespace if dep.cell is None else dep.cell), dep.name)
        if dep.get() is old or key in seen:
            continue
        seen.add(key)
        sites = global_sites(dep.code, dep.name) or [read_site(dep.code, dep.name) or def_site(dep.code)]
        recorder.add(
            "PUR101",
            sites[0],
            "global",
            f"`{dep.name}`",
            owner,
            label=dep.label,
            old=_snapshot.describe(old),
            new=_snapshot.describe(dep.get()),
            lines=[s.line for s in sites],
        )
    for change in _snapshot.diff_containers(contents, _is_tracer):
        dep = bindings[int(change.root)][0]
        key = (id(dep.namespace if dep.cell is None else dep.cell), dep.name)
        if key in seen or change.container in reported:
            continue
        seen.add(key)
        reported.add(change.container)
        sites = mutation_sites(dep.code, dep.name) or [read_site(dep.code, dep.name) or def_site(dep.code)]
        recorder.add(
            "PUR102",
            sites[0],
            "global",
            f"`{dep.name}`",
            owner,
            label=dep.label,
            change=change,
            lines=[s.line for s in sites],
        )
    for code_name, moved in zip(("PUR201", "PUR202"), _snapshot.rng_moved(rng) if rng is not None else ()):
        if moved and code_name not in region.codes:  # drawn through a name the hooks do not see
            what = "`random`'s global state" if code_name == "PUR201" else "`numpy.random`'s global state"
            recorder.add(code_name, def_site(code), "effect", what, owner)
    if info.cached:
        info.deps = w.deps
        info.snapshot = _snapshot.fingerprints(w.deps)
        info.shown = [_snapshot.describe(dep.get()) for dep in w.deps]


def _is_tracer(value: Any) -> bool:
    return isinstance(value, tracer_type)
