"""Landmark helpers: yaw of a rotation, the contour row convention, barycentric points."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from facecourse.flame.landmarks import (
    N_CONTOUR_ROWS, NOW7_IBUG, NOW7_STATIC51, barycentric_points, contour_row_for_yaw, head_yaw, yaw_degrees,
    yaw_for_contour_row,
)
from facecourse.flame.lbs import rodrigues


def test_yaw_is_the_middle_zyx_euler_angle():
    rots = Rotation.random(50, random_state=0)
    expect = rots.as_euler("ZYX", degrees=True)[:, 1]  # R = Rz Ry Rx: the y angle in [-90, 90]
    got = yaw_degrees(torch.tensor(rots.as_matrix())).numpy()
    np.testing.assert_allclose(got, expect, atol=1e-9)
    pure = Rotation.from_euler("y", [[-60], [-10], [0], [25]], degrees=True).as_matrix()
    np.testing.assert_allclose(yaw_degrees(torch.tensor(pure)).numpy(), [-60, -10, 0, 25], atol=1e-9)


def test_head_yaw_composes_global_and_neck():
    pose = torch.zeros(2, 5, 3, dtype=torch.float64)
    pose[0, 0, 1], pose[0, 1, 1] = np.deg2rad(10), np.deg2rad(15)
    pose[1, 0, 1], pose[1, 2, 1] = np.deg2rad(-20), np.deg2rad(30)  # the jaw does not count
    np.testing.assert_allclose(head_yaw(rodrigues(pose)).numpy(), [25, -20], atol=1e-9)


def test_contour_rows_cover_the_table_and_invert():
    yaws = torch.arange(-39, 40, dtype=torch.float64)
    rows = contour_row_for_yaw(yaws)
    assert sorted(rows.tolist()) == list(range(N_CONTOUR_ROWS))
    assert [yaw_for_contour_row(int(r)) for r in rows] == yaws.long().tolist()
    assert contour_row_for_yaw(torch.tensor([-80.0, 80.0, 0.4, -0.4, 0.6])).tolist() == [39, 78, 0, 0, 40]
    assert NOW7_STATIC51 == tuple(i - 17 for i in NOW7_IBUG)


def test_barycentric_points_match_numpy_with_per_batch_faces():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(2, 10, 3))
    f = rng.integers(0, 10, size=(6, 3))
    idx = rng.integers(0, 6, size=(2, 4))
    bary = rng.dirichlet(np.ones(3), size=(2, 4))
    got = barycentric_points(torch.tensor(v), torch.tensor(f), torch.tensor(idx), torch.tensor(bary)).numpy()
    expect = np.stack([(v[b][f[idx[b]]] * bary[b][..., None]).sum(1) for b in range(2)])
    np.testing.assert_allclose(got, expect, atol=1e-12)
    shared = barycentric_points(torch.tensor(v), torch.tensor(f), torch.tensor(idx[0]), torch.tensor(bary[0]))
    np.testing.assert_allclose(shared[1].numpy(), (v[1][f[idx[0]]] * bary[0][..., None]).sum(1), atol=1e-12)
