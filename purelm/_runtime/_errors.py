"""Out of memory as one line naming the size, not a RESOURCE_EXHAUSTED traceback.

`check_fits` compares a lower bound of what a model needs (its parameters; for training also their
gradients and the optimizer's moments) with the memory of one device, from the model's *shapes* (built
with `eqx.filter_eval_shape`, nothing allocated), before anything is allocated. What the bound leaves
out (activations, XLA's scratch space) can still exhaust memory at run time: `describe_resource_error`
turns that error into a line too (the console entry point uses it).

>>> shapes = eqx.filter_eval_shape(LSTMLM, 256, 64, 200_000, key=jax.random.key(0))  # doctest: +SKIP
>>> check_fits(shapes, training=True)                                                # doctest: +SKIP
OutOfMemory: the model has 160,103,...
"""

from __future__ import annotations

import os
import re
from typing import Any

import equinox as eqx
import jax

from purelm._runtime._parallel import DeviceError

_last_model: dict[str, int] = {}


class OutOfMemory(DeviceError):
    """A model too large for the memory of the device it would run on."""


def format_bytes(n: float) -> str:
    """Bytes in binary units, three significant digits.

    >>> format_bytes(1536), format_bytes(640 * 2**30)
    ('1.5 KiB', '640 GiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            break
        n /= 1024
    if unit == "B":
        return f"{int(n)} B"
    return f"{n:.3g} {unit}" if n < 1000 else f"{n:,.0f} {unit}"


def parameter_size(model: Any) -> tuple[int, int]:
    """(number of parameters, bytes) of the array leaves of `model` (arrays or ShapeDtypeStructs)."""
    leaves = [x for x in jax.tree.leaves(model) if hasattr(x, "shape") and hasattr(x, "dtype")]
    count = sum(int(x.size) if hasattr(x, "size") else _size(x.shape) for x in leaves)
    nbytes = sum(_size(x.shape) * jax.numpy.dtype(x.dtype).itemsize for x in leaves)
    return count, nbytes


def _size(shape) -> int:
    size = 1
    for dim in shape:
        size *= int(dim)
    return size


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            return int(text)
    return None


def device_memory(device: Any | None = None) -> tuple[int | None, str]:
    """(bytes one device can hold, what it is) -- an accelerator's limit, or on CPU the machine's RAM
    (or the container's limit, if lower). None when unknown."""
    device = jax.devices()[0] if device is None else device
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"the {device.platform} device's memory"
    if device.platform != "cpu":
        return None, f"the {device.platform} device's memory"
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = None
    limit = _cgroup_limit()
    candidates = [x for x in (ram, limit) if x]
    return (min(candidates) if candidates else None), "this machine's memory"


def check_fits(
    model: Any,
    *,
    optimizer: Any | None = None,
    training: bool = True,
    device: Any | None = None,
    available: int | None = None,
) -> None:
    """Raise `OutOfMemory` if `model` (arrays or shapes) cannot fit on one device even before activations.

    Training holds the parameters, their gradients and the state of `optimizer` (an optax transformation;
    its state's size is worked out from shapes; without one, Adam's two moments are assumed). Data
    parallelism replicates all of them, so more devices do not help. `available` overrides the detected
    memory (tests).
    """
    count, nbytes = parameter_size(model)
    _last_model.update(count=count, bytes=nbytes)
    what = "this memory"
    if available is None:
        available, what = device_memory(device)
    if available is None:
        return
    needed, parts = nbytes, "the parameters"
    if training:
        if optimizer is None:
            state_bytes = 2 * nbytes
        else:
            params = eqx.filter(model, lambda x: isinstance(x, jax.ShapeDtypeStruct) or eqx.is_array(x))
            state_bytes = parameter_size(jax.eval_shape(optimizer.init, params))[1]
        needed += nbytes + state_bytes
        parts = "parameters, gradients and optimizer state"
    if needed <= available:
        return
    raise OutOfMemory(
        f"the model does not fit in memory: {count:,} parameters ({format_bytes(nbytes)}); "
        f"{'training' if training else 'it'} needs at least {format_bytes(needed)} ({parts}), but {what} is "
        f"{format_bytes(available)}; choose a smaller --hidden-dim, --embed-dim or --layers"
    )


_ALLOCATING = re.compile(r"allocat\w*\s+(\d+)\s+bytes", re.IGNORECASE)


def describe_resource_error(err: BaseException) -> str | None:
    """One line for an out-of-memory error (XLA's RESOURCE_EXHAUSTED, numpy's MemoryError), else None.

    >>> describe_resource_error(RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 2048 bytes."))
    'out of memory: could not allocate 2 KiB'
    """
    text = str(err)
    if not (isinstance(err, MemoryError) or "RESOURCE_EXHAUSTED" in text or "Out of memory" in text):
        return None
    match = _ALLOCATING.search(text)
    line = "out of memory"
    if match:
        line += f": could not allocate {format_bytes(int(match.group(1)))}"
    if _last_model:
        line += f" (the model has {_last_model['count']:,} parameters, {format_bytes(_last_model['bytes'])})"
    return line
