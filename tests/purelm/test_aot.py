"""Inference programs compiled ahead of time (`purelm._inference._aot`): the tokens and losses of `purelm.sample` and
`purelm.evaluate` bit for bit, from a cold cache, a warm one (no model built, nothing traced), a damaged one
and none; and a warm `purelm sample` that never imports equinox or optax."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purelm
import purelm._cli._main as cli
from purelm._data._tokenizer import ByteTokenizer
from purelm._inference import _aot
from purelm._rundir._checkpoint import save_checkpoint
from purelm._rundir._format import load_model
from purelm._runtime import _compile_cache
from purelm.training import RUN_FORMAT, ModelConfig

PROMPT = np.frombuffer(b"def f(x):", np.uint8).astype(np.int32)
LENGTH, CHUNK = 20, 8  # three chunks, the last one padded
TEXT = np.frombuffer(b"import os\nprint(os.getcwd())\n" * 3, np.uint8).astype(np.int32)


@pytest.fixture
def cache(tmp_path, restore_jax_cache_config):
    """A fresh cache directory, turned on; JAX's cache settings are restored afterwards."""
    directory = _compile_cache.enable(tmp_path / "cache")
    yield directory
    _compile_cache.enable("off")


def save_run(directory, model):
    meta = {
        "kind": "model",
        "run_format": RUN_FORMAT,
        "model": ModelConfig.of(model).to_json(),
        "tokenizer": ByteTokenizer().to_json(),
        "step": 0,
    }
    save_checkpoint(directory, {"model": model}, meta)
    return directory


@pytest.fixture(scope="module")
def model():
    return purelm.LSTMLM(256, 8, 16, key=jax.random.key(1))


@pytest.fixture
def run_dir(tmp_path, model):
    return save_run(tmp_path / "run", model)


def draw(run_dir, seed=3, top_k=5, temperature=0.7):
    run = _aot.Checkpoint(run_dir)
    tokens = list(_aot.sample_chunks(run, PROMPT, LENGTH, seed=seed, temperature=temperature, top_k=top_k, chunk=CHUNK))
    assert [len(t) for t in tokens] == [8, 8, 4]
    return np.concatenate(tokens), run


def expected_tokens(model, seed=3, top_k=5, temperature=0.7):
    return np.asarray(
        purelm.sample(model, jax.random.key(seed), jnp.asarray(PROMPT), LENGTH, temperature=temperature, top_k=top_k)
    )


def programs(cache):
    return sorted((cache / "programs").glob("*.xla"))


def test_cold_and_warm_runs_draw_the_tokens_of_sample(cache, run_dir, model):
    cold, run = draw(run_dir)
    assert run._model is not None  # compiled from the model
    assert len(programs(cache)) == 2
    warm, run = draw(run_dir)
    assert run._model is None  # loaded: no model built, nothing traced
    np.testing.assert_array_equal(cold, expected_tokens(model))
    np.testing.assert_array_equal(warm, cold)
    # Another seed and temperature reuse both programs; no top-k is another chunk program.
    np.testing.assert_array_equal(
        draw(run_dir, seed=2**31 + 5, temperature=1.3)[0], expected_tokens(model, seed=2**31 + 5, temperature=1.3)
    )
    np.testing.assert_array_equal(draw(run_dir, top_k=None)[0], expected_tokens(model, top_k=None))
    assert len(programs(cache)) == 3


def test_score_gives_the_numbers_of_evaluate(cache, run_dir, model):
    expected = purelm.evaluate(model, TEXT, batch_size=3, seq_len=7)
    cold = _aot.score(_aot.Checkpoint(run_dir), TEXT, batch_size=3, seq_len=7)
    run = _aot.Checkpoint(run_dir)
    warm = _aot.score(run, TEXT, batch_size=3, seq_len=7)
    assert run._model is None
    assert cold == warm == expected


def test_a_damaged_program_is_compiled_again(cache, run_dir, model):
    expected = expected_tokens(model)
    draw(run_dir)
    truncated, flipped = programs(cache)
    truncated.write_bytes(truncated.read_bytes()[:-100])
    blob = bytearray(flipped.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    flipped.write_bytes(bytes(blob))
    tokens, run = draw(run_dir)
    assert run._model is not None  # neither file was used
    np.testing.assert_array_equal(tokens, expected)
    tokens, run = draw(run_dir)  # and both were replaced by good ones
    assert run._model is None
    np.testing.assert_array_equal(tokens, expected)


def test_other_models_get_their_own_programs(cache, tmp_path):
    # bfloat16 too: its weakly typed temperature keeps the logits in bfloat16, as in `sample`.
    model = purelm.LSTMLM(
        256,
        16,
        16,
        num_layers=2,
        cell="gru",
        tie_embeddings=True,
        output_bias=True,
        key=jax.random.key(2),
        dtype=jnp.bfloat16,
    )
    other = save_run(tmp_path / "gru", model)
    loaded, _ = load_model(other)  # np.savez stores bfloat16 as raw 2-byte records; they are read back
    for ours, saved in zip(jax.tree.leaves(loaded), jax.tree.leaves(model), strict=True):
        assert ours.dtype == saved.dtype and bool(jnp.all(ours == saved))
    for _ in range(2):  # cold, then warm
        np.testing.assert_array_equal(draw(other)[0], expected_tokens(model))
        assert _aot.score(_aot.Checkpoint(other), TEXT, batch_size=2, seq_len=5) == purelm.evaluate(
            model, TEXT, batch_size=2, seq_len=5
        )


def test_key_data_is_jax_random_key():
    for seed in (0, 1, 12345, 2**31 - 1, 2**31, 2**32 - 1, 2**32 + 7, 2**40):
        np.testing.assert_array_equal(_aot.key_data(seed), jax.random.key_data(jax.random.key(seed)))


def test_least_recently_used_programs_are_evicted(tmp_path):
    for i, size in enumerate((300, 200, 100)):
        path = tmp_path / f"{i}.xla"
        path.write_bytes(b"x" * size)
        os.utime(path, (i, i))
    _aot._evict(tmp_path, 350)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.xla", "2.xla"]


@pytest.mark.slow
def test_the_command_off_cold_concurrent_and_warm(tmp_path, run_dir, monkeypatch, capsys, restore_jax_cache_config):
    """`purelm sample` and `eval` print the same with the cache off (nothing stored) and cold; two processes
    filling one cache at once both succeed; a warm `purelm sample` then prints the same again, without
    importing equinox, optax or the training loop."""
    text = tmp_path / "text.txt"
    text.write_bytes(bytes(TEXT.astype(np.uint8)))
    outputs = []
    try:
        for setting in ("off", tmp_path / "cache"):
            monkeypatch.setenv(_compile_cache.ENV_VAR, str(setting))
            assert cli.main(["sample", str(run_dir), "--length", "12", "--seed", "4"]) == 0
            sampled = capsys.readouterr().out
            assert cli.main(["eval", str(run_dir), str(text)]) == 0
            outputs.append((sampled, capsys.readouterr().out))
            assert len(list(tmp_path.rglob("*.xla"))) == (0 if setting == "off" else 4)
    finally:
        _compile_cache.enable("off")
    assert outputs[0] == outputs[1]
    sampled = outputs[0][0]
    assert sampled.startswith("def ") and "bits per byte" in outputs[0][1]
    probe = (
        "import sys\nfrom purelm._cli._main import main\nassert main(sys.argv[1:]) == 0\n"
        "print(sorted(m for m in ('equinox', 'optax', 'jaxtyping', 'matplotlib', 'purelm.training._trainer') "
        "if m in sys.modules))"
    )
    command = [sys.executable, "-c", probe, "sample", str(run_dir), "--length", "12", "--seed", "4"]
    env = {**os.environ, _compile_cache.ENV_VAR: str(tmp_path / "shared")}
    racing = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    for process in racing:
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0 and out.startswith(sampled)
    assert len(list((tmp_path / "shared").rglob("*.xla"))) == 2
    warm = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    assert warm.stdout == sampled + "[]\n"


def test_an_executable_loaded_from_jax_cache_is_not_stored(cache):
    # Such an executable serializes into a file that does not run (see _aot._compile_fresh).
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

    def f(x):
        return jnp.tanh(x) @ x + 0.125

    x = np.ones((4, 4), np.float32)
    jax.jit(f).lower(x).compile()  # written to JAX's cache
    jax.clear_caches()  # so that the next compilation reads it back from disk
    _compiled, fresh = _aot._compile_fresh(jax.jit(f).lower(x))
    assert not fresh
    _, fresh = _aot._compile_fresh(jax.jit(lambda x: f(x) * 2).lower(x))
    assert fresh
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0  # restored
