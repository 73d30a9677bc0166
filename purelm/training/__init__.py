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
