"""Identity loss and recognisers: weight loading, 1 - cos properties, composite, no NaN."""

from __future__ import annotations

import pickle

import pytest
import torch

from facecourse.losses import FaceRecogniser, composite, identity_loss, load_recogniser
from facecourse.nn.backbones import SmallFaceEmbedder, iresnet, vggface2_resnet50


def _random_recogniser(seed=0):
    """A fixed random linear embedding of the image (sensitive to every pixel, unlike a random CNN)."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 16)).double()
    return FaceRecogniser(net, 32, "unit")


def test_small_embedder_shapes():
    rec = FaceRecogniser(SmallFaceEmbedder(dim=24, width=8), 48, "unit")
    e = rec(torch.rand(3, 3, 64, 64))
    assert e.shape == (3, 24) and torch.allclose(e.norm(dim=-1), torch.ones(3))


def test_arcface_weights_load_from_state_dict(tmp_path):
    torch.manual_seed(0)
    model = iresnet(18)
    for m in model.modules():  # non-trivial running statistics so that loading them matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "backbone.pth"
    torch.save(model.state_dict(), path)
    rec = load_recogniser("arcface-r18", path)
    x = torch.rand(2, 3, 112, 112)
    model.eval()
    expected = torch.nn.functional.normalize(model((x - 0.5) / 0.5), dim=-1)
    assert torch.allclose(rec(x), expected, atol=1e-5)
    assert not any(p.requires_grad for p in rec.parameters())
    rec.train()
    assert not rec.training  # stays in eval mode
    with pytest.raises(ValueError, match="does not match"):
        load_recogniser("arcface-r34", path)
    with pytest.raises(ValueError, match="kind"):
        load_recogniser("facenet", path)


def test_vggface2_pickle_of_numpy_arrays(tmp_path):
    torch.manual_seed(0)
    model = vggface2_resnet50().eval()
    path = tmp_path / "resnet50_ft_weight.pkl"
    with open(path, "wb") as fh:
        pickle.dump({k: v.numpy() for k, v in model.state_dict().items()}, fh)
    rec = load_recogniser("vggface2", path)
    x = torch.rand(1, 3, 224, 224)
    ref = model(x[:, [2, 1, 0]] * 255 - torch.tensor([91.4953, 103.8827, 131.0912]).view(1, 3, 1, 1))
    assert torch.allclose(rec(x), torch.nn.functional.normalize(ref, dim=-1), atol=1e-4)


def test_identity_loss_zero_grows_and_descends():
    rec = _random_recogniser()
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 32, 32, generator=g, dtype=torch.float64)
    assert identity_loss(rec, target, target).abs() < 1e-6
    noise = torch.randn(target.shape, generator=g, dtype=torch.float64)
    small = identity_loss(rec, target + 0.05 * noise, target)
    large = identity_loss(rec, target + 0.5 * noise, target)
    assert 1e-3 < small < large <= 2
    x = (target + 0.3 * noise).requires_grad_()
    loss = identity_loss(rec, x, target)
    loss.backward()
    with torch.no_grad():
        stepped = identity_loss(rec, x - 0.5 * x.grad / x.grad.norm(), target)
    assert stepped < loss


def test_composite_and_empty_mask():
    rec = _random_recogniser()
    target = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    rendered = torch.rand(1, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    mask = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    assert torch.equal(composite(rendered, target, mask), target)
    loss = identity_loss(rec, rendered, target, mask)  # nothing rendered: composite == target
    loss.backward()
    assert loss.abs() < 1e-6 and torch.isfinite(rendered.grad).all()
    with pytest.raises(ValueError, match="shapes differ"):
        identity_loss(rec, rendered, target[..., :16])
