"""facecourse.now.layout: the image list, NowImage paths, landmark files and the prediction layout."""

from __future__ import annotations

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
