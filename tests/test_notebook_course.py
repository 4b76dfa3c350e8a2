"""``make course`` (tools/course.py) on a two-cell notebook with a k3d view: page, snapshot, index, times."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("tools_course", ROOT / "tools" / "course.py")
course = sys.modules.setdefault("tools_course", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(course)

TITLE = "# 99 · A tiny chapter\n\n**Learning objectives**\n- see a cube in 3D;\n- read its run time.\n\nText."
CUBE = """
import numpy as np
from facecourse.viz import k3d_mesh
v = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float32)
f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
              [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
plot, _ = k3d_mesh(v, f)
print("cube ready")
plot
"""


def test_course_site(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(TITLE), nbformat.v4.new_code_cell(CUBE)])
    src = tmp_path / "99_tiny.ipynb"
    nbformat.write(nb, src)
    out = tmp_path / "site"
    assert course.main(["--out", str(out), str(src)]) == 0

    page = (out / "99_tiny.html").read_text()
    assert "cube ready" in page, "the notebook was executed"
    assert course.WIDGET not in page, "the k3d widget (dead in a static page) is replaced"
    assert re.search(r'<iframe[^>]* src="99_tiny_cell1_0.html"', page), "the snapshot is embedded"
    snapshot = (out / "99_tiny_cell1_0.html").read_text()
    assert "[K3D_SOURCE]" not in snapshot and "unpkg.com" not in snapshot, "k3d's JavaScript is inlined: offline"
    assert len(snapshot) > 100_000

    index = (out / "index.html").read_text()
    times = json.loads((out / "times.json").read_text())
    (entry,) = times["notebooks"]
    assert entry["title"] == "99 · A tiny chapter" and entry["objectives"] == ["see a cube in 3D;", "read its run time."]
    assert 0 < entry["seconds"] < 120
    assert '<a href="99_tiny.html">99 · A tiny chapter</a>' in index and f"{entry['seconds']:.0f} s" in index
    assert "<li>see a cube in 3D;</li>" in index
    assert not (src.with_suffix(".html")).exists() and not nbformat.read(src, as_version=4).cells[1].outputs, \
        "the source notebook is left as it was"
