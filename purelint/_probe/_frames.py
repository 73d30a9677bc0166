"""Whose code a frame runs, and where in the source it is.

The probe reports an effect at the user's line that caused it, so every hook walks outward from
the effect through the call stack: the standard library and ordinary third-party packages are
transparent (a `numpy.load` inside a traced function is the user's file read), while JAX, the
libraries built on it, import machinery and the probe itself are "machinery": an effect that one
of them causes on its own (JAX timing a compile, equinox drawing a token, importlib reading a
module) is not the user's.
"""

from __future__ import annotations

import linecache
import os
import sys
import sysconfig
from dataclasses import dataclass
from types import CodeType, FrameType

__all__ = [
    "Site",
    "Spot",
    "classify",
    "classify_path",
    "code_site",
    "display_path",
    "frame_site",
    "make_site",
    "user_frame",
]

USER, LIBRARY, STDLIB, MACHINERY = "user", "library", "stdlib", "machinery"

# Top-level packages whose own trace-time behaviour is theirs, not the program's: JAX and the
# libraries designed to be traced by it, import and test machinery, and purelint itself.
MACHINERY_PACKAGES = frozenset(
    {
        "jax",
        "jaxlib",
        "equinox",
        "flax",
        "optax",
        "chex",
        "diffrax",
        "lineax",
        "optimistix",
        "jaxtyping",
        "typeguard",
        "beartype",
        "orbax",
        "importlib",
        "_pytest",
        "pytest",
        "pluggy",
        "xdist",
        "purelint",
        "runpy",
    }
)

_PROBE_DIR = os.path.dirname(os.path.abspath(__file__))


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots.update(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    return tuple(sorted(os.path.join(os.path.realpath(r), "") for r in roots))


_ROOTS = _library_roots()
_SITE = ("site-packages", "dist-packages")
_cache: dict[CodeType, str] = {}


def classify(code: CodeType, module: str | None) -> str:
    """USER, LIBRARY (third-party), STDLIB or MACHINERY for a code object run by module `module`."""
    kind = _cache.get(code)
    if kind is None:
        kind = _cache[code] = _classify(code.co_filename, module or "")
    return kind


def classify_path(filename: str, module: str) -> str:
    """`classify` for a source file rather than a code object."""
    return _classify(filename, module)


def _classify(filename: str, module: str) -> str:
    top = module.partition(".")[0]
    if top in MACHINERY_PACKAGES or filename.startswith(_PROBE_DIR):
        return MACHINERY
    if filename.startswith("<frozen "):
        return MACHINERY if "importlib" in filename else STDLIB
    if filename.startswith("<"):  # exec'd strings, notebooks, the REPL: the user's
        return USER
    real = os.path.realpath(filename) if os.path.isabs(filename) else os.path.abspath(filename)
    if any(part in real.split(os.sep) for part in _SITE):
        return LIBRARY
    if real.startswith(_ROOTS):
        return STDLIB
    return USER


def frame_kind(frame: FrameType) -> str:
    return classify(frame.f_code, frame.f_globals.get("__name__"))


def is_user_callable_code(code: CodeType, module: str | None) -> bool:
    return classify(code, module) == USER


def user_frame(frame: FrameType | None, *, stop_modules: frozenset[str] = frozenset()) -> FrameType | None:
    """The first user frame at or outside `frame`, or None when machinery (or a stdlib module named
    in `stop_modules`) comes first: then the effect belongs to that machinery."""
    while frame is not None:
        kind = frame_kind(frame)
        if kind == USER:
            return frame
        if kind == MACHINERY:
            return None
        if stop_modules and frame.f_globals.get("__name__", "").partition(".")[0] in stop_modules:
            return None
        frame = frame.f_back
    return None


@dataclass(frozen=True, slots=True)
class Site:
    """A source range (1-based lines and columns, end exclusive) and the function it lies in."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    function: str = ""

    def short(self, other: Site | None = None) -> str:
        """`line 12`, or `other.py:12` when `other` lies in another file."""
        if other is not None and other.path != self.path:
            return f"{display_path(self.path)}:{self.line}"
        return f"line {self.line}"


def display_path(path: str) -> str:
    """`path` relative to the working directory when it lies below it, as the linter prints paths."""
    if path.startswith("<") or not os.path.isabs(path):
        return path
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith(os.pardir) else relative


_positions: dict[CodeType, list] = {}


def code_site(code: CodeType, offset: int) -> Site:
    """The source range of the instruction at byte `offset` of `code` (Python 3.11+ positions)."""
    line, end_line, column, end_column = code.co_firstlineno, None, None, None
    positions = _positions.get(code)
    if positions is None:
        positions = _positions[code] = list(getattr(code, "co_positions", lambda: ())())
    if 0 <= offset // 2 < len(positions) and positions[offset // 2][0] is not None:
        line, end_line, column, end_column = positions[offset // 2]
    end_line = end_line or line
    return make_site(code.co_filename, line, column or 0, end_line, end_column, code.co_qualname)


def make_site(path: str, line: int, byte_col: int, end_line: int, end_byte_col: int | None, function: str = "") -> Site:
    """A Site from Python's 0-based UTF-8 byte columns (ast and co_positions), in 1-based characters."""
    column = _chars(path, line, byte_col) + 1
    if end_byte_col is None:
        end_column = column + 1
    else:
        end_column = _chars(path, end_line, end_byte_col) + 1
        if end_line == line and end_column <= column:
            end_column = column + 1
    return Site(path, line, column, end_line, end_column, function)


def _chars(path: str, line: int, byte_col: int) -> int:
    text = linecache.getline(path, line)
    if not text or text.isascii():
        return byte_col
    return len(text.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def frame_site(frame: FrameType) -> Site:
    return code_site(frame.f_code, frame.f_lasti)


class Spot:
    """Where a frame is, cheaply (its code and instruction); the Site is worked out when needed."""

    __slots__ = ("_site", "code", "offset")

    def __init__(self, frame: FrameType) -> None:
        self.code, self.offset = frame.f_code, frame.f_lasti
        self._site: Site | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Spot) and other.code is self.code and other.offset == self.offset

    def __hash__(self) -> int:
        return hash((id(self.code), self.offset))

    @property
    def site(self) -> Site:
        if self._site is None:
            self._site = code_site(self.code, self.offset)
        return self._site
