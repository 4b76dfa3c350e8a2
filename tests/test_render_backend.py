"""Backend switch: conventions of the pytorch3d path, and a comparison when pytorch3d is installed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from facecourse.render import (
    pixel_centers,
    pytorch3d_available,
    rasterize,
    rasterize_any,
    resolve_backend,
    weak_perspective,
)
from facecourse.render.backend import to_pytorch3d_ndc


def test_resolve_backend():
    assert resolve_backend("torch") == "torch"
    assert resolve_backend("auto") == ("pytorch3d" if pytorch3d_available() else "torch")
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("opengl")


def test_pytorch3d_ndc_mapping_of_pixel_centres():
    """pytorch3d's pixel (i, j) centre on an H x W image (S = min(H, W)) is
    x = (W/S)(1 - (2j+1)/W), y = (H/S)(1 - (2i+1)/H) (+x left, +y up, top-left pixel at +x +y)."""
    h, w = 6, 10
    uv = pixel_centers((h, w), dtype=torch.float64)
    pts = torch.cat([uv.reshape(1, -1, 2), torch.ones(1, h * w, 1, dtype=torch.float64)], -1)
    xy = to_pytorch3d_ndc(pts, (h, w), shift_depth=False)[0, :, :2].reshape(h, w, 2)
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    s = min(h, w)
    assert np.allclose(xy[..., 0].numpy(), (w / s) * (1 - (2 * j + 1) / w))
    assert np.allclose(xy[..., 1].numpy(), (h / s) * (1 - (2 * i + 1) / h))


@pytest.mark.skipif(not pytorch3d_available(), reason="pytorch3d is not installed")
def test_pytorch3d_backend_agrees_with_builtin():
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    mesh.vertices += np.random.default_rng(0).normal(scale=0.01, size=mesh.vertices.shape)
    v = torch.tensor(mesh.vertices, dtype=torch.float32)[None].repeat(2, 1, 1)
    f = torch.tensor(mesh.faces, dtype=torch.long)
    screen = weak_perspective(v, torch.tensor([[1.2, 0.0, 0.0], [0.9, 0.1, -0.1]]))
    ours = rasterize(screen, f, (40, 56))
    theirs = rasterize_any(screen, f, (40, 56), backend="pytorch3d")
    same = ours.pix_to_face == theirs.pix_to_face
    assert same.float().mean() > 0.99
    assert torch.allclose(ours.bary[same], theirs.bary[same], atol=1e-4)
    assert torch.allclose(ours.zbuf[same], theirs.zbuf[same], atol=1e-4)
