"""facecourse.losses.vertices: the per-vertex mesh error in millimetres and its alignments."""

from __future__ import annotations

import torch
from scipy.spatial.transform import Rotation

from facecourse.losses import mesh_error_mm


def test_mesh_error_alignments():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(1, 200, 3, generator=g, dtype=torch.float64) * 0.05
    r = torch.tensor(Rotation.from_rotvec([0.2, -0.1, 0.3]).as_matrix())
    moved = 1.3 * v @ r.T + torch.tensor([0.01, 0.02, 0.03], dtype=torch.float64)
    assert mesh_error_mm(v + 0.01, v)["mean"] < 1e-9
    assert abs(mesh_error_mm(v + 0.01, v, align="none")["mean"] - 10 * 3**0.5) < 1e-6
    assert mesh_error_mm(moved, v, align="similarity")["mean"] < 1e-6
    assert mesh_error_mm(moved, v)["mean"] > 1.0


# ------------------------------------------------------------------------------------- the vertices loss

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from facecourse.flame import FLAME, MICA_REGION_WEIGHTS, load_masks, save_masks, synthetic_model_path  # noqa: E402
from facecourse.losses import VerticesLoss, supervision_meshes, vertices_loss  # noqa: E402
from facecourse.render import FaceParams  # noqa: E402


def _meshes(b=2, v=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, v, 3, generator=g) * 0.05, torch.randn(b, v, 3, generator=g) * 0.05


def test_vertices_loss_unit_weights_is_the_mean_absolute_error():
    p, t = _meshes()
    assert vertices_loss(t, t) == 0
    torch.testing.assert_close(vertices_loss(p, t), torch.nn.functional.l1_loss(p, t))
    torch.testing.assert_close(vertices_loss(p, t, torch.ones(50)), torch.nn.functional.l1_loss(p, t))


def test_vertices_loss_is_a_weighted_mean_and_a_zero_weight_masks_the_vertex():
    p, t = _meshes()
    w = torch.rand(50, generator=torch.Generator().manual_seed(1)) + 0.1
    torch.testing.assert_close(vertices_loss(p, t, w), vertices_loss(p, t, 7.5 * w))  # scale-free
    manual = ((p - t).abs() * w[None, :, None]).sum() / (3 * 2 * w.sum())
    torch.testing.assert_close(vertices_loss(p, t, w), manual)
    mask = torch.ones(50)
    mask[:10] = 0
    moved = p.clone()
    moved[:, :10] += 1.0  # a metre away, but masked out
    torch.testing.assert_close(vertices_loss(moved, t, mask), vertices_loss(p, t, mask))
    torch.testing.assert_close(vertices_loss(p, t, mask), torch.nn.functional.l1_loss(p[:, 10:], t[:, 10:]))


def test_mica_loss_is_the_vertices_loss_times_a_constant():
    p, t = _meshes()
    masks = {"face": np.arange(20), "left_eyeball": np.arange(20, 25), "right_eyeball": np.arange(25, 30),
             "left_ear": np.arange(35, 40), "right_ear": np.arange(40, 45)}
    loss = VerticesLoss.from_masks(masks, 50)
    torch.testing.assert_close(loss.weights.unique(), torch.tensor([0.01, 1.0, 150.0]))
    w = loss.weights
    mica = ((p - t).abs() * w[None, :, None]).mean() * 1000  # MICA: mean(|V - V_gt| * mask) x 1000
    torch.testing.assert_close(mica, loss(p, t) * 1000 * w.sum() / 50)


def test_vertices_loss_weights_from_the_synthetic_and_a_written_masks_file(tmp_path):
    path = synthetic_model_path("small")
    masks = load_masks(path.parent)
    n = FLAME.from_file(path).v_template.shape[0]
    weights = VerticesLoss.from_masks(masks, n).weights
    face = torch.as_tensor(masks["face"])
    eyeballs = torch.as_tensor(np.concatenate([masks["left_eyeball"], masks["right_eyeball"]]))
    assert (weights[face[~torch.isin(face, eyeballs)]] == MICA_REGION_WEIGHTS["face"]).all()
    assert (weights[eyeballs] == 0.01).all()
    rest = torch.ones(n, dtype=torch.bool)
    for name in MICA_REGION_WEIGHTS:
        rest[torch.as_tensor(masks[name])] = False
    assert rest.any() and (weights[rest] == 1).all()
    save_masks(tmp_path / "FLAME_masks.pkl", masks)  # the official layout, as our writer makes it
    torch.testing.assert_close(VerticesLoss.from_masks(load_masks(tmp_path), n).weights, weights)


def test_vertices_loss_gradient_follows_the_region_weights():
    p, t = _meshes(b=1)
    p.requires_grad_(True)
    masks = {"face": np.arange(10)}
    VerticesLoss.from_masks(masks, 50, {"face": 150.0})(p, t).backward()
    g = p.grad.abs().sum(-1)[0]
    torch.testing.assert_close(g[:10], torch.full((10,), 150 * g[10].item()))


def test_supervision_meshes_neutral_drops_expression_and_pose():
    flame = FLAME.from_file(synthetic_model_path("small"))
    g = torch.Generator().manual_seed(0)
    params = FaceParams(shape=torch.randn(2, 10, generator=g), expression=torch.randn(2, 5, generator=g),
                        jaw_pose=torch.tensor([[0.2, 0, 0]] * 2), global_pose=torch.tensor([[0, 0.4, 0]] * 2))
    torch.testing.assert_close(supervision_meshes(flame, params), flame(shape=params.shape).vertices)
    torch.testing.assert_close(supervision_meshes(flame, params, neutral=False),
                               flame(**params.flame_inputs()).vertices)
    assert (supervision_meshes(flame, params) - supervision_meshes(flame, params, neutral=False)).abs().max() > 1e-3


@pytest.mark.parametrize("bad, message", [
    (lambda p, t: (p[:, :40], t, None), "differ in shape"),
    (lambda p, t: (p.masked_fill(torch.zeros_like(p, dtype=torch.bool).index_fill(1, torch.tensor([3]), True),
                                 float("nan")), t, None), "predicted vertices hold NaN"),
    (lambda p, t: (p, t[0], None), "target vertices must be a \\(B, V, 3\\)"),
    (lambda p, t: (p, t, -torch.ones(50)), "non-negative"),
    (lambda p, t: (p, t, torch.zeros(50)), "not all zero"),
    (lambda p, t: (p, t, torch.ones(49)), "weights must be \\(50,\\)"),
])
def test_vertices_loss_names_bad_input(bad, message):
    p, t, w = bad(*_meshes())
    with pytest.raises(ValueError, match=message):
        vertices_loss(p, t, w)


def test_vertices_distances_are_per_sample():
    p, t = _meshes(b=3)
    w = torch.rand(50, generator=torch.Generator().manual_seed(2))
    d = VerticesLoss(w).distances(p, t)
    assert d.shape == (3,)
    torch.testing.assert_close(d, torch.stack([vertices_loss(p[i:i + 1], t[i:i + 1], w) for i in range(3)]))


def test_fit_shape_recovers_the_shape_with_the_vertices_loss():
    from facecourse.losses import fit_shape

    flame = FLAME.from_file(synthetic_model_path("small"))
    true = torch.randn(2, 8, generator=torch.Generator().manual_seed(4))
    target = flame(shape=true).vertices
    fit = fit_shape(flame, target, vertices_loss, n_shape=8, steps=150, lr=0.1)
    assert fit.loss.shape == fit.error_mm.shape == (150,)
    assert fit.error_mm[-1] < 0.05 * fit.error_mm[0]
    torch.testing.assert_close(fit.shape, true, atol=0.1, rtol=0)
