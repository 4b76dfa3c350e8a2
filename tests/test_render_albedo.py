"""Albedo models: the synthetic per-vertex model and the official UV texture formats."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facecourse.render import (
    WeakPerspectiveCamera,
    load_texture_model,
    render,
    synthetic_albedo_model,
)


def _grid_head():
    rng = np.random.default_rng(0)
    v = rng.uniform(-0.1, 0.1, size=(400, 3))
    masks = {"lips": np.arange(0, 20), "left_eyeball": np.arange(20, 40), "right_eyeball": np.arange(40, 60),
             "left_eye_region": np.arange(20, 100), "right_eye_region": np.arange(40, 140),
             "scalp": np.arange(300, 400)}
    return v, masks


def test_synthetic_albedo_regions_and_components():
    v, masks = _grid_head()
    model = synthetic_albedo_model(v, masks)
    assert model.mean.shape == (400, 3) and model.basis.shape == (6, 400, 3)
    lips = model.basis[model.names.index("lips")]
    assert (lips[masks["lips"]].abs().sum(-1) > 0).all()
    assert lips[200:300].abs().sum() == 0  # a lip component never touches other regions
    assert model.basis[model.names.index("iris")][:20].abs().sum() == 0
    zero = model(torch.zeros(2, 6))
    assert torch.allclose(zero[0], model.mean)
    darker = model(torch.tensor([[2.0, 0, 0, 0, 0, 0]]))
    assert (darker[0, 200:300].sum(-1) < model.mean[200:300].sum(-1)).all()
    assert model(torch.full((1, 6), 50.0)).max() <= 1.0
    with pytest.raises(ValueError, match="coefficients"):
        model(torch.zeros(2, 7))


def _write_flame_texture(tmp_path, size=8, bfm=False):
    """A file in FLAME_texture.npz format (mean/tex_dir, 0..255, BGR) with a left-red/right-blue mean."""
    mean = np.zeros((size, size, 3))
    mean[:, : size // 2] = (0, 0, 255)  # BGR red on the left half (u < 0.5)
    mean[:, size // 2:] = (255, 0, 0)  # BGR blue on the right half
    mean[0] = 255  # first stored row = top of the texture (OBJ v = 1): white
    tex_dir = np.zeros((size, size, 3, 4))
    tex_dir[..., 1, 0] = 255  # component 0 adds green everywhere
    if bfm:
        path = tmp_path / "FLAME_albedo_from_BFM.npz"
        np.savez(path, MU=(mean / 255).reshape(-1), PC=(tex_dir / 255).reshape(-1, 4))
    else:
        path = tmp_path / "FLAME_texture.npz"
        np.savez(path, mean=mean.reshape(-1), tex_dir=tex_dir.reshape(-1, 4))
    # Layout: one quad covering the UV square, written as an OBJ like head_template.obj.
    (tmp_path / "head_template.obj").write_text(
        "v -1 -1 0\nv 1 -1 0\nv 1 1 0\nv -1 1 0\n"
        "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"
        "f 1/1 2/2 3/3\nf 1/1 3/3 4/4\n")
    return path


@pytest.mark.parametrize("bfm", [False, True])
def test_uv_texture_model_official_format(tmp_path, bfm):
    path = _write_flame_texture(tmp_path, bfm=bfm)
    model = load_texture_model(path, n_components=2)
    assert model.mean.shape == (3, 8, 8) and model.basis.shape == (2, 3, 8, 8)
    assert torch.allclose(model.mean[:, 1, 0], torch.tensor([1.0, 0, 0]))  # BGR -> RGB, 0..255 -> 0..1
    tex = model(torch.tensor([[0.5, 0.0]]))
    assert torch.allclose(tex[0, 1, 1:], torch.full((7, 8), 0.5))
    # Render the quad: image left (model -x, u < 0.5) red, right blue.
    v = torch.tensor([[[-1.0, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    out = render(v, faces, WeakPerspectiveCamera(torch.tensor([[0.9, 0.0, 0.0]])), 16, texture=tex,
                 face_uv=model.face_uv(), backend="torch")
    assert torch.allclose(out.image[0, :, 8, 3], torch.tensor([1.0, 0.5, 0.0]), atol=1e-5)
    assert torch.allclose(out.image[0, :, 8, 12], torch.tensor([0.0, 0.5, 1.0]), atol=1e-5)
    assert torch.allclose(out.image[0, :, 1, 8], torch.tensor([1.0, 1.5, 1.0]), atol=1e-5)  # top = v = 1
    assert out.image[0, :, 14, 8].min() < 0.9  # bottom is not white


def test_texture_bad_keys(tmp_path):
    np.savez(tmp_path / "x.npz", foo=np.zeros(3))
    with pytest.raises(ValueError, match="expected keys"):
        load_texture_model(tmp_path / "x.npz")
