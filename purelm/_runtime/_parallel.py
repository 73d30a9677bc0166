"""Data parallelism with `jax.sharding`: a 1-D device mesh, the batch axis split over it, parameters replicated.

The train step itself is unchanged: `jax.jit` (under `purelm._runtime._jit.filter_jit`) follows the
shardings of its inputs, so with the batch (and the carried LSTM states) split over the mesh and the model
and optimizer state replicated, XLA runs each device's share of the batch and inserts the all-reduce of the
mean loss and of the gradients. Results match one device up to float reassociation.

Multi-process (several hosts, or several processes on one host): start one process per host with the same
command and `initialize_distributed` runs `jax.distributed.initialize` before any JAX computation. It takes
the coordinator, the process count and this process's id from `--coordinator HOST:PORT --num-processes N
--process-id I`, else from `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID` (JAX itself reads
only the first), else from the cluster (a Slurm `srun` step of several tasks, or `--distributed`: whatever
`jax.distributed.initialize()` detects: Slurm, Open MPI, Cloud TPU). On CPU the processes reduce with gloo.
Every process reads the same corpus and computes the same global batch; `jax.make_array_from_callback` then
hands each process only the rows its own devices hold. Only process 0 writes checkpoints, metrics and the
plot.

>>> mesh = make_mesh(choose_devices(None, batch_size=32))   # doctest: +SKIP
>>> batch = shard_batch(np_batch, mesh)                      # doctest: +SKIP
>>> model = replicate(model, mesh)                          # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from purelm._runtime import _signals
from purelm._runtime._platforms import DeviceError

BATCH_AXIS = "batch"


def choose_devices(requested: int | None, batch_size: int) -> int:
    """How many devices to use: `requested`, or (None) as many as exist that divide `batch_size` evenly."""
    available = jax.device_count()
    if requested is None:
        n = available
        while batch_size % n:
            n -= 1
        return n
    if requested < 1:
        raise DeviceError(f"run.devices must be at least 1, got {requested}")
    if requested > available:
        raise DeviceError(f"run.devices={requested} asks for more devices than the {available} available")
    if batch_size % requested:
        raise DeviceError(f"data.batch_size={batch_size} does not split evenly over run.devices={requested}")
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


def agreed_stop_signal() -> int | None:
    """The signal (SIGINT/SIGTERM number) any process of the run received, or None; every process must call
    it at the same point of the loop, in place of `purelm._runtime._signals.requested()`.

    Processes see a signal at different moments (a scheduler signals them one by one; a Ctrl-C reaches only
    one terminal). Deciding alone, one process would save (a collective gather) while another runs the next
    step (another collective), and both would hang. Here they exchange their flags, so all stop after the
    same step, save together, and exit with the same status. One process: no communication.
    """
    local = _signals.requested() or 0
    if jax.process_count() == 1:
        return local or None
    from jax.experimental import multihost_utils

    signum = int(np.max(multihost_utils.process_allgather(np.int32(local))))
    if signum:
        _signals.record(signum)
    return signum or None


def is_main_process() -> bool:
    """Whether this process writes files and prints progress (process 0 of a multi-host run)."""
    return jax.process_index() == 0


_ENV = {"coordinator": "JAX_COORDINATOR_ADDRESS", "num_processes": "JAX_NUM_PROCESSES", "process_id": "JAX_PROCESS_ID"}
_OPTION = {"coordinator": "--coordinator", "num_processes": "--num-processes", "process_id": "--process-id"}
_SLURM = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")


def _slurm_step_of_several_tasks(environ: Mapping[str, str]) -> bool:
    # What jax's Slurm detection needs, inside an `srun` step of more than one task (a plain `sbatch` script
    # or a one-task step is a single process and must not wait for peers).
    if not all(name in environ for name in _SLURM):
        return False
    tasks = environ.get("SLURM_STEP_NUM_TASKS", environ["SLURM_NTASKS"])
    return tasks.isdigit() and int(tasks) > 1


def distributed_settings(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """The keyword arguments for `jax.distributed.initialize`, or None for a single-process run.

    Options win over the environment; what is still unset is left to JAX's cluster detection when a cluster
    is there (Slurm `srun`, or `auto`), and is otherwise an error naming the missing option.

    >>> distributed_settings("127.0.0.1:1234", 2, 1, environ={})
    {'coordinator_address': '127.0.0.1:1234', 'num_processes': 2, 'process_id': 1}
    >>> distributed_settings(environ={}) is None
    True
    """
    environ = os.environ if environ is None else environ
    given: dict[str, Any] = {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id}
    for name, variable in _ENV.items():
        if given[name] is None and environ.get(variable, "").strip():
            text = environ[variable].strip()
            if name == "coordinator":
                given[name] = text
            elif text.isdigit():
                given[name] = int(text)
            else:
                raise DeviceError(f"{variable}={text!r} is not a non-negative integer")
    cluster = auto or _slurm_step_of_several_tasks(environ)
    if all(value is None for value in given.values()) and not cluster:
        return None
    if not cluster:
        missing = [f"{_OPTION[name]} (or {_ENV[name]})" for name, value in given.items() if value is None]
        if missing:
            raise DeviceError(f"a multi-process run needs {' and '.join(missing)} too")
    address = given["coordinator"]
    if address is not None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise DeviceError(f"--coordinator must be HOST:PORT, got {address!r}")
    count, index = given["num_processes"], given["process_id"]
    if count is not None and count < 1:
        raise DeviceError(f"--num-processes must be at least 1, got {count}")
    if count is not None and index is not None and not 0 <= index < count:
        raise DeviceError(f"--process-id must be between 0 and {count - 1}, got {index}")
    return {"coordinator_address": address, "num_processes": count, "process_id": index}


def initialize_distributed(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
) -> bool:
    """Join a multi-process run if one is asked for (options, environment, Slurm; see the module docs).

    Call it before any JAX computation. Returns whether this is a multi-process run; calling it again is a
    no-op.

    >>> initialize_distributed("10.0.0.1:4000", num_processes=2, process_id=0)  # doctest: +SKIP
    True
    """
    if jax.distributed.is_initialized():
        return True
    settings = distributed_settings(coordinator, num_processes, process_id, auto=auto)
    if settings is None:
        return False
    if "JAX_CPU_COLLECTIVES_IMPLEMENTATION" not in os.environ:
        # Cross-process reductions on CPU; without an implementation a CPU run would not reduce across processes.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(**settings)
    # Unreachable coordinators, JAX already initialised, no cluster found: ValueError/RuntimeError from JAX.
    except (ValueError, RuntimeError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DeviceError(f"jax.distributed.initialize() failed: {message}") from None
    _signals.reclaim()  # JAX's preemption notifier has just taken SIGTERM over
    return True
