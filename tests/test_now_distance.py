"""facecourse.now geometry: exact distances, Procrustes, refinement, crop, .pp files, statistics."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation
from test_now_eval import toy_head

from facecourse.now import (
    M_TO_MM, Similarity, SurfaceDistance, crop_scan, cumulative_error_curve, error_stats, face_crop_sphere,
    point_mesh_distance, procrustes, read_pp, refine_alignment, write_pp,
)

TRI = (np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), np.array([[0, 1, 2]]))


@pytest.mark.parametrize("point, expected", [
    ((0.25, 0.25, 2.0), 2.0),                         # face region: straight above the interior
    ((0.25, 0.25, -0.5), 0.5),                        # below, unsigned
    ((0.5, -1.0, 0.0), 1.0),                          # edge region of v0-v1
    ((0.5, -3.0, 4.0), 5.0),                          # edge region, off the plane: sqrt(3^2 + 4^2)
    ((1.0, 1.0, 0.0), np.sqrt(2) / 2),                 # edge region of the hypotenuse
    ((-1.0, -1.0, 0.0), np.sqrt(2.0)),                # vertex region of v0
    ((3.0, -1.0, 1.0), np.sqrt(4 + 1 + 1)),           # vertex region of v1
    ((-2.0, 3.0, 0.0), np.sqrt(4 + 4)),               # vertex region of v2
])
def test_point_triangle_analytic(point, expected):
    d = point_mesh_distance(np.array([point]), *TRI)
    assert d[0] == pytest.approx(expected, abs=1e-12)


def test_closest_point_is_on_the_right_feature():
    sq, face, closest = SurfaceDistance(*TRI).query(np.array([[0.5, -3.0, 4.0], [-1.0, -1.0, 0.0]]))
    np.testing.assert_allclose(closest, [[0.5, 0.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(sq, [25.0, 2.0])
    assert (face == 0).all()


def test_agrees_with_trimesh():
    rng = np.random.default_rng(0)
    mesh = trimesh.creation.icosphere(subdivisions=2)
    mesh.vertices *= np.array([75.0, 100.0, 90.0])
    mesh.vertices += rng.normal(scale=2.0, size=mesh.vertices.shape)
    pts = rng.normal(scale=80.0, size=(500, 3))
    ours = point_mesh_distance(pts, mesh.vertices, mesh.faces)
    _, ref, _ = trimesh.proximity.closest_point(mesh, pts)
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="faces"):
        SurfaceDistance(TRI[0], np.zeros((0, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="faces must be an integer array"):
        SurfaceDistance(TRI[0], TRI[1].astype(np.float64))  # not silently truncated to indices
    with pytest.raises(ValueError, match="faces index vertices outside"):
        SurfaceDistance(TRI[0], TRI[1] + 1)
    with pytest.raises(ValueError, match="query points"):
        SurfaceDistance(*TRI)(np.array([[np.nan, 0, 0]]))


def _random_similarity(rng, scale=None):
    return Similarity(float(rng.uniform(0.5, 2.0) if scale is None else scale),
                      Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix(),
                      rng.normal(scale=50.0, size=3))


def test_similarity_inverse_and_compose():
    rng = np.random.default_rng(1)
    a, b = _random_similarity(rng), _random_similarity(rng)
    p = rng.normal(size=(10, 3))
    np.testing.assert_allclose(a.inverse().apply(a.apply(p)), p, atol=1e-10)
    np.testing.assert_allclose(a.compose(b).apply(p), a.apply(b.apply(p)), atol=1e-10)
    np.testing.assert_allclose(a.matrix() @ np.append(p[0], 1.0), np.append(a.apply(p[0]), 1.0), atol=1e-10)


def test_procrustes_recovers_a_known_similarity():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(7, 3))
    true = _random_similarity(rng)
    est = procrustes(src, true.apply(src))
    assert est.scale == pytest.approx(true.scale, rel=1e-10)
    np.testing.assert_allclose(est.rotation, true.rotation, atol=1e-10)
    np.testing.assert_allclose(est.translation, true.translation, atol=1e-8)
    assert np.linalg.det(est.rotation) == pytest.approx(1.0)


def test_procrustes_fixed_scale_and_no_reflection():
    rng = np.random.default_rng(3)
    src = rng.normal(size=(7, 3))
    true = _random_similarity(rng, scale=M_TO_MM)
    est = procrustes(src, true.apply(src), with_scale=False, scale=M_TO_MM)
    np.testing.assert_allclose(est.rotation, true.rotation, atol=1e-10)
    assert est.scale == M_TO_MM
    mirrored = src * np.array([-1.0, 1.0, 1.0])
    assert np.linalg.det(procrustes(src, mirrored).rotation) == pytest.approx(1.0)


def test_refinement_lowers_the_error_and_recovers_a_perturbation():
    pv, pf, _ = toy_head(3)  # the prediction, and a denser surface of the same head for the scan
    sv = toy_head(5)[0]
    rng = np.random.default_rng(4)
    scan = sv[sv[:, 2] > -20.0] + rng.normal(scale=0.1, size=(np.sum(sv[:, 2] > -20.0), 3))
    true = Similarity(1.03, Rotation.from_rotvec([0.04, -0.03, 0.02]).as_matrix(), np.array([2.0, -1.5, 1.0]))
    pred = true.inverse().apply(pv)  # the prediction, moved away from the scan by a small similarity
    start = point_mesh_distance(scan, pred, pf).mean()
    ref = refine_alignment(scan, pred, pf, Similarity())
    assert ref.history[-1] < ref.history[0] and all(np.diff(ref.history) < 0)
    after = point_mesh_distance(scan, ref.transform.apply(pred), pf).mean()
    assert after < 0.3 * start
    # the coarse prediction is a polyhedral approximation of the same surface: recovered to ~0.5 %
    assert ref.transform.scale == pytest.approx(true.scale, rel=5e-3)
    angle = Rotation.from_matrix(ref.transform.rotation @ true.rotation.T).magnitude()
    assert angle < 5e-3
    subset = refine_alignment(scan, pred, pf, Similarity(), max_points=2000)  # iterate on a random subset
    assert subset.transform.scale == pytest.approx(ref.transform.scale, rel=2e-3)
    fixed = refine_alignment(scan, pred, pf, Similarity(1.03), with_scale=False)
    assert fixed.transform.scale == 1.03 and fixed.history[-1] < fixed.history[0]


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


def test_pp_round_trip_and_parser(tmp_path):
    rng = np.random.default_rng(5)
    pts = rng.normal(scale=100.0, size=(7, 3))
    path = write_pp(tmp_path / "a.pp", pts, data_file_name="scan.obj")
    np.testing.assert_array_equal(read_pp(path, expected=7), pts)  # exact: shortest round-trip repr
    lines = path.read_text().splitlines()
    assert all(line.lstrip().startswith("<point") for line in lines[8:15])  # official reader's line numbers
    (tmp_path / "b.pp").write_text('<!DOCTYPE PickedPoints>\n<PickedPoints>\n <point name="x" z="3" y="2.5" '
                                   'x="-1e1" active="1"/>\n</PickedPoints>\n')
    np.testing.assert_array_equal(read_pp(tmp_path / "b.pp"), [[-10.0, 2.5, 3.0]])
    with pytest.raises(ValueError, match="expected 7"):
        read_pp(tmp_path / "b.pp", expected=7)
    (tmp_path / "c.pp").write_text("<PickedPoints><point x='1' y='nope' z='0'/></PickedPoints>")
    with pytest.raises(ValueError, match="numeric"):
        read_pp(tmp_path / "c.pp")


def test_error_stats_and_weights_match_repetition():
    rng = np.random.default_rng(6)
    chunks = [rng.gamma(2.0, 0.6, size=n) for n in (5, 8, 3)]
    w = np.array([2, 1, 3])
    repeated = np.concatenate([np.tile(c, k) for c, k in zip(chunks, w)])
    got = error_stats(chunks, w)
    assert got["median"] == pytest.approx(np.median(repeated))
    assert got["mean"] == pytest.approx(repeated.mean())
    assert got["std"] == pytest.approx(repeated.std())
    assert got["n_points"] == len(repeated)
    plain = error_stats(chunks)
    assert plain["median"] == np.median(np.concatenate(chunks))
    tau, pct = cumulative_error_curve(chunks, w)
    _, pct_ref = cumulative_error_curve(repeated)
    np.testing.assert_allclose(pct, pct_ref)
    assert pct[0] == 0.0 and pct[-1] == pytest.approx(100.0 * np.mean(repeated <= 8.0))
    assert np.all(np.diff(pct) >= 0) and tau[-1] == 8.0
