"""JAX's transformations, watched: every function handed to one runs inside a *region*.

While the probe runs, `jax.jit`, `grad`, `vmap`, `lax.scan`/`fori_loop`/`while_loop`/`cond`/
`switch`/`map`, equinox's `filter_*` and (when importable) Flax NNX's transforms are replaced by
versions that hand the original a `Traced` wrapper of the user's function. JAX calls the wrapper
only to trace (a cache hit runs compiled code and never enters Python), so while the wrapper runs
the thread is tracing: the effect hooks record what happens, and the wrapper compares snapshots of
the arguments' containers and of the globals the function reads before and after. jit-like
transforms also return a `_jitted.JitProxy`, which counts calls and checks the cache for stale
programs. Host callbacks run in a HOST region: they are not traced.

One wrapper is made per function and transform (kept on the function), so JAX's own caches, which
key on the function, hit exactly as often as without the probe.
"""

from __future__ import annotations

import functools
import importlib.abc
import inspect
import itertools
import os
import sys
import types
from dataclasses import dataclass
from typing import Any

from purelint._probe import _regions, _snapshot
from purelint._probe._state import ORIGINALS, STATE, FnInfo, Patches, wraps

__all__ = ["TABLE", "Spec", "Traced", "install", "uninstall"]


@dataclass(frozen=True)
class Spec:
    label: str
    fn_args: tuple[tuple[int, str], ...]  # where the functions are: (position, keyword)
    cached: bool = False  # jit-like: traces are cached, calls run compiled code
    loop: bool = False  # a loop body: one trace serves every iteration
    cond: bool = False  # branches: only one of them runs
    always: bool = False  # traced even under `jax.disable_jit()` (grad, vmap)
    proxy: str | None = None  # "jax" or "eqx": the result is a compiled function to watch
    host: bool = False  # a host callback: its function runs on the host, untraced
    sequence: bool = False  # the argument is a sequence of functions (`switch` branches)
    filter: bool = False  # equinox `filter_*`: a callable that is a pytree with leaves is left alone


def _specs(module: str, kinds: dict[str, dict], fn: tuple = ((0, "fun"),)) -> dict[str, Spec]:
    return {name: Spec(f"{module}.{name}", options.pop("fn_args", fn), **options) for name, options in kinds.items()}


_LOOP = {"loop": True}
TABLE: dict[str, dict[str, Spec]] = {
    "jax": _specs(
        "jax",
        {
            "jit": {"cached": True, "proxy": "jax"},
            "grad": {"always": True},
            "value_and_grad": {"always": True},
            "vmap": {"always": True},
            "jacfwd": {"always": True},
            "jacrev": {"always": True},
            "hessian": {"always": True},
            "pure_callback": {"host": True, "fn_args": ((0, "callback"),)},
        },
    ),
    "jax.lax": _specs(
        "jax.lax",
        {
            "scan": {**_LOOP, "fn_args": ((0, "f"),)},
            "map": {**_LOOP, "fn_args": ((0, "f"),)},
            "fori_loop": {**_LOOP, "fn_args": ((2, "body_fun"),)},
            "while_loop": {**_LOOP, "fn_args": ((0, "cond_fun"), (1, "body_fun"))},
            "cond": {"cond": True, "fn_args": ((1, "true_fun"), (2, "false_fun"))},
            "switch": {"cond": True, "sequence": True, "fn_args": ((1, "branches"),)},
        },
    ),
    "jax.debug": _specs("jax.debug", {"callback": {"host": True, "fn_args": ((0, "callback"),)}}),
    "jax.experimental": _specs("jax.experimental", {"io_callback": {"host": True, "fn_args": ((0, "callback"),)}}),
    "equinox": _specs(
        "equinox",
        {
            "filter_jit": {"cached": True, "proxy": "eqx", "filter": True},
            "filter_grad": {"always": True, "filter": True},
            "filter_value_and_grad": {"always": True, "filter": True},
            "filter_vmap": {"always": True, "filter": True},
            "filter_pure_callback": {"host": True, "fn_args": ((0, "callback"),)},
        },
    ),
    # Flax NNX: its transforms take `f` and split/merge the graph state of NNX objects around it.
    "flax.nnx": _specs(
        "flax.nnx",
        {
            "jit": {"cached": True},
            "grad": {"always": True},
            "value_and_grad": {"always": True},
            "vmap": {"always": True},
            "remat": {},
            "scan": _LOOP,
            "fori_loop": {**_LOOP, "fn_args": ((2, "body_fun"),)},
            "while_loop": {**_LOOP, "fn_args": ((0, "cond_fun"), (1, "body_fun"))},
            "cond": {"cond": True, "fn_args": ((1, "true_fun"), (2, "false_fun"))},
            "switch": {"cond": True, "sequence": True, "fn_args": ((1, "branches"),)},
        },
        fn=((0, "f"),),
    ),
}
_cond_ids = itertools.count(1)


def _disable_jit() -> bool:
    return bool(sys.modules["jax"].config.jax_disable_jit)


class Traced:
    """The user's function as a transformation sees it: same signature, and a region around each run."""

    def __init__(self, fn: Any, spec: Spec) -> None:
        self.fn = fn
        self.spec = spec
        wraps(self, fn)
        python = _snapshot.unwrap(fn)
        self.user = python if python is not None and _snapshot.is_user(python) else None
        self.direct = self.user is not None and _direct(fn)  # its arguments are the user function's own
        self.deps: list | None = None
        self.signature: inspect.Signature | None = None
        self.quiet_runs = 0  # runs during the probe's own re-traces (the stale check counts them)
        self._info: FnInfo | None = None
        self._recorder: Any = None

    @property
    def info(self) -> FnInfo | None:
        """This function's counts in the current run (a wrapper outlives a run: it stays on the function)."""
        if self.user is None:
            return None
        if self._recorder is not STATE.recorder:
            name = getattr(self.fn, "__qualname__", None) or self.user.__qualname__
            spec = self.spec
            self._info = STATE.recorder.function(FnInfo(name, spec.label, self.user.__code__, spec.cached, spec.loop))
            self._recorder = STATE.recorder
        return self._info

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # pytest: the user's function, not the probe, raised
        if not STATE.active or (not self.spec.always and _disable_jit()):
            return self.fn(*args, **kwargs)
        return _regions.run(self, args, kwargs)

    def __repr__(self) -> str:
        return repr(self.fn)


class Host:
    """A host callback: JAX runs it with values, on every call; whatever it does is not traced."""

    def __init__(self, fn: Any, spec: Spec) -> None:
        self.fn = fn
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        if not STATE.active:
            return self.fn(*args, **kwargs)
        try:
            with STATE.host():
                return self.fn(*args, **kwargs)
        finally:
            if STATE.local.regions:
                with STATE.busy():
                    _regions.rebase()

    def __repr__(self) -> str:
        return repr(self.fn)


def _direct(fn: Any) -> bool:
    while isinstance(fn, (types.MethodType, functools.partial)):
        fn = fn.__func__ if isinstance(fn, types.MethodType) else fn.func
    return isinstance(fn, types.FunctionType)


def _memo(fn: Any, spec: Spec, make: type) -> Any:
    """One wrapper per (function, transform), kept on the function: JAX's caches key on it."""
    if not isinstance(fn, types.FunctionType):
        return make(fn, spec)
    key = f"__purelint_probe_{spec.label}__"
    wrapper = fn.__dict__.get(key)
    if wrapper is None or wrapper.fn is not fn:  # functools.wraps copies it onto other functions
        wrapper = fn.__dict__[key] = make(fn, spec)
    return wrapper


# --- the replacements -------------------------------------------------------------------------


def _wrap(value: Any, spec: Spec) -> Any:
    if spec.sequence and isinstance(value, (list, tuple)):
        return type(value)(_wrap_one(v, spec) for v in value)
    return _wrap_one(value, spec)


def _wrap_one(value: Any, spec: Spec) -> Any:
    if not callable(value) or isinstance(value, (Traced, Host)):
        return value
    if spec.host:
        return _memo(value, spec, Host)
    if spec.filter:
        leaves = sys.modules["jax"].tree_util.tree_leaves(value)
        if len(leaves) != 1 or leaves[0] is not value:
            return value  # a module with arrays: equinox must see its leaves
    return _memo(value, spec, Traced)


def _replace(args: tuple, kwargs: dict, spec: Spec) -> tuple[tuple, dict, list]:
    positional, found = list(args), []
    for position, keyword in spec.fn_args:
        if position < len(positional):
            positional[position] = _wrap(positional[position], spec)
            found.append(positional[position])
        elif keyword in kwargs:
            kwargs = {**kwargs, keyword: _wrap(kwargs[keyword], spec)}
            found.append(kwargs[keyword])
    return tuple(positional), kwargs, found


def _patched(original: Any, spec: Spec) -> Any:
    from purelint._probe._jitted import JitProxy

    def patched(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        if not STATE.active:
            return original(*args, **kwargs)
        new_args, new_kwargs, found = _replace(args, kwargs, spec)
        if not found and (spec.cached or spec.always) and not args:
            return lambda fun: patched(fun, **kwargs)  # the decorator form: `@jax.jit(static_argnums=0)`
        if spec.cond:
            local = STATE.local
            local.conds.append([next(_cond_ids), 0, len(local.regions)])
            try:
                return original(*new_args, **new_kwargs)
            finally:
                local.conds.pop()
        result = original(*new_args, **new_kwargs)
        traced = found[0] if found and isinstance(found[0], Traced) else None
        if spec.proxy and traced is not None and traced.info is not None:
            return JitProxy(result, traced, spec.proxy, {k: v for k, v in kwargs.items() if k not in ("fun", "f")})
        return result

    functools.update_wrapper(patched, original)
    return patched


def _patch_module(module: types.ModuleType, patches: Patches) -> None:
    for name, spec in TABLE.get(module.__name__, {}).items():
        original = getattr(module, name, None)
        if original is not None and not getattr(original, "__purelint_probe_patch__", False):
            ORIGINALS.setdefault(spec.label, original)
            replacement = _patched(original, spec)
            replacement.__purelint_probe_patch__ = True
            patches.set(module, name, replacement)


class _Watcher(importlib.abc.MetaPathFinder):
    """Patches equinox and Flax NNX when the program imports them (the probe never imports them)."""

    def __init__(self, patches: Patches) -> None:
        self.patches = patches

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in TABLE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            found = finder.find_spec(name, path, target)
            if found is not None:
                break
        else:
            return None
        loader = found.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return found
        exec_module = loader.exec_module

        def exec_and_patch(module: types.ModuleType) -> None:
            exec_module(module)
            if STATE.active:
                with STATE.busy():
                    _patch_module(module, self.patches)

        # On this one loader instance, on purpose: the module it loads is patched as soon as it has run.
        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return found


_watcher: _Watcher | None = None


def install(patches: Patches) -> None:
    global _watcher
    import jax
    import jax.debug
    import jax.lax

    _regions.tracer_type = jax.core.Tracer
    for name in TABLE:
        module = sys.modules.get(name)
        if module is not None:
            _patch_module(module, patches)
    _watcher = _Watcher(patches)
    sys.meta_path.insert(0, _watcher)
    try:  # JAX's filtered tracebacks leave out the probe's frames, as they leave out JAX's
        from jax._src import traceback_util

        traceback_util.register_exclusion(os.path.dirname(__file__))
    except (ImportError, AttributeError):
        pass


def uninstall() -> None:
    global _watcher
    if _watcher is not None and _watcher in sys.meta_path:
        sys.meta_path.remove(_watcher)
    _watcher = None
