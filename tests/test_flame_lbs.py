"""LBS pure functions against independent references (scipy Rotation, numpy, analytic cases, gradcheck)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import importlib

L = importlib.import_module("facecourse.flame.lbs")  # the package re-exports the function `lbs` under that name


def test_rodrigues_matches_scipy():
    rng = np.random.default_rng(0)
    vecs = np.concatenate([rng.normal(size=(50, 3)) * 1.5, rng.normal(size=(5, 3)) * 1e-5, np.zeros((1, 3)),
                           np.array([[np.pi, 0, 0], [0, 0, -np.pi / 2]])])
    got = L.rodrigues(torch.tensor(vecs)).numpy()
    np.testing.assert_allclose(got, Rotation.from_rotvec(vecs).as_matrix(), atol=1e-12)
    assert L.rodrigues(torch.zeros(2, 4, 3)).shape == (2, 4, 3, 3)
    with pytest.raises(ValueError, match="rot_vecs"):
        L.rodrigues(torch.zeros(3, 2))


def test_rodrigues_gradient_is_exact_at_zero_and_elsewhere():
    for scale in (1.0, 1e-4, 0.0):
        x = (torch.randn(4, 3, dtype=torch.float64) * scale).requires_grad_()
        assert torch.autograd.gradcheck(L.rodrigues, (x,))
    # at zero dR/dw_k = [e_k]_x (the generators of so(3))
    jac = torch.autograd.functional.jacobian(L.rodrigues, torch.zeros(3, dtype=torch.float64))
    for k in range(3):
        np.testing.assert_allclose(jac[..., k].numpy(), L.skew(torch.eye(3, dtype=torch.float64)[k]).numpy())


def test_skew_is_cross_product():
    a, b = torch.randn(7, 3, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64)
    torch.testing.assert_close((L.skew(a) @ b[..., None])[..., 0], torch.linalg.cross(a, b))


def test_blend_shapes_and_joints_match_numpy():
    rng = np.random.default_rng(1)
    dirs, coeff, reg = rng.normal(size=(20, 3, 6)), rng.normal(size=(2, 6)), rng.random((5, 20))
    got = L.blend_shapes(torch.tensor(coeff), torch.tensor(dirs)).numpy()
    np.testing.assert_allclose(got, np.tensordot(coeff, dirs, axes=([1], [2])))
    verts = rng.normal(size=(2, 20, 3))
    np.testing.assert_allclose(L.vertices2joints(torch.tensor(reg), torch.tensor(verts)).numpy(),
                               np.stack([reg @ v for v in verts]))
    with pytest.raises(ValueError, match="components"):
        L.blend_shapes(torch.zeros(1, 5), torch.zeros(20, 3, 6))


def test_pose_feature_zero_for_identity_and_layout():
    rot = torch.eye(3).expand(2, 5, 3, 3)
    assert torch.count_nonzero(L.pose_feature(rot)) == 0
    r = L.rodrigues(torch.randn(2, 5, 3, dtype=torch.float64))
    feat = L.pose_feature(r)
    assert feat.shape == (2, 36)
    torch.testing.assert_close(feat[:, 9:18].reshape(2, 3, 3), r[:, 2] - torch.eye(3, dtype=torch.float64))


def test_rigid_transform_chain_matches_scipy_composition():
    rng = np.random.default_rng(2)
    parents = torch.tensor([-1, 0, 1, 1, 1])
    joints = rng.normal(size=(1, 5, 3))
    rotvecs = rng.normal(size=(5, 3)) * 0.5
    rots = [Rotation.from_rotvec(r) for r in rotvecs]
    posed, rel = L.batch_rigid_transform(L.rodrigues(torch.tensor(rotvecs))[None], torch.tensor(joints), parents)
    # world rotation of joint j = product along its chain; world position via parent's frame
    world_rot, world_pos = [rots[0]], [joints[0, 0]]
    for j in range(1, 5):
        p = int(parents[j])
        world_rot.append(world_rot[p] * rots[j])
        world_pos.append(world_pos[p] + world_rot[p].apply(joints[0, j] - joints[0, p]))
    np.testing.assert_allclose(posed[0].numpy(), np.stack(world_pos), atol=1e-12)
    # rel transform maps each rest joint to its posed location, and rotates like the world rotation
    for j in range(5):
        np.testing.assert_allclose(rel[0, j, :3, :3].numpy(), world_rot[j].as_matrix(), atol=1e-12)
        x = rel[0, j, :3, :3].numpy() @ joints[0, j] + rel[0, j, :3, 3].numpy()
        np.testing.assert_allclose(x, world_pos[j], atol=1e-12)
    with pytest.raises(ValueError, match="parents"):
        L.batch_rigid_transform(torch.eye(3).expand(1, 3, 3, 3), torch.zeros(1, 3, 3), torch.tensor([-1, 2, 0]))


def test_skin_single_joint_is_rigid():
    v = torch.randn(1, 30, 3, dtype=torch.float64)
    joints = torch.randn(1, 5, 3, dtype=torch.float64)
    rotvecs = torch.randn(5, 3, dtype=torch.float64)
    _, rel = L.batch_rigid_transform(L.rodrigues(rotvecs)[None], joints, torch.tensor([-1, 0, 1, 1, 1]))
    w = torch.zeros(30, 5, dtype=torch.float64)
    w[:, 2] = 1
    out = L.skin(v, w, rel)
    expect = (rel[0, 2, :3, :3] @ v[0].T).T + rel[0, 2, :3, 3]
    torch.testing.assert_close(out[0], expect)
    # linear in weights: half/half = average of the two rigid motions
    w2 = torch.zeros(30, 5, dtype=torch.float64)
    w2[:, 0] = w2[:, 2] = 0.5
    only0 = torch.zeros_like(w2)
    only0[:, 0] = 1
    torch.testing.assert_close(L.skin(v, w2, rel), 0.5 * (L.skin(v, w, rel) + L.skin(v, only0, rel)))


def test_lbs_zero_pose_is_shaped_template_and_root_rotation_is_rigid():
    rng = np.random.default_rng(3)
    n_v = 40
    t = torch.tensor(rng.normal(size=(n_v, 3)))
    sd = torch.tensor(rng.normal(size=(n_v, 3, 4)) * 0.01)
    pd = torch.tensor(rng.normal(size=(n_v, 3, 36)) * 0.01)
    reg = torch.tensor(rng.dirichlet(np.ones(n_v), size=5))
    w = torch.tensor(rng.dirichlet(np.ones(5), size=n_v))
    parents = torch.tensor([-1, 0, 1, 1, 1])
    coeff = torch.tensor(rng.normal(size=(2, 4)))
    verts, joints, _ = L.lbs(coeff, torch.zeros(2, 15, dtype=torch.float64), t, sd, pd, reg, parents, w)
    shaped = t + torch.einsum("bk,vck->bvc", coeff, sd)
    torch.testing.assert_close(verts, shaped)
    torch.testing.assert_close(joints, torch.einsum("jv,bvc->bjc", reg, shaped))
    pose = torch.zeros(2, 15, dtype=torch.float64)
    pose[:, :3] = torch.tensor([0.3, -0.7, 0.2], dtype=torch.float64)
    verts_r, _, _ = L.lbs(coeff, pose, t, sd, pd, reg, parents, w)
    root = joints[:, :1]
    rot = Rotation.from_rotvec([0.3, -0.7, 0.2])
    expect = np.stack([rot.apply((shaped[b] - root[b]).numpy()) + root[b].numpy() for b in range(2)])
    np.testing.assert_allclose(verts_r.numpy(), expect, atol=1e-12)


def test_blend_shape_variance_matches_sample_variance():
    rng = np.random.default_rng(4)
    dirs = torch.tensor(rng.normal(size=(30, 3, 5)) * np.array([3.0, 2.0, 1.0, 0.5, 0.0]))
    frac = L.blend_shape_variance(dirs).numpy()
    assert abs(frac.sum() - 1) < 1e-12 and frac[4] == 0 and np.all(np.diff(frac[:4]) < 0)
    # Monte Carlo: fraction of the total variance of samples with one component switched on
    coeff = torch.tensor(rng.normal(size=(20000, 5)))
    total = L.blend_shapes(coeff, dirs).var(dim=0).sum().item()
    for k in range(5):
        only = torch.zeros_like(coeff)
        only[:, k] = coeff[:, k]
        part = L.blend_shapes(only, dirs).var(dim=0).sum().item()
        assert abs(part / total - frac[k]) < 0.03
    assert L.blend_shape_variance(torch.zeros(4, 3, 2)).sum() == 0
