"""Data parallelism: the batch split over a device mesh gives the same training as one device."""

import json
import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from purelm import LSTMLM, sample
from purelm._cli._main import main
from purelm._inference import _streaming
from purelm._inference._streaming import sample_stream
from purelm._rundir._checkpoint import CHECKPOINT_FILE, _read_all
from purelm._runtime._errors import OutOfMemory, check_fits, describe_resource_error, parameter_size
from purelm._runtime._parallel import DeviceError, choose_devices, make_mesh, replicate, shard_batch

SCRIPT = textwrap.dedent(
    """
    import sys
    import jax, numpy as np
    from purelm._cli._main import main
    from purelm._runtime._parallel import choose_devices, make_mesh, replicate, shard_batch

    data, tmp = sys.argv[1], sys.argv[2]
    assert jax.device_count() == 4, jax.devices()
    assert [choose_devices(None, b) for b in (8, 6, 5)] == [4, 3, 1]
    mesh = make_mesh(4)
    batch = shard_batch(np.arange(32).reshape(8, 4), mesh)
    rows = sorted((s.index[0].start, s.data.shape) for s in batch.addressable_shards)
    assert rows == [(0, (2, 4)), (2, (2, 4)), (4, (2, 4)), (6, (2, 4))], rows
    params = replicate({"w": np.ones(3)}, mesh)
    assert len(params["w"].addressable_shards) == 4 and params["w"].sharding.is_fully_replicated

    assert main(["train", data, "--out", f"{tmp}/devices4", *sys.argv[3:], "--devices", "4"]) == 0
    """
)


def test_one_device_without_a_mesh():
    assert jax.device_count() == 1
    assert choose_devices(None, 32) == 1 and make_mesh(1) is None
    x = np.arange(6).reshape(2, 3)
    assert np.array_equal(shard_batch(x, None), x)
    tree = {"w": np.ones(2)}
    assert replicate(tree, None) is tree
    with pytest.raises(DeviceError, match=r"run.devices=2 asks for more devices than the 1 available"):
        choose_devices(2, 32)


def test_a_batch_that_does_not_split_is_refused(monkeypatch):
    monkeypatch.setattr(jax, "device_count", lambda: 4)
    with pytest.raises(DeviceError, match=r"data.batch_size=6 does not split evenly over run.devices=4"):
        choose_devices(4, 6)
    assert choose_devices(None, 6) == 3


def _results(out):
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return (
        [r["train_loss"] for r in records if "train_loss" in r],
        [r["val_loss"] for r in records if "val_loss" in r],
        {k: v for k, v in _read_all(out).items() if k.startswith("model")},
    )


def test_four_devices_train_like_one(tmp_path):
    data = tmp_path / "corpus"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        (data / f"f{i}.txt").write_bytes(bytes(rng.integers(32, 127, 1500, dtype=np.uint8)))
    # The sizes of test_cli's runs, so the one-device run here can reuse their compilation.
    tiny = [
        "--batch-size",
        "4",
        "--seq-len",
        "16",
        "--embed-dim",
        "8",
        "--hidden-dim",
        "16",
        "--steps",
        "6",
        "--log-every",
        "1",
        "--eval-every",
        "3",
    ]
    env = os.environ | {"XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data), str(tmp_path), *tiny],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on 4 cpu devices" in proc.stdout
    assert main(["train", str(data), "--out", str(tmp_path / "devices1"), *tiny, "--devices", "1"]) == 0
    train4, val4, params4 = _results(tmp_path / "devices4")
    train1, val1, params1 = _results(tmp_path / "devices1")
    assert len(train4) == 6 and len(val4) == 2
    np.testing.assert_allclose(train4, train1, rtol=1e-5)
    np.testing.assert_allclose(val4, val1, rtol=1e-5)
    assert params4.keys() == params1.keys()
    for name in params4:
        np.testing.assert_allclose(params4[name], params1[name], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------- out of memory


def test_a_model_too_large_for_memory_is_named_before_anything_is_allocated():
    shapes = eqx.filter_eval_shape(LSTMLM, 256, 64, 200_000, key=jax.random.key(0))
    with pytest.raises(OutOfMemory) as info:
        check_fits(shapes, optimizer=optax.adam(1e-3))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "the model does not fit in memory: 160,103,416,640 parameters (596 GiB); "
        "training needs at least 2.33 TiB (parameters, gradients and optimizer state)"
    )
    assert isinstance(info.value, DeviceError)  # so the CLI reports it as one line, exit 2


def test_what_counts_toward_the_memory_check():
    model = LSTMLM(256, 8, 16, key=jax.random.key(0))
    count, nbytes = parameter_size(model)
    assert nbytes == 4 * count
    check_fits(model, optimizer=optax.adam(1e-3), available=4 * nbytes + 64)  # params, grads, 2 moments, a count
    with pytest.raises(OutOfMemory, match="training needs at least"):
        check_fits(model, optimizer=optax.adam(1e-3), available=4 * nbytes - 1)
    check_fits(model, optimizer=optax.sgd(1.0), available=2 * nbytes)  # plain SGD keeps no per-parameter state
    with pytest.raises(OutOfMemory, match="it needs at least"):
        check_fits(model, training=False, available=nbytes - 1)


def test_the_cli_refuses_a_model_too_large_in_one_line(tmp_path, capsys):
    data = tmp_path / "data.txt"
    data.write_bytes(bytes(range(32, 127)) * 40)
    code = main(["train", str(data), "--out", str(tmp_path / "run"), "--hidden-dim", "200000"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "160,103,416,640 parameters (596 GiB)" in err, err
    assert not (tmp_path / "run" / CHECKPOINT_FILE).exists()


def test_running_out_of_memory_at_run_time_is_one_line(tmp_path):
    # A real RESOURCE_EXHAUSTED from XLA (no machine has 4 PiB) reaching the console entry point.
    script = (
        "import jax, purelm._cli._entry, purelm._cli._main\n"
        "purelm._cli._main.main = lambda argv: jax.numpy.zeros(2**50, jax.numpy.float32).block_until_ready()\n"
        "purelm._cli._entry.console_main()\n"
    )
    env = os.environ | {"JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", script, "train"], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert proc.returncode == 1
    assert proc.stderr == "purelm train: error: out of memory: could not allocate 4,096 TiB\n", proc.stderr
    assert describe_resource_error(ValueError("shape mismatch")) is None


# --------------------------------------------------------------------------------------- streaming


def test_chunked_sampling_draws_what_one_call_draws_from_one_program(monkeypatch):
    model = LSTMLM(256, 8, 16, key=jax.random.key(1))
    prompt = jnp.array([1, 2, 3])
    traces = []
    real_draw = _streaming.draw  # the sampling loop, called once per trace of the chunk program
    monkeypatch.setattr(_streaming, "draw", lambda *a: traces.append(1) or real_draw(*a))
    for length, temperature, top_k in [(200, 0.8, 40), (37, 0.8, 40), (5, 1.3, None)]:
        expected = np.asarray(sample(model, jax.random.key(3), prompt, length, temperature=temperature, top_k=top_k))
        chunks = list(
            sample_stream(model, jax.random.key(3), prompt, length, temperature=temperature, top_k=top_k, chunk=64)
        )
        assert [c.size for c in chunks] == [min(64, length - s) for s in range(0, length, 64)]
        np.testing.assert_array_equal(np.concatenate(chunks), expected)
    assert len(traces) == 2  # one program per (chunk size, top_k), whatever the length
