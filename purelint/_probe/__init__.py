"""`purelint probe`: the linter's run-time twin.

It runs a program with JAX's transformations watched and reports each impurity that actually
happened, with the static rules' codes: effects while tracing (output, IO, logging, hidden random
state, clocks, argument and global mutation), compiled programs gone stale because a global they
read changed, and PRNG keys consumed twice. See docs/purelint-probe.md.

Importing this package imports neither JAX nor NumPy; starting a probe does. `probe` and
`ProbeError` load on first use (PEP 562): pytest imports the plugin, a submodule, in every run.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from purelint._probe._control import ProbeError, probe

__all__ = ["ProbeError", "main", "probe"]


def __getattr__(name: str) -> object:
    if name not in ("ProbeError", "probe"):
        raise AttributeError(f"module 'purelint._probe' has no attribute {name!r}")
    from purelint._probe import _control

    value = getattr(_control, name)
    globals()[name] = value
    return value


def main(argv: list[str] | None = None) -> int:
    """`purelint probe ...` (the command line lives in `purelint._probe._cli`)."""
    from purelint._probe._cli import main as cli_main

    return cli_main(argv)
