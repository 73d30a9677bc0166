"""purelint: a JAX-aware purity linter built on libcst. Imports neither jax nor torch.

>>> from purelint import lint_source
>>> [d.code for d in lint_source("import jax\\n@jax.jit\\ndef f(x):\\n    print(x)\\n")]
['PUR001']

`purelint.probe()` is its run-time twin (a context manager; it imports jax when it starts).
"""

import importlib
from typing import TYPE_CHECKING

# Public name -> the module defining it. They load on first use (PEP 562), so that importing the package,
# or running `purelint --version`, costs no libcst.
_EXPORTS = {
    "lint_bytes": "purelint._api",
    "lint_file": "purelint._api",
    "lint_paths": "purelint._api",
    "lint_source": "purelint._api",
    "Config": "purelint._config",
    "ConfigError": "purelint._config",
    "load_config": "purelint._config",
    "Diagnostic": "purelint._diagnostic",
    "Edit": "purelint._diagnostic",
    "Fix": "purelint._diagnostic",
    "iter_files": "purelint._files",
    "all_rules": "purelint._registry",
    "get_rule": "purelint._registry",
    "Invalid": "purelint._rule",
    "Rule": "purelint._rule",
    "Valid": "purelint._rule",
    "decode_source": "purelint._source",
    # The run-time twin: a context manager that imports jax when it starts.
    "probe": "purelint._probe",
}

if TYPE_CHECKING:
    from purelint._api import lint_bytes, lint_file, lint_paths, lint_source
    from purelint._config import Config, ConfigError, load_config
    from purelint._diagnostic import Diagnostic, Edit, Fix
    from purelint._files import iter_files
    from purelint._registry import all_rules, get_rule
    from purelint._rule import Invalid, Rule, Valid
    from purelint._source import decode_source


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'purelint' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


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
