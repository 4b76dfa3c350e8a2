"""The synthetic model's cache stamp covers every module that decides its content (a stale cache once
silently broke things): the digest's sources are exactly the project modules the generator imports."""

from __future__ import annotations

import ast
from pathlib import Path

import facecourse.flame.synthetic as synthetic

PACKAGE = Path(synthetic.__file__).resolve().parents[1]
#: Imported by the generator but not deciding the content: atomic file moves, and the restricted unpickler
#: (flame.io's readers use it; the generator only writes).
NOT_CONTENT = {"facecourse.data.atomic", "facecourse.data.safe_load"}


def _module_file(name: str) -> Path | None:
    parts = name.split(".")[1:]
    for candidate in (PACKAGE.joinpath(*parts).with_suffix(".py"), PACKAGE.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def _content_imports(path: Path, seen: set[Path]) -> set[Path]:
    """Project modules imported by ``path``, transitively (package ``__init__`` files that only re-export are
    followed into the submodules named)."""
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        for name in names:
            if not name.startswith("facecourse") or any(name.startswith(n) for n in NOT_CONTENT):
                continue
            target = _module_file(name)
            if target is None or target.name == "__init__.py" or target in seen:
                continue
            seen.add(target)
            _content_imports(target, seen)
    return seen


def test_digest_sources_are_what_the_generator_imports():
    expected = _content_imports(Path(synthetic.__file__), {Path(synthetic.__file__).resolve()})
    assert {p.resolve() for p in synthetic.GENERATOR_SOURCES} == expected


def test_digest_changes_with_each_source(monkeypatch, tmp_path):
    base = synthetic.generator_digest()
    for i, source in enumerate(synthetic.GENERATOR_SOURCES):
        copy = tmp_path / f"{i}.py"
        copy.write_bytes(source.read_bytes() + b"\n# changed\n")
        changed = tuple(copy if j == i else s for j, s in enumerate(synthetic.GENERATOR_SOURCES))
        monkeypatch.setattr(synthetic, "GENERATOR_SOURCES", changed)
        assert synthetic.generator_digest() != base, source.name
    monkeypatch.undo()
    assert synthetic.generator_digest() == base
