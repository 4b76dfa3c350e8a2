"""facecourse.losses.vertices: the per-vertex mesh error in millimetres and its alignments."""

from __future__ import annotations

import torch
from scipy.spatial.transform import Rotation

from facecourse.losses import mesh_error_mm


def test_mesh_error_alignments():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(1, 200, 3, generator=g, dtype=torch.float64) * 0.05
    r = torch.tensor(Rotation.from_rotvec([0.2, -0.1, 0.3]).as_matrix())
    moved = 1.3 * v @ r.T + torch.tensor([0.01, 0.02, 0.03], dtype=torch.float64)
    assert mesh_error_mm(v + 0.01, v)["mean"] < 1e-9
    assert abs(mesh_error_mm(v + 0.01, v, align="none")["mean"] - 10 * 3**0.5) < 1e-6
    assert mesh_error_mm(moved, v, align="similarity")["mean"] < 1e-6
    assert mesh_error_mm(moved, v)["mean"] > 1.0
