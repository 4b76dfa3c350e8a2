"""facecourse.reconstruct.fit: the analysis-by-synthesis fit on a real photo (``skimage.data.astronaut``, its
dlib landmarks, the synthetic FLAME model of the ``renderer`` fixture) and the normalised landmark error."""

from __future__ import annotations

import pytest
import torch

from facecourse.losses.fit import initial_params
from facecourse.photo import prepare_photo
from facecourse.reconstruct.fit import fit_crop_size, fit_photo, landmark_nme, photo_fit_config

skimage_data = pytest.importorskip("skimage.data")


def test_landmark_nme_is_mean_distance_over_outer_eye_corners():
    target = torch.zeros(1, 68, 2)
    target[0, 36], target[0, 45] = torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 0.0])  # corners 2 apart
    moved = target + torch.tensor([0.3, 0.4])  # every point 0.5 away
    assert landmark_nme(moved, target).tolist() == pytest.approx([0.25])
    with pytest.raises(ValueError, match="68, 2"):
        landmark_nme(moved[:, :60], target[:, :60])


def test_settings_follow_the_mode(monkeypatch):
    monkeypatch.setenv("FACECOURSE_MODE", "ci")
    ci = photo_fit_config()
    assert (ci.rigid_steps, ci.steps, fit_crop_size()) == (30, 60, 64)
    assert photo_fit_config(steps=5).steps == 5
    monkeypatch.setenv("FACECOURSE_MODE", "full")
    assert (photo_fit_config().steps, fit_crop_size()) == (200, 224)
    assert ci.w_eye == ci.w_lip == 0 and ci.w_photometric == 0.5


def test_fit_brings_the_head_onto_the_photo_landmarks(renderer):
    face = prepare_photo(skimage_data.astronaut(), fit_crop_size())
    config = photo_fit_config()
    target = face.landmarks[None]
    start = initial_params(renderer, target, torch.ones(1, 68), config)  # mean face, least-squares camera
    before = landmark_nme(renderer.camera_landmarks(start), target).item()
    result = fit_photo(face, renderer, config)
    after = landmark_nme(result.landmarks, target).item()
    # measured: 0.067 -> 0.042 of the eye-corner distance; the detector itself is good to about 0.04
    assert after < 0.8 * before and after < 0.055
    assert result.params.shape.abs().max() > 0.1  # the identity moved, not only the camera
    assert result.image.shape == (1, 3, face.size, face.size)
    stage1 = [h for h in result.history if h["stage"] == 1]
    assert stage1[-1]["photometric"] < stage1[0]["photometric"]
