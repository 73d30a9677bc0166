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

from purelm.training._config import (
    CONFIG_VERSION,
    ConfigError,
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    ScheduleConfig,
    TrainingConfig,
    make_optimizer,
)
from typing import TYPE_CHECKING

# The names defined in purelm.training._run (the training loop: equinox, the model, the optimizers),
# imported on first use (PEP 562): `purelm eval` reads a run's configuration without loading them.
_RUN_NAMES = frozenset({
    "BEST_DIR", "METRICS_FILE", "PLOT_FILE", "RUN_FORMAT", "Callback", "Evaluation", "Result", "Run",
    "TrainingError", "load_run_model", "read_metrics", "score",
})


def __getattr__(name: str):
    if name not in _RUN_NAMES:
        raise AttributeError(f"module 'purelm.training' has no attribute {name!r}")
    from purelm.training import _run

    value = getattr(_run, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


if TYPE_CHECKING:
    from purelm.training._run import (
        BEST_DIR,
        METRICS_FILE,
        PLOT_FILE,
        RUN_FORMAT,
        Callback,
        Evaluation,
        Result,
        Run,
        TrainingError,
        load_run_model,
        read_metrics,
        score,
    )

__all__ = [
    "BEST_DIR",
    "CONFIG_VERSION",
    "METRICS_FILE",
    "PLOT_FILE",
    "RUN_FORMAT",
    "Callback",
    "ConfigError",
    "DataConfig",
    "Evaluation",
    "ModelConfig",
    "OptimConfig",
    "Result",
    "Run",
    "RunConfig",
    "ScheduleConfig",
    "TrainingConfig",
    "TrainingError",
    "load_run_model",
    "make_optimizer",
    "read_metrics",
    "score",
]
