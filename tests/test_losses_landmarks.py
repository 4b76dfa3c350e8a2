"""2D landmark losses: zero at ground truth, growth, gradient direction, visibility, no NaN."""

from __future__ import annotations

import pytest
import torch

from facecourse.losses import deca_landmark_weights, eye_closure_loss, landmark_loss, lip_distance_loss


def _target(b=2):
    g = torch.Generator().manual_seed(0)
    return torch.rand(b, 68, 2, generator=g, dtype=torch.float64) * 2 - 1


def test_deca_weights():
    w = deca_landmark_weights()
    assert w.shape == (68,) and w[0] == 1 and w[5] == 2 and w[11] == 2 and w[12] == 1
    assert w[27] == 1.5 and w[30] == 3 and w[48] == 3 and w[54] == 3 and w[60] == 1.5 and w[36] == 1


def test_landmark_loss_zero_grows_and_equals_hand_formula():
    t = _target()
    assert landmark_loss(t, t) == 0
    losses = [landmark_loss(t + d, t).item() for d in (0.01, 0.02, 0.05)]
    assert losses[0] < losses[1] < losses[2] and abs(losses[0] - 0.01) < 1e-12  # uniform shift: mean |dx|
    pred = t.clone()
    pred[:, 30, 0] += 0.1  # a nose point (weight 3)
    w = deca_landmark_weights(torch.float64)
    assert torch.isclose(landmark_loss(pred, t), 3 * 0.1 * 2 / (2 * 2 * w.sum()))


def test_landmark_gradient_points_towards_target():
    t = _target()
    pred = (t + 0.1 * torch.randn_like(t)).requires_grad_()
    landmark_loss(pred, t).backward()
    assert (torch.sign(-pred.grad) == torch.sign(t - pred.detach())).all()


def test_invisible_landmarks_ignored_and_all_invisible_no_nan():
    t = _target()
    t3 = torch.cat([t, torch.ones_like(t[..., :1])], -1)
    t3[:, :17, 2] = 0  # contour invisible
    pred = t.clone()
    pred[:, :17] += 5.0
    assert landmark_loss(pred, t3) == 0
    assert landmark_loss(pred, t, visibility=t3[..., 2]) == 0
    p = (t + 1).requires_grad_()
    loss = landmark_loss(p, t, visibility=torch.zeros(2, 68, dtype=torch.float64))
    loss.backward()
    assert loss == 0 and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("fn,upper,lower", [(eye_closure_loss, 37, 41), (lip_distance_loss, 62, 66)])
def test_closure_losses(fn, upper, lower):
    t = _target()
    assert fn(t, t) == 0
    shifted = t + 0.3  # a rigid shift keeps every distance: no closure error
    assert fn(shifted, t) < 1e-12
    pred = t.clone()
    pred[:, upper] = pred[:, lower]  # closed eye / closed lips on one pair: exactly coincident points
    pred.requires_grad_()
    loss = fn(pred, t)
    loss.backward()
    assert loss > 0 and torch.isfinite(pred.grad).all()
    # Nearly closed: a small gradient step opens the pair again and reduces the loss.
    near = t.clone()
    near[:, upper] = near[:, lower] + 1e-3
    near.requires_grad_()
    loss = fn(near, t)
    loss.backward()
    with torch.no_grad():
        stepped = near - 1e-3 * near.grad / near.grad.norm()
        assert fn(stepped, t) < loss
        gap = (stepped[:, upper] - stepped[:, lower]).norm(dim=-1)
        assert (gap > (near[:, upper] - near[:, lower]).norm(dim=-1)).all()
    zero_vis = fn(pred.detach(), t, visibility=torch.zeros(2, 68, dtype=torch.float64))
    assert zero_vis == 0


def test_bad_shapes():
    with pytest.raises(ValueError, match="target"):
        landmark_loss(torch.zeros(1, 68, 2), torch.zeros(1, 67, 2))
    with pytest.raises(ValueError, match="visibility"):
        landmark_loss(torch.zeros(1, 68, 2), torch.zeros(1, 68, 2), visibility=torch.ones(68))
