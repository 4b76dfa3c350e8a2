"""The exercise convention of DESIGN.md and ``make student`` (tools/student.py).

An exercise is a markdown cell whose heading names it ("Exercise n", "(prediction)" for a prediction), optional
untagged code cells that give its data, then three code cells: the stub (tag ``exercise``, first line
``# Exercise n``), the reference solution (tag ``solution``) and the check (tag ``check``). nbval runs the
solutions with the rest of the notebook; here the static rules, the student copies, and that every check fails
on its stub. That last test is cheap on purpose: it runs the notebook's cells before its first exercise (the
setup), then each exercise's given cells, stub and check, without the rest of the body; a check must fail on the
stub with AssertionError or NotImplementedError (a NameError means it failed for another reason).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# Not yet converted to the convention (their owners convert them); remove a name when its notebook complies.
PENDING: set[str] = set()
CONVERTED = [p for p in NOTEBOOKS if p.name not in PENDING]
STUB_FAILURES = {"AssertionError", "NotImplementedError"}

_spec = importlib.util.spec_from_file_location("tools_student", ROOT / "tools" / "student.py")
student = sys.modules.setdefault("tools_student", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(student)


def _read(path):
    return nbformat.read(path, as_version=4)


def _heading(nb, ex) -> str:
    """The markdown cell that introduces an exercise: the last one before its stub."""
    return next(c.source for c in reversed(nb.cells[:ex.stub]) if c.cell_type == "markdown")


def _given(nb, ex) -> list[int]:
    """Indices of the untagged code cells between an exercise's heading and its stub (its given data)."""
    start = max(i for i in range(ex.stub) if nb.cells[i].cell_type == "markdown")
    return [i for i in range(start + 1, ex.stub) if nb.cells[i].cell_type == "code"]


def test_pending_notebooks_exist():
    assert PENDING <= {p.name for p in NOTEBOOKS}, "a pending notebook was renamed: update PENDING"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_tags_follow_the_convention(path):
    student.exercises(_read(path))  # raises ValueError naming the cell


@pytest.mark.parametrize("path", CONVERTED, ids=[p.name for p in CONVERTED])
def test_exercises(path):
    nb = _read(path)
    found = student.exercises(nb)
    assert 3 <= len(found) <= 5, f"{path.name}: {len(found)} exercises, the convention asks for 3-5"
    headings = [_heading(nb, ex) for ex in found]
    for n, (ex, heading) in enumerate(zip(found, headings), start=1):
        stub, solution, check = (nb.cells[i].source for i in (ex.stub, ex.solution, ex.check))
        assert re.search(rf"^#+ .*Exercise {n}\b", heading, re.M), f"{path.name}: exercise {n} needs a heading"
        assert stub.startswith(f"# Exercise {n}"), f"{path.name}: stub {n} starts with '# Exercise {n}'"
        assert "NotImplementedError" in stub or re.search(r"[=:]\s*\.\.\.", stub), \
            f"{path.name}: stub {n} raises NotImplementedError or holds a placeholder (...)"
        assert solution.strip() and solution.strip() != stub.strip(), f"{path.name}: solution {n} is the stub"
        assert "assert" in check, f"{path.name}: check {n} asserts the result"
    assert any("(prediction)" in h for h in headings), f"{path.name}: at least one prediction exercise"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_student_copy(path):
    nb = _read(path)
    copy = student.student_notebook(nb)
    kept = [c for c in nb.cells if "solution" not in student.tags(c)]
    assert [c.source for c in copy.cells] == [kept[0].source, student.STUDENT_NOTE] + [c.source for c in kept[1:]]
    assert not any("solution" in student.tags(c) for c in copy.cells)
    assert all(not c.outputs and c.execution_count is None for c in copy.cells if c.cell_type == "code")
    assert len(nb.cells) - len(kept) == len(student.exercises(nb)), "one solution cell per exercise"


def test_make_student_writes_every_notebook(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "tools" / "student.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        written = _read(tmp_path / path.name)
        assert [c.source for c in written.cells] == [c.source for c in student.student_notebook(_read(path)).cells]


@pytest.mark.parametrize("tags, message", [
    ([["exercise"], [], ["check"]], "must be followed by a 'solution' cell"),
    ([["solution"], ["check"]], "does not follow an 'exercise' cell"),
    ([["exercise"], ["solution"], ["check"], ["check"]], "does not follow an 'exercise' cell"),
    ([["exercise", "solution"]], "several exercise tags"),
])
def test_student_refuses_a_broken_convention(tmp_path, capsys, tags, message):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", metadata={"tags": t}) for t in tags])
    broken, fine = tmp_path / "broken.ipynb", tmp_path / "fine.ipynb"
    nbformat.write(nb, broken)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# fine")]), fine)
    with pytest.raises(ValueError, match=message):
        student.student_notebook(nb)
    assert student.main(["--out", str(tmp_path / "out"), str(fine), str(broken)]) == 2
    assert "broken.ipynb" in capsys.readouterr().err
    assert not (tmp_path / "out").exists(), "nothing is written when one notebook breaks the convention"


def _run(cells, cwd):
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                        "language": "python"}})
    env = dict(os.environ, FACECOURSE_MODE="ci")
    NotebookClient(nb, timeout=600, allow_errors=True, resources={"metadata": {"path": str(cwd)}},
                   kernel_name="python3").execute(env=env)
    return nb


def _error(cell):
    return next((o for o in cell.outputs if o.output_type == "error"), None)


@pytest.mark.parametrize("path", CONVERTED, ids=[p.name for p in CONVERTED])
def test_every_check_fails_on_its_stub(path):
    nb = _read(path)
    found = student.exercises(nb)
    setup = [i for i in range(found[0].stub) if nb.cells[i].cell_type == "code"]
    plan = [(i, "setup") for i in setup]
    for n, ex in enumerate(found, start=1):
        plan += [(i, f"given {n}") for i in _given(nb, ex) if i not in setup]
        plan += [(ex.stub, f"stub {n}"), (ex.check, f"check {n}")]
    ran = _run([nbformat.from_dict(dict(nb.cells[i], outputs=[], execution_count=None)) for i, _ in plan],
               path.parent)
    for (i, role), cell in zip(plan, ran.cells):
        err = _error(cell)
        if role.startswith("check"):
            assert err is not None, f"{path.name} cell {i}: {role} passes on the stub"
            assert err.ename in STUB_FAILURES, f"{path.name} cell {i}: {role} fails with {err.ename}: {err.evalue}"
        else:
            assert err is None, f"{path.name} cell {i} ({role}) fails in the student copy: {err.ename}: {err.evalue}"
