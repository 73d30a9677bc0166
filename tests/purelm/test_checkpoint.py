"""The checkpoint format: exact round trips, atomic writes, and refusing bad or mismatched files."""

import json
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from purelm._rundir._checkpoint import (
    CHECKPOINT_FILE,
    HPARAMS_FILE,
    LEGACY_CHECKPOINT_FILE,
    CheckpointError,
    load_checkpoint,
    named_leaves,
    read_meta,
    read_tree_arrays,
    save_checkpoint,
)
from purelm._runtime import _safetensors


def _trees(width=5, seed=0):
    return _build(width, jnp.asarray(seed))


@eqx.filter_jit  # one compilation (per width) instead of one per operation
def _build(width, seed):
    model = eqx.nn.MLP(3, 2, width, 2, key=jax.random.key(seed))
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    grads = jax.tree.map(jnp.ones_like, eqx.filter(model, eqx.is_array))
    updates, opt_state = optimizer.update(grads, opt_state)  # non-trivial moments and count
    model = eqx.apply_updates(model, updates)
    states = (jnp.arange(6.0).reshape(2, 3), -jnp.arange(6.0).reshape(2, 3))
    return {"model": model, "opt_state": opt_state, "states": states, "key": jax.random.key(seed + 7)}


def _templates(width=5):
    return eqx.filter_eval_shape(_build, width, jnp.asarray(99))


def _arrays(tree):
    raw = [
        jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array))
    ]
    return [np.asarray(x) for x in raw]


def _same(a, b):
    leaves_a, leaves_b = _arrays(a), _arrays(b)
    return len(leaves_a) == len(leaves_b) and all(
        x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b, strict=True)
    )


def test_round_trip_is_exact_and_keeps_metadata(tmp_path):
    trees = _trees()
    meta = {"step": 12, "model": {"hidden_dim": 5}, "position": {"window": 3}}
    save_checkpoint(tmp_path, trees, meta)
    loaded, loaded_meta = load_checkpoint(tmp_path, _templates())
    assert _same(loaded, trees)
    assert loaded_meta == meta == read_meta(tmp_path)
    assert json.loads((tmp_path / HPARAMS_FILE).read_text()) == meta
    # Typed PRNG keys come back as keys that draw the same numbers.
    assert jax.random.normal(loaded["key"]) == jax.random.normal(trees["key"])
    # Loading a subset (e.g. only the model for sampling) ignores the rest.
    only_model, _ = load_checkpoint(tmp_path, {"model": _templates()["model"]})
    assert _same(only_model["model"], trees["model"])


def test_other_tools_read_named_tensors_without_pickle(tmp_path):
    safetensors = pytest.importorskip("safetensors.numpy")
    trees = _trees()
    save_checkpoint(tmp_path, trees, {"step": 1})
    tensors = safetensors.load_file(str(tmp_path / CHECKPOINT_FILE))  # the reference reader
    names = [name for name, _ in named_leaves(trees)]
    assert sorted(tensors) == sorted(names) and "model.layers[0].weight" in names
    for name, leaf in named_leaves(trees):
        raw = jax.random.key_data(leaf) if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf
        np.testing.assert_array_equal(tensors[name], np.asarray(raw), err_msg=name)
    # bfloat16, which numpy lacks, reads back through torch.
    torch_reader = pytest.importorskip("safetensors.torch")
    import ml_dtypes

    save_checkpoint(tmp_path, {"w": np.arange(6, dtype=ml_dtypes.bfloat16).reshape(2, 3)}, {})
    assert torch_reader.load_file(str(tmp_path / CHECKPOINT_FILE))["w"].float().tolist() == [[0, 1, 2], [3, 4, 5]]


def _save_legacy(directory, trees, meta):
    """A checkpoint of format version 1, as purelm 0.1.0 wrote it: `np.savez` of members a0, a1, ... with the
    leaf names, shapes, dtypes and PRNG key implementations in a JSON member `header`."""
    arrays, leaves = {}, []
    for i, (name, leaf) in enumerate(named_leaves(trees)):
        key = str(jax.random.key_impl(leaf)) if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key) else None
        array = np.asarray(jax.random.key_data(leaf) if key else leaf)
        arrays[f"a{i}"] = array
        leaves.append({"name": name, "shape": list(array.shape), "dtype": str(array.dtype), "key": key})
    header = {"format": "purelm-checkpoint", "version": 1, "leaves": leaves, "meta": meta}
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(directory / LEGACY_CHECKPOINT_FILE, "wb") as f:
        np.savez(f, **arrays)


def test_checkpoints_of_the_previous_format_load_and_are_replaced_on_the_next_save(tmp_path):
    trees = _trees()
    _save_legacy(tmp_path, trees, {"step": 3})
    loaded, meta = load_checkpoint(tmp_path, _templates())
    assert meta == {"step": 3} == read_meta(tmp_path) and _same(loaded, trees)
    assert jax.random.normal(loaded["key"]) == jax.random.normal(trees["key"])
    model_arrays = read_tree_arrays(tmp_path, "model")
    assert all(np.array_equal(a, b) for a, b in zip(model_arrays, _arrays(trees["model"]), strict=True))
    save_checkpoint(tmp_path, loaded, {"step": 4})
    assert sorted(os.listdir(tmp_path)) == [CHECKPOINT_FILE, HPARAMS_FILE]
    assert _same(load_checkpoint(tmp_path, _templates())[0], trees)


def test_mismatched_shapes_name_the_leaf(tmp_path):
    save_checkpoint(tmp_path, _trees(width=5), {})
    expected = r"leaf model\.layers\[0\]\.weight is float32\[5, 3\] in .*expected float32\[6, 3\]"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(tmp_path, _templates(width=6))


def test_missing_and_unexpected_leaves_and_trees(tmp_path):
    trees = _trees()
    save_checkpoint(tmp_path, {"model": trees["model"]}, {})
    with pytest.raises(CheckpointError, match="holds no opt_state"):
        load_checkpoint(tmp_path, {"opt_state": _templates()["opt_state"]})
    deeper = eqx.filter_eval_shape(eqx.nn.MLP, 3, 2, 5, 3, key=jax.random.key(0))
    with pytest.raises(CheckpointError, match=r"leaf model\.layers\[2\]\.weight is float32\[2, 5\]"):
        load_checkpoint(tmp_path, {"model": deeper})
    save_checkpoint(tmp_path, {"params": {"a": np.ones(2), "b": np.ones(3)}}, {})
    with pytest.raises(CheckpointError, match=r"has no leaf params\['c'\]"):
        load_checkpoint(tmp_path, {"params": {"a": np.ones(2), "b": np.ones(3), "c": np.ones(1)}})
    with pytest.raises(CheckpointError, match=r"unexpected leaf params\['b'\]"):
        load_checkpoint(tmp_path, {"params": {"a": np.ones(2)}})


def test_corrupt_truncated_missing_and_foreign_files_are_refused(tmp_path):
    save_checkpoint(tmp_path, _trees(), {"step": 1})
    path = tmp_path / CHECKPOINT_FILE
    good = path.read_bytes()

    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="is corrupt or truncated"):
        load_checkpoint(tmp_path, _templates())

    # Flip bytes inside the stored arrays (the last ones: the header comes first): each tensor's CRC catches it.
    damaged = bytearray(good)
    for i in range(len(good) - 64, len(good)):
        damaged[i] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match=r"is corrupt: leaf .* fails its checksum"):
        load_checkpoint(tmp_path, _templates())

    with open(path, "wb") as f:  # a zip, where the header's length would be
        np.savez(f, weights=np.zeros(3))
    with pytest.raises(CheckpointError, match="is corrupt or truncated"):
        read_meta(tmp_path)
    with open(path, "wb") as f:  # a safetensors file of another program
        _safetensors.write(f, [("weights", np.zeros(3))], {})
    with pytest.raises(CheckpointError, match="is not a purelm checkpoint"):
        read_meta(tmp_path)

    path.unlink()
    with pytest.raises(CheckpointError, match=r"holds no checkpoint \(checkpoint.safetensors is missing\)"):
        read_meta(tmp_path)
    with pytest.raises(CheckpointError, match="no such checkpoint directory"):
        read_meta(tmp_path / "nope")


def test_a_write_killed_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    first = _trees(seed=0)
    save_checkpoint(tmp_path, first, {"step": 1})

    def dies_halfway(file, tensors, metadata):
        file.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{half a header")
        raise KeyboardInterrupt

    monkeypatch.setattr(_safetensors, "write", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, _trees(seed=1), {"step": 2})
    loaded, meta = load_checkpoint(tmp_path, _templates())
    assert meta == {"step": 1} and _same(loaded, first)
    assert sorted(os.listdir(tmp_path)) == [CHECKPOINT_FILE, HPARAMS_FILE]  # no temp files left behind


def test_atomic_writes_get_the_mode_of_a_new_file(tmp_path):
    from purelm._runtime._files import atomic_write_bytes

    previous = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"data")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.bin").read_bytes() == b"data"
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o640
