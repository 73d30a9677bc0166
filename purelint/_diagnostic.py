"""The records purelint hands out: findings, and the fixes a finding may carry."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["Diagnostic", "Edit", "Fix"]


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace the text between two positions (1-based lines and columns, end exclusive) by `content`."""

    line: int
    column: int
    end_line: int
    end_column: int
    content: str


@dataclass(frozen=True, slots=True)
class Fix:
    """A change that resolves a finding; `applicability` is "safe" or "unsafe"."""

    applicability: str
    message: str
    edits: tuple[Edit, ...]

    @classmethod
    def from_dict(cls, data: dict) -> Fix:
        return cls(data["applicability"], data["message"], tuple(Edit(**e) for e in data["edits"]))


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding. Lines and columns are 1-based; `end_column` points just past the last character.

    `scope` is "traced" when the innermost enclosing function is traced by JAX, else "untraced".
    `cell` is the notebook cell number for findings in notebooks, None for plain files.

    >>> Diagnostic("PUR001", "msg", "a.py", 3, 5, 3, 13).location
    'a.py:3:5'
    """

    code: str
    message: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    scope: str = "untraced"
    fix: Fix | None = None
    cell: int | None = None

    @property
    def location(self) -> str:
        cell = f"cell {self.cell}:" if self.cell is not None else ""
        return f"{self.path}:{cell}{self.line}:{self.column}"

    def sort_key(self) -> tuple:
        return (self.path, self.cell or 0, self.line, self.column, self.code)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Diagnostic:
        fix = data.get("fix")
        return cls(**{**data, "fix": Fix.from_dict(fix) if fix else None})
