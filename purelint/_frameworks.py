"""What purelint knows about JAX and the libraries around it, as data (no logic lives here).

Every tracing API is listed once with how it traces (`TRANSFORMS`); base classes say which framework
a class belongs to (`CLASS_FRAMEWORKS`), and which of its methods run on concrete Python values
(`SETUP_METHODS`). Rules and the engine read these tables; teaching purelint a new library is an edit
here. docs/purelint.md has the same list in prose, with what is deliberately not supported.

How a transform traces the function it is given (`Transform.mode`):

- "abstract": every argument not named static becomes an abstract tracer (`jit`, `make_jaxpr`,
  `eval_shape`, `shard_map`, `checkpoint`): Python control flow on them fails.
- "differentiate": the `argnums` arguments become tracers that keep their concrete values when the
  transform is applied outside traced code (`grad`: JAX's docs call Python `if` there "ok").
- "map": the arguments whose `in_axes` entry is not None become (abstract) tracers (`vmap`, `pmap`).
- "concrete": arguments become tracers around concrete values (`jvp`, `vjp`, `linearize`).
- "wrapper": the library calls the function with whatever its returned functions get, traced only if
  those are traced (`hk.transform`: `apply(params, rng, *args)` calls `f(*args)`); the body is checked
  for purity, and `jax.jit(apply, static_argnums=...)` traces it with the positions shifted
  (`WRAPPED_ARGUMENTS`).
- "filter": Equinox's `filter_*`: only arrays are traced (parameters annotated as arrays count).
- "body": every function argument is a body called with tracers (`lax.scan`, `lax.cond` branches,
  optax's `GradientTransformation(init, update)`); parameters with defaults stay Python values.
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "ARGUMENT_DROPPERS",
    "ARRAY_ATTRIBUTES",
    "ARRAY_METHODS",
    "BOOLEAN_RESULTS",
    "CACHING",
    "CLASS_FRAMEWORKS",
    "FLAG_SOURCES",
    "HOST_CALLBACKS",
    "JAX_LIBRARIES",
    "NNX_OBJECTS",
    "NNX_VARIABLES",
    "RULE_DEFINERS",
    "SETUP_METHODS",
    "STATIC_RESULTS",
    "TRANSFORMS",
    "WRAPPED_ARGUMENTS",
    "Transform",
    "returns_array",
]


@dataclasses.dataclass(frozen=True)
class Transform:
    name: str  # qualified name, e.g. "jax.jit"
    mode: str  # see the module docstring
    nnx: bool = False  # Flax NNX's lifted version: NNX objects passed in keep their state updates


def _table(mode: str, names: str, nnx: bool = False) -> dict[str, Transform]:
    return {name: Transform(name, mode, nnx) for name in names.split()}


TRANSFORMS: dict[str, Transform] = {
    **_table(
        "abstract",
        "jax.jit jax.pmap jax.make_jaxpr jax.eval_shape jax.checkpoint jax.remat jax.ad_checkpoint.checkpoint "
        "jax.ad_checkpoint.remat jax.custom_batching.custom_vmap "
        "jax.experimental.pjit.pjit jax.experimental.checkify.checkify equinox.filter_checkpoint",
    ),
    **_table("differentiate", "jax.grad jax.value_and_grad jax.jacfwd jax.jacrev jax.hessian"),
    **_table("map", "jax.vmap"),
    # `custom_jvp`/`custom_vjp` functions run on concrete values when called outside traced code
    # (JAX's custom-derivatives docs use Python `if` in them).
    **_table(
        "concrete",
        "jax.jvp jax.vjp jax.linearize jax.custom_jvp jax.custom_vjp",
    ),
    **_table("wrapper", "haiku.transform haiku.transform_with_state haiku.multi_transform"),
    **_table(
        "filter",
        "equinox.filter_jit equinox.filter_grad equinox.filter_value_and_grad equinox.filter_vmap "
        "equinox.filter_pmap equinox.filter_eval_shape equinox.filter_make_jaxpr equinox.filter_jvp "
        "equinox.filter_vjp equinox.filter_custom_jvp equinox.filter_custom_vjp",
    ),
    **_table("abstract", "flax.nnx.jit flax.nnx.remat flax.nnx.eval_shape flax.nnx.custom_vjp flax.nnx.pmap", nnx=True),
    **_table("differentiate", "flax.nnx.grad flax.nnx.value_and_grad", nnx=True),
    **_table("map", "flax.nnx.vmap", nnx=True),
    **_table("body", "flax.nnx.scan flax.nnx.cond flax.nnx.switch flax.nnx.fori_loop flax.nnx.while_loop", nnx=True),
    **_table(
        "body",
        "jax.lax.scan jax.lax.fori_loop jax.lax.while_loop jax.lax.cond jax.lax.switch jax.lax.map "
        "jax.lax.associative_scan jax.lax.custom_root jax.lax.custom_linear_solve "
        "haiku.scan haiku.fori_loop haiku.while_loop haiku.cond haiku.switch haiku.map "
        "optax.GradientTransformation optax.GradientTransformationExtraArgs jax.experimental.pallas.pallas_call "
        "jax.experimental.pallas.tpu.emit_pipeline",
    ),
}
# Transforms that cache the traced program: a global read inside goes stale when it is rebound later.
CACHING = frozenset(
    {
        "jax.jit",
        "jax.pmap",
        "jax.experimental.pjit.pjit",
        "flax.nnx.jit",
        "flax.nnx.pmap",
        "equinox.filter_jit",
        "equinox.filter_pmap",
    }
)
# What a "wrapper" transform returns: the functions that call the wrapped one, by attribute and by
# position in the returned tuple, with how many leading arguments they take before the wrapped
# function's own (`hk.transform(f).apply(params, rng, *args)` calls `f(*args)`).
WRAPPED_ARGUMENTS: dict[str, tuple[tuple[str, int], ...]] = {
    "haiku.transform": (("init", 1), ("apply", 2)),
    "haiku.transform_with_state": (("init", 1), ("apply", 3)),
}
# Wrappers of a wrapper's result that drop leading arguments: `hk.without_apply_rng(t).apply(params, *args)`.
ARGUMENT_DROPPERS: dict[str, dict[str, int]] = {"haiku.without_apply_rng": {"apply": 1}}
# Not in the table on purpose: `shard_map` (called outside `jit` it runs the body eagerly on concrete
# per-device values; under `@jax.jit` the stacked decorator already makes it traced) and
# `jax.named_call` (a wrapper that traces nothing by itself).

# Functions handed to these run on the host, at run time, with concrete values: not traced, even
# when written inside a traced function (`io_callback(lambda: print(x), None)` is the fix, not the bug).
HOST_CALLBACKS = frozenset(
    {"jax.pure_callback", "jax.experimental.io_callback", "jax.debug.callback", "jax.experimental.host_callback.call",
     "jax.experimental.host_callback.id_tap", "jax.io_callback"}
)  # fmt: skip
# `f.defjvp(rule)`, `f.defvjp(fwd, bwd)`: the rules are traced like the function they belong to.
RULE_DEFINERS = frozenset({"defjvp", "defvjp", "defjvps"})

# Base class -> framework of every subclass.
CLASS_FRAMEWORKS: dict[str, str] = {
    "equinox.Module": "equinox",
    "flax.nnx.Module": "nnx",
    "flax.nnx.Object": "nnx",
    "flax.nnx.Pytree": "nnx",
    "flax.nnx.Optimizer": "nnx",
    "flax.linen.Module": "linen",
    "haiku.Module": "haiku",
    "unittest.TestCase": "unittest",
    "absl.testing.absltest.TestCase": "unittest",
    "absl.testing.parameterized.TestCase": "unittest",
    "tensorflow.test.TestCase": "unittest",
    "chex.TestCase": "unittest",
    "flax.nnx.Variable": "nnx-variable",
    "flax.nnx.Param": "nnx-variable",
    "flax.nnx.BatchStat": "nnx-variable",
}
# Libraries built on JAX: a file importing none of them (nor JAX) is not JAX code (torch-only code).
JAX_LIBRARIES = frozenset(
    {"jax", "jaxlib", "flax", "equinox", "haiku", "optax", "chex", "numpyro", "distrax", "orbax", "diffrax",
     "lineax", "optimistix", "brax", "objax", "trax"}
)  # fmt: skip
# Methods that build the object on concrete values: `self.x = ...` there is construction, not state.
SETUP_METHODS: dict[str | None, frozenset[str]] = {
    None: frozenset({"__init__", "__post_init__", "__check_init__", "__new__", "__setstate__"}),
    "linen": frozenset({"setup"}),
    "unittest": frozenset({"setUp", "setUpClass", "asyncSetUp"}),
}

# Flax NNX: constructors of Variables (updated in place by design, `v[...] += 1`, `v.value = ...`) ...
NNX_VARIABLES = frozenset(
    f"flax.nnx.{n}"
    for n in [
        "Variable",
        "Param",
        "BatchStat",
        "Cache",
        "Intermediate",
        "Perturbation",
        "VariableState",
        "RngState",
        "RngKey",
        "RngCount",
        "OptState",
        "OptArray",
    ]
)
# ... and of graph objects whose state lives in such Variables (the optimizer, the RNG streams, layers).
NNX_OBJECTS = frozenset(f"flax.nnx.{n}" for n in ["Optimizer", "ModelAndOptimizer", "Rngs", "Module", "Sequential"])
# What in a file's source makes NNX Variables "hijax" (mutable inside plain `jax.jit`):
# `nnx.var_defaults(...)` or a `hijax=True` option; then NNX state updates under `jax.jit` are kept,
# and PUR104 stays quiet.
HIJAX = ("var_defaults", "hijax=True")
# Mutable JAX references: `ref[...] = v` is their API, inside `jit` too.
REF_CONSTRUCTORS = frozenset({"jax.new_ref", "jax.array_ref", "jax.experimental.mutable_array", "jax.ref.new_ref"})

# absl flags and ml_collections config flags: set once when the program starts, read-only afterwards.
FLAG_SOURCES = ("absl.flags.", "ml_collections.config_flags.")

# Calls whose result is static metadata, whatever they are given (a sharding spec, a type, a tree
# structure): comparing or asserting on it is plain Python, even on traced values.
STATIC_RESULTS = frozenset(
    [
        "jax.typeof",
        "jax.tree.structure",
        "jax.tree_util.tree_structure",
        "jax.sharding.PartitionSpec",
        "jax.P",
        "jax.sharding.NamedSharding",
        "flax.linen.get_partition_spec",
        "flax.linen.get_sharding",
        "flax.nnx.get_partition_spec",
        "flax.nnx.get_named_sharding",
        "flax.nnx.spmd.get_partition_spec",
        "flax.linen.spmd.get_partition_spec",
    ]
)
# Attributes and methods a JAX array (or a tracer standing for one) has: a value used with any
# other attribute (`scale.value_and_grad(...)`, `state.params`) is not an array but an object or a
# pytree node, whose Python truth value is static. `value`, `primal`, `tangent` and `val` are listed
# too: NNX Variables and tracers have them, and a Variable's `bool()` is its (traced) value's.
ARRAY_ATTRIBUTES = frozenset(
    [
        "at",
        "T",
        "mT",
        "dtype",
        "shape",
        "ndim",
        "size",
        "itemsize",
        "nbytes",
        "real",
        "imag",
        "flat",
        "sharding",
        "aval",
        "weak_type",
        "device",
        "devices",
        "addressable_data",
        "addressable_shards",
        "global_shards",
        "is_fully_addressable",
        "is_fully_replicated",
        "committed",
        "delete",
        "is_deleted",
        "copy_to_host_async",
        "block_until_ready",
        "unsafe_buffer_pointer",
        "on_device_size_in_bytes",
        "format",
        "traceback",
        "all",
        "any",
        "argmax",
        "argmin",
        "argpartition",
        "argsort",
        "astype",
        "choose",
        "clip",
        "compress",
        "conj",
        "conjugate",
        "copy",
        "cumprod",
        "cumsum",
        "diagonal",
        "dot",
        "flatten",
        "item",
        "max",
        "mean",
        "min",
        "nonzero",
        "prod",
        "ptp",
        "ravel",
        "repeat",
        "reshape",
        "round",
        "searchsorted",
        "sort",
        "squeeze",
        "std",
        "sum",
        "swapaxes",
        "take",
        "to_device",
        "tobytes",
        "tolist",
        "trace",
        "transpose",
        "var",
        "view",
        "primal",
        "tangent",
        "val",
        "value",
    ]
)
# Functions that return a boolean array (with the comparisons, `~`, `&`, `|`): indexing with one
# traced (`x[mask]`) has a data-dependent shape.
BOOLEAN_RESULTS = frozenset(
    f"jax.numpy.{n}"
    for n in [
        "isnan",
        "isinf",
        "isfinite",
        "isneginf",
        "isposinf",
        "isnat",
        "isclose",
        "isin",
        "signbit",
        "logical_and",
        "logical_or",
        "logical_not",
        "logical_xor",
        "equal",
        "not_equal",
        "greater",
        "greater_equal",
        "less",
        "less_equal",
    ]
)

# Methods of a JAX array that return a JAX array.
ARRAY_METHODS = frozenset(
    [
        "reshape",
        "astype",
        "sum",
        "mean",
        "max",
        "min",
        "prod",
        "std",
        "var",
        "argmax",
        "argmin",
        "argsort",
        "sort",
        "transpose",
        "squeeze",
        "ravel",
        "flatten",
        "clip",
        "round",
        "cumsum",
        "cumprod",
        "dot",
        "conj",
        "conjugate",
        "copy",
        "swapaxes",
        "repeat",
        "take",
        "all",
        "any",
        "real",
        "imag",
        "diagonal",
        "trace",
        "nonzero_size",
        "searchsorted",
        "ptp",
        "view",
        "block_until_ready",
        "__getitem__",
        "__add__",
        "__mul__",
    ]
)

# `jax.numpy` / `jax.lax` functions that do not return a single array (tuples, lists, dtypes, pytrees).
_NOT_ARRAY = frozenset(
    [
        "shape",
        "ndim",
        "size",
        "dtype",
        "result_type",
        "issubdtype",
        "iinfo",
        "finfo",
        "split",
        "array_split",
        "hsplit",
        "vsplit",
        "dsplit",
        "meshgrid",
        "nonzero",
        "unravel_index",
        "broadcast_arrays",
        "histogram",
        "unique",
        "gradient",
        "divmod",
        "frexp",
        "modf",
        "tril_indices",
        "triu_indices",
        "diag_indices",
        "mask_indices",
        "indices",
        "where",
        "atleast_1d",
        "atleast_2d",
        "atleast_3d",
        "ix_",
        "isscalar",
        "iscomplexobj",
        "isrealobj",
        "can_cast",
        "promote_types",
        "scan",
        "while_loop",
        "fori_loop",
        "cond",
        "switch",
        "map",
        "associative_scan",
        "reduce",
        "top_k",
        "sort",
        "sort_key_val",
        "psum",
        "pmean",
        "pmax",
        "pmin",
        "all_gather",
        "all_to_all",
        "ppermute",
        "pshuffle",
        "psum_scatter",
        "stop_gradient",
        "optimization_barrier",
        "custom_root",
        "custom_linear_solve",
        "platform_dependent",
    ]
)
_ARRAY_PREFIXES = ("jax.numpy.", "jax.lax.", "jax.random.", "jax.nn.", "jax.scipy.special.", "jax.numpy.fft.")
_NOT_ARRAY_PREFIXES = ("jax.nn.initializers.", "jax.numpy.linalg.", "jax.lax.linalg.", "jax.random.key_impl")
# The linalg functions that do return one array.
_LINALG_ARRAYS = frozenset(
    f"jax.numpy.linalg.{n}"
    for n in ["norm", "inv", "det", "solve", "pinv", "matrix_power", "cholesky", "eigvals", "eigvalsh", "matrix_rank"]
)


def returns_array(qualname: str) -> bool:
    """Whether a call to `qualname` certainly returns one JAX array (`jnp.zeros`, `jax.random.normal`)."""
    if qualname in _LINALG_ARRAYS:
        return True
    if not qualname.startswith(_ARRAY_PREFIXES) or qualname.startswith(_NOT_ARRAY_PREFIXES):
        return False
    last = qualname.rsplit(".", 1)[1]
    return last not in _NOT_ARRAY and not last[:1].isupper()
