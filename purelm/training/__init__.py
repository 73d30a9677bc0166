"""Training runs from Python: typed, versioned configs and a `Run` to create, resume, step, evaluate and save.

The `purelm train` command is argument parsing on top of this module.

>>> from purelm.training import DataConfig, ModelConfig, Run, RunConfig, TrainingConfig
>>> config = TrainingConfig(
...     model=ModelConfig(embed_dim=32, hidden_dim=128),
...     data=DataConfig(paths=("notes.txt",), batch_size=16, seq_len=64),
...     run=RunConfig(steps=500, eval_every=100),
... )
>>> run = Run.create(config, "runs/notes")         # doctest: +SKIP
>>> result = run.train()                           # doctest: +SKIP
>>> run = Run.resume("runs/notes", changes={"run": {"steps": 1000}})  # same run, further  # doctest: +SKIP
>>> run.train().status                             # doctest: +SKIP
'done'
"""

import importlib
from typing import TYPE_CHECKING

from purelm.training._config import (
    CONFIG_VERSION,
    RECIPES,
    ConfigError,
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    ScheduleConfig,
    TrainingConfig,
)
from purelm.training._config_file import config_toml, read_config_file
from purelm.training._optimizer import make_optimizer

# The names defined with the training loop (equinox, the model, the optimizers) and with the run directory,
# imported on first use (PEP 562): `purelm eval` reads a run's configuration without loading them. The run
# directory's modules sit above this package's (they import it), so this is the only place they meet.
_LAZY = {
    "BEST_DIR": "purelm._rundir._format",
    "METRICS_FILE": "purelm._rundir._format",
    "PLOT_FILE": "purelm._rundir._format",
    "RUN_FORMAT": "purelm._rundir._format",
    "Callback": "purelm.training._callback",
    "Console": "purelm.training._console",
    "CSVLogger": "purelm._rundir._loggers",
    "TensorBoardLogger": "purelm._rundir._loggers",
    "Evaluation": "purelm._data._metrics",
    "Result": "purelm.training._loop",
    "Run": "purelm._rundir._run",
    "RunDirectoryError": "purelm._rundir._ownership",
    "SaveError": "purelm.training._loop",
    "TrainingError": "purelm.training._loop",
    "load_run_model": "purelm._rundir._format",
    "read_metrics": "purelm._rundir._format",
    "score": "purelm.training._evaluate",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'purelm.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


if TYPE_CHECKING:
    from purelm._data._metrics import Evaluation
    from purelm._rundir._format import BEST_DIR, METRICS_FILE, PLOT_FILE, RUN_FORMAT, load_run_model, read_metrics
    from purelm._rundir._loggers import CSVLogger, TensorBoardLogger
    from purelm._rundir._ownership import RunDirectoryError
    from purelm._rundir._run import Run
    from purelm.training._callback import Callback
    from purelm.training._console import Console
    from purelm.training._evaluate import score
    from purelm.training._loop import Result, SaveError, TrainingError

__all__ = [
    "BEST_DIR",
    "CONFIG_VERSION",
    "METRICS_FILE",
    "PLOT_FILE",
    "RECIPES",
    "RUN_FORMAT",
    "CSVLogger",
    "Callback",
    "ConfigError",
    "Console",
    "DataConfig",
    "Evaluation",
    "ModelConfig",
    "OptimConfig",
    "Result",
    "Run",
    "RunConfig",
    "RunDirectoryError",
    "SaveError",
    "ScheduleConfig",
    "TensorBoardLogger",
    "TrainingConfig",
    "TrainingError",
    "config_toml",
    "load_run_model",
    "make_optimizer",
    "read_config_file",
    "read_metrics",
    "score",
]
