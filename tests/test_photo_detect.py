"""facecourse.photo.detect: dlib's HOG detector (CNN fallback) and 68-point predictor on a real photo
(``skimage.data.astronaut``, public domain), and the install hint when dlib or its models are missing."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
from PIL import Image

from facecourse.photo import detect
from facecourse.photo.detect import FaceDetector, PhotoDependencyError, default_detector, model_file

skimage_data = pytest.importorskip("skimage.data")

RIGHT_EYE, LEFT_EYE, NOSE_TIP, MOUTH = slice(36, 42), slice(42, 48), 33, slice(48, 68)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


def test_one_face_with_plausible_landmarks(astronaut):
    detector = default_detector()
    faces = detector.detect(astronaut)
    assert len(faces) == 1 and faces[0].detector == "hog" and faces[0].score > 0.5
    x0, y0, x1, y1 = faces[0].box
    assert 150 < x0 < x1 < 290 and 50 < y0 < y1 < 190  # her face, not the flag or the suit
    lm = detector.landmarks(astronaut, faces[0])
    assert lm.shape == (68, 2) and lm.dtype == np.float64
    margin = 0.2 * (x1 - x0)
    assert ((lm >= [x0 - margin, y0 - margin]) & (lm <= [x1 + margin, y1 + margin])).all()
    eyes_y = lm[36:48, 1].mean()
    assert eyes_y < lm[NOSE_TIP, 1] < lm[MOUTH, 1].min()  # eyes above the nose tip above the mouth
    assert lm[RIGHT_EYE, 0].max() < lm[NOSE_TIP, 0] < lm[LEFT_EYE, 0].min()  # subject's right eye on image left
    corners = np.linalg.norm(lm[45] - lm[36])
    assert 0.45 < corners / (x1 - x0) < 0.8  # outer eye corners span about 60% of the box


def test_weak_hog_hits_are_dropped(astronaut):
    # at upsample 1 HOG also fires (score ~0.1) on a patch of the suit; the default threshold drops it
    everything = FaceDetector(min_score=0.0, cnn_fallback=False).detect(astronaut)
    assert len(everything) == 2 and min(d.score for d in everything) < 0.3
    assert len(default_detector().detect(astronaut)) == 1


def test_cnn_fallback_finds_a_tilted_face(astronaut):
    tilted = np.asarray(Image.fromarray(astronaut).rotate(45, resample=Image.Resampling.BICUBIC))
    assert FaceDetector(cnn_fallback=False).detect(tilted) == []
    faces = default_detector().detect(tilted)
    assert len(faces) == 1 and faces[0].detector == "cnn"


def test_no_face_in_flat_colour_or_noise():
    flat = np.full((300, 400, 3), 128, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    hog_only = FaceDetector(cnn_fallback=False)
    assert hog_only.detect(flat) == [] and hog_only.detect(noise) == []


def test_boxes_come_back_in_pixels_of_the_input(astronaut):
    # a 2x photo is detected on an 800-px copy; the box must land where the 1x box lands, times two
    big = np.asarray(Image.fromarray(astronaut).resize((1024, 1024), Image.Resampling.BICUBIC))
    (small_face,) = default_detector().detect(astronaut)
    (big_face,) = default_detector().detect(big)
    centre = lambda d: np.array([(d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2])  # noqa: E731
    assert np.abs(centre(big_face) - (centre(small_face) + 0.5) * 2 + 0.5).max() < 12
    assert big_face.area == pytest.approx(4 * small_face.area, rel=0.25)


def test_missing_dlib_names_the_install_command(monkeypatch):
    real_import = builtins.__import__

    def no_dlib(name, *args, **kwargs):
        if name == "dlib":
            raise ImportError("No module named 'dlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dlib)
    with pytest.raises(PhotoDependencyError, match=r"pip install 'facecourse\[photo\]'") as info:
        FaceDetector()
    assert isinstance(info.value, ImportError)


def test_missing_model_files_name_the_install_command(monkeypatch):
    assert model_file(detect.LANDMARKS_FILE).stat().st_size > 50e6  # the real 68-point predictor
    with pytest.raises(PhotoDependencyError, match=r"no_such_model\.dat not found.*pip install 'facecourse\[photo\]'"):
        model_file("no_such_model.dat")
    monkeypatch.setattr(detect, "MODELS_PACKAGE", "facecourse_no_such_package")
    with pytest.raises(PhotoDependencyError, match="is not installed"):
        model_file(detect.LANDMARKS_FILE)
