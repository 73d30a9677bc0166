"""Typed, versioned configuration of a training run: model, data, optimisation, schedule and the run itself.

Every field is stored in the run's checkpoint (`TrainingConfig.to_json`), so a resumed run continues the
same run. `TrainingConfig.changes` tells which differences a resume may make (more steps, a new lr, ...)
and which it refuses.

>>> config = TrainingConfig(model=ModelConfig(hidden_dim=128), run=RunConfig(steps=500))
>>> TrainingConfig.from_json(config.to_json()) == config
True
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from purelm._data._columns import LAYOUTS as EVAL_LAYOUTS

CONFIG_VERSION = 1
CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine")
DTYPES = ("float32", "bfloat16")
INITS = ("purelm", "word_language_model")
# How training windows are read and scored, and which tokens validation averages over.
WINDOWS = ("purelm", "word_language_model")
# An interval given in epochs: resolved to the run's windows per epoch when the run is created.
EPOCH = "epoch"
# word_language_model's evaluation layout: eval_batch_size 10, and its default bptt of 35 tokens.
WORD_EVAL_BATCH_SIZE, WORD_EVAL_SEQ_LEN = 10, 35


class ConfigError(ValueError):
    """An impossible or unknown setting, named by its place in the configuration (`model.embed_dim`); the
    `purelm train` command names its option instead (`--embed-dim`)."""


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _positive(section: _Section, name: str, kind: type = int, *, zero: bool = False) -> None:
    value = getattr(section, name)
    kinds = (int, float) if kind is float else (int,)
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value > 0 or (zero and value == 0))
    what = "non-negative" if zero else "positive"
    _need(ok, f"{section.section}.{name} must be a finite {what} number, got {value!r}")


def _boolean(section: _Section, name: str) -> None:
    value = getattr(section, name)
    _need(isinstance(value, bool), f"{section.section}.{name} must be true or false, got {value!r}")


def _one_of(section: _Section, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(section, name)
    _need(value in choices, f"{section.section}.{name} must be one of {', '.join(choices)}, got {value!r}")


class _Section:
    """JSON round trip shared by the config sections: unknown keys are refused, missing ones take defaults."""

    section: ClassVar[str]

    def to_json(self) -> dict:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def names(cls) -> list[str]:
        """The section's settings, in the order they are declared."""
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def check_names(cls, data: dict) -> None:
        """Raise `ConfigError` naming the first key of `data` that is not one of the section's settings."""
        unknown = [name for name in data if name not in cls.names()]
        _need(
            not unknown,
            f"unknown setting {cls.section}.{unknown[0] if unknown else ''}; "
            f"the {cls.section} settings are {', '.join(cls.names())}",
        )

    @classmethod
    def from_json(cls, data: dict):
        _need(isinstance(data, dict), f"the {cls.section} settings must be a JSON object, got {data!r}")
        cls.check_names(data)
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclasses.dataclass(frozen=True)
class ModelConfig(_Section):
    """The `purelm.LSTMLM` a run trains (`vocab_size` comes from the tokenizer).

    >>> model = ModelConfig(embed_dim=8, hidden_dim=16).build(jax.random.key(0))  # doctest: +SKIP
    """

    section: ClassVar[str] = "model"
    vocab_size: int = 256
    embed_dim: int = 64
    hidden_dim: int = 256
    num_layers: int = 1
    cell: str = "lstm"
    tie_embeddings: bool = False
    output_bias: bool | None = None
    dropout: float = 0.0
    dtype: str = "float32"
    init: str = "purelm"
    init_range: float | None = None
    learn_initial_state: bool = True

    def __post_init__(self):
        for name in ("vocab_size", "embed_dim", "hidden_dim", "num_layers"):
            _positive(self, name)
        _one_of(self, "cell", CELLS)
        _one_of(self, "init", INITS)
        if self.init_range is not None:
            _positive(self, "init_range", float)
        _boolean(self, "learn_initial_state")
        _one_of(self, "dtype", DTYPES)
        _need(
            isinstance(self.dropout, int | float) and 0 <= self.dropout < 1,
            f"model.dropout must be in [0, 1), got {self.dropout!r}",
        )
        _need(
            not self.tie_embeddings or self.embed_dim == self.hidden_dim,
            f"model.tie_embeddings needs model.embed_dim equal to model.hidden_dim, "
            f"got {self.embed_dim} and {self.hidden_dim}",
        )

    def kwargs(self) -> dict:
        """The keyword arguments of `purelm.LSTMLM` (defaults left out, so older models build unchanged)."""
        kwargs: dict[str, Any] = {"num_layers": self.num_layers, "tie_embeddings": self.tie_embeddings}
        if self.cell != "lstm":
            kwargs["cell"] = self.cell
        if self.output_bias is not None:
            kwargs["output_bias"] = self.output_bias
        if self.dropout:
            kwargs["dropout"] = float(self.dropout)
        if self.dtype != "float32":
            kwargs["dtype"] = jnp.dtype(self.dtype)
        if self.init != "purelm":
            kwargs["init"] = self.init
        if self.init_range is not None:
            kwargs["init_range"] = float(self.init_range)
        if not self.learn_initial_state:
            kwargs["learn_initial_state"] = False
        return kwargs

    def build(self, key):
        """A freshly initialised `purelm.LSTMLM` with these settings."""
        from purelm._model._lstmlm import LSTMLM

        return LSTMLM(self.vocab_size, self.embed_dim, self.hidden_dim, key=key, **self.kwargs())

    def template(self):
        """The model's structure, shapes and dtypes, without computing any weights."""
        import equinox as eqx

        # The key is made inside the abstract trace too: an eager key would compile programs for nothing.
        return eqx.filter_eval_shape(lambda: self.build(jax.random.key(0)))

    @classmethod
    def of(cls, model) -> ModelConfig:
        """The settings that rebuild `model`'s structure."""
        return cls(
            vocab_size=model.vocab_size,
            embed_dim=model.embed_dim,
            hidden_dim=model.hidden_dim,
            num_layers=model.num_layers,
            cell=getattr(model, "cell", "lstm"),
            tie_embeddings=model.tie_embeddings,
            output_bias=_output_bias(model),
            dropout=float(getattr(model, "dropout", 0.0)),
            dtype=str(model.embedding.dtype),
            learn_initial_state=bool(getattr(model, "learn_initial_state", True)),
        )


def _output_bias(model) -> bool | None:
    if not model.tie_embeddings:
        return None
    head_params = getattr(model, "head_params", None)
    if head_params is None:
        return None
    return True if head_params()[1] is not None else None


@dataclasses.dataclass(frozen=True)
class DataConfig(_Section):
    """What a run reads and how: paths (None: the default corpus), tokenizer, batch layout, validation.

    `eval_tokens` limits the validation tokens scored during training (None: all of them);
    `eval_batch_size` and `eval_seq_len` lay them out (None: the training batch size, or 10 for word
    runs as word_language_model does; the training sequence length).

    `windows="word_language_model"` reads each training window as their `get_batch` does: `seq_len + 1`
    tokens, the first `seq_len` read and the last `seq_len` scored (`purelm.training.next_token_loss`);
    "purelm" reads and scores the same `seq_len` tokens (`batch_loss`). `eval_layout="word_language_model"`
    averages validation over exactly the tokens their `evaluate()` scores (`purelm.evaluate`).
    """

    section: ClassVar[str] = "data"
    paths: tuple[str, ...] | None = None
    include: str | None = None
    tokenizer: str = "byte"
    batch_size: int = 32
    seq_len: int = 64
    eval_tokens: int | None = 128 * 1024
    eval_batch_size: int | None = None
    eval_seq_len: int | None = None
    windows: str = "purelm"
    eval_layout: str = "purelm"

    def __post_init__(self):
        _one_of(self, "tokenizer", ("byte", "word"))
        _one_of(self, "windows", WINDOWS)
        _one_of(self, "eval_layout", EVAL_LAYOUTS)
        _positive(self, "batch_size")
        _positive(self, "seq_len")
        for name in ("eval_tokens", "eval_batch_size", "eval_seq_len"):
            if getattr(self, name) is not None:
                _positive(self, name)

    def spec(self):
        from purelm._data._corpus import DataSpec

        return DataSpec(paths=self.paths, include=self.include)

    @property
    def window_overlap(self) -> int:
        """Tokens a training window shares with the next: 1 with word_language_model's windows."""
        return 1 if self.windows == "word_language_model" else 0

    def eval_shape(self) -> tuple[int, int]:
        """`(batch_size, seq_len)` for validation."""
        batch = self.eval_batch_size or (WORD_EVAL_BATCH_SIZE if self.tokenizer == "word" else self.batch_size)
        return batch, self.eval_seq_len or self.seq_len

    @classmethod
    def untrained(cls, tokenizer: str) -> DataConfig:
        """The evaluation settings of a model no run configuration comes with (from `convert-torch`): the
        defaults, and for a word-level model word_language_model's evaluation layout (10 columns of
        35-token windows)."""
        return cls(tokenizer=tokenizer, eval_seq_len=WORD_EVAL_SEQ_LEN if tokenizer == "word" else None)


@dataclasses.dataclass(frozen=True)
class OptimConfig(_Section):
    """The optimizer: `sgd` (torch's SGD; word_language_model's update), `adam`, or `adamw` (decoupled
    weight decay; 0.01 unless given, torch's default), gradient clipping by global norm (0: off).

    `torch_bias_grad=True` trains each cell's folded bias as torch trains the two it stands for (`bias_ih`
    and `bias_hh` get the same gradient, both count in the clipped norm, and their sum moves twice as far):
    the bias gradient is scaled by sqrt(2) before clipping and again after, so an SGD run takes torch's
    steps exactly.

    The learning rate is optimizer *state* (`optax.inject_hyperparams`), so plateau annealing can change it
    and it is saved in the checkpoint.
    """

    section: ClassVar[str] = "optim"
    optimizer: str = "adam"
    lr: float = 3e-3
    weight_decay: float | None = None
    grad_clip: float = 1.0
    torch_bias_grad: bool = False

    def __post_init__(self):
        _one_of(self, "optimizer", OPTIMIZERS)
        _boolean(self, "torch_bias_grad")
        _positive(self, "lr", float)
        if self.weight_decay is not None:
            _positive(self, "weight_decay", float, zero=True)
        _positive(self, "grad_clip", float, zero=True)

    def decay(self) -> float:
        if self.weight_decay is not None:
            return float(self.weight_decay)
        return 0.01 if self.optimizer == "adamw" else 0.0


@dataclasses.dataclass(frozen=True)
class ScheduleConfig(_Section):
    """The learning-rate multiplier per step, times the (state) learning rate.

    - `kind="constant"`: 1 after a linear `warmup` of that many steps.
    - `kind="cosine"`: warmup, then a cosine from 1 down to `min_ratio` at step `decay_steps` (the run's
      target step when it was created), flat after it.
    - `anneal > 0`: word_language_model's plateau rule: after a validation that does not improve on the
      best, divide the learning rate by `anneal` (their value: 4).
    """

    section: ClassVar[str] = "schedule"
    kind: str = "constant"
    warmup: int = 0
    decay_steps: int | None = None
    min_ratio: float = 0.1
    anneal: float = 0.0

    def __post_init__(self):
        _one_of(self, "kind", SCHEDULES)
        _positive(self, "warmup", zero=True)
        if self.decay_steps is not None:
            _positive(self, "decay_steps")
        _need(
            isinstance(self.min_ratio, int | float) and 0 <= self.min_ratio <= 1,
            f"schedule.min_ratio must be in [0, 1], got {self.min_ratio!r}",
        )
        _positive(self, "anneal", float, zero=True)
        _need(
            self.anneal == 0 or self.anneal > 1,
            f"schedule.anneal must be above 1 (the lr is divided by it), got {self.anneal}",
        )

    def multiplier(self, count):
        """The schedule's factor at optimizer step `count` (traced)."""
        count = jnp.asarray(count, jnp.float32)
        factor = jnp.minimum(1.0, (count + 1) / self.warmup) if self.warmup else jnp.ones(())
        if self.kind == "cosine":
            span = max(1, (self.decay_steps or 1) - self.warmup)
            progress = jnp.clip((count - self.warmup) / span, 0.0, 1.0)
            factor = factor * (self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + jnp.cos(jnp.pi * progress)))
        return factor


@dataclasses.dataclass(frozen=True)
class RunConfig(_Section):
    """The run: target step, intervals (0 turns evaluation off), steps per compiled call, seed, devices,
    early stopping (stop after `early_stop` validations without improvement; 0: never), keeping the best
    model by validation in `DIR/best/`, and divergence detection (a non-finite loss, or a logged mean loss
    above `divergence` times a uniform guess's, stops the run; 0 checks only for non-finite values).

    Budgets in epochs (passes over the training windows): `epochs` sets the target step to that many
    epochs, and `eval_every` or `checkpoint_every` may be `"epoch"`; both are turned into steps when the run
    is created or resumed (`in_steps`), so a stored configuration holds steps."""

    section: ClassVar[str] = "run"
    steps: int = 1000
    eval_every: int | str = 200
    log_every: int = 10
    checkpoint_every: int | str = 200
    steps_per_call: int = 10
    seed: int = 0
    devices: int | None = None
    early_stop: int = 0
    keep_best: bool = True
    divergence: float = 3.0
    epochs: int | None = None

    def __post_init__(self):
        for name in ("steps", "log_every", "steps_per_call"):
            _positive(self, name)
        for name in ("seed", "early_stop"):
            _positive(self, name, zero=True)
        if self.checkpoint_every != EPOCH:
            _positive(self, "checkpoint_every")
        if self.eval_every != EPOCH:
            _positive(self, "eval_every", zero=True)
        if self.epochs is not None:
            _positive(self, "epochs")
        if self.devices is not None:
            _positive(self, "devices")
        _boolean(self, "keep_best")
        _positive(self, "divergence", float, zero=True)

    def interval(self, name: str) -> int:
        """`eval_every` or `checkpoint_every` in steps (a run's settings hold steps once it has started)."""
        value = getattr(self, name)
        _need(isinstance(value, int), f"run.{name}={value!r} is counted in steps once the run starts (in_steps)")
        return value

    def in_steps(self, windows_per_epoch: int) -> RunConfig:
        """These settings with every budget given in epochs turned into steps."""
        changes: dict[str, Any] = {}
        if self.epochs is not None:
            changes.update(steps=self.epochs * windows_per_epoch, epochs=None)
        for name in ("eval_every", "checkpoint_every"):
            if getattr(self, name) == EPOCH:
                changes[name] = windows_per_epoch
        return dataclasses.replace(self, **changes)


SECTION_TYPES: dict[str, type[_Section]] = {
    section.section: section for section in (ModelConfig, DataConfig, OptimConfig, ScheduleConfig, RunConfig)
}

# What a resume may change, by section: everything else must match the checkpoint.
_RESUMABLE = {
    "run": {
        "steps",
        "eval_every",
        "log_every",
        "checkpoint_every",
        "steps_per_call",
        "devices",
        "early_stop",
        "keep_best",
        "divergence",
        "epochs",
    },
    "optim": {"lr"},
    # Moved data is fine: the tokens are checked against the checkpoint's fingerprint.
    "data": {"eval_tokens", "paths", "include"},
}


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Everything a training run is defined by; `version` is the config format's version.

    >>> TrainingConfig().run.steps
    1000
    """

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    run: RunConfig = RunConfig()
    version: int = CONFIG_VERSION

    SECTIONS: ClassVar[tuple[str, ...]] = ("model", "data", "optim", "schedule", "run")

    def to_json(self) -> dict:
        return {"version": self.version, **{name: getattr(self, name).to_json() for name in self.SECTIONS}}

    @classmethod
    def from_json(cls, data: dict) -> TrainingConfig:
        """The configuration `to_json` wrote (a checkpoint's `config`): its `version` is required."""
        _need(isinstance(data, dict), f"a run configuration is a JSON object, got {type(data).__name__}")
        version = data.get("version")
        _need(
            version is not None,
            f'the run configuration has no "version"; this purelm reads version {CONFIG_VERSION}',
        )
        _need(
            version == CONFIG_VERSION,
            f"the run configuration has version {version!r}; this purelm reads version {CONFIG_VERSION}",
        )
        cls.check_sections(data, extra=("version",))
        return cls(**{name: SECTION_TYPES[name].from_json(data.get(name, {})) for name in cls.SECTIONS})

    @classmethod
    def check_sections(cls, sections: dict, *, extra: tuple[str, ...] = ()) -> None:
        """Raise `ConfigError` naming the first section, or setting, of `sections` that does not exist."""
        unknown = [name for name in sections if name not in cls.SECTIONS + extra]
        _need(
            not unknown,
            f"unknown section {unknown[0] if unknown else ''!r}; the sections are {', '.join(cls.SECTIONS)}",
        )
        for name, fields in sections.items():
            if name in cls.SECTIONS:
                _need(isinstance(fields, dict), f"the {name} section must map settings to values, got {fields!r}")
                SECTION_TYPES[name].check_names(fields)

    @classmethod
    def new(cls, **sections: dict) -> TrainingConfig:
        """The defaults with some fields changed, as `replace`, for a new run: a word-level run validates on
        its whole validation split unless `eval_tokens` is given, as word_language_model does.

        >>> TrainingConfig.new(data={"tokenizer": "word"}).data.eval_tokens is None
        True
        """
        data = sections.get("data", {})
        if data.get("tokenizer") == "word" and "eval_tokens" not in data:
            sections = sections | {"data": data | {"eval_tokens": None}}
        return cls().replace(**sections)

    @classmethod
    def from_recipe(cls, name: str, **sections: dict) -> TrainingConfig:
        """A recipe's settings (`RECIPES`) with some changed, for a new run.

        >>> config = TrainingConfig.from_recipe("word_language_model", model={"embed_dim": 32, "hidden_dim": 32})
        >>> config.optim.lr, config.run.epochs, config.model.hidden_dim
        (20.0, 40, 32)
        """
        _need(name in RECIPES, f"unknown recipe {name!r}; the recipes are {', '.join(RECIPES)}")
        return cls.new(**with_changes(RECIPES[name], sections))

    def replace(self, **sections: dict) -> TrainingConfig:
        """A copy with some fields changed: `config.replace(run={"steps": 2000}, optim={"lr": 1.0})`; an unknown
        section or setting raises `ConfigError` naming the valid ones."""
        self.check_sections(sections)
        return dataclasses.replace(
            self, **{name: dataclasses.replace(getattr(self, name), **fields) for name, fields in sections.items()}
        )

    def changes(self, new: TrainingConfig) -> dict[str, dict]:
        """The fields of `new` that differ from this (stored) config, by section; raises `ConfigError` naming
        the first difference a resume may not make."""
        changed: dict[str, dict] = {}
        for name in self.SECTIONS:
            old_section, new_section = getattr(self, name), getattr(new, name)
            for field in dataclasses.fields(old_section):
                old, value = getattr(old_section, field.name), getattr(new_section, field.name)
                if old == value:
                    continue
                if field.name not in _RESUMABLE.get(name, ()):
                    raise ConfigError(
                        f"{name}.{field.name}={_show(value)} differs from the run's {_show(old)}; "
                        "a resumed run keeps it"
                    )
                changed.setdefault(name, {})[field.name] = value
        return changed


# Presets of settings, by section, that `TrainingConfig.from_recipe` (and `purelm train --recipe`) start from.
RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    # pytorch/examples' word_language_model `main.py` with its default arguments: a 2-layer LSTM of 200 units,
    # their initialisation and zero initial state, SGD at lr 20 with the gradient clipped at 0.25 (their two
    # biases per cell trained as torch trains them), dropout 0.2, 20 streams of 35-token windows read as
    # `get_batch` reads them, the lr divided by 4 after an epoch that does not improve on the best
    # validation, 40 epochs, validation on all of valid.txt in 10 columns as their `evaluate()`. Their
    # `--tied` is `purelm train --tied` (their default is untied).
    "word_language_model": {
        "model": {
            "cell": "lstm",
            "num_layers": 2,
            "embed_dim": 200,
            "hidden_dim": 200,
            "dropout": 0.2,
            "init": "word_language_model",
            "learn_initial_state": False,
        },
        "data": {
            "tokenizer": "word",
            "batch_size": 20,
            "seq_len": 35,
            "eval_tokens": None,
            "eval_batch_size": WORD_EVAL_BATCH_SIZE,
            "eval_seq_len": WORD_EVAL_SEQ_LEN,
            "windows": "word_language_model",
            "eval_layout": "word_language_model",
        },
        "optim": {"optimizer": "sgd", "lr": 20.0, "weight_decay": 0.0, "grad_clip": 0.25, "torch_bias_grad": True},
        "schedule": {"kind": "constant", "warmup": 0, "anneal": 4.0},
        "run": {"epochs": 40, "eval_every": EPOCH, "checkpoint_every": EPOCH, "log_every": 200, "early_stop": 0},
    },
}


def with_changes(base: dict[str, dict], changes: dict[str, dict]) -> dict[str, dict]:
    """Settings by section, `changes` over `base`; a target given one way (`run.steps` or `run.epochs`)
    replaces the other.

    >>> with_changes({"run": {"epochs": 40, "seed": 1}}, {"run": {"steps": 100}})
    {'run': {'seed': 1, 'steps': 100}}
    """
    merged = {name: dict(fields) for name, fields in base.items()}
    for name, fields in changes.items():
        section = merged.setdefault(name, {})
        for given, other in (("steps", "epochs"), ("epochs", "steps")):
            if name == "run" and given in fields:
                section.pop(other, None)
        section.update(fields)
    return merged


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(value)
    return str(value)
