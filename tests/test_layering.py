"""The package's layers point down and its modules form no cycle (DESIGN.md, "Package map and its layers").

Every module's AST is read, imports inside functions included: a function-level import that would close a
cycle is a cycle, it only fails later (when someone hoists it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "facecourse"

# Bottom to top. A module imports only from its own layer or below.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("units", "arrays", "settings", "data"),
    ("mesh",),
    ("spectral", "flame"),
    ("render",),
    ("nn",),
    ("losses",),
    ("datasets",),
    ("now", "train"),
    ("photo", "reconstruct", "viz", "doctor", "cli"),
)
TOP = len(LAYERS) - 1


def module_name(path: Path) -> str:
    """``facecourse/now/align.py`` -> ``facecourse.now.align``; a package's ``__init__`` is the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The layer index of a ``facecourse`` module; command-line modules (``*.cli`` and ``facecourse.__main__``,
    the ``python -m facecourse`` entry) are the top layer."""
    parts = module.split(".")
    if module == "facecourse":  # the root package holds only metadata (__version__) and imports nothing
        return 0
    if parts[-1] == "cli" or module == "facecourse.__main__":
        return TOP
    for index, names in enumerate(LAYERS):
        if parts[1] in names:
            return index
    raise AssertionError(f"{module} belongs to no layer: add its subpackage to LAYERS (and to DESIGN.md)")


def resolve(name: str) -> str | None:
    """The project module an import of ``name`` loads last (``facecourse.a.b.c`` -> the longest known prefix)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def imports_of(module: str) -> set[str]:
    """Every project module that ``module`` imports, at any depth of its AST (function bodies included)."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # "from pkg import sub" loads pkg and, when sub is a module, pkg.sub too.
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith("facecourse"):
                target = resolve(name)
                if target is not None and target != module:
                    found.add(target)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_the_root_package_imports_nothing():
    """It counts as the bottom layer (anyone may read ``facecourse.__version__``) only while it imports nothing."""
    assert GRAPH["facecourse"] == set()


def test_imports_point_down():
    upward = sorted(
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in GRAPH.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    )
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_import_cycles():
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycles (function-level imports included):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The checks above would fail on a broken graph: a two-module cycle and a hidden upward import."""
    assert find_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    assert layer_of("facecourse.flame.model") > layer_of("facecourse.mesh.io")
    assert layer_of("facecourse.now.cli") == TOP
    source = "def f():\n    from facecourse.viz import mesh\n"
    tree = ast.parse(source)
    hidden = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert hidden and hidden[0].module == "facecourse.viz", "function-level imports are walked"


@pytest.mark.parametrize("module", ["facecourse.flame", "facecourse.now", "facecourse.losses"])
def test_a_package_does_not_import_itself_through_its_init(module):
    """A submodule that imports its own package's ``__init__`` closes a cycle (caught above); named here."""
    inside = [m for m in MODULES if m.startswith(module + ".")]
    offenders = [m for m in inside if module in GRAPH[m]]
    assert not offenders, f"{offenders} import {module} (its own __init__): import the submodule instead"
