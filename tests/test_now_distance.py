"""facecourse.now.distance: exact point-to-surface distances against closed forms and trimesh."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from facecourse.now import SurfaceDistance, point_mesh_distance

TRI = (np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), np.array([[0, 1, 2]]))


@pytest.mark.parametrize("point, expected", [
    ((0.25, 0.25, 2.0), 2.0),                         # face region: straight above the interior
    ((0.25, 0.25, -0.5), 0.5),                        # below, unsigned
    ((0.5, -1.0, 0.0), 1.0),                          # edge region of v0-v1
    ((0.5, -3.0, 4.0), 5.0),                          # edge region, off the plane: sqrt(3^2 + 4^2)
    ((1.0, 1.0, 0.0), np.sqrt(2) / 2),                 # edge region of the hypotenuse
    ((-1.0, -1.0, 0.0), np.sqrt(2.0)),                # vertex region of v0
    ((3.0, -1.0, 1.0), np.sqrt(4 + 1 + 1)),           # vertex region of v1
    ((-2.0, 3.0, 0.0), np.sqrt(4 + 4)),               # vertex region of v2
])
def test_point_triangle_analytic(point, expected):
    d = point_mesh_distance(np.array([point]), *TRI)
    assert d[0] == pytest.approx(expected, abs=1e-12)


def test_closest_point_is_on_the_right_feature():
    sq, face, closest = SurfaceDistance(*TRI).query(np.array([[0.5, -3.0, 4.0], [-1.0, -1.0, 0.0]]))
    np.testing.assert_allclose(closest, [[0.5, 0.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(sq, [25.0, 2.0])
    assert (face == 0).all()


def test_agrees_with_trimesh():
    rng = np.random.default_rng(0)
    mesh = trimesh.creation.icosphere(subdivisions=2)
    mesh.vertices *= np.array([75.0, 100.0, 90.0])
    mesh.vertices += rng.normal(scale=2.0, size=mesh.vertices.shape)
    pts = rng.normal(scale=80.0, size=(500, 3))
    ours = point_mesh_distance(pts, mesh.vertices, mesh.faces)
    _, ref, _ = trimesh.proximity.closest_point(mesh, pts)
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="faces"):
        SurfaceDistance(TRI[0], np.zeros((0, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="faces must be an integer array"):
        SurfaceDistance(TRI[0], TRI[1].astype(np.float64))  # not silently truncated to indices
    with pytest.raises(ValueError, match="faces index vertices outside"):
        SurfaceDistance(TRI[0], TRI[1] + 1)
    with pytest.raises(ValueError, match="query points"):
        SurfaceDistance(*TRI)(np.array([[np.nan, 0, 0]]))
