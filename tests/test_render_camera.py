"""Cameras: pinhole formula, and a far pinhole camera agreeing with weak perspective (geometry + shading)."""

from __future__ import annotations

import pytest
import torch
import trimesh

from facecourse.render import (
    PerspectiveCamera,
    WeakPerspectiveCamera,
    directional_sh,
    frontal_rotation,
    perspective,
    render,
)


def test_pinhole_formula_and_frontal_axes():
    pts = torch.tensor([[[0.1, 0.2, 0.05], [-0.1, 0.0, 0.0]]], dtype=torch.float64)
    r = frontal_rotation(1, dtype=torch.float64)
    t = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    out = perspective(pts, r, t, torch.tensor([[2.0, 3.0]], dtype=torch.float64),
                      principal=torch.tensor([[0.1, -0.2]], dtype=torch.float64))
    z = 1.0 - 0.05  # model +z points at the camera: nearer
    assert torch.allclose(out[0, 0], torch.tensor([2 * 0.1 / z + 0.1, 3 * -0.2 / z - 0.2, z], dtype=torch.float64))
    assert out[0, 1, 0] < 0.1  # model -x (subject's right) is on the image left
    with pytest.raises(ValueError, match="focal"):
        perspective(pts, r, t, torch.ones(1, 3))


def test_far_pinhole_matches_weak_perspective():
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    mesh.vertices[:, 2] *= 0.6
    v = torch.tensor(mesh.vertices, dtype=torch.float64)[None]
    f = torch.tensor(mesh.faces)
    light = directional_sh(torch.tensor([[0.5, 0.4, 0.8]], dtype=torch.float64), 0.7, 0.3).double()
    dist, s = 200.0, 8.0
    weak = render(v, f, WeakPerspectiveCamera(torch.tensor([[s, 0.0, 0.0]], dtype=torch.float64)), 48,
                  lighting=light, backend="torch")
    cam = PerspectiveCamera(frontal_rotation(1, dtype=torch.float64), torch.tensor([[0.0, 0.0, dist]],
                            dtype=torch.float64), focal=s * dist)
    pin = render(v, f, cam, 48, lighting=light, backend="torch")
    agree = (weak.mask == pin.mask).float().mean()
    assert agree > 0.995
    both = (weak.mask * pin.mask).bool().expand_as(weak.image)
    assert (weak.image[both] - pin.image[both]).abs().max() < 1e-2  # normals in the same view frame
