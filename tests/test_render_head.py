"""facecourse.render.head: FaceParams (the one parameter container), the head renderer's use of it, framing,
region masks, landmark visibility and the FLAME texture space."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from facecourse.datasets.synthetic_images import generate
from facecourse.render import (
    FaceParams, HeadRenderer, frame_camera, landmark_visibility, load_texture_model, rasterize, weak_perspective,
)
from facecourse.render.head import region_mask


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


def test_frame_camera_fits_landmarks_in_crop():
    g = torch.Generator().manual_seed(0)
    lmk = torch.randn(2, 68, 3, generator=g) * 0.05
    cam = frame_camera(lmk, torch.tensor([1.5, 2.0]), torch.zeros(2, 2))
    uv = weak_perspective(lmk, cam)[..., :2]
    extent = (uv.amax(1) - uv.amin(1)).amax(-1)
    assert torch.allclose(extent, torch.tensor([2 / 1.5, 2 / 2.0]), atol=1e-5)
    assert torch.allclose((uv.amax(1) + uv.amin(1)) / 2, torch.zeros(2, 2), atol=1e-5)


def test_landmark_visibility_by_zbuffer():
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    v = torch.tensor(mesh.vertices, dtype=torch.float32)[None]
    cam = torch.tensor([[6.0, 0.0, 0.0]])
    frag = rasterize(weak_perspective(v, cam), torch.tensor(mesh.faces), 48)
    pts = torch.tensor([[[0.0, 0.0, 0.1], [0.0, 0.0, -0.1], [0.3, 0.0, 0.0]]])  # front, back, off-image
    vis = landmark_visibility(weak_perspective(pts, cam), frag)
    assert vis.tolist() == [[1.0, 0.0, 0.0]]


def test_head_renderer_with_uv_texture_space(tmp_path, head):
    """The FLAME texture-space path: a file in FLAME_texture.npz format with a UV layout on the model's faces."""
    flame = head.flame
    v = flame.v_template.numpy()
    uv = (v[:, :2] - v[:, :2].min(0)) / (v[:, :2].max(0) - v[:, :2].min(0))  # planar layout, one vt per vertex
    lines = [f"v {x} {y} {z}" for x, y, z in v] + [f"vt {a} {b}" for a, b in uv]
    lines += [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}" for a, b, c in flame.faces.tolist()]
    (tmp_path / "head_template.obj").write_text("\n".join(lines) + "\n")
    size = 16
    mean = np.zeros((size, size, 3))
    mean[..., 1] = 200.0  # BGR: green
    tex_dir = np.zeros((size, size, 3, 3))
    tex_dir[..., 2, 0] = 255.0  # component 0 adds red
    np.savez(tmp_path / "FLAME_texture.npz", mean=mean.reshape(-1), tex_dir=tex_dir.reshape(-1, 3))
    model = load_texture_model(tmp_path / "FLAME_texture.npz", n_components=3)
    textured = HeadRenderer(flame, head.masks, texture_model=model)
    assert textured.albedo_model.n_components == 3
    colours = []
    for code in ([0.0, 0.0, 0.0], [0.8, 0.0, 0.0]):
        data = generate(1, 48, seed=0, renderer=textured,
                        identity=FaceParams(shape=torch.zeros(1, 20), albedo=torch.tensor([code])))
        colours.append(data.images[0][:, data.skin_mask[0, 0].bool()].mean(1))
    assert colours[0][1] > 0.2 and colours[0][0] < 0.02 and colours[0][2] < 0.02  # green mean texture
    assert colours[1][0] > 0.2  # component 0 adds red
    with pytest.raises(ValueError, match="UV faces"):
        HeadRenderer(flame, head.masks, texture_model=load_texture_model(tmp_path / "FLAME_texture.npz", 3,
                     uv_obj=_tiny_obj(tmp_path)))


def _tiny_obj(tmp_path):
    path = tmp_path / "tiny.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n")
    return path


def test_region_mask_selects_region_pixels():
    mesh = trimesh.creation.icosphere(subdivisions=3)
    v = torch.tensor(mesh.vertices, dtype=torch.float32)[None]
    f = torch.tensor(mesh.faces)
    frag = rasterize(weak_perspective(v, torch.tensor([[0.9, 0.0, 0.0]])), f, 32)
    upper = v[0, :, 1] > 0.2  # model +y is up: the upper cap shows in the top rows of the image
    m = region_mask(frag, f, upper)[0, 0]
    assert m[:12].sum() > 20 and m[20:].sum() == 0
    assert (m <= frag.mask[0].float()).all()
