"""Laplacians of meshes and graphs: algebraic properties, closed-form spectra, libigl as the reference."""

import igl
import numpy as np
import pytest
import scipy.sparse as sp
import torch
import trimesh

from facecourse.spectral import (
    combinatorial_laplacian, cotangent_laplacian, full_eigenpairs, graph_laplacian, mass_matrix, mass_normalized,
    mass_vector,
    normalized_laplacian, random_walk_laplacian, rescale_laplacian, scaled_laplacian, smallest_eigenpairs,
    to_torch_sparse,
)


def torus_grid(n: int, m: int):
    """Periodic n x m grid, each cell split by the (i, j)-(i+1, j+1) diagonal: every vertex has the six
    neighbours (+-1, 0), (0, +-1), +-(1, 1)."""
    idx = np.arange(n * m).reshape(n, m)
    a, b = idx, np.roll(idx, -1, axis=0)
    c, d = np.roll(b, -1, axis=1), np.roll(idx, -1, axis=1)
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return faces.astype(np.int64)


def plane_grid(n: int, jitter: float = 0.0, seed: int = 0):
    """Flat (n x n) grid in the z = 0 plane on [0, 1]^2, interior vertices jittered; returns (V, F, interior)."""
    x, y = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="ij")
    v = np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], 1)
    interior = ((x > 0) & (x < 1) & (y > 0) & (y < 1)).ravel()
    v[interior, :2] += jitter / (n - 1) * np.random.default_rng(seed).uniform(-1, 1, (interior.sum(), 2))
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return v, faces.astype(np.int64), interior


@pytest.fixture(scope="module")
def bumpy_sphere():
    m = trimesh.creation.icosphere(2)
    rng = np.random.default_rng(1)
    v = m.vertices * (1 + 0.25 * rng.random((len(m.vertices), 1)))
    return v, np.asarray(m.faces, dtype=np.int64)


def _dense(a):
    return a.toarray() if sp.issparse(a) else np.asarray(a)


def test_graph_laplacians_properties(bumpy_sphere):
    _, f = bumpy_sphere
    n = f.max() + 1
    ones = np.ones(n)
    deg = np.asarray(sp.csr_matrix(combinatorial_laplacian(f)).diagonal())
    for lap in (combinatorial_laplacian(f), normalized_laplacian(f)):
        d = _dense(lap)
        np.testing.assert_allclose(d, d.T, atol=0)
        assert np.linalg.eigvalsh(d).min() > -1e-10  # positive semi-definite
    np.testing.assert_allclose(combinatorial_laplacian(f) @ ones, 0, atol=1e-12)  # rows sum to zero
    np.testing.assert_allclose(random_walk_laplacian(f) @ ones, 0, atol=1e-12)
    np.testing.assert_allclose(normalized_laplacian(f) @ np.sqrt(deg), 0, atol=1e-12)  # null space D^1/2 1
    # L_sym = D^-1/2 L D^-1/2 and L_rw = D^-1 L; all three share the normalised spectrum in [0, 2]
    dm = np.diag(deg ** -0.5)
    np.testing.assert_allclose(_dense(normalized_laplacian(f)), dm @ _dense(combinatorial_laplacian(f)) @ dm,
                               atol=1e-14)
    w_sym = np.linalg.eigvalsh(_dense(normalized_laplacian(f)))
    w_rw = np.sort(np.linalg.eigvals(_dense(random_walk_laplacian(f))).real)
    np.testing.assert_allclose(w_rw, w_sym, atol=1e-9)
    assert w_sym.max() <= 2 + 1e-12


def test_cycle_graph_spectrum_closed_form():
    n = 24
    i = np.arange(n)
    a = sp.coo_matrix((np.ones(2 * n), (np.r_[i, (i + 1) % n], np.r_[(i + 1) % n, i])), shape=(n, n))
    expected = np.sort(2 - 2 * np.cos(2 * np.pi * i / n))
    np.testing.assert_allclose(np.linalg.eigvalsh(graph_laplacian(a).toarray()), expected, atol=1e-12)
    # 2-regular: L_sym = L / 2
    np.testing.assert_allclose(np.linalg.eigvalsh(graph_laplacian(a, "normalized").toarray()), expected / 2,
                               atol=1e-12)


def test_torus_spectrum_closed_form():
    n, m = 9, 12
    f = torus_grid(n, m)
    p, q = np.meshgrid(np.arange(n) / n, np.arange(m) / m, indexing="ij")
    closed = np.sort((6 - 2 * np.cos(2 * np.pi * p) - 2 * np.cos(2 * np.pi * q)
                      - 2 * np.cos(2 * np.pi * (p + q))).ravel())
    np.testing.assert_allclose(full_eigenpairs(combinatorial_laplacian(f))[0], closed, atol=1e-10)
    w, _ = smallest_eigenpairs(combinatorial_laplacian(f), 15)  # shift-invert Lanczos agrees
    np.testing.assert_allclose(w, closed[:15], atol=1e-9)
    np.testing.assert_allclose(full_eigenpairs(normalized_laplacian(f))[0], closed / 6, atol=1e-10)


def test_cotangent_matches_libigl(bumpy_sphere):
    v, f = bumpy_sphere
    np.testing.assert_allclose(_dense(cotangent_laplacian(v, f)), -_dense(igl.cotmatrix(v, f)), atol=1e-12)


def test_mass_matrices_match_libigl_with_obtuse_triangles():
    v, f, _ = plane_grid(8, jitter=0.45, seed=3)
    v[:, 2] = 0.1 * np.sin(3 * v[:, 0]) * v[:, 1]
    tri = v[f]
    cosines = [np.einsum("ij,ij->i", tri[:, (c + 1) % 3] - tri[:, c], tri[:, (c + 2) % 3] - tri[:, c]) for c in
               range(3)]
    assert (np.min(cosines, axis=0) < 0).sum() > 5, "the test mesh must contain obtuse triangles"
    for kind, ref in (("voronoi", igl.MassMatrixType.MASSMATRIX_TYPE_VORONOI),
                      ("barycentric", igl.MassMatrixType.MASSMATRIX_TYPE_BARYCENTRIC)):
        mine = mass_matrix(v, f, kind)
        np.testing.assert_allclose(_dense(mine), _dense(igl.massmatrix(v, f, ref)), atol=1e-15)
        assert mine.diagonal().sum() == pytest.approx(trimesh.Trimesh(v, f, process=False).area, rel=1e-12)
    np.testing.assert_allclose(_dense(cotangent_laplacian(v, f)), -_dense(igl.cotmatrix(v, f)), atol=1e-12)


def test_cotangent_properties_and_linear_precision_on_a_flat_grid():
    v, f, interior = plane_grid(9, jitter=0.3)
    lap = cotangent_laplacian(v, f)
    d = lap.toarray()
    np.testing.assert_allclose(d, d.T, atol=1e-14)
    np.testing.assert_allclose(lap @ np.ones(len(v)), 0, atol=1e-12)
    assert np.linalg.eigvalsh(d).min() > -1e-10
    # linear functions are harmonic: L x vanishes at interior vertices (not at the boundary)
    for fn in (v[:, 0], v[:, 1], 2 * v[:, 0] - 3 * v[:, 1] + 1):
        res = lap @ fn
        np.testing.assert_allclose(res[interior], 0, atol=1e-12)
        assert np.abs(res[~interior]).max() > 1e-3
    # the combinatorial Laplacian has no such linear precision on an irregular grid
    assert np.abs((combinatorial_laplacian(f) @ v[:, 0])[interior]).max() > 1e-3


def test_cotangent_is_scale_invariant_and_mass_scales_quadratically(bumpy_sphere):
    v, f = bumpy_sphere
    np.testing.assert_allclose(_dense(cotangent_laplacian(3 * v, f)), _dense(cotangent_laplacian(v, f)), atol=1e-12)
    np.testing.assert_allclose(mass_matrix(3 * v, f).diagonal(), 9 * mass_matrix(v, f).diagonal(), rtol=1e-12)


def test_rescaled_and_torch_versions(bumpy_sphere):
    _, f = bumpy_sphere
    lt = scaled_laplacian(f)
    np.testing.assert_allclose(_dense(lt), _dense(rescale_laplacian(normalized_laplacian(f), 2.0)), atol=0)
    w = np.linalg.eigvalsh(_dense(lt))
    assert w.min() >= -1 - 1e-12 and w.max() <= 1 + 1e-12
    ts = to_torch_sparse(cotangent_laplacian(*bumpy_sphere), dtype=torch.float64)
    np.testing.assert_allclose(ts.to_dense().numpy(), _dense(cotangent_laplacian(*bumpy_sphere)), atol=0)


def test_mass_normalized_operator(bumpy_sphere):
    v, f = bumpy_sphere
    lap, mass = cotangent_laplacian(v, f), mass_matrix(v, f)
    m = mass.diagonal()
    np.testing.assert_array_equal(mass_vector(mass, len(v)), mass_vector(m, len(v)))
    assert mass_vector(None, len(v)) is None
    expected = (sp.diags(1.0 / m) @ lap).toarray()
    np.testing.assert_allclose(_dense(mass_normalized(lap, mass)), expected, atol=0)
    np.testing.assert_allclose(_dense(mass_normalized(lap, m)), expected, atol=0)
    np.testing.assert_allclose(_dense(mass_normalized(lap)), _dense(lap), atol=0)
    with pytest.raises(ValueError, match="mass must be a positive"):
        mass_vector(m[:-1], len(v))
    with pytest.raises(ValueError, match="mass must be a positive"):
        mass_normalized(lap, -m)


def test_bad_inputs_are_named(bumpy_sphere):
    v, f = bumpy_sphere
    with pytest.raises(ValueError, match="kind"):
        graph_laplacian(sp.identity(3), "cotan")
    with pytest.raises(ValueError, match="vertices"):
        cotangent_laplacian(v[:, :2], f)
    with pytest.raises(ValueError, match="vertices"):
        mass_matrix(v[:10], f)
    with pytest.raises(ValueError, match="lambda_max"):
        rescale_laplacian(combinatorial_laplacian(f), 0.0)
    with pytest.raises(ValueError, match="lambda_max"):
        scaled_laplacian(f, lambda_max=-1.0)
