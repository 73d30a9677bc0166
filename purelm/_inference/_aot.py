"""Inference programs compiled ahead of time: a warm `purelm sample` or `purelm eval` loads XLA's executables
from disk instead of tracing, lowering and compiling the model.

JAX's persistent compilation cache (`purelm._runtime._compile_cache`) skips only XLA's compilation: to look an entry
up, JAX needs the lowered program, so every run still imports equinox, builds the model, traces it in Python
and lowers it (about 1 s of a 2.5 s warm `purelm sample`). This module stores the compiled executables
themselves (`jax.experimental.serialize_executable`) under a key made of everything they depend on, so that
a warm command imports only JAX and numpy, reads the checkpoint's arrays with numpy, and runs.

The programs are the library's own functions (the model's `__call__`, `purelm._inference._sample.draw`,
`purelm.training._evaluate.score_windows`), traced once, on a miss, with the model rebuilt from its flat leaves. The
tokens `sample_chunks` draws are those of `purelm.sample(model, jax.random.key(seed), prompt, length,
temperature, top_k)`, and `score` gives `purelm.evaluate`'s numbers, bit for bit (tests/purelm/test_aot.py).

Where: `<compilation cache dir>/programs/<key>.xla` (`purelm._runtime._compile_cache`: `PURELM_CACHE_DIR`, or
`~/.cache/purelm/jax`). With the cache off (`PURELM_CACHE_DIR=off`, `--no-compile-cache`) the same programs
are compiled in memory each time. A file is written whole to a temporary name and renamed, so concurrent
processes never see half of one; one that fails its checksum or does not load is ignored (the program is
compiled again and the file replaced). Beyond `MAX_BYTES` the least recently used files are removed. Like
JAX's own cache the directory is trusted: loading an executable runs it.

The key is a SHA-256 of: the program's name and static settings (prompt length, length, top-k, layout); the
model's stored settings and its leaves' names, shapes and dtypes; the source of the modules that are traced
(an edited model file never runs a stale program); the JAX and jaxlib versions, the device (platform, kind,
platform version), JAX's configuration and `XLA_FLAGS`; and the host CPU (model and feature flags), since
XLA:CPU compiles for the instruction set of the machine it runs on.

>>> run = Checkpoint("runs/demo")                                          # doctest: +SKIP
>>> for tokens in sample_chunks(run, prompt_ids, 300, seed=0, temperature=0.8, top_k=40):  # doctest: +SKIP
...     print(run.tokenizer.decode(tokens))
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pickle
import platform
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np

from purelm._data._columns import Columns
from purelm._data._metrics import Evaluation
from purelm._data._tokenizer import Tokenizer
from purelm._rundir._checkpoint import CheckpointError, named_leaves, read_tree_arrays, stored_tree
from purelm._rundir._format import load_run_model, model_settings, tokenizer_of
from purelm._runtime import _compile_cache, _signals
from purelm._runtime._files import atomic_write_bytes

__all__ = ["CHUNK", "MAX_BYTES", "Checkpoint", "sample_chunks", "score"]

VERSION = 1
_MAGIC = b"purelm-aot-%d\n" % VERSION
_SUFFIX = ".xla"
# Least recently used programs beyond this are removed (a program is 0.1-2 MB on CPU).
MAX_BYTES = 256 * 2**20
# Tokens per compiled sampling call: `purelm._inference._streaming.sample_stream`'s default (any size draws the
# same tokens).
CHUNK = 256
# The modules whose code ends up in the programs, relative to the package.
_TRACED = (
    "_inference/_aot.py",
    "training/_evaluate.py",
    "_model/_fused.py",
    "_model/_lstmlm.py",
    "_inference/_sample.py",
    "_model/_xent.py",
)


class Checkpoint:
    """A run directory's model as `sample_chunks` and `score` need it: the stored settings, the leaves'
    names, shapes and dtypes, and the tokenizer, read from the checkpoint's header; the weights (`params`,
    read with numpy) and the `LSTMLM` itself (`model`, only when a program has to be compiled), each loaded
    on first use.

    Anything unusual (no stored settings, a word list that does not fit the model, PRNG-key leaves) is left
    to `purelm.training.load_run_model`, whose error names the problem.
    """

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        self.leaves, self.meta = stored_tree(self.directory, "model")
        # Loaded on first use: a warm cache needs neither the model nor its arrays.
        self._model: Any = None
        self._tokenizer: Any = None
        self._params: list[jax.Array] | None = None
        settings = model_settings(self.meta)
        vocab = settings.get("vocab_size") if settings is not None else None
        try:
            tokenizer: Tokenizer | None = tokenizer_of(self.directory, self.meta)
        except CheckpointError:
            tokenizer = None
        if (
            not isinstance(vocab, int)
            or tokenizer is None
            or tokenizer.vocab_size != vocab
            or any(leaf.get("key") for leaf in self.leaves)
        ):
            vocab, tokenizer = self._loaded_vocab_and_tokenizer()
        self.vocab_size: int = vocab
        self.tokenizer: Tokenizer = tokenizer
        self.fingerprint = json.dumps(
            {"model": settings, "leaves": [[leaf["name"], leaf["shape"], leaf["dtype"]] for leaf in self.leaves]},
            sort_keys=True,
        )

    def _loaded_vocab_and_tokenizer(self) -> tuple[int, Tokenizer]:
        model = self.model()  # raises the CheckpointError that says what is wrong, or copes
        return model.vocab_size, self._tokenizer

    def model(self):
        """The `LSTMLM`, loaded as `purelm.training.load_run_model` loads it (equinox and all)."""
        if self._model is None:
            self._model, self._tokenizer, _ = load_run_model(self.directory)
            names = [name for name, _ in named_leaves({"model": self._model})]
            if names != [leaf["name"] for leaf in self.leaves]:
                raise CheckpointError(f"{self.directory}: the stored leaves are not in the model's order")
        return self._model

    def params(self) -> list[jax.Array]:
        """The model's array leaves on the default device, in `jax.tree.leaves` order."""
        if self._params is None:
            if self._model is not None:
                import equinox as eqx

                self._params = jax.tree.leaves(eqx.filter(self._model, eqx.is_array))
            else:
                # device_put, not jnp.asarray: the latter compiles a program per distinct leaf shape.
                self._params = jax.device_put(read_tree_arrays(self.directory, "model"))
        return self._params


# ------------------------------------------------------------------------------------------ the programs


def _rebuild(model) -> tuple[Callable[[list], Any], list[jax.ShapeDtypeStruct]]:
    """A function from the flat array leaves back to the model, and the leaves' shapes and dtypes."""
    import equinox as eqx

    params, static = eqx.partition(model, eqx.is_array)
    leaves, treedef = jax.tree.flatten(params)
    specs = [jax.ShapeDtypeStruct(leaf.shape, leaf.dtype) for leaf in leaves]
    return (lambda flat: eqx.combine(jax.tree.unflatten(treedef, flat), static)), specs


def _sample_start(run: Checkpoint, *, prompt_length: int, length: int):
    """(params, prompt [P] int32, key data [2] uint32) -> (state after the prompt, key data [length, 2]):
    `purelm.sample`'s `jax.random.split(key, length)` and its reading of the prompt."""
    rebuild, specs = _rebuild(run.model())

    def start(params, prompt, key_data):
        model = rebuild(params)
        keys = jax.random.split(jax.random.wrap_key_data(key_data), length)
        return model(prompt, model.initial_state())[1], jax.random.key_data(keys)

    return jax.jit(start), (specs, _spec((prompt_length,), np.int32), _spec((2,), np.uint32))


def _sample_chunk(run: Checkpoint, *, chunk: int, top_k: int | None):
    """(params, state, key data [chunk, 2], temperature) -> (state, tokens [chunk]):
    `purelm._inference._sample.draw`."""
    from purelm._inference._sample import draw

    model = run.model()
    rebuild, specs = _rebuild(model)
    state = jax.eval_shape(model.initial_state)

    def draw_chunk(params, state, key_data, temperature):
        return draw(rebuild(params), state, jax.random.wrap_key_data(key_data), temperature, top_k)

    # Weakly typed, as `jnp.asarray(temperature)` in `sample`: a bfloat16 model's logits stay bfloat16.
    temperature = jax.ShapeDtypeStruct((), np.float32, weak_type=True)
    return jax.jit(draw_chunk), (specs, state, _spec((chunk, 2), np.uint32), temperature)


def _eval_start(run: Checkpoint, *, batch_size: int):
    """(params) -> the batch's initial states (`purelm.batch_initial_state`)."""
    from purelm._model._lstmlm import batch_initial_state

    rebuild, specs = _rebuild(run.model())
    return jax.jit(lambda params: batch_initial_state(rebuild(params), batch_size)), (specs,)


def _eval_windows(run: Checkpoint, *, per_call: int, batch_size: int, seq_len: int):
    """(params, windows [per_call, batch, seq] int32, states) -> (states, log-probabilities):
    `purelm.training._evaluate.score_windows`."""
    from purelm._model._lstmlm import batch_initial_state
    from purelm.training._evaluate import score_windows

    model = run.model()
    rebuild, specs = _rebuild(model)
    states = jax.eval_shape(lambda: batch_initial_state(model, batch_size))

    def windows(params, grid, states):
        return score_windows(rebuild(params), grid, states)

    return jax.jit(windows), (specs, _spec((per_call, batch_size, seq_len), np.int32), states)


def _spec(shape: tuple[int, ...], dtype) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(shape, dtype)


# -------------------------------------------------------------------------------- key, store and load


@functools.cache
def _environment() -> str:
    """Everything outside the model and the program's settings that a compiled program depends on."""
    import jaxlib

    device = jax.devices()[0]
    here = Path(__file__).parents[1]
    sources = hashlib.sha256(b"".join((here / name).read_bytes() for name in _TRACED)).hexdigest()
    options = {name: repr(value) for name, value in jax.config.values.items() if "cache" not in name}
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu = "".join(
                line
                for line in f.read(1 << 16).splitlines(keepends=True)
                if line.startswith(("model name", "flags", "Features", "CPU part"))
            )
    except OSError:
        pass
    return json.dumps(
        {
            "version": VERSION,
            "sources": sources,
            "jax": jax.__version__,
            "jaxlib": getattr(jaxlib, "__version__", ""),
            "device": [device.platform, device.device_kind, device.client.platform_version],
            "options": options,
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "machine": platform.machine(),
            "cpu": cpu,
        },
        sort_keys=True,
    )


def _key(name: str, settings: dict, run: Checkpoint) -> str:
    text = json.dumps([name, settings, run.fingerprint, _environment()], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _programs_dir() -> Path | None:
    directory = _compile_cache.enabled_dir()
    return None if directory is None else directory / "programs"


def _load(path: Path):
    """The executable stored at `path`, or None when there is none or it does not verify or load."""
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    digest, payload = blob[len(_MAGIC) : len(_MAGIC) + 64], blob[len(_MAGIC) + 64 :]
    if not blob.startswith(_MAGIC) or hashlib.sha256(payload).hexdigest().encode("ascii") != digest:
        return None
    from jax.experimental.serialize_executable import deserialize_and_load

    try:
        serialized, in_tree, out_tree = pickle.loads(payload)
        compiled = deserialize_and_load(serialized, in_tree, out_tree, execution_devices=jax.devices()[:1])
    except Exception:
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: eviction keeps it
    return compiled


def _store(path: Path, compiled) -> None:
    from jax.experimental.serialize_executable import serialize

    try:
        payload = pickle.dumps(serialize(compiled))
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, _MAGIC + hashlib.sha256(payload).hexdigest().encode("ascii") + payload)
        _evict(path.parent, MAX_BYTES)
    except Exception:
        pass


def _evict(directory: Path, limit: int) -> None:
    """Remove the least recently used programs until the rest take at most `limit` bytes."""
    entries = []
    for path in directory.glob(f"*{_SUFFIX}"):
        try:
            stat = path.stat()
        except OSError:
            continue  # removed by another process meanwhile
        entries.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        with contextlib.suppress(OSError):
            path.unlink()
        total -= size


def _program(run: Checkpoint, build: Callable, **settings):
    """The compiled program `build(run, **settings)` describes: loaded from the programs directory, or
    traced, compiled (and stored) there."""
    directory = _programs_dir()
    path = None
    if directory is not None:
        path = directory / (_key(build.__name__, settings, run) + _SUFFIX)
        compiled = _load(path)
        if compiled is not None:
            return compiled
    function, specs = build(run, **settings)
    compiled, fresh = _compile_fresh(function.lower(*specs))
    if path is not None and fresh:
        _store(path, compiled)
    return compiled


def _compile_fresh(lowered) -> tuple[Any, bool]:
    """Compile `lowered`; the second result says whether XLA compiled it here.

    An executable that JAX loaded from its persistent cache serializes into a file that does not run
    (jaxlib 0.10.2, CPU: "Function broadcast_add_fusion.3 not found" when the file is loaded and run), so only
    executables compiled here are stored. To keep it that way, these programs are kept out of JAX's cache
    (this module's files are their cache), and a hit in it, from an entry written some other way, is noticed.
    """
    try:
        from jax._src import monitoring  # JAX's own event hooks (internal): without them, store nothing
    except ImportError:
        return lowered.compile(), False

    hits = []

    def listen(event: str, **kwargs) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            hits.append(event)

    saved = jax.config.jax_persistent_cache_min_compile_time_secs  # type: ignore[attr-defined]
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1e9)  # never written to JAX's cache
    monitoring.register_event_listener(listen)
    try:
        compiled = lowered.compile()
    finally:
        monitoring.unregister_event_listener(listen)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", saved)
    return compiled, not hits


# ------------------------------------------------------------------------------------------- commands


def key_data(seed: int) -> np.ndarray:
    """The raw data of `jax.random.key(seed)` (uint32 [2]), computed on the host for the default
    threefry keys in 32-bit mode (what JAX computes: the seed modulo 2**32), else by JAX itself."""
    if (
        jax.config.jax_default_prng_impl == "threefry2x32"  # type: ignore[attr-defined]
        and not jax.config.jax_enable_x64  # type: ignore[attr-defined]
        and not jax.config.jax_random_seed_offset  # type: ignore[attr-defined]
        and 0 <= seed < 2**63
    ):
        return np.array([0, seed % 2**32], np.uint32)
    return np.asarray(jax.random.key_data(jax.random.key(seed)))


def sample_chunks(
    run: Checkpoint,
    prompt: np.ndarray,
    length: int,
    *,
    seed: int,
    temperature: float,
    top_k: int | None,
    chunk: int = CHUNK,
) -> Iterator[np.ndarray]:
    """Yield the `length` tokens `purelm.sample(model, jax.random.key(seed), prompt, length, temperature,
    top_k)` draws, as numpy int32 arrays of at most `chunk` tokens, checking for a signal between chunks
    (as `purelm._inference._streaming.sample_stream`, whose chunks these are)."""
    if length <= 0:
        return
    prompt = np.asarray(prompt, np.int32)
    start = _program(run, _sample_start, prompt_length=int(prompt.shape[0]), length=length)
    draw_chunk = _program(run, _sample_chunk, chunk=chunk, top_k=top_k)
    params = run.params()
    state, keys = start(params, jax.device_put(prompt), jax.device_put(key_data(seed)))
    keys = np.asarray(keys)
    temperature = jax.device_put(temperature)  # a Python float: weakly typed, as the program expects
    previous: tuple[Any, int] | None = None
    for begin in range(0, length, chunk):
        _signals.check()
        part = keys[begin : begin + chunk]
        count = part.shape[0]
        if count < chunk:  # the last chunk is padded, so that one program serves every length
            part = np.concatenate([part, np.repeat(part[-1:], chunk - count, axis=0)])
        # Dispatch the next chunk before handing out the previous one: the device draws while the caller prints.
        state, tokens = draw_chunk(params, state, jax.device_put(part), temperature)
        if previous is not None:
            yield np.asarray(previous[0])[: previous[1]]
        previous = (tokens, count)
    _signals.check()
    assert previous is not None  # length > 0: the loop ran at least once
    yield np.asarray(previous[0])[: previous[1]]


def score(run: Checkpoint, tokens: np.ndarray, *, batch_size: int, seq_len: int, layout: str = "purelm") -> Evaluation:
    """What `purelm.evaluate(model, tokens, batch_size=batch_size, seq_len=seq_len, layout=layout)` returns."""
    columns = Columns.of(tokens, batch_size=batch_size, seq_len=seq_len, layout=layout)
    _calls, per_call = columns.grid.shape[:2]
    initial = _program(run, _eval_start, batch_size=batch_size)
    windows = _program(run, _eval_windows, per_call=per_call, batch_size=batch_size, seq_len=seq_len)
    params = run.params()
    states = initial(params)
    pieces = []
    for grid in columns.grid:
        states, log_probs = windows(params, jax.device_put(grid), states)
        pieces.append(log_probs)
    return Evaluation.from_nats(*columns.mean_nats(np.stack(jax.device_get(pieces))))
