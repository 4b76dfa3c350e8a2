"""Student copies of the notebooks: every cell tagged ``solution`` removed (``make student``).

The exercise convention (DESIGN.md, "Notebook conventions"), as tags on code cells:

- ``exercise``: the student cell. It holds a stub that runs without error (a function raising
  ``NotImplementedError``, or a placeholder value such as ``...``);
- ``solution``: the reference solution, right after its ``exercise`` cell. CI runs it; student copies drop it;
- ``check``: the checking cell, right after the ``solution``. It asserts the result, so it fails on the stub.

Usage: ``python tools/student.py [--out student] [notebooks/*.ipynb]``.
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
TAGS = ("exercise", "solution", "check")
STUDENT_NOTE = ("*Student copy*: the reference solutions are not in this notebook. Fill in each cell that starts "
                "with `# Exercise n`, then run the checking cell that follows it.")


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


@dataclass(frozen=True)
class Exercise:
    """Cell indices of one exercise in its notebook: the stub, the reference solution and the check."""

    stub: int
    solution: int
    check: int


def exercises(nb) -> list[Exercise]:
    """The exercises of a notebook, in order. Raises ``ValueError`` naming the cell when the tags break the
    convention (a stub not followed by its solution and check, a solution or check out of place, a cell with
    two of the tags)."""
    found = []
    cells = nb.cells
    for i, cell in enumerate(cells):
        own = [t for t in tags(cell) if t in TAGS]
        if len(own) > 1:
            raise ValueError(f"cell {i} has several exercise tags {own}")
        if own and cell.cell_type != "code":
            raise ValueError(f"cell {i} is tagged {own[0]!r} but is not a code cell")
        if own == ["exercise"]:
            triple = [tags(cells[j]) if j < len(cells) else [] for j in (i + 1, i + 2)]
            if "solution" not in triple[0] or "check" not in triple[1]:
                raise ValueError(f"exercise cell {i} must be followed by a 'solution' cell, then a 'check' cell")
            found.append(Exercise(i, i + 1, i + 2))
        elif own and not any(i in (e.solution, e.check) for e in found):
            raise ValueError(f"cell {i} is tagged {own[0]!r} but does not follow an 'exercise' cell")
    return found


def student_notebook(nb):
    """A copy of ``nb`` without its ``solution`` cells and without outputs, with a note under the title."""
    exercises(nb)  # refuse a notebook that breaks the convention
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if "solution" not in tags(c)]
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    out.cells.insert(1, nbformat.v4.new_markdown_cell(STUDENT_NOTE))
    return out


def write_student_copies(paths, out_dir: Path) -> list[Path]:
    """Write the student copy of every notebook in ``paths`` into ``out_dir`` (same file names). Nothing is
    written when one notebook breaks the convention (``ValueError`` naming it)."""
    copies = {}
    for path in map(Path, paths):
        try:
            copies[out_dir / path.name] = student_notebook(nbformat.read(path, as_version=4))
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    for target, nb in copies.items():
        nbformat.write(nb, target)
    return list(copies)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--out", type=Path, default=ROOT / "student")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    try:
        for target in write_student_copies(paths, args.out):
            print("wrote", target)
    except ValueError as err:
        print(f"make student: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
