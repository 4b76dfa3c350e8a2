"""The MICA-layout adapter on folders our writer makes: parameters round trip, neutral meshes, landmarks from
.pts files or a detector, and every bad input named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facecourse.datasets import mica
from facecourse.datasets.paired import SubjectBatchSampler, collate_paired
from facecourse.flame import FLAME, default_model_path
from facecourse.render.head import FaceParams


@pytest.fixture(scope="module")
def flame():
    return FLAME.from_file(default_model_path("small"), n_shape=300, n_exp=100)


def actor_params(seed: int) -> FaceParams:
    gen = torch.Generator().manual_seed(seed)
    return FaceParams(shape=torch.randn(1, 20, generator=gen), expression=torch.randn(1, 10, generator=gen),
                      global_pose=0.1 * torch.randn(1, 3, generator=gen), jaw_pose=torch.tensor([[0.1, 0.0, 0.0]]))


def photo(seed: int, height=60, width=48):
    """A noise image and 68 landmarks inside it (pixels)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (height, width, 3), dtype=np.uint8), rng.uniform(10, 38, (68, 2))


def write_actor(root, dataset, actor, seed, n_images=2, landmarks=True):
    shots = [photo(seed * 10 + i) for i in range(n_images)]
    return mica.write_mica_actor(root, dataset, actor, actor_params(seed), [s[0] for s in shots],
                                 [s[1] for s in shots] if landmarks else None)


@pytest.fixture()
def layout(tmp_path):
    """Two datasets, three actors, two images each, landmarks beside every image."""
    write_actor(tmp_path, "STIRLING", "F1001", 1)
    write_actor(tmp_path, "STIRLING", "F1002", 2)
    write_actor(tmp_path, "FLORENCE", "subject_01", 3)
    return tmp_path


def test_params_round_trip_in_micas_arrays(tmp_path):
    params = actor_params(0)
    path = mica.write_mica_params(tmp_path / "a.npz", params)
    with np.load(path, allow_pickle=False) as npz:
        assert npz["betas"].shape == (400,) and npz["pose"].shape == (15,)
        np.testing.assert_allclose(npz["pose"][6:9], [0.1, 0, 0], rtol=1e-6)  # jaw where MICA's base.py reads it
    back = mica.read_mica_params(path)
    assert back.shape.shape == (1, 300) and back.expression.shape == (1, 100) and back.eye_pose.shape == (1, 6)
    torch.testing.assert_close(back.shape[:, :20], params.shape)
    assert back.shape[:, 20:].abs().max() == 0 and back.neck_pose.abs().max() == 0
    torch.testing.assert_close(back.global_pose, params.global_pose)


def test_dataset_reads_the_layout(layout, flame):
    data = mica.mica_dataset(layout, flame, image_size=32)
    assert data.subject_names == ["FLORENCE/subject_01", "STIRLING/F1001", "STIRLING/F1002"]
    assert len(data) == 6 and data.subjects.tolist() == [0, 0, 1, 1, 2, 2]
    neutral = flame(shape=mica.read_mica_params(layout / "STIRLING/FLAME_parameters/F1002/F1002.npz").shape).vertices
    torch.testing.assert_close(torch.from_numpy(data.source.neutral[2]), neutral[0])
    sampler = SubjectBatchSampler(data.subjects, n_subjects=3, k=2, seed=0)
    batch = collate_paired([data[key] for key in next(iter(sampler))])
    assert batch.images.shape == (6, 3, 32, 32) and batch.mask is None and batch.params.camera is None
    assert batch.neutral.shape == (6, flame.n_vertices, 3) and batch.params.shape.shape == (6, 300)
    assert sorted(set(batch.subject.tolist())) == [0, 1, 2]
    # the centre crop puts the landmark box (scale 1.6) in the middle of the crop
    sample = data[0]
    span = sample.landmarks.amax(0) - sample.landmarks.amin(0)
    assert abs(float(span.max()) - 2 / 1.6) < 1e-4 and sample.visibility.min() == 1


def test_landmarks_from_a_detector_when_no_file(tmp_path, flame):
    write_actor(tmp_path, "LYHM", "00001", 4, landmarks=False)
    with pytest.raises(mica.MicaLayoutError, match=r"00001_000.png: no landmarks .*no detector given"):
        mica.MicaSource(tmp_path, flame)
    calls = []

    def detector(image):
        calls.append(image.shape)
        return np.full((68, 2), 20.0) + np.arange(68)[:, None] * 0.2

    source = mica.MicaSource(tmp_path, flame, detector=detector)
    assert calls == [(60, 48, 3)] * 2 and len(source) == 2
    with pytest.raises(mica.MicaLayoutError, match="the detector found no face"):
        mica.MicaSource(tmp_path, flame, detector=lambda image: None)


def corrupt(path, content: bytes):
    path.write_bytes(content)
    return path


def bad_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.unlink(), r"FLAME_parameters/F1002: 0 .npz files, expected one"),
    (lambda p: corrupt(p, b"not a zip"), r"F1002.npz: not a readable .npz"),
    (lambda p: bad_npz(p, betas=np.zeros(400), pose=np.zeros(12)), r"F1002.npz: pose must be a float array of shape \(15,\)"),
    (lambda p: bad_npz(p, betas=np.zeros((1, 400)), pose=np.zeros(15)), r"F1002.npz: betas must be .* shape \(400,\)"),
    (lambda p: bad_npz(p, betas=np.zeros(400)), r"F1002.npz: no pose array"),
    (lambda p: bad_npz(p, betas=np.full(400, np.nan), pose=np.zeros(15)), r"F1002.npz: betas contains NaN"),
    (lambda p: bad_npz(p, betas=np.array([{"x": 1}], dtype=object), pose=np.zeros(15)), r"F1002.npz: betas / pose are not plain"),
    (lambda p: np.save(p.with_suffix(""), np.zeros(3)) or p.with_suffix(".npy").rename(p), r"F1002.npz: a single array"),
])
def test_bad_parameter_files_are_named(layout, flame, damage, message):
    damage(layout / "STIRLING/FLAME_parameters/F1002/F1002.npz")
    with pytest.raises(mica.MicaLayoutError, match=message):
        mica.MicaSource(layout, flame)
    with pytest.warns(UserWarning, match=message):
        source = mica.MicaSource(layout, flame, on_error="skip")
    assert source.subject_names == ["FLORENCE/subject_01", "STIRLING/F1001"]  # the rest goes on


def test_images_without_a_subject_and_subjects_without_images(layout, flame):
    mica.write_mica_actor(layout, "STIRLING", "F9999", actor_params(9), [photo(9)[0]], [photo(9)[1]])
    (layout / "STIRLING/FLAME_parameters/F9999/F9999.npz").unlink()
    (layout / "STIRLING/FLAME_parameters/F9999").rmdir()
    for image in (layout / "FLORENCE/arcface_input/subject_01").iterdir():
        image.unlink()
    with pytest.raises(mica.MicaLayoutError) as err:
        mica.MicaSource(layout, flame)
    text = str(err.value)
    assert "2 problem(s)" in text
    assert "arcface_input/F9999: images without a subject (no " in text
    assert "FLORENCE/arcface_input/subject_01: no usable image for actor subject_01" in text


def test_several_npz_and_bad_pts_are_named(layout, flame):
    mica.write_mica_params(layout / "STIRLING/FLAME_parameters/F1001/other.npz", actor_params(5))
    corrupt(layout / "STIRLING/arcface_input/F1002/F1002_001.pts", b"version: 1\nn_points: 5\n{\n1 2\n}\n")
    with pytest.raises(mica.MicaLayoutError) as err:
        mica.MicaSource(layout, flame)
    assert "F1001: 2 .npz files, expected one (F1001.npz, other.npz)" in str(err.value)
    assert "F1002_001.pts: expected 68 points" in str(err.value)
    corrupt(layout / "STIRLING/arcface_input/F1002/F1002_001.pts", "\xff".encode("latin-1"))
    with pytest.raises(mica.MicaLayoutError, match="F1002_001.pts: not an iBUG .pts file"):
        mica.MicaSource(layout, flame, datasets=["STIRLING"])


def test_folders_without_usable_subjects_say_so(tmp_path, flame):
    with pytest.raises(mica.MicaLayoutError, match="no MICA dataset folder"):
        mica.MicaSource(tmp_path, flame)
    write_actor(tmp_path, "BU3DFE", "F0001", 6, landmarks=False)
    with pytest.warns(UserWarning), pytest.raises(mica.MicaLayoutError, match=r"no usable subject in \['BU3DFE'\]"):
        mica.MicaSource(tmp_path, flame, on_error="skip")
    with pytest.raises(mica.MicaLayoutError, match="no such folder"):
        mica.MicaSource(tmp_path, flame, datasets=["FRGC"])
    with pytest.raises(ValueError, match="n_shape=300"):
        mica.MicaSource(tmp_path, FLAME.from_file(default_model_path("small"), n_shape=20, n_exp=0))


def test_undecodable_image_is_named(layout, flame):
    corrupt(layout / "STIRLING/arcface_input/F1001/F1001_000.png", b"\x89PNG broken")
    source = mica.MicaSource(layout, flame)  # images are decoded when read, landmarks come from the .pts
    index = next(i for i, im in enumerate(source.images) if im.path.name == "F1001_000.png")
    with pytest.raises(mica.MicaLayoutError, match="F1001_000.png: not a readable image"):
        source.record(index)
