"""`filter_jit`: `eqx.filter_jit`'s semantics at `jax.jit`'s per-call cost, for the train steps.

Why this exists: a training step of a small model takes a few milliseconds, and the Python work
`eqx.filter_jit` does around each call is a measurable share of it. `eqx.partition(model, eqx.is_array)`
alone costs ~390 us per call, where `jax.tree.flatten` of the same `(model, opt_state)` costs ~45 us
and `jax.tree.unflatten` ~31 us (JAX's C++ pytree code). `eqx.filter_jit` also waits for each call
to finish (to turn `eqx.error_if` failures into readable errors), so Python cannot prepare the next
step while this one runs.

Per call, this wrapper does one C++ flatten of the arguments, one pass over the leaves that keeps the
arrays (traced) apart from everything else (static: part of the compilation key, as in
`eqx.filter_jit`), one `jax.jit` dispatch (whose C++ fast path hashes the static part), and one
unflatten of the outputs. It returns without waiting: JAX's asynchronous dispatch is kept. It does
what purelm's train steps need and no more: no buffer donation, no `.lower`, no `eqx.error_if`
messages.

One Adam step of `LSTMLM(65, 32, 128)` on a 16 x 32 batch, on a 2-core x86 CPU
(`python benchmarks/dispatch_overhead.py --rounds 5 --steps 20`): waiting for each step, 8.34 ms
through `eqx.filter_jit`, 7.88 ms through this wrapper, 7.80 ms for the bare `jax.jit`; not waiting,
7.21 ms through this wrapper. A function that only negates its arguments, called with the same trees,
costs 210 us of CPU per call more through `eqx.filter_jit` than through `jax.jit`, and 20 us more
through this wrapper.

Example:
    >>> @filter_jit
    ... def scaled_sum(tree, *, scale):          # arrays traced, `scale` static
    ...     return {"total": jnp.sum(tree["x"]) * scale, "name": tree["name"]}
    >>> scaled_sum({"x": jnp.ones(3), "name": "ones"}, scale=2.0)
    {'name': 'ones', 'total': Array(6., dtype=float32)}
"""

import functools
import inspect
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax


def _split(leaves: list) -> tuple[list, tuple]:
    """The arrays among `leaves` (traced), and the leaves with `None` in place of each array (static).

    `None` is a free placeholder: `jax.tree.flatten` never yields it as a leaf (it is an empty node).
    """
    dynamic: list[Any] = []
    static: list[Any] = []
    for leaf in leaves:
        if eqx.is_array(leaf):
            dynamic.append(leaf)
            static.append(None)
        else:
            static.append(leaf)
    return dynamic, tuple(static)


def _merge(dynamic, static: tuple) -> list:
    """The inverse of `_split`: the leaves, each array back in its place."""
    arrays = iter(dynamic)
    return [next(arrays) if leaf is None else leaf for leaf in static]


class _Output:
    """The non-array part of a traced function's output, carried through `jax.jit` as a pytree node
    without children: JAX stores its aux data with the compiled program it came from, so each
    compilation (static arguments, shapes, dtypes, shardings: JAX's own cache key) hands back the
    output structure its own trace produced, with no second cache of ours to keep in step."""

    __slots__ = ("static", "treedef")

    def __init__(self, treedef, static: tuple | None):
        self.treedef = treedef
        self.static = static


jax.tree_util.register_pytree_node(
    _Output, lambda output: ((), (output.treedef, output.static)), lambda aux, _: _Output(*aux)
)


class _FilterJit:
    """What `filter_jit` returns; see the module docstring."""

    def __init__(self, fun: Callable):
        functools.update_wrapper(self, fun)
        self._fun = fun
        self._signature = inspect.signature(fun)

        def traced(static_in, dynamic_in):
            fun, args, kwargs = jax.tree.unflatten(static_in[0], _merge(dynamic_in, static_in[1]))
            out_leaves, out_treedef = jax.tree.flatten(fun(*args, **kwargs))
            dynamic_out, static_out = _split(out_leaves)
            # `None` when every output leaf is an array: the common case unflattens without a merge.
            return dynamic_out, _Output(out_treedef, None if len(dynamic_out) == len(out_leaves) else static_out)

        # The compiled program's name is the function's, as with `eqx.filter_jit` (profiles, HLO dumps).
        traced.__name__ = getattr(fun, "__name__", "filter_jit")
        traced.__qualname__ = getattr(fun, "__qualname__", traced.__name__)
        self._jitted = jax.jit(traced, static_argnums=0)

    def __call__(self, *args, **kwargs):
        if kwargs:
            # Bind keyword arguments to their parameters, as `eqx.filter_jit` does, so `f(x, key=k)`
            # and `f(x, k)` share one compilation. Positional-only calls skip this (~10 us).
            bound = self._signature.bind(*args, **kwargs)
            args, kwargs = bound.args, bound.kwargs
        # The function is flattened with its arguments, as in `eqx.filter_jit`: a module's arrays are
        # traced inputs rather than constants baked into the program; a plain function is one static leaf.
        leaves, treedef = jax.tree.flatten((self._fun, args, kwargs))
        dynamic, static = _split(leaves)
        try:
            dynamic_out, output = self._jitted((treedef, static), dynamic)
        except (TypeError, ValueError):
            # JAX's message for an unhashable static argument shows the whole static tuple; name the leaf.
            _check_hashable(self._fun, self._signature, args, kwargs, static)
            raise
        if output.static is None:
            return jax.tree.unflatten(output.treedef, dynamic_out)
        return jax.tree.unflatten(output.treedef, _merge(dynamic_out, output.static))


def _check_hashable(fun, signature: inspect.Signature, args, kwargs, static: tuple) -> None:
    """Raise a one-line error naming the first static leaf that cannot be hashed.

    (Only leaves: JAX hashes a treedef without its nodes' aux data, such as a module's static fields,
    and compares those with `==`.)"""
    paths = [path for path, _ in jax.tree_util.tree_flatten_with_path((fun, args, kwargs))[0]]
    for path, leaf in zip(paths, static, strict=True):
        try:
            hash(leaf)
        except TypeError as error:
            raise ValueError(
                f"filter_jit: {_describe(signature, path)} is a {type(leaf).__name__}, not an array, so it is "
                f"static and must be hashable ({error}); pass it as an array or a hashable value (a tuple, say)"
            ) from None


def _describe(signature: inspect.Signature, path) -> str:
    """The name of a leaf of `(fun, args, kwargs)`, e.g. `argument 'options' (at ['scale'][1])`."""
    if path[0].idx == 0:
        return "the function" + (f" (at {jax.tree_util.keystr(tuple(path[1:]))})" if path[1:] else "")
    top, where, *rest = path
    if top.idx == 2:
        head = f"argument {where.key!r}"
    else:
        positional = [
            parameter.name
            for parameter in signature.parameters.values()
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
        ]
        head = f"argument {positional[where.idx]!r}" if where.idx < len(positional) else f"argument {where.idx}"
    return head + (f" (at {jax.tree_util.keystr(tuple(rest))})" if rest else "")


def filter_jit(fun: Callable) -> Callable:
    """`eqx.filter_jit(fun)` with less work per call: every `eqx.is_array` leaf of the arguments is
    traced, every other leaf is static (and must be hashable); outputs may hold non-array leaves.

    Example:
        >>> step = filter_jit(_update(optax.adam(1e-3), batch_loss))
        >>> model, opt_state, states, loss = step(model, opt_state, batch, None)
    """
    return _FilterJit(fun)
