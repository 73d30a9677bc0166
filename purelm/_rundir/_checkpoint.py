"""Checkpoints without pickle: the array leaves of named pytrees plus JSON metadata, in one atomic file.

`DIR/checkpoint.safetensors` is a safetensors file (`purelm._runtime._safetensors`): every array leaf as a
tensor named by its place in its tree (`model.embedding`, `model.cells[0].weight_ih`,
`opt_state[1][0].mu.embedding`, ...), so any safetensors reader (`safetensors.torch.load_file`, ...) sees
named tensors. Its `__metadata__` holds the format and version, a CRC-32 of every tensor (corruption is
caught, as truncation is by the sizes in the header), which leaves are typed PRNG keys, and a JSON copy of
whatever metadata the caller adds (hyperparameters, step, data position). The file is replaced
atomically, so a run killed mid-write leaves the previous checkpoint intact. `DIR/hparams.json` is a
human-readable copy of the metadata; loading never reads it. This module is the container: what a run
directory's checkpoint holds, and its metadata, is `purelm._rundir._format`'s.

Checkpoints of format version 1, `DIR/checkpoint.npz` (a zip of `.npy` members `a0`, `a1`, ... with the
leaf names in a JSON header), are still read; the next save into such a directory writes the new file and
removes the old one.

>>> save_checkpoint("run", {"model": model}, {"step": 10})             # doctest: +SKIP
>>> trees, meta = load_checkpoint("run", {"model": template_model})    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from pathlib import Path
from typing import Any

import jax
import numpy as np

from purelm._runtime import _safetensors
from purelm._runtime._files import atomic_write_bytes, atomic_writer

FORMAT = "purelm-checkpoint"
VERSION = 2
CHECKPOINT_FILE = "checkpoint.safetensors"
# Format version 1, read and never written.
LEGACY_CHECKPOINT_FILE = "checkpoint.npz"
HPARAMS_FILE = "hparams.json"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, truncated, or does not match what it is loaded into."""


def _crc32(array: np.ndarray) -> int:
    # The raw buffer, whatever the dtype: a memoryview (`array.data`) refuses bfloat16 and float16's format.
    return zlib.crc32(array)  # type: ignore[arg-type]


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
    PosixPath('runs/x/checkpoint.safetensors')
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors, keys = [], {}
    for name, leaf in named_leaves(trees):
        if _is_key(leaf):
            keys[name] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        # Multi-host callers gather their arrays first (purelm._runtime._parallel.to_host); here every leaf is local.
        tensors.append((name, np.asarray(jax.device_get(leaf))))
    purelm = {"keys": keys, "crc32": {name: _crc32(array) for name, array in tensors}, "meta": meta}
    metadata = {"format": FORMAT, "version": str(VERSION), "purelm": json.dumps(purelm)}
    path = directory / CHECKPOINT_FILE
    with atomic_writer(path) as f:
        _safetensors.write(f, tensors, metadata)
    atomic_write_bytes(directory / HPARAMS_FILE, (json.dumps(_readable(meta), indent=2) + "\n").encode("utf-8"))
    # A run of the previous format goes on in the new one: its old file would only be stale.
    with contextlib.suppress(FileNotFoundError):
        (directory / LEGACY_CHECKPOINT_FILE).unlink()
    return path


def checkpoint_file(directory: str | os.PathLike[str]) -> Path | None:
    """The checkpoint file in `directory` (of either format), or None."""
    for name in (CHECKPOINT_FILE, LEGACY_CHECKPOINT_FILE):
        if (Path(directory) / name).is_file():
            return Path(directory) / name
    return None


class _Stored:
    """A checkpoint file opened for reading: its leaves' header entries (`name`, `shape`, `dtype`, `key`) in
    the order they are stored, its metadata, and `read(names)` for the arrays (checked)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.leaves, self.meta = self._open()
        # A damaged file surfaces as any of BadZipFile, zlib.error, EOFError, ValueError, KeyError, UnicodeError...
        except CheckpointError:
            raise
        except Exception as err:
            raise self.corrupt(err) from None

    def corrupt(self, err: BaseException) -> CheckpointError:
        return CheckpointError(f"{self.path} is corrupt or truncated ({type(err).__name__}: {err})")

    def _check_format(self, header: Any) -> dict:
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CheckpointError(f"{self.path} is not a purelm checkpoint")
        return header

    def _open(self) -> tuple[list[dict], dict]:
        """The leaves and the metadata of a safetensors checkpoint."""
        self.header = _safetensors.Header.read(self.path)
        self._check_format(self.header.metadata)
        if self.header.metadata.get("version") != str(VERSION):
            raise CheckpointError(
                f"{self.path} has checkpoint format version {self.header.metadata.get('version')}, "
                f"this purelm reads versions 1 and {VERSION}"
            )
        self.purelm = json.loads(self.header.metadata["purelm"])
        keys = self.purelm["keys"]
        leaves = [
            {"name": name, "shape": list(t.shape), "dtype": t.dtype, "key": keys.get(name)}
            for name, t in self.header.tensors.items()
        ]
        return leaves, self.purelm["meta"]

    def read(self, names: list[str]) -> list[np.ndarray]:
        """The arrays of the leaves `names`; a corrupt one raises `CheckpointError`."""
        arrays = []
        try:
            with self.path.open("rb") as f:
                for name in names:
                    array = self.header.read_tensor(f, name)
                    if _crc32(array) != self.purelm["crc32"][name]:
                        raise CheckpointError(f"{self.path} is corrupt: leaf {name} fails its checksum")
                    arrays.append(array)
        except CheckpointError:
            raise
        except Exception as err:
            raise self.corrupt(err) from None
        return arrays


class _LegacyStored(_Stored):
    """A checkpoint of format version 1: `checkpoint.npz`, members `a0`, `a1`, ... and a JSON `header`."""

    def _open(self) -> tuple[list[dict], dict]:
        self.archive = np.load(self.path, allow_pickle=False)
        header = self._check_format(json.loads(self.archive["header"].tobytes().decode("utf-8")))
        if header.get("version") != 1:
            raise CheckpointError(
                f"{self.path} has checkpoint format version {header.get('version')}, "
                f"this purelm reads versions 1 and {VERSION}"
            )
        self.members = {leaf["name"]: f"a{i}" for i, leaf in enumerate(header["leaves"])}
        return header["leaves"], header["meta"]

    def read(self, names: list[str]) -> list[np.ndarray]:
        dtypes = {leaf["name"]: leaf["dtype"] for leaf in self.leaves}
        try:
            return [_stored_dtype(self.archive[self.members[name]], dtypes[name]) for name in names]
        except Exception as err:
            raise self.corrupt(err) from None


def _open(directory: Path) -> _Stored:
    if not directory.is_dir():
        raise CheckpointError(f"no such checkpoint directory: {directory}")
    path = checkpoint_file(directory)
    if path is None:
        raise CheckpointError(f"{directory} holds no checkpoint ({CHECKPOINT_FILE} is missing)")
    return (_LegacyStored if path.name == LEGACY_CHECKPOINT_FILE else _Stored)(path)


def read_meta(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata stored in `directory`'s checkpoint (hyperparameters, step, ...), without loading arrays."""
    return _open(Path(directory)).meta


def _belongs(name: str, top: str) -> bool:
    return name == top or (name.startswith(top) and name[len(top)] in ".[")


def _expected(leaf: Any) -> str:
    # Typed PRNG keys are stored as their key data; compare against that.
    spec = jax.eval_shape(jax.random.key_data, leaf) if _is_key(leaf) else leaf
    return _describe(tuple(spec.shape), str(np.dtype(spec.dtype)))


def _stored_dtype(array: np.ndarray, dtype: str) -> np.ndarray:
    """`array` as the dtype its header names: `np.savez` wrote bfloat16 (an ml_dtypes type, unknown to numpy
    by name) as raw 2-byte records, which are viewed back here."""
    if array.dtype.kind == "V" and str(array.dtype) != dtype:
        import ml_dtypes  # a dependency of jax

        stored = getattr(ml_dtypes, dtype, None)
        if stored is not None and np.dtype(stored).itemsize == array.dtype.itemsize:
            return array.view(stored)
    return array


def load_checkpoint(
    directory: str | os.PathLike[str], templates: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load the trees named in `templates` from `directory`'s checkpoint; returns `(trees, meta)`.

    Each template gives the structure, shapes and dtypes expected (real arrays or `jax.ShapeDtypeStruct`s,
    e.g. from `eqx.filter_eval_shape`). Trees in the file but not in `templates` are ignored. A missing,
    unexpected, or differently shaped/typed leaf raises `CheckpointError` naming the leaf.
    """
    stored = _open(Path(directory))
    path = stored.path
    infos = {leaf["name"]: leaf for leaf in stored.leaves}
    trees = {}
    for top, template in templates.items():
        leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(template)
        names = [top + jax.tree_util.keystr(keypath) for keypath, _ in leaves_with_paths]
        if leaves_with_paths and not any(_belongs(name, top) for name in infos):
            raise CheckpointError(f"{path} holds no {top} (it was saved without one)")
        wanted = []
        for name, (_, leaf) in zip(names, leaves_with_paths, strict=True):
            if not _is_array(leaf):
                continue
            if name not in infos:
                raise CheckpointError(f"checkpoint does not match: {path} has no leaf {name}")
            got, want = _describe(tuple(infos[name]["shape"]), infos[name]["dtype"]), _expected(leaf)
            if want != got:
                raise CheckpointError(f"checkpoint does not match: leaf {name} is {got} in {path}, expected {want}")
            wanted.append(name)
        extra = sorted(set(filter(lambda n: _belongs(n, top), infos)) - set(names))
        if extra:
            raise CheckpointError(f"checkpoint does not match: {path} has an unexpected leaf {extra[0]}")
        arrays = dict(zip(wanted, stored.read(wanted), strict=True))
        leaves = [
            _on_device(arrays[name], infos[name], leaf) if name in arrays else leaf
            for name, (_, leaf) in zip(names, leaves_with_paths, strict=True)
        ]
        trees[top] = jax.tree_util.tree_unflatten(treedef, leaves)
    return trees, stored.meta


def _on_device(array: np.ndarray, info: dict, template: Any) -> Any:
    got = _describe(tuple(info["shape"]), info["dtype"])
    if _describe(array.shape, str(array.dtype)) != got:
        raise CheckpointError(
            f"checkpoint is corrupt: leaf {info['name']} is {_describe(array.shape, str(array.dtype))}"
        )
    # device_put, not jnp.asarray: the latter compiles a program per distinct leaf shape.
    value = jax.device_put(array)
    return jax.random.wrap_key_data(value, impl=info["key"]) if _is_key(template) else value


def stored_tree(directory: str | os.PathLike[str], top: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The header entries (`name`, `shape`, `dtype`, `key`) of the leaves of tree `top`, in the order they are
    stored (`jax.tree.leaves` order of the saved tree), and the metadata; reads no array.

    >>> leaves, meta = stored_tree("runs/demo", "model")  # doctest: +SKIP
    >>> leaves[0]["name"], leaves[0]["shape"]            # doctest: +SKIP
    ('model.embedding', [256, 32])
    """
    stored = _open(Path(directory))
    return [leaf for leaf in stored.leaves if _belongs(leaf["name"], top)], stored.meta


def read_tree_arrays(directory: str | os.PathLike[str], top: str) -> list[np.ndarray]:
    """The arrays of tree `top` as numpy arrays, in `stored_tree`'s order: no JAX, no template, no
    compilation (the `purelm sample` and `eval` commands feed them to programs compiled ahead of time).
    A corrupt leaf raises `CheckpointError`."""
    stored = _open(Path(directory))
    return stored.read([leaf["name"] for leaf in stored.leaves if _belongs(leaf["name"], top)])


def _read_all(directory: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every stored array by leaf name (for inspection and tests)."""
    stored = _open(Path(directory))
    names = [leaf["name"] for leaf in stored.leaves]
    return dict(zip(names, stored.read(names), strict=True))


def _readable(meta: dict[str, Any]) -> dict[str, Any]:
    """`meta` for hparams.json: a word vocabulary (tens of thousands of words) is summarised, not listed."""
    tokenizer = meta.get("tokenizer")
    if isinstance(tokenizer, dict) and isinstance(tokenizer.get("words"), list):
        return meta | {"tokenizer": {"kind": tokenizer.get("kind"), "vocab_size": len(tokenizer["words"])}}
    return meta
