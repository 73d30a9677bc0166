"""Module-level state: which module-level objects functions mutate or rebind, which names the module
assigns more than once, and which never change in practice (absl flags) or change by design
(`jax.new_ref` Refs)."""

from __future__ import annotations

import libcst as cst

from purelint._analysis._cst import bound_names, first_attribute, mutation_root, mutation_targets
from purelint._analysis._model import SemanticModel
from purelint._analysis._scopes import FunctionInfo, Scope
from purelint._frameworks import FLAG_SOURCES, REF_CONSTRUCTORS

__all__ = ["is_flags", "is_ref", "module_mutated", "module_reassigned"]


def is_ref(name: str, scope: Scope, model: SemanticModel) -> bool:
    """A name bound to a mutable `jax.new_ref(...)` Ref (reads and writes happen at run time)."""
    return bool(model.value_qualnames(name, scope) & REF_CONSTRUCTORS)


def is_flags(name: str, model: SemanticModel) -> bool:
    """A module-level name bound to absl's `FLAGS` or a `flags.DEFINE_*` holder: set once at start-up."""
    return any(q.startswith(FLAG_SOURCES) for q in model.value_qualnames(name, model.module_scope))


def module_mutated(model: SemanticModel) -> set[str]:
    """Module-level objects some function mutates in place: "G" for the whole object
    (`G[k] = v`, `G.append(x)`), "G.attr" for one attribute (`G.attr = v`, `G.attr.append(x)`).
    Objects set once at start-up (absl flags) are left out."""
    mutated = set()
    for node, scope, parent, _top, _store in model.events:
        if isinstance(scope, FunctionInfo):
            for target in mutation_targets(node, parent):
                root = mutation_root(target)
                if root is None or model.binding_kind(root.value, scope) != "module" or is_flags(root.value, model):
                    continue
                if is_ref(root.value, model.module_scope, model):
                    continue
                attribute = first_attribute(target, root)
                mutated.add(f"{root.value}.{attribute}" if attribute else root.value)
    return mutated


def module_reassigned(model: SemanticModel) -> set[str]:
    """Module-level names assigned by more than one top-level statement (`g = 10.` ... `g = 20.`):
    a traced function reading them keeps the value it saw when it was traced."""
    counts: dict[str, int] = {}
    for statement in model.module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                targets = []
                if isinstance(small, cst.Assign):
                    targets = [t.target for t in small.targets]
                elif isinstance(small, (cst.AugAssign, cst.AnnAssign)) and getattr(small, "value", None) is not None:
                    targets = [small.target]
                for target in targets:
                    for name in bound_names(target):
                        counts[name] = counts.get(name, 0) + 1
    return {name for name, count in counts.items() if count > 1 and not is_flags(name, model)}
