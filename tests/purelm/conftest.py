"""Fixtures shared by purelm's tests."""

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache

# JAX's persistent-cache settings that purelm._runtime._compile_cache.enable changes.
CACHE_OPTIONS = (
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
    "jax_compilation_cache_max_size",
)


@pytest.fixture
def restore_jax_cache_config():
    """Leave JAX's cache settings as they were, so that no other test writes into a temporary cache."""
    saved = {name: getattr(jax.config, name) for name in CACHE_OPTIONS}
    yield
    for name, value in saved.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


@pytest.fixture(autouse=True)
def _worker_keeps_glibc_defaults(monkeypatch):
    # `purelm train` calls keep_freed_memory(), which changes malloc for the whole process: in-process
    # CLI tests must not change it for every later test of their pytest worker (test_host_memory.py
    # tests the setting itself, in subprocesses, and turns this back on where it checks the call).
    monkeypatch.setenv("PURELM_KEEP_FREED_MEMORY", "0")
