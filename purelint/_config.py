"""Configuration: `[tool.purelint]` in the nearest pyproject.toml, overridden by the command line."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["Config", "ConfigError", "find_config", "glob_match", "glob_regex", "load_config"]


class ConfigError(ValueError):
    """A configuration problem, reported as one line and exit code 2."""


def _codes(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,]+", value) if v]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} must be a list of rule codes")
    return tuple(v.strip().upper() for v in value)


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} must be a list of strings")
    return tuple(value)


def _scope(value: Any, key: str) -> str:
    if value not in ("traced", "all"):
        raise ConfigError(f'{key} must be "traced" or "all", not {value!r}')
    return value


def _per_file(value: Any, key: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a table of glob = [codes]")
    return tuple((glob, _codes(codes, f"{key}.{glob!r}")) for glob, codes in value.items())


def _positive_int(value: Any, key: str) -> int:
    if type(value) is not int or value < 1:
        raise ConfigError(f"{key} must be a positive integer")
    return value


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false")
    return value


# pyproject key -> (Config field, parser). New settings need one line here and one field below.
_KEYS = {
    "select": ("select", _codes),
    "ignore": ("ignore", _codes),
    "extend-select": ("extend_select", _codes),
    "per-file-ignores": ("per_file_ignores", _per_file),
    "exclude": ("exclude", _strings),
    "scope": ("scope", _scope),
    "extra-transforms": ("extra_transforms", _strings),
    "respect-gitignore": ("respect_gitignore", _bool),
    "max-unrolled-loop": ("max_unrolled_loop", _positive_int),
}


@dataclass(frozen=True)
class Config:
    """Settings for one run. `select=None` means the default-on rules.

    >>> Config(select=("PUR0",), ignore=("PUR003",)).enabled_codes()
    frozenset({'PUR001', 'PUR002'})
    """

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] = ()
    scope: str = "traced"
    extra_transforms: tuple[str, ...] = ()
    respect_gitignore: bool = True
    max_unrolled_loop: int = 16  # PUR404: longest literal `range(N)` loop allowed in traced code
    force_exclude: bool = False
    # The command line's (select, extend-select, ignore): a layer over the file's, as in Ruff.
    cli_selection: tuple[tuple[str, ...] | None, tuple[str, ...], tuple[str, ...]] = (None, (), ())
    # Directory that relative globs are matched against (the pyproject's directory).
    root: Path = field(default_factory=Path.cwd, compare=False)
    source: Path | None = field(default=None, compare=False)

    @classmethod
    def from_mapping(cls, table: dict[str, Any], *, root: Path | None = None, source: Path | None = None) -> Config:
        """Build a Config from a `[tool.purelint]` table (keys as in pyproject.toml)."""
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in _KEYS:
                raise ConfigError(f"unknown setting {key!r} in [tool.purelint]")
            name, parse = _KEYS[key]
            values[name] = parse(value, key)
        config = cls(**values, root=root or Path.cwd(), source=source)
        config.validate()
        return config

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (CLI overrides); values are validated."""
        config = dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
        config.validate()
        return config

    def validate(self) -> None:
        _scope(self.scope, "scope")
        select, extend, ignore = self.cli_selection
        lists = {"select": self.select, "ignore": self.ignore, "extend-select": self.extend_select}
        lists.update({"--select": select, "--extend-select": extend, "--ignore": ignore})
        for key, selectors in lists.items():
            for selector in selectors or ():
                if not _matching(selector):
                    raise ConfigError(f"unknown rule code or prefix {selector!r} in {key}")
        for glob, codes in self.per_file_ignores:
            for selector in codes:
                if not _matching(selector):
                    raise ConfigError(f"unknown rule code or prefix {selector!r} in per-file-ignores {glob!r}")

    def enabled_codes(self, path: str | None = None) -> frozenset[str]:
        """Codes that run on `path` (relative to `root` or absolute) after the selection and per-file-ignores.

        The selection works as Ruff's: the file's select/extend-select/ignore, then the command line's
        on top (its `--select` starts afresh, so it re-enables what the file ignores); within each, a
        more specific selector wins, and at equal specificity ignore wins.
        """
        chosen = _enabled(((self.select, self.extend_select, self.ignore), self.cli_selection))
        if path is None or not self.per_file_ignores:
            return chosen
        relative = self.relative(path)
        ignored = [c for glob, codes in self.per_file_ignores if glob_match(glob, relative) for c in codes]
        return chosen - {code for selector in ignored for code in _matching(selector)}

    def relative(self, path: str | Path) -> str:
        """`path` relative to the config root, POSIX-style, when it lies under the root."""
        resolved = Path(path).absolute()
        try:
            return resolved.relative_to(self.root.absolute()).as_posix()
        except ValueError:
            return Path(path).as_posix()

    def is_excluded(self, path: str | Path) -> bool:
        relative = self.relative(path)
        return any(glob_match(glob, relative) for glob in self.exclude)

    def fingerprint(self) -> str:
        """A stable digest of everything that changes results (for caches)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.compare}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _matching(selector: str) -> list[str]:
    from purelint._registry import all_rules  # on first use: reading a config needs no libcst

    codes = list(all_rules())
    return codes if selector == "ALL" else [c for c in codes if c.startswith(selector)]


Selection = tuple[tuple[str, ...] | None, tuple[str, ...], tuple[str, ...]]  # (select, extend-select, ignore)


@lru_cache(maxsize=256)
def _enabled(layers: tuple[Selection, ...]) -> frozenset[str]:
    from purelint._registry import all_rules  # on first use: reading a config needs no libcst

    chosen = {c for c, r in all_rules().items() if r.default_on}
    for select, extend, ignore in layers:
        if select is not None:
            chosen = set()
        # Least specific first ("ALL", then short prefixes), so a longer code overrides a prefix;
        # at equal length select comes before ignore, so ignore wins.
        steps = [(s, True) for s in (*(select or ()), *extend)] + [(s, False) for s in ignore]
        for selector, on in sorted(steps, key=lambda step: (0 if step[0] == "ALL" else len(step[0]), not step[1])):
            codes = _matching(selector)
            chosen.update(codes) if on else chosen.difference_update(codes)
    return frozenset(chosen)


@lru_cache(maxsize=512)
def glob_regex(glob: str) -> re.Pattern[str]:
    """The regular expression of one glob (`**` spans directories, `*` and `?` stay inside one name);
    a match may go on below a matched directory."""
    out, i = [], 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char)))
        i += 1
    return re.compile("".join(out) + "(?:/.*)?")


def glob_match(glob: str, relative: str) -> bool:
    """Match a POSIX relative path against a glob: `**` spans directories, a glob without `/`
    matches any path component (`build`, `*.pyi`), a matched directory covers what lies below."""
    glob = glob.removeprefix("./").rstrip("/")
    if "/" not in glob:
        return any(glob_regex(glob).fullmatch(part) for part in relative.split("/"))
    return glob_regex(glob.lstrip("/")).fullmatch(relative) is not None


def find_config(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a [tool.purelint] table."""
    start = start.absolute()
    for directory in (start, *start.parents) if start.is_dir() else start.parents:
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            try:
                if "purelint" in _read_toml(candidate).get("tool", {}):
                    return candidate
            except ConfigError:
                return candidate  # report its error rather than silently skip it
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None


def load_config(path: Path | None = None, *, start: Path | None = None) -> Config:
    """Config from `path` (a pyproject.toml or a purelint.toml-style file with the same table),
    else from the nearest pyproject.toml above `start` (default: the current directory)."""
    if path is None:
        path = find_config(start or Path.cwd())
        if path is None:
            return Config()
    elif not Path(path).is_file():
        raise ConfigError(f"config file {path} does not exist")
    data = _read_toml(Path(path))
    table = data.get("tool", {}).get("purelint", data if "tool" not in data else {})
    if not isinstance(table, dict):
        raise ConfigError(f"[tool.purelint] in {path} must be a table")
    return Config.from_mapping(table, root=Path(path).absolute().parent, source=Path(path))
