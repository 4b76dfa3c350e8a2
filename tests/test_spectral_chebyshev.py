"""Chebyshev approximation of spectral filters: coefficients, exactness, convergence to the exact filter."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import trimesh
from scipy.sparse.linalg import expm_multiply

from facecourse.spectral import (
    Eigenbasis, chebyshev_coefficients, chebyshev_filter, chebyshev_operator, chebyshev_polynomial,
    chebyshev_response_error, combinatorial_laplacian, full_eigenpairs, heat_kernel, largest_eigenvalue, laplacian_of,
    normalized_laplacian, relative_error, scaled_laplacian, spectral_filter, to_torch_sparse,
)


@pytest.fixture(scope="module")
def mesh():
    m = trimesh.creation.icosphere(3)
    rng = np.random.default_rng(0)
    v = m.vertices * (1 + 0.1 * rng.random((len(m.vertices), 1)))
    return v, np.asarray(m.faces, dtype=np.int64)


def test_coefficients_match_numpy_chebyshev_interpolation():
    g = heat_kernel(0.7)
    for k in (1, 4, 9):
        ref = np.polynomial.chebyshev.Chebyshev.interpolate(g, k - 1, domain=[0, 3.0]).coef
        np.testing.assert_allclose(chebyshev_coefficients(g, k, 3.0, n_nodes=k), ref, atol=1e-13)


def test_polynomial_filters_are_reproduced_exactly(mesh):
    _, f = mesh
    lap = combinatorial_laplacian(f)
    lmax = largest_eigenvalue(lap) * 1.01
    c = chebyshev_coefficients(lambda lam: 1 - 0.5 * lam + 0.1 * lam ** 2, 3, lmax)
    x = np.random.default_rng(1).normal(size=(lap.shape[0], 3))
    expected = x - 0.5 * (lap @ x) + 0.1 * (lap @ (lap @ x))
    np.testing.assert_allclose(chebyshev_filter(chebyshev_operator(lap, lmax), x, c), expected, atol=1e-11)
    lam = np.linspace(0, lmax, 7)
    np.testing.assert_allclose(chebyshev_polynomial(c, lam, lmax), 1 - 0.5 * lam + 0.1 * lam ** 2, atol=1e-12)


def test_chebyshev_filtering_converges_to_the_exact_filter(mesh):
    v, f = mesh
    lap = normalized_laplacian(f)
    basis = Eigenbasis(*full_eigenpairs(lap), None, "normalized")
    g = heat_kernel(2.0)
    exact = spectral_filter(v, basis, g)
    op = chebyshev_operator(lap, 2.0)
    errors = [relative_error(chebyshev_filter(op, v, chebyshev_coefficients(g, k, 2.0)), exact)
              for k in (1, 2, 3, 4, 6, 8, 12)]
    assert (np.diff(errors) < 0).all(), errors
    assert errors[0] > 1e-2 and errors[-1] < 1e-9
    # the worst response error on the spectrum bounds the filtering error of any signal
    for k in (2, 4, 6):
        c = chebyshev_coefficients(g, k, 2.0)
        bound = chebyshev_response_error(g, c, basis.eigenvalues, 2.0)
        err = np.linalg.norm(chebyshev_filter(op, v, c) - exact)
        assert err <= bound * np.linalg.norm(v) * (1 + 1e-9)
    # the operator with lambda_max = 2 is the one the ChebConv layers use
    np.testing.assert_allclose(op.to_dense().numpy(), scaled_laplacian(f).toarray(), atol=0)


def test_heat_filter_against_expm_multiply_graph_and_cotangent(mesh):
    v, f = mesh
    x = np.random.default_rng(2).normal(size=(len(v), 2))
    for kind in ("combinatorial", "cotangent"):
        lap, mass = laplacian_of(kind, f, v)
        lmax = largest_eigenvalue(lap, mass) * 1.01
        t = 1.0 / lmax * 5
        c = chebyshev_coefficients(heat_kernel(t), 24, lmax)
        y = chebyshev_filter(chebyshev_operator(lap, lmax, mass), x, c)
        op = lap if mass is None else sp.diags(1 / mass) @ lap
        assert relative_error(y, expm_multiply(-t * op, x)) < 1e-10, kind


def test_shapes_types_and_batches(mesh):
    v, f = mesh
    op = to_torch_sparse(scaled_laplacian(f), dtype=torch.float64)
    c = chebyshev_coefficients(heat_kernel(1.0), 6, 2.0)
    x = np.random.default_rng(3).normal(size=(3, len(v), 2))
    y = chebyshev_filter(op, x, c)
    assert isinstance(y, np.ndarray) and y.shape == x.shape
    np.testing.assert_allclose(y[1], chebyshev_filter(op, x[1], c), atol=1e-13)
    np.testing.assert_allclose(y[2, :, 0], chebyshev_filter(op, x[2, :, 0], c), atol=1e-13)
    yt = chebyshev_filter(op, torch.from_numpy(x), c)
    assert isinstance(yt, torch.Tensor)
    np.testing.assert_allclose(yt.numpy(), y, atol=0)


def test_response_is_what_the_filter_applies_to_each_frequency(mesh):
    _, f = mesh
    lap = combinatorial_laplacian(f)
    w, u = full_eigenpairs(lap)
    lmax = w[-1] * 1.01
    c = chebyshev_coefficients(heat_kernel(0.5), 5, lmax)
    y = chebyshev_filter(chebyshev_operator(lap, lmax), u[:, [7, 300]], c)
    np.testing.assert_allclose(y, u[:, [7, 300]] * chebyshev_polynomial(c, w[[7, 300]], lmax), atol=1e-12)


def test_bad_inputs_are_named(mesh):
    v, f = mesh
    g = heat_kernel(1.0)
    with pytest.raises(ValueError, match="K must"):
        chebyshev_coefficients(g, 0, 2.0)
    with pytest.raises(ValueError, match="lambda_max"):
        chebyshev_coefficients(g, 3, -1.0)
    with pytest.raises(ValueError, match="lambda_max"):
        chebyshev_polynomial(np.ones(3), np.linspace(0, 1, 5), 0.0)
    with pytest.raises(ValueError, match="lambda_max"):
        chebyshev_response_error(g, np.ones(3), np.linspace(0, 1, 5), float("nan"))
    with pytest.raises(ValueError, match="n_nodes"):
        chebyshev_coefficients(g, 8, 2.0, n_nodes=4)
    with pytest.raises(ValueError, match="mass"):
        chebyshev_operator(normalized_laplacian(f), 2.0, mass=np.ones(3))
    with pytest.raises(ValueError, match="coefficients"):
        chebyshev_filter(chebyshev_operator(normalized_laplacian(f), 2.0), v, np.ones((2, 2)))
    with pytest.raises(ValueError, match="same shape"):
        relative_error(np.ones(3), np.ones(4))
