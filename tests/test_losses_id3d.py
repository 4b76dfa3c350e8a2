"""facecourse.losses.id3d: the 3D-ID loss on a tiny spectral encoder (the trained encoders' sensitivity is
measured in tests/test_losses_id3d_sensitivity.py)."""

from __future__ import annotations

import pytest
import torch
from helpers import deformed_spheres

from facecourse.losses import (
    DISTANCES,
    ID3DLoss,
    feature_distance,
    feature_distance_matrix,
    id3d_distances,
    id3d_loss,
    loss_sensitivity,
    matched_noise,
)
from facecourse.mesh import topology_hash
from facecourse.train.encoder import build_autoencoder

LEVELS = (0.5, 0.25)


@pytest.fixture(autouse=True)
def _data_dir(data_dir):
    """Hierarchies are cached under the data folder: a temporary one."""


@pytest.fixture(scope="module")
def meshes():
    template, faces, x = deformed_spheres(6, seed=3, subdivisions=2)
    return template, faces, x


def _encoder(meshes, seed=0):
    template, faces, x = meshes
    torch.manual_seed(seed)
    model = build_autoencoder(template, faces, latent_dim=6, filters=(8, 8), K=3, factors=(4, 4))
    model.normalizer.fit(x)
    return model.encoder


def _noisy(x, scale=0.003, seed=1):
    return x + scale * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("levels", [None, LEVELS])
def test_zero_at_the_ground_truth_and_positive_elsewhere(meshes, distance, levels):
    encoder, x = _encoder(meshes), meshes[2]
    assert id3d_distances(encoder, x, x, distance=distance, level_weights=levels).abs().max() < 1e-6
    assert (id3d_distances(encoder, _noisy(x), x, distance=distance, level_weights=levels) > 1e-6).all()


def test_latent_and_level_terms_add_with_their_weights(meshes):
    encoder, x = _encoder(meshes), meshes[2]
    y = _noisy(x)
    z, h = encoder(y, return_features=True)
    zt, ht = encoder(x, return_features=True)
    expected = 2.0 * (z - zt).square().mean(1) + 0.5 * (h[1] - ht[1]).square().flatten(1).mean(1)
    torch.testing.assert_close(id3d_distances(encoder, y, x, latent_weight=2.0, level_weights=(0.0, 0.5)), expected)
    torch.testing.assert_close(id3d_loss(encoder, y, x, latent_weight=2.0, level_weights=(0.0, 0.5)), expected.mean())


def test_feature_distances():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 5, 3, generator=g), torch.randn(4, 5, 3, generator=g)
    torch.testing.assert_close(feature_distance(a, b, "l1"), (a - b).abs().flatten(1).mean(1))
    torch.testing.assert_close(feature_distance(a, b, "l2"), (a - b).square().flatten(1).mean(1))
    torch.testing.assert_close(feature_distance(a, 3 * a, "cosine"), torch.zeros(4), atol=1e-6, rtol=0)
    torch.testing.assert_close(feature_distance(a, -a, "cosine"), torch.full((4,), 2.0))
    with pytest.raises(ValueError, match="distance must be one of"):
        feature_distance(a, b, "l3")


def test_batch_order_does_not_matter(meshes):
    encoder, x = _encoder(meshes), meshes[2]
    y = _noisy(x)
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    d = id3d_distances(encoder, y, x, level_weights=LEVELS)
    torch.testing.assert_close(id3d_distances(encoder, y[order], x[order], level_weights=LEVELS), d[order],
                               atol=1e-6, rtol=1e-5)


def test_gradients_reach_the_prediction_and_never_change_a_frozen_encoder(meshes):
    template, faces, x = meshes
    encoder = _encoder(meshes)
    topology = topology_hash(faces, len(template))
    loss = ID3DLoss(encoder, topology, topology, level_weights=LEVELS).train()
    assert not encoder.training  # frozen: stays in eval mode inside a model in training mode
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    predicted = _noisy(x).requires_grad_(True)
    start = predicted.detach().clone()
    optimiser = torch.optim.AdamW([predicted, *loss.parameters()], lr=1e-3, weight_decay=0.1)
    first = loss(predicted, x)
    for _ in range(3):
        optimiser.zero_grad()
        value = loss(predicted, x)
        value.backward()
        optimiser.step()
    assert predicted.grad is not None and predicted.grad.abs().sum() > 0
    target = x.clone().requires_grad_(True)
    loss(predicted, target).backward()
    assert target.grad is None  # the ground truth's features are constants (no_grad)
    assert (predicted.detach() - start).abs().max() > 1e-4
    assert loss(predicted, x) < first  # the step went downhill
    for key, value in encoder.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_fine_tuning_changes_the_encoder(meshes):
    template, faces, x = meshes
    encoder = _encoder(meshes)
    topology = topology_hash(faces, len(template))
    loss = ID3DLoss(encoder, topology, topology, fine_tune=True).train()
    assert encoder.training
    weight = encoder.fc.weight.detach().clone()
    optimiser = torch.optim.SGD(loss.parameters(), lr=0.1)
    loss(_noisy(x), x).backward()
    optimiser.step()
    assert (encoder.fc.weight - weight).abs().max() > 0


@pytest.mark.parametrize("distance", DISTANCES)
def test_gradcheck(distance):
    small = deformed_spheres(2, seed=5, subdivisions=1)  # 42 vertices: 126 inputs to perturb
    encoder = _encoder(small).double()
    target = small[2].double()[:1]
    predicted = _noisy(small[2]).double()[:1].requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p: id3d_loss(encoder, p, target, latent_weight=1.0, level_weights=LEVELS, distance=distance),
        (predicted,), eps=1e-7, atol=1e-6)


def test_topology_mismatch_names_both(meshes):
    template, faces, _ = meshes
    encoder = _encoder(meshes)
    ours = topology_hash(faces, len(template))
    other = topology_hash(faces[:-1], len(template))
    with pytest.raises(ValueError, match=f"{ours[:16]}.*{other[:16]}"):
        ID3DLoss(encoder, ours, other)


@pytest.mark.parametrize("kwargs, message", [
    ({"latent_weight": 0.0}, "not all zero"),
    ({"latent_weight": -1.0}, ">= 0"),
    ({"level_weights": (float("nan"),)}, "finite"),
    ({"level_weights": (1, 1, 1)}, "encoder has 2 levels"),
    ({"distance": "l3"}, "distance must be one of"),
])
def test_bad_settings_are_named(meshes, kwargs, message):
    encoder, x = _encoder(meshes), meshes[2]
    with pytest.raises(ValueError, match=message):
        id3d_loss(encoder, _noisy(x), x, **kwargs)


def test_bad_meshes_are_named(meshes):
    encoder, x = _encoder(meshes), meshes[2]
    bad = x.clone()
    bad[0, 5, 1] = float("inf")
    with pytest.raises(ValueError, match="predicted vertices hold NaN or inf"):
        id3d_loss(encoder, bad, x)
    with pytest.raises(ValueError, match="differ in shape"):
        id3d_loss(encoder, x[:2], x)


def test_matched_noise_has_the_norm_of_the_change_and_stays_in_its_region():
    g = torch.Generator().manual_seed(0)
    change = torch.randn(3, 40, 3, generator=g) * 0.002
    noise = matched_noise(change, torch.Generator().manual_seed(1))
    torch.testing.assert_close(noise.flatten(1).norm(dim=1), change.flatten(1).norm(dim=1))
    mask = torch.zeros(40, dtype=torch.bool)
    mask[5:9] = True
    local = matched_noise(change, torch.Generator().manual_seed(1), vertex_mask=mask)
    assert (local[:, ~mask] == 0).all()
    torch.testing.assert_close(local.flatten(1).norm(dim=1), change.flatten(1).norm(dim=1))
    assert (noise.flatten(1) @ change.flatten(1).T).diagonal().abs().max() < 0.5 * change.flatten(1).norm(dim=1).square().min()


def test_feature_distance_matrix_matches_the_pairwise_loss(meshes):
    encoder, x = _encoder(meshes), meshes[2]
    d = feature_distance_matrix(encoder, x, level_weights=LEVELS, distance="cosine")
    assert d.shape == (6, 6)
    torch.testing.assert_close(d, d.T)
    torch.testing.assert_close(d.diagonal(), torch.zeros(6), atol=1e-6, rtol=0)
    i, j = torch.tensor([0, 2, 5]), torch.tensor([4, 1, 3])
    torch.testing.assert_close(d[i, j], id3d_distances(encoder, x[i], x[j], level_weights=LEVELS, distance="cosine"),
                               atol=1e-6, rtol=1e-5)


def test_loss_sensitivity_of_the_vertices_l2_is_one_and_the_change_is_measured_as_given(meshes):
    _, _, x = meshes
    changed = _noisy(x, scale=0.004, seed=7)
    l2 = lambda p, t: (p - t).square().flatten(1).sum(1)  # noqa: E731  (a squared norm: blind to the kind of change)
    s = loss_sensitivity(l2, x, changed, torch.Generator().manual_seed(0))
    torch.testing.assert_close(s.ratio, torch.ones(6))
    torch.testing.assert_close(s.change, l2(changed, x))
