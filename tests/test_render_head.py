"""facecourse.render.head: FaceParams (the one parameter container) and the head renderer's use of it."""

from __future__ import annotations

import pytest
import torch

from facecourse.render import FaceParams, HeadRenderer


def _params(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return FaceParams(shape=torch.randn(b, 5, generator=g), expression=torch.randn(b, 4, generator=g),
                      global_pose=0.1 * torch.randn(b, 3, generator=g), jaw_pose=torch.zeros(b, 3),
                      camera=torch.tensor([[8.0, 0.0, 0.0]]).repeat(b, 1), lighting=torch.randn(b, 9, 3, generator=g))


def test_batch_size_items_and_none_fields():
    p = _params(3)
    assert p.batch_size == len(p) == 3
    assert [name for name, _ in p.items()] == ["shape", "expression", "global_pose", "jaw_pose", "camera", "lighting"]
    assert FaceParams().batch_size == 0
    assert set(p.flame_inputs()) == {"shape", "expression", "global_pose", "jaw_pose"}


def test_disagreeing_batch_sizes_are_named():
    with pytest.raises(ValueError, match="batch size.*shape.*camera|batch size.*camera.*shape"):
        FaceParams(shape=torch.zeros(2, 5), camera=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="batched"):
        FaceParams(shape=torch.tensor(1.0))


def test_indexing_and_concatenation_are_inverse():
    p = _params(4)
    parts = [p[0], p[1:3], p[3]]
    assert [len(q) for q in parts] == [1, 2, 1]  # an int index keeps the batch dimension
    back = FaceParams.cat(parts)
    for (name, a), (_, b) in zip(p.items(), back.items()):
        assert torch.equal(a, b), name
    assert torch.equal(p[-1].shape, p.shape[3:])
    with pytest.raises(ValueError, match="'camera'"):
        FaceParams.cat([p[:1], p[1:2].replace(camera=None)])


def test_to_detach_clone_replace_and_neutral():
    p = _params(2)
    x = p.shape.clone().requires_grad_()
    q = p.replace(shape=x * 2)
    assert q.shape.requires_grad and not q.detach().shape.requires_grad
    d = p.to(torch.float64)
    assert all(v.dtype == torch.float64 for _, v in d.items())
    c = p.clone()
    c.shape.add_(1)
    assert not torch.equal(c.shape, p.shape)  # a deep copy
    n = p.neutral()
    assert n.expression is None and n.global_pose is None and n.jaw_pose is None
    assert torch.equal(n.shape, p.shape) and torch.equal(n.camera, p.camera)


@pytest.fixture(scope="module")
def head():
    return HeadRenderer.default("small", n_shape=20, n_exp=10)


def test_none_fields_render_like_zeros(head):
    """``None`` = zeros: a render with only shape and camera equals one with explicit zero poses and codes."""
    p = _params(2)
    sparse = FaceParams(shape=p.shape, camera=p.camera)
    dense = FaceParams(shape=p.shape, camera=p.camera, expression=torch.zeros(2, 10), global_pose=torch.zeros(2, 3),
                       jaw_pose=torch.zeros(2, 3), albedo=torch.zeros(2, head.albedo_model.n_components))
    a, b = head(sparse, 32), head(dense, 32)
    assert torch.equal(a.render.image, b.render.image) and torch.equal(a.landmarks, b.landmarks)
    assert a.geometry.vertices.shape == (2, head.flame.n_vertices, 3)
    assert a.skin_mask.shape == (2, 1, 32, 32) and a.skin_mask.sum() > 0


def test_camera_is_required_to_project(head):
    with pytest.raises(ValueError, match="camera"):
        head.camera_landmarks(FaceParams(shape=torch.zeros(1, 20)))


def test_geometry_follows_the_parameters(head):
    p = _params(2)
    moved = head.geometry(p).vertices
    neutral = head.geometry(p.neutral()).vertices
    assert not torch.allclose(moved, neutral)  # expression and pose changed the mesh
    assert torch.allclose(head.geometry(p.neutral().replace(shape=None)).vertices,
                          head.flame.v_template.expand(2, -1, -1), atol=1e-6)


def test_a_field_name_is_not_an_index():
    with pytest.raises(TypeError, match=r"params\.shape"):
        _params(2)["shape"]
