"""facecourse.now.align: similarities, Procrustes and the refinement of the alignment."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import toy_head
from scipy.spatial.transform import Rotation

from facecourse.now import M_TO_MM, Similarity, point_mesh_distance, procrustes, refine_alignment


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
