"""Non-finite and empty inputs are named (ValueError), and the background never depends on face 0."""

from __future__ import annotations

import pytest
import torch

from facecourse.render import WeakPerspectiveCamera, interpolate, rasterize, render


def _quad():
    v = torch.tensor([[[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0], [0.0, 0.0, 0.1]]])
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    return v, f


def test_nan_on_one_vertex_is_named_by_the_renderer():
    v, f = _quad()
    v[0, 4, 1] = float("nan")  # a vertex no face uses
    cam = WeakPerspectiveCamera(torch.tensor([[1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"vertices contains 1 non-finite value.*\(0, 4, 1\)"):
        render(v, f, cam, 8)
    v[0, 4, 1] = float("inf")
    with pytest.raises(ValueError, match=r"screen \(projected vertices\) contains"):
        rasterize(v, f, 8)


def test_empty_faces_are_named():
    v, _ = _quad()
    with pytest.raises(ValueError, match="faces is empty"):
        rasterize(v, torch.zeros(0, 3, dtype=torch.long), 8)
    with pytest.raises(ValueError, match="non-empty"):
        render(v, torch.zeros(0, 3, dtype=torch.long), WeakPerspectiveCamera(torch.tensor([[1.0, 0.0, 0.0]])), 8)


def test_background_never_reads_face_zero():
    """Background pixels index face 0 before masking: a NaN in its attributes must not reach them."""
    v, f = _quad()
    v = v * 0.5  # leaves a background border
    frag = rasterize(v, f, 16)
    assert (~frag.mask).any() and frag.mask.any()
    colours = torch.rand(1, 5, 3)
    colours[0, 0] = float("nan")  # vertex 0 belongs to face 0 (and face 1)
    out = interpolate(colours, f, frag)
    background = out[~frag.mask]
    assert torch.equal(background, torch.zeros_like(background))
    assert (frag.bary[~frag.mask] == 0).all() and (frag.zbuf[~frag.mask] == 0).all()
