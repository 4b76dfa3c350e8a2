"""facecourse.now.pp: MeshLab .pp picked-points files."""

from __future__ import annotations

import numpy as np
import pytest

from facecourse.now import read_pp, write_pp


def test_pp_round_trip_and_parser(tmp_path):
    rng = np.random.default_rng(5)
    pts = rng.normal(scale=100.0, size=(7, 3))
    path = write_pp(tmp_path / "a.pp", pts, data_file_name="scan.obj")
    np.testing.assert_array_equal(read_pp(path, expected=7), pts)  # exact: shortest round-trip repr
    lines = path.read_text().splitlines()
    assert all(line.lstrip().startswith("<point") for line in lines[8:15])  # official reader's line numbers
    (tmp_path / "b.pp").write_text('<!DOCTYPE PickedPoints>\n<PickedPoints>\n <point name="x" z="3" y="2.5" '
                                   'x="-1e1" active="1"/>\n</PickedPoints>\n')
    np.testing.assert_array_equal(read_pp(tmp_path / "b.pp"), [[-10.0, 2.5, 3.0]])
    with pytest.raises(ValueError, match="expected 7"):
        read_pp(tmp_path / "b.pp", expected=7)
    (tmp_path / "c.pp").write_text("<PickedPoints><point x='1' y='nope' z='0'/></PickedPoints>")
    with pytest.raises(ValueError, match="numeric"):
        read_pp(tmp_path / "c.pp")
