"""Chebyshev polynomials of a (rescaled) graph Laplacian applied to signals.

For :math:`\\tilde L` with spectrum in :math:`[-1, 1]` the Chebyshev polynomials obey the three-term recursion

.. math:: T_0(\\tilde L)x = x,\\quad T_1(\\tilde L)x = \\tilde L x,\\quad
          T_k(\\tilde L)x = 2\\tilde L\\,T_{k-1}(\\tilde L)x - T_{k-2}(\\tilde L)x,

so a degree-:math:`(K-1)` polynomial filter costs :math:`K-1` sparse products and is :math:`(K-1)`-hop
localised. This one recursion serves the spectral filters of chapter 02 and the ChebConv layers of chapter 03.

A filter :math:`g(\\lambda)` on :math:`[0, \\lambda_{max}]` is approximated by
:math:`\\sum_k c_k T_k(\\tilde\\lambda)` (:func:`chebyshev_coefficients`), and applied as
:math:`\\sum_k c_k T_k(\\tilde L) x` (:func:`chebyshev_filter`) without any eigenvector.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from facecourse.arrays import to_numpy
from facecourse.spectral.laplacian import _check_lambda_max, mass_normalized, rescale_laplacian, to_torch_sparse


def chebyshev_basis(lap_tilde: torch.Tensor, x: torch.Tensor, K: int) -> torch.Tensor:
    """Stack :math:`[T_0(\\tilde L)x, \\dots, T_{K-1}(\\tilde L)x]`.

    Args:
        lap_tilde: ``(V, V)`` rescaled Laplacian, torch sparse (COO/CSR) or dense.
        x: ``(B, V, C)`` or ``(V, C)`` signals on the vertices.
        K: number of polynomials (>= 1); COMA uses ``K = 6``.

    Returns:
        ``(K, B, V, C)`` (or ``(K, V, C)`` for unbatched ``x``). The batch shares one Laplacian: the
        signals are laid out as one ``(V, B*C)`` matrix so each order costs a single sparse product.
    """
    if K < 1:
        raise ValueError(f"K must be >= 1, got {K}")
    single = x.ndim == 2
    xb = x[None] if single else x
    if xb.ndim != 3 or xb.shape[1] != lap_tilde.shape[0]:
        raise ValueError(f"x must be (B, V, C) with V={lap_tilde.shape[0]}, got {tuple(x.shape)}")
    b, v, c = xb.shape
    t0 = xb.permute(1, 0, 2).reshape(v, b * c)
    out = [t0]
    if K > 1:
        out.append(lap_tilde @ t0)
    for _ in range(2, K):
        out.append(2.0 * (lap_tilde @ out[-1]) - out[-2])
    stacked = torch.stack(out).reshape(K, v, b, c).permute(0, 2, 1, 3)
    return stacked[:, 0] if single else stacked


def chebyshev_coefficients(g, K: int, lambda_max: float, n_nodes: int | None = None) -> np.ndarray:
    """Coefficients of the degree-:math:`(K-1)` Chebyshev approximation of a filter on :math:`[0, \\lambda_{max}]`.

    With :math:`\\lambda(x) = \\frac{\\lambda_{max}}{2}(x + 1)` mapping :math:`x \\in [-1, 1]` onto the spectrum,
    Chebyshev–Gauss quadrature on the nodes :math:`x_j = \\cos\\theta_j`, :math:`\\theta_j = \\pi(j + \\tfrac12)/N`
    gives

    .. math:: c_k = \\frac{2 - \\delta_{k0}}{N} \\sum_{j=0}^{N-1} g(\\lambda(x_j)) \\cos(k\\theta_j),\\qquad
              g(\\lambda) \\approx \\sum_{k=0}^{K-1} c_k T_k(\\tilde\\lambda),\\quad
              \\tilde\\lambda = \\frac{2\\lambda}{\\lambda_{max}} - 1.

    (:math:`c_0` is already halved, so the filter is a plain sum, like ChebConv's :math:`\\sum_k T_k W_k`.)
    The quadrature is exact for polynomial :math:`g` of degree :math:`< K`; for smooth :math:`g` the error
    falls geometrically with :math:`K`.

    Args:
        g: vectorised filter ``(N,) -> (N,)`` of the eigenvalue (e.g. :func:`~facecourse.spectral.filters.heat_kernel`).
        K: number of coefficients (>= 1).
        lambda_max: upper end of the spectrum (> 0).
        n_nodes: quadrature nodes ``N >= K`` (default ``max(K, 256)``).

    Returns:
        ``(K,)`` float64.
    """
    if K < 1:
        raise ValueError(f"K must be >= 1, got {K}")
    _check_lambda_max(lambda_max)
    n = max(K, 256) if n_nodes is None else int(n_nodes)
    if n < K:
        raise ValueError(f"n_nodes must be >= K={K}, got {n}")
    theta = np.pi * (np.arange(n) + 0.5) / n
    values = np.asarray(g(0.5 * lambda_max * (np.cos(theta) + 1.0)), dtype=np.float64)
    if values.shape != (n,):
        raise ValueError(f"g must map ({n},) eigenvalues to ({n},) values, got {values.shape}")
    coeffs = (2.0 / n) * np.cos(np.outer(np.arange(K), theta)) @ values
    coeffs[0] *= 0.5
    return coeffs


def chebyshev_operator(laplacian, lambda_max: float, mass=None, dtype: torch.dtype = torch.float64,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """The rescaled operator :math:`\\tilde L = \\frac{2}{\\lambda_{max}} M^{-1}L - I` as torch sparse ``(V, V)``.

    Args:
        laplacian: ``(V, V)`` scipy sparse, positive semi-definite.
        lambda_max: an upper bound of its spectrum (e.g. 2 for :math:`L_{sym}`, or
            :func:`~facecourse.spectral.eigen.largest_eigenvalue`).
        mass: optional ``(V,)`` lumped mass (then the operator is :math:`M^{-1}L`, whose eigenpairs are those
            of :math:`Lu = \\lambda Mu`).

    Returns:
        ``(V, V)`` torch sparse CSR tensor (on CPU its product with a dense matrix is about 10x faster than
        COO's; ``benchmarks/bench_chebyshev_vs_exact.py``).
    """
    lap = mass_normalized(laplacian, mass)
    with warnings.catch_warnings():  # CSR is flagged "beta"; its sparse @ dense product is what we use
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return to_torch_sparse(rescale_laplacian(lap, lambda_max), dtype=dtype, device=device).to_sparse_csr()


def chebyshev_filter(operator: torch.Tensor, x, coefficients) -> torch.Tensor | np.ndarray:
    """Approximate spectral filtering :math:`y = \\sum_k c_k T_k(\\tilde L)\\, x` with ``K - 1`` sparse products.

    Uses :func:`chebyshev_basis` (the one recursion of the package), no eigenvectors.

    Args:
        operator: ``(V, V)`` torch sparse :math:`\\tilde L` from :func:`chebyshev_operator`.
        x: ``(V,)``, ``(V, C)`` or ``(B, V, C)`` signal (numpy or torch).
        coefficients: ``(K,)`` from :func:`chebyshev_coefficients`.

    Returns:
        Filtered signal, same shape and array type as ``x`` (numpy in, numpy out).
    """
    as_numpy = not isinstance(x, torch.Tensor)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64) if as_numpy else x).to(operator.dtype)
    c = torch.as_tensor(np.asarray(coefficients, dtype=np.float64)).to(xt)
    if c.ndim != 1:
        raise ValueError(f"coefficients must be a (K,) vector, got shape {tuple(c.shape)}")
    vector = xt.ndim == 1
    terms = chebyshev_basis(operator, xt[:, None] if vector else xt, len(c))
    y = torch.tensordot(c, terms, dims=1)
    y = y[:, 0] if vector else y
    return y.cpu().numpy() if as_numpy else y


def chebyshev_polynomial(coefficients, lam, lambda_max: float) -> np.ndarray:
    """Evaluate :math:`p(\\lambda) = \\sum_k c_k T_k(2\\lambda/\\lambda_{max} - 1)` at scalar eigenvalues.

    Runs the same recursion on the diagonal operator :math:`\\operatorname{diag}(\\tilde\\lambda)`, so the plotted
    response is exactly what :func:`chebyshev_filter` applies to each graph frequency.

    Args:
        coefficients: ``(K,)``; lam: ``(N,)`` eigenvalues in :math:`[0, \\lambda_{max}]`.

    Returns:
        ``(N,)`` float64.
    """
    _check_lambda_max(lambda_max)
    lam = np.asarray(lam, dtype=np.float64).ravel()
    n = len(lam)
    diag = torch.sparse_coo_tensor(torch.arange(n).repeat(2, 1), torch.from_numpy(2.0 * lam / lambda_max - 1.0),
                                   (n, n), check_invariants=False)
    return chebyshev_filter(diag, np.ones(n), coefficients)


def relative_error(approx, exact) -> float:
    """:math:`\\lVert y - y^\\star \\rVert_F / \\lVert y^\\star \\rVert_F` for arrays of equal shape."""
    a, b = to_numpy(approx, np.float64), to_numpy(exact, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"approx {a.shape} and exact {b.shape} must have the same shape")
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def chebyshev_response_error(g, coefficients, eigenvalues, lambda_max: float) -> float:
    """Worst error of the polynomial response on a spectrum: :math:`\\max_i |g(\\lambda_i) - p(\\lambda_i)|`.

    It bounds the filtering error for every signal, since
    :math:`\\lVert y - y^\\star\\rVert_M = \\lVert (p(\\Lambda) - g(\\Lambda))\\hat x\\rVert \\le
    \\max_i|g(\\lambda_i) - p(\\lambda_i)|\\,\\lVert x\\rVert_M`.

    Args:
        g: the filter; coefficients: ``(K,)`` from :func:`chebyshev_coefficients`;
        eigenvalues: ``(N,)`` (e.g. the full spectrum, or a fine grid of :math:`[0, \\lambda_{max}]`);
        lambda_max: the value the coefficients were computed for.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64).ravel()
    exact = np.asarray(g(lam), dtype=np.float64)
    return float(np.abs(exact - chebyshev_polynomial(coefficients, lam, lambda_max)).max())
