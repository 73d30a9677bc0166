"""The persistent compilation cache: where it lives, how it is turned off, and that a second compilation of
the same program is read back from disk."""

import jax
import jax.numpy as jnp
from jax._src import monitoring

from purelm._runtime import _compile_cache
from purelm._runtime._compile_cache import cache_dir, enable


def test_cache_dir_default_override_and_off(monkeypatch, tmp_path):
    monkeypatch.delenv(_compile_cache.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "purelm" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "purelm" / "jax"
    monkeypatch.setenv(_compile_cache.ENV_VAR, str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    assert cache_dir(tmp_path / "explicit") == tmp_path / "explicit"  # an argument wins over the variable
    for off in ("off", "OFF", " off "):
        monkeypatch.setenv(_compile_cache.ENV_VAR, off)
        assert cache_dir() is None
        assert enable() is None


def test_unusable_directory_turns_the_cache_off(tmp_path, restore_jax_cache_config):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert enable(blocker / "cache") is None


def test_second_compilation_is_read_from_disk(tmp_path, monkeypatch, restore_jax_cache_config):
    # Every program is stored, however fast this machine compiles it.
    monkeypatch.setattr(_compile_cache, "MIN_COMPILE_SECONDS", 0.0)
    directory = enable(tmp_path / "cache")
    assert directory == tmp_path / "cache"
    assert jax.config.jax_persistent_cache_min_compile_time_secs == _compile_cache.MIN_COMPILE_SECONDS
    hits = []

    def listener(event, **kwargs):
        if event == "/jax/compilation_cache/cache_hits":
            hits.append(event)

    def program(x):
        return jax.lax.fori_loop(0, 50, lambda i, y: jnp.tanh(y @ x + i), x).sum()

    x = jnp.ones((16, 16))
    monitoring.register_event_listener(listener)
    try:
        first = jax.jit(program)(x)
        assert any(directory.iterdir()), "nothing was written to the cache"
        assert not hits
        jax.clear_caches()  # forget the in-memory executable: the next call must come from disk
        second = jax.jit(program)(x)
    finally:
        monitoring.unregister_event_listener(listener)
    assert hits
    assert float(first) == float(second)
