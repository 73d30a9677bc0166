"""Keep freed host memory for reuse: CPU training without a page fault per byte of every step.

On a CPU, every call of a compiled training step gets fresh host buffers for its outputs (the new
parameters and optimizer state) and its temporaries, and frees the previous ones. glibc's `malloc`
serves every block over 32 MB (and, by default, many smaller ones) with a fresh `mmap` and returns it
to the kernel with `munmap` when freed, so each step touches hundreds of megabytes of brand-new pages:
the kernel zeroes and maps every 4 kB page on first touch (transparent huge pages are typically
`madvise`-only, and XLA does not ask for them). For PyTorch word_language_model's default model
(33,278-word vocabulary; `make_train_step`, one step per call) that is about 40,000-50,000 page faults
and 100 ms of system time per step on a 2-core x86 CPU; with 10 steps per call (`make_train_steps`, as
`purelm train` runs), 17,000 per step.

`keep_freed_memory()` tells glibc to serve every block from its heap (`M_MMAP_MAX = 0`) and never to give
freed heap memory back to the kernel (`M_TRIM_THRESHOLD = -1`): the next step reuses the pages the last
one freed, already mapped. On that model (configuration (w) of `benchmarks/train_throughput.py`, 2-core
x86 CPU; `python benchmarks/train_throughput.py --config w --steps 10 --repeats 3`, with and without
`--keep-freed-memory`): one step per call 1,536 -> 1,763 tokens/s (page faults per step 51,142 ->
13,636), ten steps per call 17,000 -> 3,900 page faults per step. PyTorch's CPU training gains as much
or more (the same model with torch.nn.LSTM: 969 -> 1,462 tokens/s, 125,000 -> 0 page faults per step):
it is a property of the process's allocator, not of either framework (docs/purelm-performance.md).

The cost: the process's resident memory never shrinks below its peak (it is reused, not returned), and
the setting is process-wide and cannot be undone to glibc's adaptive default. So `purelm train` turns
it on (a training process reaches its peak every step anyway), and the library leaves it to the caller.

Usage:

    >>> import purelm
    >>> purelm.keep_freed_memory()      # once, before training; False where it does not apply
    True
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["ENV_VAR", "keep_freed_memory"]

# `purelm train` calls keep_freed_memory() unless this says off (see `purelm._runtime._compile_cache.is_off`).
ENV_VAR = "PURELM_KEEP_FREED_MEMORY"

# glibc's <malloc.h> parameter numbers (stable ABI since glibc 2.0).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def _glibc():
    """The process's C library if it is glibc, else None (musl, macOS, Windows have other allocators)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    # gnu_get_libc_version exists only in glibc; musl has a mallopt that does nothing.
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def keep_freed_memory() -> bool:
    """Make glibc's `malloc` reuse freed memory instead of unmapping it (see the module docstring).

    Returns True when the setting was applied, False where it does not apply (not glibc) or glibc
    refused it. Calling it again is harmless.

    Example:
        >>> purelm.keep_freed_memory()
        True
        >>> step = purelm.make_train_step(optax.adam(1e-3))   # every call now reuses the same pages
    """
    libc = _glibc()
    if libc is None:
        return False
    # mallopt returns 1 on success. M_TRIM_THRESHOLD = -1 disables trimming ("man mallopt").
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, -1))
