"""The registry: every rule class, listed once, by code (as Ruff's `codes.rs` lists its rules).

A rule joins by a line here, not by being imported. The rule modules are imported on first use, so
`import purelint` does not load them.
"""

from __future__ import annotations

from functools import lru_cache

from purelint._rule import Rule

__all__ = ["all_rules", "get_rule"]


def _rule_classes() -> tuple[type[Rule], ...]:
    """Every rule class, in code order."""
    from purelint.rules.branching import PythonBranchOnTraced
    from purelint.rules.concretization import ConcretizeTraced
    from purelint.rules.io import IOInTraced, LoggingInTraced, PrintInTraced
    from purelint.rules.jit_modules import JitOverModules
    from purelint.rules.keys import PrngKeyReuse
    from purelint.rules.loops import UnrolledLoop
    from purelint.rules.mutation import ArrayItemAssignment, MutateArgument, MutateModuleField, TorchInPlace
    from purelint.rules.noqa import UnusedNoqa
    from purelint.rules.randomness import ClockInTraced, GlobalNumpyTorchRandom, PythonRandom
    from purelint.rules.state import GlobalStatement, MutableGlobalRead, MutateModuleState, NnxStateUnderJaxJit
    from purelint.rules.syntax import SyntaxErrorRule
    from purelint.rules.torchisms import TorchIsm

    return (
        PrintInTraced,  # PUR001
        IOInTraced,  # PUR002
        LoggingInTraced,  # PUR003
        GlobalStatement,  # PUR101
        MutateModuleState,  # PUR102
        MutableGlobalRead,  # PUR103
        NnxStateUnderJaxJit,  # PUR104
        PythonRandom,  # PUR201
        GlobalNumpyTorchRandom,  # PUR202
        ClockInTraced,  # PUR203
        PrngKeyReuse,  # PUR204
        ArrayItemAssignment,  # PUR301
        MutateArgument,  # PUR302
        MutateModuleField,  # PUR303
        TorchInPlace,  # PUR304
        TorchIsm,  # PUR305
        PythonBranchOnTraced,  # PUR401
        ConcretizeTraced,  # PUR402
        JitOverModules,  # PUR403
        UnrolledLoop,  # PUR404
        UnusedNoqa,  # PUR900
        SyntaxErrorRule,  # PUR999
    )


@lru_cache(maxsize=1)
def _registry() -> dict[str, type[Rule]]:
    found: dict[str, type[Rule]] = {}
    for rule in _rule_classes():
        if rule.code in found:
            raise ValueError(f"duplicate rule code {rule.code}")
        found[rule.code] = rule
    return dict(sorted(found.items()))


def all_rules() -> dict[str, type[Rule]]:
    """Every rule class by code, sorted by code."""
    return dict(_registry())


def get_rule(code: str) -> type[Rule]:
    return _registry()[code]
