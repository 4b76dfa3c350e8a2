"""Rules for the tests themselves: shared helpers come from conftest.py / helpers.py, never from another test
module, and a test file is named after the module it tests (``test_<subpackage>_<module>[_<suffix>].py``)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "facecourse"

# files that test rules or the course material rather than one module of the package
NOT_A_MODULE = {"test_conftest_rules.py", "test_layering.py", "test_notebook_rules.py", "test_notebook_exercises.py",
                "test_notebook_course.py"}
# not (yet) named after one module: owned by another change, to be renamed or split by module
PENDING_RENAME = {"test_messages.py"}


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``tree``, function-level ones included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            found.append((node.lineno, str(node.args[0].value)))
    return found


def test_rules_see_imports_of_test_modules():
    tree = ast.parse("import test_a\nfrom test_b import x\ndef f():\n    from test_c.sub import y\n"
                     "importlib.import_module('test_d')\nfrom helpers import z\n")
    assert sorted(m for _, m in imported_modules(tree)) == ["helpers", "test_a", "test_b", "test_c.sub", "test_d"]


def test_no_test_module_imports_another_test_module():
    files = sorted(TESTS.glob("test_*.py")) + [TESTS / "conftest.py", TESTS / "helpers.py"]
    assert len(files) > 10
    bad = [f"{path.name}:{line}: imports {module}"
           for path in files for line, module in imported_modules(ast.parse(path.read_text(), str(path)))
           if module.split(".")[0].startswith("test_")]
    assert not bad, "shared helpers belong in tests/conftest.py (fixtures) or tests/helpers.py:\n" + "\n".join(bad)


def _package_names() -> tuple[set[str], dict[str, set[str]]]:
    """Top-level modules of facecourse, and the modules of each subpackage."""
    top = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    subpackages = {p.parent.name: {q.stem for q in p.parent.glob("*.py") if q.stem != "__init__"}
                   for p in PACKAGE.glob("*/__init__.py")}
    return top, subpackages


def test_file_names_follow_the_module_they_test():
    top, subpackages = _package_names()
    assert {"cli", "doctor"} <= top and "io" in subpackages["flame"]

    def matches(name: str) -> bool:
        rest = name[len("test_"):-len(".py")]
        if rest in top or any(rest.startswith(m + "_") for m in top):
            return True
        package, _, module = rest.partition("_")
        return package in subpackages and any(module == m or module.startswith(m + "_")
                                              for m in subpackages[package])

    wrong = [p.name for p in sorted(TESTS.glob("test_*.py"))
             if p.name not in NOT_A_MODULE | PENDING_RENAME and not matches(p.name)]
    assert not wrong, f"name these after the module they test (test_<subpackage>_<module>.py): {wrong}"
