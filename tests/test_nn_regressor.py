"""The image-to-FLAME regressor: a fresh model starts at the mean face and the crop's framing, the raw
outputs decode to the documented parameters, checkpoints never hold FLAME, gradients reach the backbone."""

import pytest
import torch

from facecourse.nn.backbones import resnet
from facecourse.nn.regressor import (AMBIENT_LIGHT, TRANSLATION_SCALE, FaceRegressor, HeadSizes, Reconstructor,
                                     decode_head)
from facecourse.render.head import HeadRenderer
from facecourse.render.shading import SH_CONSTANTS


@pytest.fixture(scope="module")
def renderer():
    return HeadRenderer.default("small", n_shape=20, n_exp=10)


def regressor(renderer, seed=0):
    torch.manual_seed(seed)
    return FaceRegressor(resnet(18, width=8), 20, HeadSizes(10, renderer.albedo_model.n_components), hidden=32,
                         camera_scale=9.0)


def test_a_fresh_regressor_predicts_the_neutral_mean_face_framed_by_its_camera_scale(renderer):
    params = regressor(renderer).eval()(torch.rand(4, 3, 64, 64))
    assert torch.equal(params.expression, torch.zeros(4, 10))
    assert torch.equal(params.global_pose, torch.zeros(4, 3)) and torch.equal(params.jaw_pose, torch.zeros(4, 3))
    assert torch.allclose(params.camera, torch.tensor([[9.0, 0.0, 0.0]]).expand(4, 3))
    ambient = torch.zeros(9, 3)
    ambient[0] = AMBIENT_LIGHT / SH_CONSTANTS[0]
    assert torch.allclose(params.lighting, ambient.expand(4, 9, 3))
    assert params.shape.shape == (4, 20) and params.shape.abs().max() < 0.5, "the identity branch starts near 0"


def test_raw_outputs_decode_to_a_positive_scale_metric_translation_and_the_sh_layout(renderer):
    sizes = HeadSizes(n_exp=2, n_albedo=3)
    raw = torch.zeros(1, sizes.n_outputs)
    raw[0, :2] = torch.tensor([0.5, -1.0])  # expression
    raw[0, 2 + 6] = torch.log(torch.tensor(2.0))  # log of the scale factor
    raw[0, 2 + 7:2 + 9] = torch.tensor([1.0, -2.0])  # translation in units of TRANSLATION_SCALE
    raw[0, 2 + 9 + 1] = 0.25  # lighting: DC term of green
    params = decode_head(raw, torch.zeros(1, 5), sizes, torch.tensor(8.0))
    assert torch.allclose(params.expression, torch.tensor([[0.5, -1.0]]))
    assert torch.allclose(params.camera, torch.tensor([[16.0, TRANSLATION_SCALE, -2 * TRANSLATION_SCALE]]))
    assert params.lighting[0, 0, 1] == pytest.approx(AMBIENT_LIGHT / SH_CONSTANTS[0] + 0.25)
    assert params.albedo.shape == (1, 3)
    with pytest.raises(ValueError, match=r"raw head outputs must be \(B, 41\)"):
        decode_head(torch.zeros(1, 7), torch.zeros(1, 5), sizes, torch.tensor(8.0))


def test_the_reconstructor_renders_and_its_state_holds_the_regressor_only(renderer):
    rec = Reconstructor(regressor(renderer), renderer)
    assert all(k.startswith("regressor.") for k in rec.state_dict()), "FLAME's arrays must stay out of checkpoints"
    images = torch.rand(2, 3, 64, 64)
    out = rec(images)
    assert out.head.render.image.shape == (2, 3, 64, 64) and out.head.landmarks.shape == (2, 68, 3)
    assert torch.allclose(out.neutral, renderer.flame(shape=out.params.shape).vertices)
    rec.double()
    assert renderer.flame.v_template.dtype == torch.float64, ".double() must reach FLAME"
    rec.float()
    with pytest.raises(ValueError, match="predicts 30 shape coefficients but the FLAME model has 20"):
        Reconstructor(FaceRegressor(resnet(18, width=8), 30, HeadSizes(10, 4), hidden=8), renderer)


def test_a_landmark_error_trains_the_backbone_and_both_branches(renderer):
    rec = Reconstructor(regressor(renderer), renderer)
    out = rec(torch.rand(2, 3, 64, 64), render=False)
    target = torch.zeros(2, 68, 2)
    projected = renderer.camera_landmarks(out.params)
    ((projected - target).abs().mean() + out.neutral.abs().mean()).backward()
    reg = rec.regressor
    for name, module in (("backbone", reg.backbone.conv1), ("identity", reg.identity[0]), ("head", reg.head)):
        assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0, name


def test_bad_images_are_named(renderer):
    with pytest.raises(ValueError, match=r"images must be \(B, 3, S, S\)"):
        regressor(renderer)(torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match="camera scale must be a finite number > 0"):
        regressor(renderer).set_camera_scale(float("nan"))
