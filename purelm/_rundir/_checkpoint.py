"""Checkpoints without pickle: the array leaves of named pytrees plus JSON metadata, in one atomic file.

`DIR/checkpoint.npz` is a zip of `.npy` arrays (read back with `allow_pickle=False`) holding every array
leaf and a JSON header (format version, leaf names, shapes and dtypes, and whatever metadata the caller
adds: hyperparameters, step, data position). The zip's CRCs catch corruption and truncation. The file is
replaced atomically, so a run killed mid-write leaves the previous checkpoint intact. `DIR/hparams.json`
is a human-readable copy of the metadata; loading never reads it. This module is the container: what a
run directory's checkpoint holds, and its metadata, is `purelm._rundir._format`'s.

>>> save_checkpoint("run", {"model": model}, {"step": 10})             # doctest: +SKIP
>>> trees, meta = load_checkpoint("run", {"model": template_model})    # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from purelm._runtime._files import atomic_write_bytes, atomic_writer

FORMAT = "purelm-checkpoint"
VERSION = 1
CHECKPOINT_FILE = "checkpoint.npz"
HPARAMS_FILE = "hparams.json"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, truncated, or does not match what it is loaded into."""


def _is_array(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array | np.ndarray | jax.ShapeDtypeStruct | np.generic)


def _is_key(leaf: Any) -> bool:
    return jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def named_leaves(trees: dict[str, Any]) -> list[tuple[str, Any]]:
    """`(name, leaf)` for every array leaf of `trees`, in the order they are stored (`model.embedding`, ...)."""
    named = []
    for top, tree in trees.items():
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            if _is_array(leaf):
                named.append((top + jax.tree_util.keystr(path), leaf))
    return named


def _describe(shape: tuple[int, ...], dtype: str) -> str:
    return f"{dtype}{list(shape)}"


def save_checkpoint(directory: str | os.PathLike[str], trees: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write the array leaves of `trees` (e.g. `{"model": m, "opt_state": s}`) and `meta` to `directory`.

    `meta` must be JSON-serialisable. Typed PRNG keys are stored as their raw key data. Returns the path of
    the checkpoint file.

    >>> save_checkpoint("runs/x", {"model": model, "opt_state": opt_state}, {"step": 100})  # doctest: +SKIP
    PosixPath('runs/x/checkpoint.npz')
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    leaves = []
    for i, (name, leaf) in enumerate(named_leaves(trees)):
        key_impl = None
        if _is_key(leaf):
            key_impl = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        # Multi-host callers gather their arrays first (purelm._runtime._parallel.to_host); here every leaf is local.
        array = np.asarray(jax.device_get(leaf))
        arrays[f"a{i}"] = array
        leaves.append({"name": name, "shape": list(array.shape), "dtype": str(array.dtype), "key": key_impl})
    header = {"format": FORMAT, "version": VERSION, "leaves": leaves, "meta": meta}
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    path = directory / CHECKPOINT_FILE
    with atomic_writer(path) as f:
        np.savez(f, **arrays)
    atomic_write_bytes(directory / HPARAMS_FILE, (json.dumps(_readable(meta), indent=2) + "\n").encode("utf-8"))
    return path


def _open(directory: Path) -> tuple[Any, dict[str, Any]]:
    path = directory / CHECKPOINT_FILE
    if not directory.is_dir():
        raise CheckpointError(f"no such checkpoint directory: {directory}")
    if not path.is_file():
        raise CheckpointError(f"{directory} holds no checkpoint ({CHECKPOINT_FILE} is missing)")
    try:
        archive = np.load(path, allow_pickle=False)
        header = json.loads(archive["header"].tobytes().decode("utf-8"))
    # A damaged zip surfaces as any of BadZipFile, zlib.error, EOFError, ValueError, KeyError, UnicodeError...
    except Exception as err:
        raise CheckpointError(f"{path} is corrupt or truncated ({type(err).__name__}: {err})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a purelm checkpoint")
    if header.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {header.get('version')}, this purelm reads version {VERSION}"
        )
    return archive, header


def read_meta(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata stored in `directory`'s checkpoint (hyperparameters, step, ...), without loading arrays."""
    return _open(Path(directory))[1]["meta"]


def _belongs(name: str, top: str) -> bool:
    return name == top or (name.startswith(top) and name[len(top)] in ".[")


def _expected(leaf: Any) -> str:
    # Typed PRNG keys are stored as their key data; compare against that.
    spec = jax.eval_shape(jax.random.key_data, leaf) if _is_key(leaf) else leaf
    return _describe(tuple(spec.shape), str(np.dtype(spec.dtype)))


def _stored_dtype(array: np.ndarray, dtype: str) -> np.ndarray:
    """`array` as the dtype its header names: `np.savez` writes bfloat16 (an ml_dtypes type, unknown to numpy
    by name) as raw 2-byte records, which are viewed back here."""
    if array.dtype.kind == "V" and str(array.dtype) != dtype:
        import ml_dtypes  # a dependency of jax

        stored = getattr(ml_dtypes, dtype, None)
        if stored is not None and np.dtype(stored).itemsize == array.dtype.itemsize:
            return array.view(stored)
    return array


def _read_member(archive: Any, path: Path, member: str, dtype: str) -> np.ndarray:
    try:
        return _stored_dtype(archive[member], dtype)
    except Exception as err:
        raise CheckpointError(f"{path} is corrupt or truncated ({type(err).__name__}: {err})") from None


def _load_leaf(archive: Any, path: Path, member: str, info: dict, name: str, template: Any) -> Any:
    got = _describe(tuple(info["shape"]), info["dtype"])
    want = _expected(template)
    if want != got:
        raise CheckpointError(f"checkpoint does not match: leaf {name} is {got} in {path}, expected {want}")
    array = _read_member(archive, path, member, info["dtype"])
    if _describe(array.shape, str(array.dtype)) != got:
        raise CheckpointError(f"{path} is corrupt: leaf {name} is {_describe(array.shape, str(array.dtype))}")
    # device_put, not jnp.asarray: the latter compiles a program per distinct leaf shape.
    value = jax.device_put(array)
    return jax.random.wrap_key_data(value, impl=info["key"]) if _is_key(template) else value


def load_checkpoint(
    directory: str | os.PathLike[str], templates: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load the trees named in `templates` from `directory`'s checkpoint; returns `(trees, meta)`.

    Each template gives the structure, shapes and dtypes expected (real arrays or `jax.ShapeDtypeStruct`s,
    e.g. from `eqx.filter_eval_shape`). Trees in the file but not in `templates` are ignored. A missing,
    unexpected, or differently shaped/typed leaf raises `CheckpointError` naming the leaf.
    """
    directory = Path(directory)
    archive, header = _open(directory)
    path = directory / CHECKPOINT_FILE
    stored = {leaf["name"]: (f"a{i}", leaf) for i, leaf in enumerate(header["leaves"])}
    trees = {}
    for top, template in templates.items():
        leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(template)
        names = [top + jax.tree_util.keystr(keypath) for keypath, _ in leaves_with_paths]
        if leaves_with_paths and not any(_belongs(name, top) for name in stored):
            raise CheckpointError(f"{path} holds no {top} (it was saved without one)")
        leaves = []
        for name, (_, leaf) in zip(names, leaves_with_paths, strict=True):
            if not _is_array(leaf):
                leaves.append(leaf)
            elif name not in stored:
                raise CheckpointError(f"checkpoint does not match: {path} has no leaf {name}")
            else:
                leaves.append(_load_leaf(archive, path, *stored[name], name, leaf))
        extra = sorted(set(filter(lambda n: _belongs(n, top), stored)) - set(names))
        if extra:
            raise CheckpointError(f"checkpoint does not match: {path} has an unexpected leaf {extra[0]}")
        trees[top] = jax.tree_util.tree_unflatten(treedef, leaves)
    return trees, header["meta"]


def stored_tree(directory: str | os.PathLike[str], top: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The header entries (`name`, `shape`, `dtype`, `key`) of the leaves of tree `top`, in the order they are
    stored (`jax.tree.leaves` order of the saved tree), and the metadata; reads no array.

    >>> leaves, meta = stored_tree("runs/demo", "model")  # doctest: +SKIP
    >>> leaves[0]["name"], leaves[0]["shape"]            # doctest: +SKIP
    ('model.embedding', [256, 32])
    """
    header = _open(Path(directory))[1]
    return [leaf for leaf in header["leaves"] if _belongs(leaf["name"], top)], header["meta"]


def read_tree_arrays(directory: str | os.PathLike[str], top: str) -> list[np.ndarray]:
    """The arrays of tree `top` as numpy arrays, in `stored_tree`'s order: no JAX, no template, no
    compilation (the `purelm sample` and `eval` commands feed them to programs compiled ahead of time).
    A corrupt member raises `CheckpointError`."""
    directory = Path(directory)
    archive, header = _open(directory)
    path = directory / CHECKPOINT_FILE
    return [
        _read_member(archive, path, f"a{i}", leaf["dtype"])
        for i, leaf in enumerate(header["leaves"])
        if _belongs(leaf["name"], top)
    ]


def _read_all(directory: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every stored array by leaf name (for inspection and tests)."""
    archive, header = _open(Path(directory))
    return {leaf["name"]: archive[f"a{i}"] for i, leaf in enumerate(header["leaves"])}


def _readable(meta: dict[str, Any]) -> dict[str, Any]:
    """`meta` for hparams.json: a word vocabulary (tens of thousands of words) is summarised, not listed."""
    tokenizer = meta.get("tokenizer")
    if isinstance(tokenizer, dict) and isinstance(tokenizer.get("words"), list):
        return meta | {"tokenizer": {"kind": tokenizer.get("kind"), "vocab_size": len(tokenizer["words"])}}
    return meta
