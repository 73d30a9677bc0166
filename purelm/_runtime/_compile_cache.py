"""JAX's persistent compilation cache for the `purelm` command: the second run skips XLA compilation.

Every `purelm` command compiles the same few programs (the training step, the sampler, the
evaluation loop) for the same shapes as last time. With the cache on, XLA's output is stored on disk,
keyed by the program, its shapes, the backend and the JAX/XLA versions and flags, and the next process
loads it instead of compiling (docs/purelm-performance.md has the seconds saved).

Where: `$PURELM_CACHE_DIR` if set, else `<user cache dir>/purelm/jax`, the user cache dir being
`$XDG_CACHE_HOME` or `~/.cache`. `PURELM_CACHE_DIR=off` (or `purelm --no-compile-cache`) turns it off.
`purelm sample` and `eval` keep their own compiled programs in its `programs/` subdirectory
(`purelm._inference._aot`), which skip tracing and lowering too.

Concurrent processes: JAX writes an entry with a plain file write and, without a size limit, reads it
without a lock, so a process can read another's half-written entry (JAX then warns and recompiles).
With a size limit JAX takes a file lock (the `filelock` package) around every read and write, and
evicts the least recently used entries beyond the limit; this module sets one (`MAX_BYTES`) whenever
`filelock` is installed. Without it, the cache still works and a torn read costs one recompilation;
its warning is silenced because nothing is wrong with the result.

The cache is trusted code: JAX runs what it finds there. It lives in the user's own cache directory;
never point `PURELM_CACHE_DIR` at a directory that others can write.

Usage:

    >>> from purelm import _compile_cache
    >>> _compile_cache.enable()          # before the first compilation; returns the directory or None
    PosixPath('/home/me/.cache/purelm/jax')
"""

import importlib.util
import os
import warnings
from pathlib import Path

__all__ = ["ENV_VAR", "MAX_BYTES", "MIN_COMPILE_SECONDS", "cache_dir", "enable", "enabled_dir", "is_off"]

ENV_VAR = "PURELM_CACHE_DIR"
# Evict least recently used entries beyond this (a compiled training step is 0.1-2 MB on CPU).
MAX_BYTES = 2 * 2**30
# Programs that compile faster than this are not stored: reading an entry back (hashing the program,
# reading and loading the file) costs a few milliseconds itself. JAX's default of 1 s would skip almost
# everything `purelm` compiles on CPU, where the sampler and evaluation programs take 0.1-0.5 s each.
MIN_COMPILE_SECONDS = 0.02

# What the last `enable()` turned on (None: off or never enabled); `purelm._inference._aot` keeps its programs below it.
_enabled: Path | None = None


def cache_dir(path: str | os.PathLike | None = None) -> Path | None:
    """The directory `enable(path)` would use, or None when the cache is turned off.

    Example:
        >>> cache_dir("off") is None
        True
    """
    if path is None:
        path = os.environ.get(ENV_VAR)
    if path is not None:
        text = os.fspath(path).strip()
        return None if is_off(text) else Path(text).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "purelm" / "jax"


def is_off(text: str) -> bool:
    """Whether a purelm environment setting says "off": empty, `off`, `0`, `none` or `false` (any case).

    Example:
        >>> is_off("Off"), is_off("1")
        (True, False)
    """
    return text.strip().lower() in {"", "off", "0", "none", "false"}


def enable(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache in `cache_dir(path)`; returns the directory, or None
    when turned off or when the directory cannot be created (the command then simply compiles).

    Call it once, before the first compilation (a cache already initialised by an earlier compilation
    is reset so that it takes the new directory).

    Example:
        >>> enable("/tmp/purelm-cache")
        PosixPath('/tmp/purelm-cache')
    """
    global _enabled
    _enabled = None
    directory = cache_dir(path)
    if directory is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(directory, os.R_OK | os.W_OK | os.X_OK):
        return None

    import jax
    from jax.experimental.compilation_cache import compilation_cache

    compilation_cache.reset_cache()
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    # -1: no size threshold (0 would let JAX raise it to a filesystem-dependent minimum).
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    locked = importlib.util.find_spec("filelock") is not None
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES if locked else -1)
    # A torn or stale entry is reported as a warning and recompiled: the result is right either way.
    warnings.filterwarnings("ignore", message="Error reading persistent compilation cache entry")
    warnings.filterwarnings("ignore", message="Error writing persistent compilation cache entry")
    _enabled = directory
    return directory


def enabled_dir() -> Path | None:
    """The directory the last `enable()` call turned on, or None (turned off, unusable, or never enabled).

    Example:
        >>> enable("off"); enabled_dir() is None
        True
    """
    return _enabled
