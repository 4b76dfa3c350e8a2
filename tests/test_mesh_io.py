"""facecourse.mesh.io: saving and loading meshes (.obj, .ply), atomically."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from facecourse.mesh import load_mesh, save_mesh


def test_mesh_round_trip(tmp_path):
    m = trimesh.creation.icosphere(1)
    for suffix in (".obj", ".ply"):
        p = save_mesh(tmp_path / f"m{suffix}", m.vertices, m.faces)
        v, f = load_mesh(p)
        np.testing.assert_allclose(v, m.vertices, atol=1e-6)
        np.testing.assert_array_equal(f, m.faces)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp files left"
    with pytest.raises(ValueError, match="faces must be an integer array"):
        save_mesh(tmp_path / "bad.obj", m.vertices, m.faces + 0.5)
    assert not (tmp_path / "bad.obj").exists()
