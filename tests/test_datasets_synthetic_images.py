"""Synthetic images and analysis-by-synthesis (needs the synthetic FLAME model, built on demand)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial.transform import Rotation

from facecourse.datasets.synthetic_images import _axis_angle_xyz, generate, render_identity_views
from facecourse.losses import FitConfig, fit_to_image, identity_loss, init_camera, landmark_loss, mesh_error_mm
from facecourse.now.synthetic import render_now_images
from facecourse.render import FaceParams, HeadRenderer, frame_camera, landmark_visibility, rasterize, weak_perspective
from facecourse.train.recogniser import synthetic_recogniser


@pytest.fixture(scope="module")
def renderer():
    return HeadRenderer.default("small", n_shape=20, n_exp=10)


def test_generate_shapes_ranges_and_determinism(renderer):
    a = generate(3, 64, seed=5, renderer=renderer)
    b = generate(3, 64, seed=5, renderer=renderer)
    assert a.images.shape == (3, 3, 64, 64) and a.landmarks.shape == (3, 68, 2)
    assert torch.equal(a.images, b.images) and torch.equal(a.landmarks, b.landmarks)
    assert a.images.min() >= 0 and a.images.max() <= 1
    assert a.visibility.mean() > 0.8 and (a.landmarks.abs() < 1).float().mean() > 0.95
    assert (a.skin_mask <= a.mask).all() and a.skin_mask.sum() > 0.05 * a.mask.sum()
    assert a.vertices.shape == (3, renderer.flame.n_vertices, 3)
    c = generate(3, 64, seed=6, renderer=renderer)
    assert not torch.equal(a.images, c.images)


def test_ground_truth_parameters_reproduce_image_and_landmarks(renderer):
    data = generate(2, 64, seed=1, renderer=renderer)
    p = data.params
    lmk = renderer.camera_landmarks(p)
    assert torch.allclose(lmk, data.landmarks, atol=1e-6)
    assert landmark_loss(lmk, data.landmarks, visibility=data.visibility) < 1e-6
    out = renderer(p, 64).render
    diff = (out.image.clamp(0, 1) - data.images).abs() * out.mask
    assert diff.max() < 1e-5


def test_frame_camera_fits_landmarks_in_crop():
    g = torch.Generator().manual_seed(0)
    lmk = torch.randn(2, 68, 3, generator=g) * 0.05
    cam = frame_camera(lmk, torch.tensor([1.5, 2.0]), torch.zeros(2, 2))
    uv = weak_perspective(lmk, cam)[..., :2]
    extent = (uv.amax(1) - uv.amin(1)).amax(-1)
    assert torch.allclose(extent, torch.tensor([2 / 1.5, 2 / 2.0]), atol=1e-5)
    assert torch.allclose((uv.amax(1) + uv.amin(1)) / 2, torch.zeros(2, 2), atol=1e-5)


def test_axis_angle_matches_scipy():
    angles = torch.tensor([[0.2, -0.5, 0.1], [-0.3, 0.4, -0.2]], dtype=torch.float64)  # pitch, yaw, roll
    ours = _axis_angle_xyz(angles[:, 0], angles[:, 1], angles[:, 2]).numpy()
    ref = Rotation.from_euler("YXZ", angles[:, [1, 0, 2]].numpy()).as_rotvec()
    assert np.allclose(ours, ref, atol=1e-9)


def test_landmark_visibility_by_zbuffer():
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    v = torch.tensor(mesh.vertices, dtype=torch.float32)[None]
    cam = torch.tensor([[6.0, 0.0, 0.0]])
    frag = rasterize(weak_perspective(v, cam), torch.tensor(mesh.faces), 48)
    pts = torch.tensor([[[0.0, 0.0, 0.1], [0.0, 0.0, -0.1], [0.3, 0.0, 0.0]]])  # front, back, off-image
    vis = landmark_visibility(weak_perspective(pts, cam), frag)
    assert vis.tolist() == [[1.0, 0.0, 0.0]]


def test_init_camera_recovers_camera():
    g = torch.Generator().manual_seed(0)
    lmk = torch.randn(2, 68, 3, generator=g) * 0.05
    cam = torch.tensor([[7.0, 0.01, -0.02], [5.0, -0.03, 0.0]])
    uv = weak_perspective(lmk, cam)[..., :2]
    assert torch.allclose(init_camera(lmk, uv, torch.ones(2, 68)), cam, atol=1e-4)


def test_mesh_error_alignments():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(1, 200, 3, generator=g, dtype=torch.float64) * 0.05
    r = torch.tensor(Rotation.from_rotvec([0.2, -0.1, 0.3]).as_matrix())
    moved = 1.3 * v @ r.T + torch.tensor([0.01, 0.02, 0.03], dtype=torch.float64)
    assert mesh_error_mm(v + 0.01, v)["mean"] < 1e-9
    assert abs(mesh_error_mm(v + 0.01, v, align="none")["mean"] - 10 * 3**0.5) < 1e-6
    assert mesh_error_mm(moved, v, align="similarity")["mean"] < 1e-6
    assert mesh_error_mm(moved, v)["mean"] > 1.0


def test_fit_reduces_2d_losses(renderer):
    data = generate(1, 48, seed=2, renderer=renderer)
    cfg = FitConfig(rigid_steps=20, steps=40, n_shape=20, n_exp=10)
    res = fit_to_image(renderer, data.images, data.landmarks, data.visibility, config=cfg, progress=False)
    first = next(h for h in res.history if h["stage"] == 1)
    last = res.history[-1]
    assert res.history[-1]["stage"] == 1 and len(res.history) == 60
    assert last["landmark"] < 0.7 * res.history[0]["landmark"]
    assert last["photometric"] < first["photometric"]
    assert res.image.shape == data.images.shape and res.landmarks.shape == (1, 68, 2)


def test_synthetic_recogniser_train_or_load_and_generalises():
    rec = synthetic_recogniser(mode="ci", progress=False)  # trains once (seconds), then loads the cache
    assert rec.metrics["heldout_verification_accuracy"] > 0.7  # unseen people, chance = 0.5
    again = synthetic_recogniser(mode="ci", train_if_missing=False)
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(rec(x), again(x))
    # The loss prefers the same (unseen) person in another pose over another person in the same pose.
    imgs, labels, _ = render_identity_views(6, 2, 64, seed=123)
    same = identity_loss(rec, imgs[0::2], imgs[1::2])
    other = identity_loss(rec, imgs[0::2], imgs[1::2].roll(1, 0))
    assert same < other


def _tiny_now_set(root, validation_lines, test_lines):
    """A synthetic NoW folder with two subjects (small synthetic FLAME) and the given image lists."""
    import json

    from facecourse.flame import synthetic_model_path

    root.mkdir()
    meta = {"flame_model": str(synthetic_model_path("small")), "n_shape": 10,
            "subjects": {"SYN_0001": {"split": "val", "shape": [0.5] * 10},
                         "SYN_0002": {"split": "test", "shape": [-0.5] * 10}}}
    (root / "synthetic_now.json").write_text(json.dumps(meta))
    (root / "imagepathsvalidation.txt").write_text("".join(f"{line}\n" for line in validation_lines))
    (root / "imagepathstest.txt").write_text("".join(f"{line}\n" for line in test_lines))
    return root


def test_render_now_images_official_layout(tmp_path):
    import matplotlib.image as mpimg

    root = _tiny_now_set(tmp_path / "final_release_version",
                         ["SYN_0001/multiview_neutral/IMG_0001.jpg", "SYN_0001/multiview_occlusions/IMG_0002.jpg"],
                         ["SYN_0002/selfie/IMG_0003.jpg"])
    assert render_now_images(root, image_size=64, progress=False) == 3
    img = mpimg.imread(root / "iphone_pictures" / "SYN_0001" / "multiview_neutral" / "IMG_0001.jpg")
    assert img.shape == (64, 64, 3)
    assert (root / "iphone_pictures" / "SYN_0002" / "selfie" / "IMG_0003.jpg").is_file()
    assert render_now_images(root, image_size=64, progress=False) == 0  # resumable: nothing left to do


def test_render_now_images_resumed_run_writes_the_same_images(tmp_path):
    """Each photo's randomness (head, background, occluders) depends on its own seed only: a run that
    resumes after some photos were written draws the same photos as an uninterrupted one."""
    lines = [f"SYN_0001/multiview_occlusions/IMG_000{i}.jpg" for i in (1, 2, 3)]
    whole = _tiny_now_set(tmp_path / "whole", lines, [])
    resumed = _tiny_now_set(tmp_path / "resumed", lines, [])
    assert render_now_images(whole, image_size=48, progress=False) == 3
    assert render_now_images(resumed, image_size=48, progress=False) == 3
    photos = resumed / "iphone_pictures" / "SYN_0001" / "multiview_occlusions"
    for name in ("IMG_0002.jpg", "IMG_0003.jpg"):  # interrupted after the first photo
        (photos / name).unlink()
    assert render_now_images(resumed, image_size=48, progress=False) == 2
    for name in ("IMG_0001.jpg", "IMG_0002.jpg", "IMG_0003.jpg"):
        expected = (whole / "iphone_pictures" / "SYN_0001" / "multiview_occlusions" / name).read_bytes()
        assert (photos / name).read_bytes() == expected, name


def test_head_renderer_with_uv_texture_space(tmp_path, renderer):
    """The FLAME texture-space path: a file in FLAME_texture.npz format with a UV layout on the model's faces."""
    from facecourse.render import load_texture_model

    flame = renderer.flame
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
    textured = HeadRenderer(flame, renderer.masks, texture_model=model)
    assert textured.albedo_model.n_components == 3
    colours = []
    for code in ([0.0, 0.0, 0.0], [0.8, 0.0, 0.0]):
        data = generate(1, 48, seed=0, renderer=textured,
                        identity=FaceParams(shape=torch.zeros(1, 20), albedo=torch.tensor([code])))
        colours.append(data.images[0][:, data.skin_mask[0, 0].bool()].mean(1))
    assert colours[0][1] > 0.2 and colours[0][0] < 0.02 and colours[0][2] < 0.02  # green mean texture
    assert colours[1][0] > 0.2  # component 0 adds red
    with pytest.raises(ValueError, match="UV faces"):
        HeadRenderer(flame, renderer.masks, texture_model=load_texture_model(tmp_path / "FLAME_texture.npz", 3,
                     uv_obj=_tiny_obj(tmp_path)))


def _tiny_obj(tmp_path):
    path = tmp_path / "tiny.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n")
    return path
