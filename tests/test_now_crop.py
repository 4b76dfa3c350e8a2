"""facecourse.now.crop: the face crop sphere and the cropped scan."""

from __future__ import annotations

import numpy as np
import pytest

from facecourse.now import crop_scan, face_crop_sphere


def test_crop_matches_a_hand_computation():
    lm = np.array([[-45.0, 0, 0], [-15.0, 0, 0], [15.0, 0, 0], [45.0, 0, 0], [0, -40.0, 10.0],
                   [-25.0, -65.0, 0], [25.0, -65.0, 0]])
    # bridge b = (0, 0, 0); centre = l4 + 0.3 (b - l4) = (0, -28, 7); |l0 - l3| = 90, |b - l4| = sqrt(1700)
    centre, radius = face_crop_sphere(lm)
    np.testing.assert_allclose(centre, [0.0, -28.0, 7.0])
    assert radius == pytest.approx(1.4 * (90.0 + np.sqrt(1700.0)) / 2)
    pts = np.array([[0, -28.0, 7.0], [0, -28.0 + radius - 1e-6, 7.0], [0, -28.0 + radius + 1e-6, 7.0],
                    [radius, -28, 7.0 + 1.0]])
    faces = np.array([[0, 1, 2], [0, 1, 3], [0, 1, 1]])
    crop = crop_scan(pts, faces, lm)
    np.testing.assert_array_equal(crop.index, [0, 1])
    np.testing.assert_array_equal(crop.faces, [[0, 1, 1]])
    with pytest.raises(ValueError, match="crop centre"):
        crop_scan(pts + 1e4, faces, lm)
    with pytest.raises(ValueError, match=r"\(7, 3\)"):
        face_crop_sphere(lm[:6])
