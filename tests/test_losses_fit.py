"""facecourse.losses.fit: camera initialisation and analysis-by-synthesis on a synthetic image (needs the
synthetic FLAME model, built on demand; ``renderer`` is in conftest.py)."""

from __future__ import annotations

import torch

from facecourse.datasets.synthetic_images import generate
from facecourse.losses import FitConfig, fit_to_image, init_camera
from facecourse.render import weak_perspective


def test_init_camera_recovers_camera():
    g = torch.Generator().manual_seed(0)
    lmk = torch.randn(2, 68, 3, generator=g) * 0.05
    cam = torch.tensor([[7.0, 0.01, -0.02], [5.0, -0.03, 0.0]])
    uv = weak_perspective(lmk, cam)[..., :2]
    assert torch.allclose(init_camera(lmk, uv, torch.ones(2, 68)), cam, atol=1e-4)


def test_fit_reduces_2d_losses(renderer):
    data = generate(1, 48, seed=2, renderer=renderer)
    cfg = FitConfig(rigid_steps=20, steps=40, n_shape=20, n_exp=10)
    res = fit_to_image(renderer, data.images, data.landmarks, data.visibility, config=cfg, progress=False)
    first = next(h for h in res.history if h["stage"] == 1)
    last = res.history[-1]
    assert res.history[-1]["stage"] == 1 and len(res.history) == 60
    assert last["landmark"] < 0.7 * res.history[0]["landmark"]
    assert last["photometric"] < first["photometric"]
    assert res.image.shape == data.images.shape and res.landmarks.shape == (1, 68, 2)
