"""The soft silhouette: it tends to the hard rasteriser's mask as the blur goes to 0, lies in [0, 1], ignores
the winding and the chunking, passes gradcheck, and gives a silhouette loss the gradient that the hard mask
cannot (moving a triangle towards its target lowers the loss, as finite differences confirm)."""

from __future__ import annotations

import pytest
import torch

from facecourse.render import rasterize
from facecourse.render.soft import point_segment_distance2, soft_silhouette

TRIANGLE = torch.tensor([[[-0.6, -0.5, 1.0], [0.7, -0.2, 1.0], [-0.1, 0.8, 1.0]]], dtype=torch.float64)
FACES = torch.tensor([[0, 1, 2]])


def test_point_segment_distance_regions():
    a, b = torch.tensor([0.0, 0.0]), torch.tensor([2.0, 0.0])
    d2 = point_segment_distance2(torch.tensor([1.0, 3.0, -1.0]), torch.tensor([1.0, 0.0, -1.0]), a[0], a[1], b[0], b[1])
    assert torch.allclose(d2, torch.tensor([1.0, 1.0, 2.0]))  # above the middle, beyond b, before a


def test_small_blur_gives_the_hard_mask():
    hard = rasterize(TRIANGLE, FACES, 24).mask[0]
    soft = soft_silhouette(TRIANGLE, FACES, 24, sigma=1e-3)[0]
    assert torch.equal(soft > 0.5, hard), "thresholded at 1/2 it is the hard mask"
    assert float(soft[hard].median()) > 0.999 and float(soft[~hard].median()) < 1e-3
    assert 0.0 <= float(soft.min()) and float(soft.max()) <= 1.0


def test_blur_spreads_coverage_outside_and_values_stay_in_unit_range():
    soft = soft_silhouette(TRIANGLE, FACES, 24, sigma=4.0)[0]
    hard = rasterize(TRIANGLE, FACES, 24).mask[0]
    assert float(soft.min()) >= 0 and float(soft.max()) <= 1
    assert float(soft[~hard].max()) > 0.2, "a blur of 2 px covers pixels just outside"
    assert float(soft[0, 0]) < 1e-4, "7 px away: exp(-49 / 4), nothing is covered"


def test_winding_and_chunking_do_not_matter():
    two = torch.cat([TRIANGLE, TRIANGLE[:, :, :] * torch.tensor([0.5, 0.5, 1.0], dtype=torch.float64) + 0.3], dim=1)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    reference = soft_silhouette(two, faces, 16, sigma=0.5)
    assert torch.allclose(soft_silhouette(two, faces.flip(1), 16, sigma=0.5), reference, atol=1e-12)
    assert torch.allclose(soft_silhouette(two, faces, 16, sigma=0.5, faces_per_chunk=1), reference, atol=1e-12)
    single = soft_silhouette(two, faces[:1], 16, sigma=0.5)
    assert (reference >= single - 1e-12).all(), "adding a triangle never uncovers a pixel"


def test_gradcheck():
    screen = TRIANGLE.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: soft_silhouette(s, FACES, 6, sigma=1.0), (screen,), eps=1e-6, atol=1e-5)


def shifted_loss(shift: torch.Tensor, target: torch.Tensor, sigma: float) -> torch.Tensor:
    moved = TRIANGLE + torch.stack([shift, torch.zeros_like(shift), torch.zeros_like(shift)])
    return ((soft_silhouette(moved, FACES, 24, sigma=sigma) - target) ** 2).mean()


def test_a_silhouette_loss_gets_a_gradient_towards_the_target():
    target = rasterize(TRIANGLE + torch.tensor([0.25, 0.0, 0.0], dtype=torch.float64), FACES, 24).mask.double()
    shift = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    loss = shifted_loss(shift, target, sigma=1.0)
    (grad,) = torch.autograd.grad(loss, shift)
    assert grad < 0, "moving right (towards the target) lowers the loss"
    h = 1e-4
    fd = (shifted_loss(torch.tensor(h, dtype=torch.float64), target, 1.0)
          - shifted_loss(torch.tensor(-h, dtype=torch.float64), target, 1.0)) / (2 * h)
    assert torch.isclose(grad, fd, rtol=1e-3)
    hard = rasterize(TRIANGLE + torch.stack([shift, shift * 0, shift * 0]), FACES, 24).mask.double()
    assert not hard.requires_grad, "the hard mask has no gradient at all"


def test_bad_blur_is_named():
    with pytest.raises(ValueError, match="sigma"):
        soft_silhouette(TRIANGLE, FACES, 8, sigma=0.0)
    with pytest.raises(ValueError, match="non-finite"):
        soft_silhouette(TRIANGLE * float("nan"), FACES, 8)


def test_the_head_renderer_soft_silhouette_matches_its_rendered_mask(renderer):
    from facecourse.render import FaceParams

    params = FaceParams(shape=torch.zeros(1, renderer.flame.n_shape), camera=torch.tensor([[9.0, 0.0, 0.0]]))
    soft = renderer.soft_silhouette(params, 32, sigma=0.05)
    hard = renderer(params, 32).render.fragments.mask
    assert soft.shape == (1, 32, 32)
    differ = (soft > 0.5) != hard
    m = hard.double()[:, None]
    outline = (torch.nn.functional.max_pool2d(m, 3, 1, 1) != -torch.nn.functional.max_pool2d(-m, 3, 1, 1))[:, 0]
    assert differ.double().mean() < 0.02
    assert not (differ & ~outline).any(), "they differ only on the outline (folded triangles overlap there)"
