"""purelint's architecture, checked from the source text (nothing is imported): every module sits in
one layer and imports only its own layer and the ones below it, the import graph has no circle, rule
modules import the rule API and nothing else of purelint, no module imports another's private
names, and modules and classes stay small enough to read."""

import ast
import fnmatch
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "purelint"

# Lowest first. A module may import modules of its own layer and of the layers before it.
LAYERS = [
    ("records and data", ["purelint._diagnostic", "purelint._frameworks", "purelint._text", "purelint._source",
                          "purelint._noqa"]),
    ("CST helpers", ["purelint._analysis", "purelint._analysis._cst"]),
    ("scopes and name resolution", ["purelint._analysis._scopes", "purelint._analysis._model",
                                    "purelint._analysis._positions"]),
    ("trace inference", ["purelint._analysis._tracing"]),
    ("value kinds, facts, taint, key flow", ["purelint._analysis._values", "purelint._analysis._taint",
                                             "purelint._analysis._key_calls", "purelint._analysis._keys",
                                             "purelint._analysis._nnx",
                                             "purelint._analysis._globals", "purelint._analysis._imports",
                                             "purelint._analysis._facts"]),
    ("Context, the rule API", ["purelint._context", "purelint._rule"]),
    ("rules and their registry", ["purelint.rules", "purelint.rules.*", "purelint._registry"]),
    ("fixes", ["purelint._fix"]),
    ("API", ["purelint._engine", "purelint._config", "purelint._files", "purelint._notebook", "purelint._api"]),
    ("runner, cache, reports", ["purelint._cache", "purelint._parallel", "purelint._runner", "purelint._report",
                                "purelint._docs", "purelint._testing"]),
    ("CLI and server", ["purelint", "purelint.__main__", "purelint._cli", "purelint._server", "purelint._lsp_documents",
                        "purelint._lsp_text", "purelint._probe", "purelint._probe.*"]),
]  # fmt: skip
RULE_API = "purelint._rule"
# Reading the version from the package is a constant lookup, not a dependency on the layer above.
ALLOWED_FROM_PACKAGE = {"__version__"}
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 250


def _module_name(path: pathlib.Path) -> str:
    parts = ["purelint", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    for index, (_title, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return index
    raise LookupError(module)


def _imports(module: str) -> list[tuple[str, str, int]]:
    """(imported purelint module, name imported from it or "", line) for every import in `module`,
    at any depth (a lazy import inside a function is a dependency too)."""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names if alias.name.split(".")[0] == "purelint"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "purelint":
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((submodule, "", node.lineno) if submodule in MODULES else (base, alias.name, node.lineno))
    return found


def test_every_module_has_a_layer():
    missing = []
    for module in MODULES:
        try:
            _layer(module)
        except LookupError:
            missing.append(module)
    assert not missing, f"add these modules to LAYERS in {__file__}: {missing}"


def test_imports_point_down_the_layers():
    upward = []
    for module in MODULES:
        for target, name, line in _imports(module):
            if target == "purelint" and name in ALLOWED_FROM_PACKAGE:
                continue
            if _layer(target) > _layer(module):
                layers = f"{LAYERS[_layer(module)][0]} -> {LAYERS[_layer(target)][0]}"
                upward.append(f"{module}:{line} imports {target} ({layers})")
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_circle():
    graph = {
        module: sorted({t for t, name, _ in _imports(module) if t != module and name not in ALLOWED_FROM_PACKAGE})
        for module in MODULES
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in graph:
        if start in state:
            continue
        state[start] = 1
        path, stack = [start], [iter(graph[start])]
        while stack:
            target = next(stack[-1], None)
            if target is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(target) == 1:
                circle = path[path.index(target) :] + [target]
                pytest.fail("import circle: " + " -> ".join(circle))
            elif target not in state:
                state[target] = 1
                path.append(target)
                stack.append(iter(graph.get(target, ())))


def test_rules_import_only_the_rule_api():
    wrong = [
        f"{module}:{line} imports {target}{'.' + name if name else ''}"
        for module in MODULES
        if module.startswith("purelint.rules.")
        for target, name, line in _imports(module)
        if target != RULE_API
    ]
    assert not wrong, "rule modules import from purelint only " + RULE_API + ":\n" + "\n".join(wrong)


def test_no_module_imports_private_names_of_another():
    private = [
        f"{module}:{line} imports {name} from {target}"
        for module in MODULES
        for target, name, line in _imports(module)
        if name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
    ]
    assert not private, "\n".join(private)


def test_registry_lists_every_rule_class():
    defined = set()
    for module, tree in TREES.items():
        if module.startswith("purelint.rules."):
            for node in tree.body:
                bases = [b.id for b in getattr(node, "bases", ()) if isinstance(b, ast.Name)]
                if isinstance(node, ast.ClassDef) and "Rule" in bases:
                    defined.add(node.name)
    registry = TREES["purelint._registry"]
    listed = {
        alias.asname or alias.name
        for node in ast.walk(registry)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("purelint.rules.")
        for alias in node.names
    }
    assert defined and defined == listed


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_classes_stay_small(module):
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines (at most {MAX_MODULE_LINES})"
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.ClassDef):
            size = node.end_lineno - node.lineno + 1
            assert size <= MAX_CLASS_LINES, f"{module}.{node.name} has {size} lines (at most {MAX_CLASS_LINES})"


def test_the_linter_never_imports_jax_torch_or_numpy():
    # The run-time probe (`purelint probe`) observes JAX, so it may import it when it is used.
    heavy = {"jax", "jaxlib", "torch", "numpy"}
    found = [
        f"{module}:{node.lineno}"
        for module, tree in TREES.items()
        if not fnmatch.fnmatchcase(module, "purelint._probe*")
        for node in ast.walk(tree)
        if (isinstance(node, ast.Import) and any(a.name.split(".")[0] in heavy for a in node.names))
        or (isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in heavy)
    ]
    assert not found, found
