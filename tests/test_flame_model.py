"""The FLAME module on the tiny fixture model: written with our writers, read with from_file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from facecourse.flame import FLAME, load_model


@pytest.fixture(scope="module")
def tiny(tiny_flame_path):
    return tiny_flame_path, FLAME.from_file(tiny_flame_path, n_shape=6, n_exp=4, dtype=torch.float64)


def test_zero_parameters_give_template(tiny):
    path, flame = tiny
    out = flame(batch_size=2)
    model = load_model(path)
    assert out.vertices.shape == (2, flame.n_vertices, 3)
    np.testing.assert_allclose(out.vertices[1].numpy(), model["v_template"], atol=1e-12)
    np.testing.assert_allclose(out.joints[0].numpy(), model["J_regressor"] @ model["v_template"], atol=1e-12)
    assert out.landmarks.shape == (2, 68, 3) and out.landmarks_now7.shape == (2, 7, 3)
    torch.testing.assert_close(out.landmarks_now7, out.landmarks[:, [36, 39, 42, 45, 33, 48, 54]])
    assert flame.faces.dtype == torch.long and flame.faces.shape == (len(model["f"]), 3)


def test_global_rotation_is_rigid_about_root(tiny):
    _, flame = tiny
    shape = torch.randn(1, 6, dtype=torch.float64)
    rest = flame(shape=shape)
    rotvec = np.array([0.2, 0.9, -0.3])
    out = flame(shape=shape, global_pose=torch.tensor(rotvec)[None])
    root = rest.joints[0, 0].numpy()
    expect = Rotation.from_rotvec(rotvec).apply(rest.vertices[0].numpy() - root) + root
    np.testing.assert_allclose(out.vertices[0].numpy(), expect, atol=1e-12)


def test_translation_moves_everything(tiny):
    _, flame = tiny
    t = torch.tensor([[0.1, -0.2, 0.3]], dtype=torch.float64)
    a, b = flame(jaw_pose=torch.full((1, 3), 0.1, dtype=torch.float64)), None
    b = flame(jaw_pose=torch.full((1, 3), 0.1, dtype=torch.float64), translation=t)
    for name in ("vertices", "landmarks", "landmarks_now7", "joints"):
        torch.testing.assert_close(getattr(b, name), getattr(a, name) + t[:, None])


def test_bad_inputs_are_named(tiny):
    _, flame = tiny
    with pytest.raises(ValueError, match="expression"):
        flame(expression=torch.zeros(1, 5))
    with pytest.raises(ValueError, match="eye_pose"):
        flame(eye_pose=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="n_exp"):
        FLAME.from_file(tiny[0], n_exp=101)
