"""purelint's semantic model of one file, in layers; each module imports only the layers below it.

1. `_cst`: CST helpers (walking, dotted names, literals, the names a target binds, a node's source
   text, parameters, what a statement mutates). Nothing about scopes or JAX.
2. `_scopes`, `_model`, `_positions`: scopes and bindings from one walk over the tree, name
   resolution through imports (Python's LEGB rules), and the positions of reported nodes.
3. `_tracing`: which functions JAX traces, through which transform, and with which static arguments.
4. `_values`, `_taint`, `_keys`, `_nnx`, `_globals`, `_imports`, `_facts`: value kinds, traced values,
   PRNG key flow, Flax NNX objects, module-level state, import spelling, and `Facts`, which computes
   them lazily, once per file.

`purelint._context.Context` is the only door from rules into this package.
"""
