"""Data parallelism with `jax.sharding`: a 1-D device mesh, the batch axis split over it, parameters replicated.

The train step itself is unchanged: `jax.jit` (under `eqx.filter_jit`) follows the shardings of its inputs,
so with the batch (and the carried LSTM states) split over the mesh and the model and optimizer state
replicated, XLA runs each device's share of the batch and inserts the all-reduce of the mean loss and of
the gradients. Results match one device up to float reassociation.

Multi-host: start one process per host with the same command, after `jax.distributed.initialize()`
(`purelm train --distributed` calls it; on Slurm, Open MPI or Cloud TPU it finds the coordinator from the
environment, elsewhere set `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`). Every process
reads the same corpus and computes the same global batch; `jax.make_array_from_callback` then hands each
process only the rows its own devices hold. Only process 0 writes checkpoints, metrics and the plot.

>>> mesh = make_mesh(choose_devices(None, batch_size=32))   # doctest: +SKIP
>>> batch = shard_batch(np_batch, mesh)                      # doctest: +SKIP
>>> model = replicate(model, mesh)                          # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

BATCH_AXIS = "batch"


class DeviceError(ValueError):
    """An impossible device request (more devices than exist, or a batch that does not divide)."""


def choose_devices(requested: int | None, batch_size: int) -> int:
    """How many devices to use: `requested`, or (None) as many as exist that divide `batch_size` evenly."""
    available = jax.device_count()
    if requested is None:
        n = available
        while batch_size % n:
            n -= 1
        return n
    if requested < 1:
        raise DeviceError(f"--devices must be at least 1, got {requested}")
    if requested > available:
        raise DeviceError(f"--devices {requested} asks for more devices than the {available} available")
    if batch_size % requested:
        raise DeviceError(f"--batch-size {batch_size} does not split evenly over --devices {requested}")
    return requested


def make_mesh(num_devices: int) -> Mesh | None:
    """A 1-D mesh named "batch" over the first `num_devices` devices; None for one device (no sharding)."""
    if num_devices == 1:
        return None
    return Mesh(np.asarray(jax.devices()[:num_devices]), (BATCH_AXIS,))


def _put(value: Any, sharding: NamedSharding) -> jax.Array:
    host = np.asarray(value)
    # From host data every process can build the global array; each one materialises only its own shards.
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_batch(array: Any, mesh: Mesh | None, *, axis: int = 0) -> jax.Array:
    """Place `array` with its `axis` split over the mesh's devices (on one device: a plain device array)."""
    if mesh is None:
        return jax.numpy.asarray(array)
    spec = PartitionSpec(*([None] * axis), BATCH_AXIS)
    return _put(array, NamedSharding(mesh, spec))


def shard_states(states: Any, mesh: Mesh | None) -> Any:
    """Split batched LSTM states (leading batch axis) over the mesh."""
    if mesh is None:
        return states
    return jax.tree.map(lambda x: shard_batch(x, mesh), states)


def replicate(tree: Any, mesh: Mesh | None) -> Any:
    """A copy of every array leaf of `tree` on every device of the mesh."""
    if mesh is None:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda x: _put(x, sharding) if eqx.is_array(x) else x, tree)


def to_host(tree: Any) -> Any:
    """Every array leaf as a full host (numpy) array, gathering shards from other processes if needed."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def is_main_process() -> bool:
    """Whether this process writes files and prints progress (process 0 of a multi-host run)."""
    return jax.process_index() == 0


def initialize_distributed() -> None:
    """Join a multi-host run (`jax.distributed.initialize()`, configured from the environment)."""
    try:
        jax.distributed.initialize()
    # Without a cluster environment or JAX_COORDINATOR_ADDRESS & co. JAX raises ValueError/RuntimeError.
    except (ValueError, RuntimeError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DeviceError(f"jax.distributed.initialize() failed: {message}") from None
