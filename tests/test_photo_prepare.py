"""facecourse.photo.prepare: a photo -> the largest face's landmarks and the training data's crop, on the real
photo ``skimage.data.astronaut`` and copies of it as other files (EXIF-rotated, grey, RGBA, 16-bit, huge,
two faces) and non-photos (text, flat colour, noise)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from facecourse.datasets.paired import CropScaleJitter, crop_image, crop_points, landmark_window
from facecourse.photo import FaceDetector, PhotoError, prepare_photo
from facecourse.photo.prepare import crop_photo

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


@pytest.fixture(scope="module")
def reference(astronaut):
    """The astronaut's face prepared from the array itself, crop 96 px."""
    return prepare_photo(astronaut, 96)


def test_crop_is_the_training_crop(astronaut, reference):
    face = reference
    assert face.n_faces == 1 and face.notes == [] and face.scale == 1.0 and face.size == 96
    assert face.image.shape == (3, 96, 96) and face.image.dtype == torch.float32
    assert 0 <= face.image.min() and face.image.max() <= 1
    # the same window, crop and points as PairedFaceDataset's validation crop of these landmarks
    window = landmark_window(face.landmarks_px, *CropScaleJitter().centre())
    assert face.window == window
    pixels = torch.from_numpy(astronaut).permute(2, 0, 1).float() / 255
    # (at 224 px the 149-px window is upsampled: crop_image alone; at 96 it is prefiltered, close to it)
    assert torch.allclose(face.crop(224), crop_image(pixels, window, 224).clamp(0, 1))
    assert (face.image - crop_image(pixels, window, 96).clamp(0, 1)).abs().mean() < 0.03
    assert torch.allclose(face.landmarks, crop_points(torch.from_numpy(face.landmarks_px).float(), window))
    # the landmark box spans 1/1.6 of the crop, centred
    lo, hi = face.landmarks.min(0).values, face.landmarks.max(0).values
    assert (hi - lo).max() == pytest.approx(2 / 1.6, abs=1e-5) and (lo + hi).abs().max() < 1e-5


def test_exif_rotated_file_gives_the_upright_landmarks(tmp_path, astronaut, reference):
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 degrees anticlockwise to show": stored turned clockwise
    Image.fromarray(np.rot90(astronaut, k=-1).copy()).save(path, exif=exif, quality=95)
    face = prepare_photo(path, 96)
    assert np.abs(face.landmarks_px - reference.landmarks_px).mean() < 1.0
    assert any("orientation 8" in n for n in face.notes)


@pytest.mark.parametrize("kind", ["grey", "rgba", "16bit"])
def test_other_formats_give_the_same_face(tmp_path, astronaut, reference, kind):
    path = tmp_path / f"{kind}.png"
    if kind == "grey":
        Image.fromarray(astronaut).convert("L").save(path)
    elif kind == "rgba":
        Image.fromarray(astronaut).convert("RGBA").save(path)
    else:
        Image.fromarray((astronaut.mean(-1) * 257).astype(np.uint16)).save(path)
    face = prepare_photo(path, 96)
    assert face.n_faces == 1 and face.image.shape == (3, 96, 96)
    assert np.abs(face.landmarks_px - reference.landmarks_px).mean() < 2.0


def test_huge_photo_landmarks_map_back_to_its_pixels(tmp_path, astronaut, reference):
    huge = np.asarray(Image.fromarray(astronaut).resize((2048, 2048), Image.Resampling.BICUBIC))
    Image.fromarray(huge).save(tmp_path / "huge.png")
    face = prepare_photo(tmp_path / "huge.png", 96)
    assert face.rgb.shape == (1600, 1600, 3) and face.scale == pytest.approx(1600 / 2048)
    expected = (reference.landmarks_px + 0.5) * 4 - 0.5  # the 4x photo's pixels
    assert np.abs(face.landmarks_px - expected).mean() < 4 * 1.5
    # the crop (prefiltered: 590 source px onto 96) shows what the 1x crop shows
    assert (face.image - reference.image).abs().mean() < 0.04


def test_crop_of_a_large_window_is_antialiased():
    stripes = np.zeros((800, 800, 3), np.uint8)
    stripes[:, ::2] = 255  # 1-px stripes: mean grey 0.5, aliased to black or white by point sampling
    window = landmark_window(np.array([[0.0, 0.0], [799.0, 799.0]]), 1.0, (0.0, 0.0))
    crop = crop_photo(stripes, window, 64)
    assert (crop[:, 4:-4, 4:-4] - 0.5).abs().max() < 0.05


def test_two_faces_the_largest_is_taken_and_noted(astronaut):
    canvas = np.full((700, 1200, 3), 90, np.uint8)
    canvas[100:612, 0:512] = astronaut
    canvas[200:520, 700:1020] = np.asarray(Image.fromarray(astronaut).resize((320, 320), Image.Resampling.LANCZOS))
    face = prepare_photo(canvas, 64)
    assert face.n_faces == 2
    assert any("2 faces found" in n and "largest" in n for n in face.notes)
    assert (face.landmarks_px[:, 0] < 512).all() and (face.landmarks_px[:, 1] > 100).all()  # the big copy


def test_not_a_photo_or_no_face_is_named(tmp_path):
    text = tmp_path / "holiday.jpg"
    text.write_text("a text file with a photo's name")
    with pytest.raises(PhotoError, match=r"holiday\.jpg is not an image"):
        prepare_photo(text, 64)
    hog_only = FaceDetector(cnn_fallback=False)
    for name, pixels in [("flat.png", np.full((240, 320, 3), (200, 120, 40), np.uint8)),
                         ("noise.png", np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8))]:
        Image.fromarray(pixels).save(tmp_path / name)
        with pytest.raises(PhotoError, match=f"no face found in .*{name}"):
            prepare_photo(tmp_path / name, 64, detector=hog_only)
    with pytest.raises(ValueError, match="size"):
        prepare_photo(text, 4)
