"""Photometric loss, region masks and regularisers."""

from __future__ import annotations

import pytest
import torch
import trimesh

from facecourse.render.head import region_mask
from facecourse.losses import (
    albedo_regularizer,
    expression_regularizer,
    light_regularizer,
    photometric_loss,
    shape_regularizer,
)
from facecourse.render import rasterize, weak_perspective


def test_photometric_zero_grows_gradient_and_mask():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 8, 8, generator=g)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:6, 2:6] = 1
    assert photometric_loss(target, target, mask) == 0
    assert photometric_loss(target + 0.1, target, mask) < photometric_loss(target + 0.2, target, mask)
    assert torch.isclose(photometric_loss(target + 0.1, target, mask), torch.tensor(0.1))
    outside = target.clone()
    outside[:, :, 0] += 1  # change only unmasked pixels
    assert photometric_loss(outside, target, mask) == 0
    pred = (target + 0.1 * torch.randn(target.shape, generator=g)).requires_grad_()
    photometric_loss(pred, target, mask).backward()
    inside = mask.expand_as(pred).bool()
    assert (torch.sign(-pred.grad[inside]) == torch.sign((target - pred.detach())[inside])).all()
    assert (pred.grad[~inside] == 0).all()


def test_photometric_empty_mask_no_nan():
    pred = torch.rand(1, 3, 4, 4, requires_grad=True)
    loss = photometric_loss(pred, torch.rand(1, 3, 4, 4), torch.zeros(1, 4, 4))
    loss.backward()
    assert loss == 0 and torch.isfinite(pred.grad).all()
    with pytest.raises(ValueError, match="mask"):
        photometric_loss(pred, pred, torch.zeros(1, 1, 3, 4))


def test_region_mask_selects_region_pixels():
    mesh = trimesh.creation.icosphere(subdivisions=3)
    v = torch.tensor(mesh.vertices, dtype=torch.float32)[None]
    f = torch.tensor(mesh.faces)
    frag = rasterize(weak_perspective(v, torch.tensor([[0.9, 0.0, 0.0]])), f, 32)
    upper = v[0, :, 1] > 0.2  # model +y is up: the upper cap shows in the top rows of the image
    m = region_mask(frag, f, upper)[0, 0]
    assert m[:12].sum() > 20 and m[20:].sum() == 0
    assert (m <= frag.mask[0].float()).all()


def test_regularizers():
    c = torch.tensor([[1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    assert shape_regularizer(c) == 2.5 and expression_regularizer(c) == 2.5 and albedo_regularizer(c) == 2.5
    shape_regularizer(c).backward()
    assert torch.equal(c.grad, c.detach())  # d/dc (|c|^2 / B) = 2c / B with B = 2
    white = torch.ones(1, 9, 3)
    assert light_regularizer(white) == 0
    coloured = white.clone()
    coloured[:, :, 0] = 2
    assert light_regularizer(coloured) > 0
    with pytest.raises(ValueError, match="lighting"):
        light_regularizer(torch.ones(1, 27))
