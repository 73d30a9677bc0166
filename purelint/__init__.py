"""purelint: a JAX-aware purity linter built on libcst. Imports neither jax nor torch.

>>> from purelint import lint_source
>>> [d.code for d in lint_source("import jax\\n@jax.jit\\ndef f(x):\\n    print(x)\\n")]
['PUR001']
"""

from purelint._api import lint_bytes, lint_file, lint_paths, lint_source
from purelint._config import Config, ConfigError, load_config
from purelint._diagnostic import Diagnostic, Edit, Fix
from purelint._files import iter_files
from purelint._registry import all_rules, get_rule
from purelint._rule import Invalid, Rule, Valid
from purelint._source import decode_source

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
]
