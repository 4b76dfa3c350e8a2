"""facecourse.now.layout: the image list, NowImage paths, landmark files and the prediction layout."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import toy_head

from facecourse.now import NowImage, PredictionMissing, load_landmarks_file, load_prediction, read_image_list, write_prediction


def test_layout_round_trip(toy_now, tmp_path):
    data, pred, images, _ = toy_now
    assert read_image_list(data, "val") == images
    assert NowImage.parse("/abs/prefix/S/selfie/IMG_1.jpg") == NowImage("S", "selfie", "IMG_1.jpg")
    with pytest.raises(ValueError, match="challenge"):
        NowImage.parse("S/unknown/IMG.jpg")
    (tmp_path / "l.txt").write_text("\n".join("1 2 3" for _ in range(7)))
    assert load_landmarks_file(tmp_path / "l.txt").shape == (7, 3)
    np.save(tmp_path / "l1.npy", np.zeros((1, 7, 3)))
    assert load_landmarks_file(tmp_path / "l1.npy").shape == (7, 3)
    v, f, lm = toy_head(1)
    im = NowImage("S", "selfie", "IMG_9.jpg")
    write_prediction(tmp_path / "p", im, v, f, lm, mesh_suffix=".ply")
    lv, lf, llm, used = load_prediction(tmp_path / "p", im)
    np.testing.assert_allclose(lv, v)
    np.testing.assert_array_equal(lf, f)
    assert used[0].suffix == ".ply" and np.allclose(llm, lm)
    with pytest.raises(PredictionMissing) as missing:
        load_prediction(tmp_path / "p", NowImage("S", "selfie", "IMG_8.jpg"))
    assert [p.suffix for p in missing.value.paths] == [".obj", ".ply"]


# ----------------------------------------------------------------------------------------------- face boxes

def test_face_boxes_round_trip_in_the_official_pickled_dict_format(tmp_path):
    from facecourse.now.layout import FaceBox, read_face_box, write_face_box
    box = FaceBox(10.5, 20.0, 110.25, 140.0)
    path = write_face_box(tmp_path / "a" / "IMG_0001.npy", box)
    assert read_face_box(path) == box
    assert np.load(path, allow_pickle=True).item() == {"left": 10.5, "top": 20.0, "right": 110.25, "bottom": 140.0}
    official = tmp_path / "official.npy"  # as the release's files: numpy integers in a dict
    np.save(official, np.array({"left": np.int64(3), "top": np.int64(4), "right": np.int64(50), "bottom": np.int64(60)},
                               dtype=object), allow_pickle=True)
    assert read_face_box(official) == FaceBox(3, 4, 50, 60)
    plain = tmp_path / "plain.npy"
    np.save(plain, np.array([1.0, 2.0, 30.0, 40.0]))
    assert read_face_box(plain) == FaceBox(1, 2, 30, 40)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_face_box_file_that_would_run_code_or_is_not_a_box_is_refused_by_name(tmp_path):
    from facecourse.data.safe_load import UnsafePickleError
    from facecourse.now.layout import read_face_box
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array(_Evil(), dtype=object), allow_pickle=True)
    with pytest.raises(UnsafePickleError, match="evil.npy"):
        read_face_box(evil)
    text = tmp_path / "text.npy"
    text.write_text("left top right bottom")
    with pytest.raises(ValueError, match="text.npy.*not a NoW face-box"):
        read_face_box(text)
    partial = tmp_path / "partial.npy"
    np.save(partial, np.array({"left": 1, "top": 2}, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"partial.npy.*lacks \['right', 'bottom'\]"):
        read_face_box(partial)
    flipped = tmp_path / "flipped.npy"
    np.save(flipped, np.array([5.0, 2.0, 1.0, 40.0]))
    with pytest.raises(ValueError, match="flipped.npy.*left < right"):
        read_face_box(flipped)
