"""Protocol options used by the ablation of notebook 07: the crop-radius factor ``radius_scale`` (on
``face_crop_sphere``, ``crop_scan``, ``evaluate_prediction``, ``baseline_stats``) and ``refine`` passed through
``baseline_stats``. The defaults must be the protocol exactly; other values must change what is measured.

Runs on the toy head of conftest.py (``toy_now``), no FLAME model needed.
"""

from __future__ import annotations

import numpy as np
import pytest

from facecourse.now import baseline_stats, crop_scan, evaluate_prediction, face_crop_sphere, load_scan


def _old_crop_index(vertices, landmarks):
    """The NoW crop written out independently of the package (the behaviour before ``radius_scale``)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    bridge = 0.5 * (lm[1] + lm[2])
    centre = lm[4] + 0.3 * (bridge - lm[4])
    radius = 1.4 * 0.5 * (np.linalg.norm(lm[0] - lm[3]) + np.linalg.norm(bridge - lm[4]))
    return np.flatnonzero(np.linalg.norm(np.asarray(vertices) - centre, axis=1) <= radius), centre, radius


def test_default_radius_scale_is_the_protocol(toy_now):
    data, _, images, _ = toy_now
    sv, sf, slm = load_scan(data, images[0].subject)
    index, centre, radius = _old_crop_index(sv, slm)
    for crop in (crop_scan(sv, sf, slm), crop_scan(sv, sf, slm, radius_scale=1.0)):
        np.testing.assert_array_equal(crop.index, index)
        np.testing.assert_array_equal(crop.centre, centre)
        assert crop.radius == radius
    assert face_crop_sphere(slm)[1] == radius == face_crop_sphere(slm, 1.0)[1]


def test_radius_scale_scales_the_radius_and_changes_the_kept_vertices(toy_now):
    data, _, images, _ = toy_now
    sv, sf, slm = load_scan(data, images[0].subject)
    base = crop_scan(sv, sf, slm)
    crops = {k: crop_scan(sv, sf, slm, radius_scale=k) for k in (0.6, 0.8, 1.2, 1.5)}
    sizes = [len(crops[0.6].index), len(crops[0.8].index), len(base.index), len(crops[1.2].index),
             len(crops[1.5].index)]
    assert all(a < b for a, b in zip(sizes, sizes[1:])), f"crop sizes must grow strictly with the radius: {sizes}"
    for k, crop in crops.items():
        assert crop.radius == pytest.approx(k * base.radius, rel=1e-12)
        np.testing.assert_array_equal(crop.centre, base.centre)  # only the radius moves
        inner, outer = (crop, base) if k < 1 else (base, crop)
        assert set(inner.index) < set(outer.index)                # nested: a smaller sphere keeps a subset
        np.testing.assert_array_equal(crop.index, np.flatnonzero(np.linalg.norm(sv - base.centre, axis=1)
                                                                 <= k * base.radius))


def test_evaluate_prediction_measures_on_the_scaled_crop(toy_now):
    data, _, images, (v, f, lm) = toy_now
    sv, sf, slm = load_scan(data, images[0].subject)
    default = evaluate_prediction(sv, sf, slm, v, f, lm)
    same = evaluate_prediction(sv, sf, slm, v, f, lm, radius_scale=1.0)
    np.testing.assert_array_equal(same.distances, default.distances)
    np.testing.assert_array_equal(same.crop.index, default.crop.index)
    wide = evaluate_prediction(sv, sf, slm, v, f, lm, radius_scale=1.5)
    narrow = evaluate_prediction(sv, sf, slm, v, f, lm, radius_scale=0.6)
    assert len(narrow.distances) < len(default.distances) < len(wide.distances)
    np.testing.assert_array_equal(wide.crop.index, crop_scan(sv, sf, slm, radius_scale=1.5).index)
    assert not np.isclose(np.mean(wide.distances), np.mean(default.distances), rtol=1e-3)
    # refinement on the wider crop sees other points: the fitted transform changes too
    assert not np.allclose(wide.transform.apply(v[:1]), default.transform.apply(v[:1]), rtol=0, atol=1e-6)


def test_baseline_stats_passes_the_options_through(toy_now):
    data, _, images, (v, f, lm) = toy_now
    predict = lambda s: (v, f, lm)  # noqa: E731
    default = baseline_stats(data, images, predict)
    for s, d in default["_distances"].items():
        sv, sf, slm = load_scan(data, s)
        np.testing.assert_array_equal(d, evaluate_prediction(sv, sf, slm, v, f, lm).distances)
    wide = baseline_stats(data, images, predict, radius_scale=1.5)
    raw = baseline_stats(data, images, predict, refine=False)
    for s in default["_distances"]:
        sv, sf, slm = load_scan(data, s)
        np.testing.assert_array_equal(wide["_distances"][s],
                                      evaluate_prediction(sv, sf, slm, v, f, lm, radius_scale=1.5).distances)
        np.testing.assert_array_equal(raw["_distances"][s],
                                      evaluate_prediction(sv, sf, slm, v, f, lm, refine=False).distances)
        assert len(wide["_distances"][s]) > len(default["_distances"][s])
    # the refinement lowers the energy it minimises, the mean squared distance
    assert np.mean(np.concatenate(list(raw["_distances"].values())) ** 2) > \
        np.mean(np.concatenate(list(default["_distances"].values())) ** 2)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "wide", None, True])
def test_bad_radius_scale_is_refused_by_name(toy_now, bad):
    data, _, images, (v, f, lm) = toy_now
    sv, sf, slm = load_scan(data, images[0].subject)
    with pytest.raises(ValueError, match="radius_scale"):
        face_crop_sphere(slm, bad)
    with pytest.raises(ValueError, match="radius_scale"):
        crop_scan(sv, sf, slm, radius_scale=bad)
    with pytest.raises(ValueError, match="radius_scale"):
        evaluate_prediction(sv, sf, slm, v, f, lm, radius_scale=bad)
