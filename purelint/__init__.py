"""purelint: a JAX-aware purity linter built on libcst. Imports neither jax nor torch.

>>> from purelint import lint_source
>>> [d.code for d in lint_source("import jax\\n@jax.jit\\ndef f(x):\\n    print(x)\\n")]
['PUR001']

`purelint.probe()` is its run-time twin (a context manager; it imports jax when it starts).
"""

from typing import Any

from purelint._api import decode_source, lint_bytes, lint_file, lint_paths, lint_source
from purelint._config import Config, ConfigError, load_config
from purelint._diagnostic import Diagnostic, Edit, Fix
from purelint._files import iter_files
from purelint._rule import Invalid, Rule, Valid, all_rules, get_rule

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "Diagnostic",
    "Edit",
    "Fix",
    "Invalid",
    "Rule",
    "Valid",
    "__version__",
    "all_rules",
    "decode_source",
    "get_rule",
    "iter_files",
    "lint_bytes",
    "lint_file",
    "lint_paths",
    "lint_source",
    "load_config",
    "probe",
]


def __getattr__(name: str) -> Any:
    # `probe` is imported on first use (PEP 562): `import purelint` stays free of the probe's modules.
    if name == "probe":
        from purelint._probe import probe

        return probe
    raise AttributeError(f"module 'purelint' has no attribute {name!r}")
