"""smallest_eigenpairs is deterministic and complete: the same pairs whatever ran before, whole degenerate
clusters, residuals checked (a fresh-clone CI once got 6 of the 7 l = 3 eigenvalues of a sphere)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import trimesh

import facecourse.spectral.eigen as eigen
from facecourse.spectral import cotangent_laplacian, full_eigenpairs, mass_vector, smallest_eigenpairs


@pytest.fixture(scope="module")
def sphere():
    m = trimesh.creation.icosphere(3, radius=1.0)
    lap = cotangent_laplacian(m.vertices, m.faces)
    return lap, mass_vector(eigen.laplacian_of("cotangent", m.faces, m.vertices)[1], len(m.vertices))


def _disturb_arpack(seed: int) -> None:
    """Other eigsh calls in the same process advance ARPACK's internal random start state."""
    rng = np.random.default_rng(seed)
    for n in (30, 57, 101):
        a = sp.random(n, n, density=0.2, random_state=rng)
        spla.eigsh((a + a.T) + sp.eye(n) * n, k=3)


def test_same_result_whatever_ran_before(sphere):
    lap, mass = sphere
    first = smallest_eigenpairs(lap, 16, mass)
    _disturb_arpack(1)
    second = smallest_eigenpairs(lap, 16, mass)
    _disturb_arpack(2)
    third = smallest_eigenpairs(lap, 16, mass)
    for a, b in ((first, second), (first, third)):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("k", [9, 10, 16, 17])
def test_clusters_are_complete_and_match_the_dense_solver(sphere, k):
    """Eigenvalues of the unit sphere are l (l + 1) with multiplicity 2l + 1: 0 | 2 x3 | 6 x5 | 12 x7 | 20 x9.
    Cutting inside a cluster (k = 10: one of l = 3) or at its end (k = 16) returns the k smallest, like eigh."""
    lap, mass = sphere
    _disturb_arpack(k)
    values, vectors = smallest_eigenpairs(lap, k, mass)
    dense, _ = full_eigenpairs(lap, mass)
    assert np.allclose(values, dense[:k], rtol=1e-9, atol=1e-9)
    if k >= 16:
        assert np.sum(np.abs(values - 12) < 0.5) == 7  # the whole l = 3 cluster (discretised: within 4%)
    assert eigen.eigen_residuals(lap, values, vectors, mass).max() < eigen.RESIDUAL_TOLERANCE
    assert np.allclose(vectors.T @ (vectors * mass[:, None]), np.eye(k), atol=1e-8)


def test_an_inaccurate_pair_is_refused(sphere, monkeypatch):
    lap, mass = sphere
    real_eigsh = spla.eigsh

    def sloppy(*args, **kwargs):
        values, vectors = real_eigsh(*args, **kwargs)
        vectors = vectors.copy()
        vectors[:, 2] += 1e-3 * np.random.default_rng(0).standard_normal(len(vectors))
        return values, vectors

    monkeypatch.setattr(eigen.spla, "eigsh", sloppy)
    with pytest.raises(RuntimeError, match="residual .* pair 2"):
        smallest_eigenpairs(lap, 6, mass)


def test_the_start_vector_is_fixed():
    assert np.array_equal(eigen.start_vector(50), eigen.start_vector(50))
    np.random.seed(123)  # the global numpy state plays no part
    assert np.array_equal(eigen.start_vector(50), np.random.default_rng(0x5EED).standard_normal(50))
