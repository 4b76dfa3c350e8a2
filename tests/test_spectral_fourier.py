"""Graph Fourier transform, truncation in mm, exact spectral filters (heat kernel against expm_multiply)."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import trimesh
from scipy.sparse.linalg import expm_multiply

from facecourse.spectral import (
    M_TO_MM, Eigenbasis, full_eigenpairs, graph_fourier, heat_diffusion, heat_kernel, ideal_lowpass,
    inverse_graph_fourier, laplacian_of, reconstruction_error_mm, spectral_filter, truncate,
)


@pytest.fixture(scope="module")
def mesh():
    m = trimesh.creation.icosphere(2)
    rng = np.random.default_rng(0)
    v = 0.1 * m.vertices * (1 + 0.2 * rng.random((len(m.vertices), 1)))  # ~10 cm head-sized blob, metres
    return v, np.asarray(m.faces, dtype=np.int64)


@pytest.fixture(scope="module", params=["combinatorial", "cotangent"])
def full_basis(request, mesh):
    v, f = mesh
    lap, mass = laplacian_of(request.param, f, v)
    w, u = full_eigenpairs(lap, mass)
    return Eigenbasis(w, u, mass, request.param), lap


def test_round_trip_and_parseval(mesh, full_basis):
    v, _ = mesh
    basis, _ = full_basis
    x = np.random.default_rng(1).normal(size=(2, len(v), 4))
    xhat = graph_fourier(x, basis)
    assert xhat.shape == (2, len(v), 4)
    np.testing.assert_allclose(inverse_graph_fourier(xhat, basis), x, atol=1e-9)
    m = np.ones(len(v)) if basis.mass is None else basis.mass
    # Parseval: the M-weighted energy equals the energy of the coefficients
    np.testing.assert_allclose((xhat ** 2).sum(axis=1), (m[:, None] * x ** 2).sum(axis=1), rtol=1e-9)
    # shapes (V,) and (V, C), torch input
    np.testing.assert_allclose(graph_fourier(x[0, :, 0], basis), xhat[0, :, 0], atol=1e-12)
    np.testing.assert_allclose(graph_fourier(torch.from_numpy(x[1]), basis), xhat[1], atol=1e-12)


def test_truncation_is_the_best_approximation_and_error_decreases(mesh, full_basis):
    v, _ = mesh
    basis, _ = full_basis
    ks = [1, 3, 10, 40, 100, len(v)]
    err = reconstruction_error_mm(v, basis, ks)
    assert (np.diff(err) < 0).all() and err[-1] < 1e-9
    # the error is in millimetres: k = 1 keeps only the (area-weighted) mean position
    m = np.ones(len(v)) if basis.mass is None else basis.mass
    centroid = (m[:, None] * v).sum(0) / m.sum()
    assert err[0] == pytest.approx(np.linalg.norm(v - centroid, axis=1).mean() * M_TO_MM, rel=1e-9)
    assert M_TO_MM == 1000
    # orthogonal projection: residual is M-orthogonal to the kept eigenvectors
    rec = truncate(v, basis, 10)
    res = v - rec
    np.testing.assert_allclose(basis.eigenvectors[:, :10].T @ (m[:, None] * res), 0, atol=1e-12)
    # batch error = mean over the batch
    both = np.stack([v, 2 * v])
    np.testing.assert_allclose(reconstruction_error_mm(both, basis, [10]),
                               0.5 * (reconstruction_error_mm(v, basis, [10]) * 3), rtol=1e-9)


def test_heat_kernel_matches_expm_multiply(mesh, full_basis):
    v, _ = mesh
    basis, lap = full_basis
    op = lap if basis.mass is None else sp.diags(1 / basis.mass) @ lap
    t = 0.3 / basis.eigenvalues[1]
    x = np.random.default_rng(2).normal(size=(len(v), 3))
    np.testing.assert_allclose(spectral_filter(x, basis, heat_kernel(t)), expm_multiply(-t * op, x), atol=1e-9)
    np.testing.assert_allclose(spectral_filter(x, basis, heat_kernel(0.0)), x, atol=1e-9)
    # the eigenvector-free version is the same operator
    np.testing.assert_allclose(heat_diffusion(x, lap, t, basis.mass), expm_multiply(-t * op, x), atol=1e-12)
    np.testing.assert_allclose(heat_diffusion(x[:, 0], lap, t, basis.mass), spectral_filter(x[:, 0], basis,
                               heat_kernel(t)), atol=1e-9)
    with pytest.raises(ValueError, match="x must"):
        heat_diffusion(x[:-1], lap, t)


def test_ideal_lowpass_is_truncation(mesh, full_basis):
    v, _ = mesh
    basis, _ = full_basis
    cutoff = 0.5 * (basis.eigenvalues[24] + basis.eigenvalues[25])
    np.testing.assert_allclose(spectral_filter(v, basis, ideal_lowpass(cutoff)), truncate(v, basis, 25), atol=1e-12)


def test_bad_inputs_are_named(mesh, full_basis):
    v, _ = mesh
    basis, _ = full_basis
    with pytest.raises(ValueError, match="x must"):
        graph_fourier(v[:-1], basis)
    with pytest.raises(ValueError, match="k must"):
        reconstruction_error_mm(v, basis.truncated(5), [6])
    with pytest.raises(ValueError, match="coefficients"):
        inverse_graph_fourier(np.zeros((len(v) + 1, 3)), basis)
    with pytest.raises(ValueError, match="t must"):
        heat_kernel(-1.0)
    with pytest.raises(ValueError, match="g must"):
        spectral_filter(v, basis, lambda lam: 1.0)

