"""What a traced function depends on and what it changed: globals, closure cells and the Python
containers among its arguments, as cheap fingerprints that can be compared later.

A fingerprint never holds more than identities and small immutable values, so taking one costs
microseconds and keeps nothing alive but the values the program already holds.
"""

from __future__ import annotations

import builtins
import dis
import functools
import sys
import types
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from purelint._probe._frames import USER, classify

__all__ = [
    "Change",
    "Dep",
    "Saved",
    "dependencies",
    "describe",
    "diff_containers",
    "explain",
    "fingerprint",
    "fingerprints",
    "rng_moved",
    "rng_states",
    "snapshot_containers",
    "unwrap",
]

_SCALARS = (int, float, complex, bool, str, bytes, type(None))
_CONTAINERS = (list, dict, set, bytearray, deque)
_OPAQUE = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, type, functools.partial)
_ITEMS = 64  # items compared per container, per call (the rest only by length)
_MISSING = object()


def _is_array(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith(("jax", "jaxlib")) or (module == "numpy" and type(value).__name__ == "ndarray")


def _numpy_fp(value: Any) -> tuple:
    """Arrays by identity, shape, dtype and (a sample of) their bytes: numpy arrays change in place."""
    flat = value.reshape(-1) if value.flags.c_contiguous else value.ravel()
    sample = flat if flat.size <= 4096 else flat[:: max(1, flat.size // 4096)]
    return ("ndarray", id(value), value.shape, str(value.dtype), hash(sample.tobytes()))


def fingerprint(value: Any, depth: int = 2) -> Any:
    """A comparable summary of `value` that changes when it is rebound or changed in place."""
    kind = type(value)
    if kind in _SCALARS:
        return kind, value
    if kind is tuple or kind is frozenset:
        return kind, len(value), tuple(fingerprint(v, depth - 1) if depth else id(v) for v in list(value)[:_ITEMS])
    if isinstance(value, _CONTAINERS):
        return kind, id(value), len(value), _shallow(value)
    if _is_array(value):
        return _numpy_fp(value) if kind.__module__ == "numpy" else (kind, id(value))
    if isinstance(value, _OPAQUE):
        return kind, id(value)
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict) and not _frozen(value):
        return (
            kind,
            id(value),
            tuple((k, fingerprint(v, 0) if type(v) in _SCALARS else id(v)) for k, v in list(attrs.items())[:_ITEMS]),
        )
    return kind, id(value)


def _item(value: Any) -> Any:
    """An item of a shallow fingerprint: small immutable values by value, the rest by identity."""
    return value if type(value) in _SCALARS else id(value)


def _shallow(container: Any, limit: int = _ITEMS) -> tuple:
    if isinstance(container, dict):
        out = [(key, _item(value)) for key, value in _first(container.items(), limit)]
    else:
        out = [_item(value) for value in _first(container, limit)]
    return tuple(sorted(out, key=repr)) if isinstance(container, set) else tuple(out)


def _first(items: Any, limit: int) -> list:
    out: list[Any] = []
    for item in items:
        if len(out) >= limit:
            break
        out.append(item)
    return out


def _frozen(value: Any) -> bool:
    """Objects that cannot or may not be mutated in place by design (equinox modules and Flax NNX
    objects, whose transforms own their state; frozen dataclasses)."""
    kind = type(value)
    if kind.__module__.startswith(("equinox", "flax", "jax", "optax")):
        return True
    params = getattr(kind, "__dataclass_params__", None)
    return params is not None and params.frozen


def describe(value: Any) -> str:
    """A short human description: `0`, `'adam'`, `a list of 3 items`, `a float32[3] array`."""
    kind = type(value)
    if kind in _SCALARS:
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, _CONTAINERS):
        return f"a {kind.__name__} of {len(value)} item{'s' * (len(value) != 1)}"
    if _is_array(value):
        shape = ",".join(str(s) for s in getattr(value, "shape", ()))
        return f"a {getattr(value, 'dtype', '')}[{shape}] array"
    return f"a `{kind.__name__}`"


# --- dependencies: the globals and closure cells a function (and its helpers) reads ---------------


@dataclass(frozen=True, eq=False)
class Dep:
    """A global (`namespace[name]`) or closure cell the traced code reads; `code` reads it."""

    name: str
    code: types.CodeType = field(repr=False)
    namespace: dict | None = field(default=None, repr=False)
    cell: types.CellType | None = field(default=None, repr=False)

    def get(self) -> Any:
        if self.cell is not None:
            try:
                return self.cell.cell_contents
            except ValueError:
                return _MISSING
        return self.namespace.get(self.name, _MISSING) if self.namespace is not None else _MISSING

    @property
    def label(self) -> str:
        return f"{'closure variable' if self.cell is not None else 'global'} `{self.name}`"


_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"})
_names_cache: dict[types.CodeType, tuple[str, ...]] = {}


def _global_names(code: types.CodeType) -> tuple[str, ...]:
    names = _names_cache.get(code)
    if names is None:
        found: dict[str, None] = {}
        for inner in _codes(code):
            for instruction in dis.get_instructions(inner):
                if instruction.opname in _GLOBAL_OPS:
                    found[instruction.argval] = None
        names = _names_cache[code] = tuple(found)
    return names


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def unwrap(fn: Any) -> types.FunctionType | None:
    """The Python function behind a callable: through `__wrapped__`, partials, bound methods and
    callable objects."""
    for _ in range(8):
        if isinstance(fn, types.FunctionType):
            return fn
        if isinstance(fn, types.MethodType):
            fn = fn.__func__
        elif isinstance(fn, functools.partial):
            fn = fn.func
        elif getattr(fn, "__wrapped__", None) is not None:
            fn = fn.__wrapped__
        elif (
            callable(fn)
            and not isinstance(fn, type)
            and isinstance(getattr(type(fn), "__call__", None), types.FunctionType)  # noqa: B004 (a Python-level __call__, not callability)
        ):
            fn = type(fn).__call__
        else:
            return None
    return None


def is_user(fn: types.FunctionType) -> bool:
    return classify(fn.__code__, fn.__globals__.get("__name__")) == USER


def dependencies(fn: types.FunctionType, limit: int = 128) -> list[Dep]:
    """The globals and closure cells `fn` reads, and those of the user functions it calls by
    global name (two levels deep): the values its trace can bake into a compiled program."""
    deps: list[Dep] = []
    seen_fns: set[int] = set()

    def visit(f: types.FunctionType, depth: int) -> None:
        if id(f) in seen_fns or len(deps) >= limit:
            return
        seen_fns.add(id(f))
        code, namespace = f.__code__, f.__globals__
        for name, cell in zip(code.co_freevars, f.__closure__ or ()):
            deps.append(Dep(name, code, cell=cell))
        for name in _global_names(code):
            if name not in namespace:
                continue  # a builtin, or not defined yet
            value = namespace[name]
            if isinstance(value, types.ModuleType) or value is getattr(builtins, name, _MISSING):
                continue
            deps.append(Dep(name, code, namespace=namespace))
            if depth and isinstance(value, types.FunctionType) and is_user(value):
                visit(value, depth - 1)

    visit(fn, 2)
    return deps[:limit]


def fingerprints(deps: list[Dep]) -> list[Any]:
    return [fingerprint(dep.get()) for dep in deps]


def explain(dep: Dep, then: Any, shown: str, value: Any) -> tuple[str, str]:
    """How `dep`'s value changed since its fingerprint `then` (described as `shown`) was taken, and
    what the compiled program still uses: ("global `n` was 0 at trace time and is 3 now", "0")."""
    now, label = fingerprint(value), dep.label
    if then[0] in _SCALARS and now[0] in _SCALARS:
        return f"{label} was {shown} at trace time and is {describe(value)} now", shown
    same = len(then) > 1 and len(now) > 1 and then[1] == now[1] and then[0] == now[0]
    if then[0] == "ndarray" and same:
        return f"{label} ({shown}) was changed in place after tracing", "its old values"
    if not same:
        now_shown = describe(value)
        to = f"another {now_shown[2:]}" if now_shown == shown and shown.startswith("a ") else now_shown
        return f"{label} ({shown}) was rebound after tracing, to {to}", "the old one"
    if isinstance(value, _CONTAINERS):
        return f"{label} was changed in place after tracing ({shown} then, {describe(value)} now)", "the old contents"
    old, new = dict(then[2]), dict(now[2])
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before != after:
            attribute = label.replace(f"`{dep.name}`", f"`{dep.name}.{name}`")
            if (
                isinstance(before, tuple)
                and isinstance(after, tuple)
                and before[0] in _SCALARS
                and after[0] in _SCALARS
            ):
                return f"{attribute} was {describe(before[1])} at trace time and is {describe(after[1])} now", describe(
                    before[1]
                )
            return f"{attribute} changed after tracing", "the old value"
    return f"{label} changed after tracing", "the old value"


# --- argument containers: what a trace changed in place ------------------------------------------


@dataclass(frozen=True)
class Change:
    path: str  # "xs", "params['w']", "cfg.lr"
    root: str  # the argument or global name
    kind: str  # "list", "dict", "object", ...
    text: str  # "grew from 2 to 3 items"
    leaked: bool  # a tracer was stored into it
    container: int = 0  # id() of the changed container


def snapshot_containers(values: list[tuple[str, Any]], depth: int = 3) -> list[tuple[str, str, Any, tuple, int]]:
    """(path, root name, container, shallow contents, length) for the mutable Python containers
    reachable from the (name, value) pairs through containers and plain objects."""
    out: list[tuple[str, str, Any, tuple, int]] = []
    seen: set[int] = set()

    def walk(value: Any, path: str, root: str, level: int) -> None:
        if id(value) in seen or len(out) >= 512:
            return
        if isinstance(value, _CONTAINERS):
            seen.add(id(value))
            out.append((path, root, value, _shallow(value, 4096), len(value)))
            if level and not isinstance(value, (set, bytearray)):
                items = value.items() if isinstance(value, dict) else enumerate(value)
                for key, item in list(items)[:_ITEMS]:
                    walk(item, f"{path}[{key!r}]", root, level - 1)
        elif type(value) is tuple or (isinstance(value, tuple) and hasattr(value, "_fields")):
            fields = getattr(value, "_fields", None)
            for index, item in enumerate(value[:_ITEMS]):
                walk(item, f"{path}.{fields[index]}" if fields else f"{path}[{index}]", root, level)
        elif _plain_object(value):
            seen.add(id(value))
            attrs = vars(value)
            out.append((path, root, value, _shallow(attrs, 4096), len(attrs)))
            if level:
                for key, item in list(attrs.items())[:_ITEMS]:
                    walk(item, f"{path}.{key}", root, level - 1)

    for name, value in values:
        walk(value, name, name, depth)
    return out


def _plain_object(value: Any) -> bool:
    if type(value) in _SCALARS or isinstance(value, _OPAQUE) or _is_array(value) or _frozen(value):
        return False
    return isinstance(getattr(value, "__dict__", None), dict)


def diff_containers(before: list[tuple[str, str, Any, tuple, int]], is_tracer: Any) -> list[Change]:
    changes = []
    for path, root, container, contents, length in before:
        is_object = not isinstance(container, _CONTAINERS)
        target = vars(container) if is_object else container
        if _shallow(target, 4096) == contents and len(target) == length:
            continue
        now = len(target)
        if is_object:
            old = dict(contents)
            changed = sorted(
                k for k in set(old) | set(target) if k not in old or k not in target or old[k] != _item(target[k])
            )
            text = f"had attribute{'s' * (len(changed) != 1)} {', '.join(f'`{k}`' for k in changed[:3])} set"
        elif now != length:
            text = f"{'grew' if now > length else 'shrank'} from {length} to {now} item{'s' * (now != 1)}"
        else:
            text = "had items replaced"
        values = target.values() if isinstance(target, dict) else target
        leaked = (
            any(is_tracer(v) for v in list(values)[-_ITEMS:]) if not isinstance(target, (set, bytearray)) else False
        )
        kind = "object" if is_object else type(container).__name__
        changes.append(Change(path, root, kind, text, leaked, id(container)))
    return changes


def rng_states() -> tuple[Any, Any]:
    """The global states of Python's `random` and NumPy's legacy `numpy.random`."""
    random = sys.modules.get("random")
    numpy_random = getattr(sys.modules.get("numpy"), "random", None)
    return (random.getstate() if random else None, numpy_random.get_state() if numpy_random is not None else None)


def rng_moved(before: tuple[Any, Any]) -> tuple[bool, bool]:
    python, numpy = rng_states()
    numpy_moved = False
    if before[1] is not None and numpy is not None:
        numpy_moved = before[1][2] != numpy[2] or not (before[1][1] == numpy[1]).all()
    return before[0] != python, numpy_moved


# --- putting things back after the probe's own re-trace ------------------------------------------


class Saved:
    """The bindings of `deps` and the contents of the containers they hold, and the global random
    states, so that the probe's own re-trace of a function leaves no trace in the program."""

    def __init__(self, deps: list[Dep]) -> None:
        self.bindings = [(dep, dep.get()) for dep in deps if dep.cell is None]
        # (container, copy): a list, dict, set, bytearray or deque, or the `__dict__` of a plain object.
        self.contents: list[tuple[Any, Any]] = []
        for _dep, value in self.bindings:
            if isinstance(value, _CONTAINERS):
                self.contents.append((value, value.copy() if not isinstance(value, deque) else list(value)))
            elif _plain_object(value):
                self.contents.append((value.__dict__, dict(value.__dict__)))
        self.random, self.numpy = rng_states()

    def restore(self) -> None:
        for dep, value in self.bindings:
            if dep.get() is not value:
                namespace = dep.namespace
                assert namespace is not None  # the bindings are globals only (no closure cell)
                if value is _MISSING:
                    namespace.pop(dep.name, None)
                else:
                    namespace[dep.name] = value
        for container, copy in self.contents:
            if isinstance(container, (list, bytearray, deque)):
                container.clear()
                container.extend(copy)
            elif _shallow(container, 4096) != _shallow(copy, 4096):
                container.clear()
                container.update(copy)
        if self.random is not None:
            sys.modules["random"].setstate(self.random)
        if self.numpy is not None:
            sys.modules["numpy"].random.set_state(self.numpy)
