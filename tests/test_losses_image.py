"""The 2D loss terms shared by the fit and the regressor: weights scale the right losses, zero weights cost
nothing, the photo's mask restricts the photometric term."""

from dataclasses import dataclass, replace

import pytest
import torch

from facecourse.losses import landmark_loss, photometric_loss
from facecourse.losses.image import IMAGE_TERMS, image_loss_terms
from facecourse.render.head import FaceParams, HeadRenderer


@dataclass
class Weights:
    w_landmark: float = 2.0
    w_eye: float = 1.0
    w_lip: float = 0.5
    w_photometric: float = 3.0
    w_identity: float = 0.2
    w_shape: float = 1e-3
    w_expression: float = 0.0
    w_albedo: float = 1e-3
    w_light: float = 1.0


@pytest.fixture(scope="module")
def rendered():
    renderer = HeadRenderer.default("small", n_shape=10, n_exp=5)
    g = torch.Generator().manual_seed(0)
    params = FaceParams(shape=torch.randn(2, 10, generator=g), expression=torch.randn(2, 5, generator=g),
                        camera=torch.tensor([[8.0, 0.0, 0.0], [7.0, 0.01, 0.0]]),
                        albedo=torch.zeros(2, renderer.albedo_model.n_components))
    head = renderer(params, 32)
    image = torch.rand(2, 3, 32, 32, generator=g)
    target = head.landmarks[..., :2] + 0.05 * torch.randn(2, 68, 2, generator=g)
    return head, params, image, target


def test_weights_scale_their_losses_and_zero_weights_are_left_out(rendered):
    head, params, image, target = rendered
    terms = image_loss_terms(Weights(), head, params, image, target)
    assert set(terms) == set(IMAGE_TERMS.values()) - {"expression_reg", "identity", "light_reg"}, \
        "zero weight, no recogniser and no lighting must leave their terms out"
    assert terms["landmark"] == pytest.approx(2.0 * landmark_loss(head.landmarks[..., :2], target).item())
    assert terms["photometric"] == pytest.approx(3.0 * photometric_loss(head.render.image, image,
                                                                        head.skin_mask).item())


def test_the_photo_mask_restricts_the_photometric_term(rendered):
    head, params, image, target = rendered
    weights = replace(Weights(), w_landmark=0.0)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., :16, :] = 1
    changed = image.clone()
    changed[..., 16:, :] = 1 - changed[..., 16:, :]
    a = image_loss_terms(weights, head, params, image, target, image_mask=mask)["photometric"]
    b = image_loss_terms(weights, head, params, changed, target, image_mask=mask)["photometric"]
    c = image_loss_terms(weights, head, params, changed, target)["photometric"]
    assert a == pytest.approx(b.item()) and abs(c.item() - a.item()) > 1e-3
