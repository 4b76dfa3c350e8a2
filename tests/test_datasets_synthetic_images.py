"""facecourse.datasets.synthetic_images: rendered synthetic faces with their ground truth (needs the synthetic
FLAME model, built on demand; ``renderer`` is in conftest.py)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from facecourse.datasets.synthetic_images import _axis_angle_xyz, generate
from facecourse.losses import landmark_loss


def test_generate_shapes_ranges_and_determinism(renderer):
    a = generate(3, 64, seed=5, renderer=renderer)
    b = generate(3, 64, seed=5, renderer=renderer)
    assert a.images.shape == (3, 3, 64, 64) and a.landmarks.shape == (3, 68, 2)
    assert torch.equal(a.images, b.images) and torch.equal(a.landmarks, b.landmarks)
    assert a.images.min() >= 0 and a.images.max() <= 1
    assert a.visibility.mean() > 0.8 and (a.landmarks.abs() < 1).float().mean() > 0.95
    assert (a.skin_mask <= a.mask).all() and a.skin_mask.sum() > 0.05 * a.mask.sum()
    assert a.vertices.shape == (3, renderer.flame.n_vertices, 3)
    c = generate(3, 64, seed=6, renderer=renderer)
    assert not torch.equal(a.images, c.images)


def test_ground_truth_parameters_reproduce_image_and_landmarks(renderer):
    data = generate(2, 64, seed=1, renderer=renderer)
    p = data.params
    lmk = renderer.camera_landmarks(p)
    assert torch.allclose(lmk, data.landmarks, atol=1e-6)
    assert landmark_loss(lmk, data.landmarks, visibility=data.visibility) < 1e-6
    out = renderer(p, 64).render
    diff = (out.image.clamp(0, 1) - data.images).abs() * out.mask
    assert diff.max() < 1e-5


def test_axis_angle_matches_scipy():
    angles = torch.tensor([[0.2, -0.5, 0.1], [-0.3, 0.4, -0.2]], dtype=torch.float64)  # pitch, yaw, roll
    ours = _axis_angle_xyz(angles[:, 0], angles[:, 1], angles[:, 2]).numpy()
    ref = Rotation.from_euler("YXZ", angles[:, [1, 0, 2]].numpy()).as_rotvec()
    assert np.allclose(ours, ref, atol=1e-9)
