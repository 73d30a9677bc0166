"""purelm's layers, read from the source with `ast` (nothing is imported): every import points down or
sideways in the table below, never up, the import graph has no circle, and no module or class outgrows
what one reader can hold.

    model -> data -> training -> run directory -> inference -> CLI, with runtime under all of them

Every import counts, wherever it stands: inside a function, under `if TYPE_CHECKING:`, module level.
`purelm` and `purelm.training` are the public facades: they re-export names from every layer (on first
use), so they rank above all and nothing in the package imports them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "purelm"

# Package (or module) -> rank; a module takes the rank of its longest listed prefix.
LAYERS = {
    "purelm._runtime": 0,  # signals, devices and processes, host memory, compile cache, errors, jit, files
    "purelm._model": 1,  # cells, LSTMLM, fused layers, fused head
    "purelm.interop": 1,  # PyTorch weights in and out (public)
    "purelm.reference": 1,  # the PyTorch original (public)
    "purelm._data": 2,  # tokenizers, corpora, evaluation columns, how losses read
    "purelm.training": 3,  # configs, losses, steps, evaluation, the training loop
    "purelm._rundir": 4,  # checkpoints, the run directory's format, `Run`, conversion
    "purelm._inference": 5,  # sampling, streaming, programs compiled ahead of time, the commands' work
    "purelm._cli": 6,  # the console entry point, argument parsing, printing
}
FACADES = {"purelm": 7, "purelm.training": 7}
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 250


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8"), str(path)) for name, path in MODULES.items()}


def rank(module: str) -> int:
    if module in FACADES:
        return FACADES[module]
    prefixes = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    if not prefixes:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}")
    return LAYERS[max(prefixes, key=len)]


def _resolve(name: str) -> str:
    """The purelm module `name` refers to: itself, or the module that defines it (`purelm.X` -> `purelm`)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports(module: str) -> set[str]:
    """The purelm modules `module` imports, anywhere in its source."""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # `from . import x`, `from .._y import z`
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {_resolve(name) for name in names if name == "purelm" or name.startswith("purelm.")}
    return found - {module}


GRAPH = {module: imports(module) for module in MODULES}


def test_every_module_has_a_layer():
    for module in MODULES:
        rank(module)


def test_no_import_points_up():
    upward = [
        f"{module} ({rank(module)}) imports {target} ({rank(target)})"
        for module, targets in sorted(GRAPH.items())
        for target in sorted(targets)
        if rank(target) > rank(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    circles = []
    state: dict[str, str] = {}  # "open" while on the current path, "done" when all below it are checked

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                circles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not circles, "\n".join(circles)


def test_private_packages_import_nothing_when_entered():
    # Importing purelm._runtime._signals runs purelm/_runtime/__init__.py first: those files stay empty of
    # imports, so that entering a layer never pulls in another (the console entry point loads no JAX).
    for module, path in MODULES.items():
        if path.name == "__init__.py" and module not in FACADES:
            assert not GRAPH[module], f"{module} imports {sorted(GRAPH[module])}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_classes_stay_readable(module):
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines (at most {MAX_MODULE_LINES})"
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.ClassDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_CLASS_LINES, f"{module}.{node.name} has {length} lines (at most {MAX_CLASS_LINES})"


def test_the_checks_see_the_imports():
    # A walk that found nothing would pass every check above.
    assert "purelm._runtime._signals" in GRAPH["purelm._cli._entry"]
    assert "purelm.training._config" in GRAPH["purelm._rundir._format"]
    assert rank("purelm._rundir._format") == 4 and rank("purelm.training._config") == 3
    assert sum(map(len, GRAPH.values())) > 100
