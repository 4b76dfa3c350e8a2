"""facecourse.reconstruct.outputs: one reconstruction's files (neutral .obj in metres, NoW-7 .npy, overlay
PNG), each written atomically, on the astronaut photo with the synthetic FLAME model (``renderer`` fixture)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from facecourse.losses.fit import initial_params
from facecourse.photo import prepare_photo
from facecourse.reconstruct.fit import photo_fit_config
from facecourse.reconstruct.outputs import OVERLAY_SIZE, output_names, reconstruction_files, write_reconstruction
from facecourse.render.head import FaceParams

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def face():
    return prepare_photo(skimage_data.astronaut(), 64)


@pytest.fixture(scope="module")
def params(renderer, face):
    """The mean face framed on the crop, with an expression, an open jaw and a turned head."""
    p = initial_params(renderer, face.landmarks[None], torch.ones(1, 68), photo_fit_config())
    g = torch.Generator().manual_seed(0)
    return p.replace(shape=torch.randn(1, 20, generator=g), expression=torch.randn(1, 10, generator=g),
                     jaw_pose=torch.tensor([[0.2, 0.0, 0.0]]), global_pose=torch.tensor([[0.0, 0.3, 0.0]]))


def test_names_are_stems_made_unique():
    assert output_names(["a/face.jpg", "b/face.png", "c/other.jpg"]) == ["face_0", "face_1", "other"]
    assert output_names(["x.jpg"]) == ["x"]


def test_files_hold_the_neutral_head_its_now7_and_the_overlay(tmp_path, renderer, face, params):
    files = write_reconstruction(tmp_path / "out", "astro", renderer, params, face)
    assert files == reconstruction_files(tmp_path / "out", "astro")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["astro.obj", "astro_now7.npy",
                                                                    "astro_overlay.png"]
    mesh = trimesh.load(files.mesh, process=False, maintain_order=True)
    neutral = renderer.flame(shape=params.shape)  # expression, jaw and head pose zeroed, as NoW compares
    assert mesh.vertices.shape == (renderer.flame.n_vertices, 3)
    assert np.array_equal(mesh.faces, renderer.flame.faces.numpy())
    assert np.allclose(mesh.vertices, neutral.vertices[0].numpy(), atol=1e-6)
    posed = renderer.geometry(params).vertices[0].numpy()
    assert np.abs(mesh.vertices - posed).max() > 5e-3  # the expression/pose really were removed
    assert 0.1 < np.ptp(mesh.vertices[:, 1]) < 0.5  # metres: a head is ~0.2 m tall
    now7 = np.load(files.now7)
    assert now7.shape == (7, 3) and now7.dtype == np.float64
    assert np.allclose(now7, neutral.landmarks_now7[0].numpy(), atol=1e-6)
    overlay = np.asarray(Image.open(files.overlay))
    assert overlay.shape == (OVERLAY_SIZE, 2 * OVERLAY_SIZE, 3) and overlay.dtype == np.uint8
    left, right = overlay[:, :OVERLAY_SIZE].astype(int), overlay[:, OVERLAY_SIZE:].astype(int)
    assert np.abs(left - (face.crop(OVERLAY_SIZE).permute(1, 2, 0).numpy() * 255)).max() <= 1  # the crop
    changed = (np.abs(right - left).sum(-1) > 30).mean()
    assert 0.15 < changed < 0.9  # the head covers the face, not the whole crop
    assert (np.abs(right - left).sum(-1)[:, :8] == 0).mean() > 0.5  # the borders still show the photo


def test_a_failed_write_leaves_no_partial_file(tmp_path, renderer, face, params, monkeypatch):
    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_reconstruction(tmp_path, "astro", renderer, params, face)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["astro.obj", "astro_now7.npy"]  # whole files only


def test_one_face_per_call(tmp_path, renderer, face, params):
    with pytest.raises(ValueError, match="batch 2"):
        write_reconstruction(tmp_path, "x", renderer, FaceParams.cat([params, params]), face)
