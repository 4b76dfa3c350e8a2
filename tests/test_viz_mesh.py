"""facecourse.viz.mesh: the k3d views open frontal, y up, framed on the head (k3d is z-up, FLAME y-up)."""

from __future__ import annotations

import numpy as np

from facecourse.viz.mesh import frontal_camera, k3d_mesh


def test_frontal_camera_looks_at_the_face_from_the_front_with_y_up():
    v = np.array([[-0.08, -0.1, -0.05], [0.08, 0.12, 0.1], [0.0, 0.0, 0.12]])
    eye, target, up = np.split(np.array(frontal_camera(v, fov_deg=45.0, margin=1.0)), 3)
    np.testing.assert_allclose(target, [0.0, 0.01, 0.035])          # bounding-box centre
    np.testing.assert_allclose(up, [0.0, 1.0, 0.0])                 # y up, as FLAME
    assert eye[2] > v[:, 2].max() and np.allclose(eye[:2], target[:2])  # in front (+z), on the axis
    half_height = np.tan(np.deg2rad(22.5)) * (eye[2] - v[:, 2].max())
    assert half_height >= 0.11 - 1e-9                                # the 0.22 m tall mesh fits the view


def test_k3d_mesh_opens_with_the_frontal_camera():
    v = np.random.default_rng(0).normal(size=(20, 3))
    plot, mesh = k3d_mesh(v, np.array([[0, 1, 2], [2, 3, 4]]))
    assert plot.camera_up_axis == "y" and not plot.camera_auto_fit
    np.testing.assert_allclose(plot.camera, frontal_camera(v.astype(np.float32)), rtol=1e-6)
