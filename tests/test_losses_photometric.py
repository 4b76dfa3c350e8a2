"""facecourse.losses.photometric: the masked photometric loss."""

from __future__ import annotations

import pytest
import torch

from facecourse.losses import photometric_loss


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
