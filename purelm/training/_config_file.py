"""Run configurations as TOML files: `purelm train --config run.toml` reads one, `purelm config RUN` writes the
configuration a run directory stores, so that a run can be replayed.

    [model]
    embed_dim = 32
    hidden_dim = 128

    [data]
    paths = ["data/wikitext-2"]
    tokenizer = "word"

    [optim]
    optimizer = "sgd"
    lr = 20.0

The sections and settings are `TrainingConfig`'s (`model`, `data`, `optim`, `schedule`, `run`), named as in
Python and in a checkpoint's `config`; a setting left out takes its default, and an unknown section or
setting is an error that names the valid ones. Relative `data.paths` are relative to the file's directory.
TOML has no null: a setting whose value is None is left out, except `data.eval_tokens`, whose None (score
every validation token) is written `"all"`. A top-level `version` is optional.

>>> sections = read_config_file("run.toml")        # doctest: +SKIP
>>> config = TrainingConfig.new(**sections)         # doctest: +SKIP
>>> print(config_toml(config))                      # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from pathlib import Path
from typing import Any

from purelm.training._config import CONFIG_VERSION, SECTION_TYPES, ConfigError, TrainingConfig

# The TOML spelling of a None that is not the default.
_ALL = {("data", "eval_tokens"): "all"}
# Settings a run derives (the vocabulary from the data; the cosine's length from the target step when it was
# created), left out of a replayed configuration unless they differ from what a new run would derive.
_DERIVED = {("model", "vocab_size")}


def read_config_file(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The settings of the TOML file at `path`, by section, checked and typed (what `TrainingConfig.new` takes).

    Raises `ConfigError` (an unknown section or setting, a value of the wrong type, TOML that does not parse)
    with a message that starts with the path.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            document = tomllib.load(f)
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None
    try:
        version = document.pop("version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise ConfigError(f"version {version!r}: this purelm reads configuration version {CONFIG_VERSION}")
        TrainingConfig.check_sections(document)
        sections = {name: _typed(name, fields) for name, fields in document.items()}
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    paths = sections.get("data", {}).get("paths")
    if paths is not None:
        sections["data"]["paths"] = tuple(str((path.parent / p).absolute()) for p in paths)
    return sections


def _typed(section: str, fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` as the section's dataclass takes them: ints as floats where a float is wanted, lists as tuples,
    `"all"` as None; a value of another type raises `ConfigError`."""
    section_type: Any = SECTION_TYPES[section]  # a dataclass
    types = {field.name: str(field.type) for field in dataclasses.fields(section_type)}
    typed = {}
    for name, value in fields.items():
        kind, where = types[name], f"{section}.{name}"
        if _ALL.get((section, name)) == value:
            value = None
        elif kind.startswith("tuple"):
            value = (value,) if isinstance(value, str) else value
            if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
                raise ConfigError(f"{where} must be a string or a list of strings, got {value!r}")
            value = tuple(value)
        elif kind.startswith("bool"):
            if not isinstance(value, bool):
                raise ConfigError(f"{where} must be true or false, got {value!r}")
        elif kind.startswith("float"):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"{where} must be a number, got {value!r}")
            value = float(value)
        elif kind.startswith("int"):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{where} must be an integer, got {value!r}")
        elif not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        typed[name] = value
    return typed


def config_toml(config: TrainingConfig, *, header: str = "") -> str:
    """`config` as a TOML file that `read_config_file` reads back to the same configuration (for a new run:
    derived settings are left out); `header` becomes comment lines at the top."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines.append(f"version = {CONFIG_VERSION}")
    for section in TrainingConfig.SECTIONS:
        lines += ["", f"[{section}]"]
        values = getattr(config, section)
        for name, value in values.to_json().items():
            derived = (section, name) in _DERIVED or (
                (section, name) == ("schedule", "decay_steps") and value == config.run.steps
            )
            if derived:
                continue
            if value is None:
                if (section, name) in _ALL:
                    lines.append(f"{name} = {_toml(_ALL[section, name])}")
                continue
            lines.append(f"{name} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    # A JSON string is a TOML basic string: the same quotes and escapes.
    return json.dumps(str(value), ensure_ascii=False)
