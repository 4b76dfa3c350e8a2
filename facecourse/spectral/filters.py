"""Spectral filters :math:`g(\\lambda)` and exact filtering in the eigenbasis.

A filter scales each graph frequency: :math:`y = U\\, g(\\Lambda)\\, U^\\top M x`. Two classics:

* ideal low-pass :math:`g(\\lambda) = [\\lambda \\le \\lambda_c]`: keep the frequencies below a cut-off,
* heat kernel :math:`g(\\lambda) = e^{-t\\lambda}`: the solution at time :math:`t` of the diffusion
  :math:`\\partial_t x = -L x` (or :math:`-M^{-1}Lx`) started from :math:`x`, i.e. :math:`y = e^{-tL}x`.

Heat diffusion can also be computed exactly without eigenvectors (:func:`heat_diffusion`, a matrix
exponential times a vector). Exact filtering with a general :math:`g` needs the eigenvectors, which costs
:math:`O(V^3)` for all of them; chapter 03 replaces it with Chebyshev polynomials of :math:`L`
(:mod:`facecourse.spectral.chebyshev`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.sparse.linalg import expm_multiply

from facecourse.arrays import to_numpy
from facecourse.spectral.eigen import Eigenbasis
from facecourse.spectral.fourier import graph_fourier
from facecourse.spectral.laplacian import mass_normalized

Filter = Callable[[np.ndarray], np.ndarray]


def heat_kernel(t: float) -> Filter:
    """:math:`g(\\lambda) = e^{-t\\lambda}` for diffusion time ``t >= 0`` (unit: 1 / unit of :math:`\\lambda`)."""
    if not t >= 0:
        raise ValueError(f"diffusion time t must be >= 0, got {t}")

    def g(lam):
        return np.exp(-t * np.asarray(lam, dtype=np.float64))

    return g


def ideal_lowpass(cutoff: float) -> Filter:
    """:math:`g(\\lambda) = 1` for :math:`\\lambda \\le \\lambda_c` (``cutoff``), else 0."""

    def g(lam):
        return (np.asarray(lam, dtype=np.float64) <= cutoff).astype(np.float64)

    return g


def spectral_filter(x, basis: Eigenbasis, g: Filter) -> np.ndarray:
    """Exact filtering in the eigenbasis: :math:`y = U g(\\Lambda) U^\\top M x`.

    With a truncated basis the frequencies beyond it are dropped (i.e. treated as :math:`g = 0`); pass the
    full basis (:func:`~facecourse.spectral.eigen.full_eigenpairs`) for the exact filter of the operator.

    Args:
        x: ``(V,)``, ``(V, C)`` or ``(B, V, C)`` signal.
        basis: eigenbasis with ``k`` pairs.
        g: vectorised filter, ``(k,) -> (k,)``.

    Returns:
        Filtered signal, same shape as ``x``.
    """
    coeffs = graph_fourier(x, basis)
    gain = np.asarray(g(basis.eigenvalues), dtype=np.float64)
    if gain.shape != basis.eigenvalues.shape:
        raise ValueError(f"g must map ({basis.k},) eigenvalues to ({basis.k},) gains, got {gain.shape}")
    gain = gain if coeffs.ndim == 1 else gain[:, None]
    return basis.eigenvectors @ (gain * coeffs)


def heat_diffusion(x, laplacian, t: float, mass=None) -> np.ndarray:
    """Exact heat diffusion :math:`y = e^{-t M^{-1} L} x` on all frequencies, without eigenvectors.

    Uses ``scipy.sparse.linalg.expm_multiply`` (a truncated Taylor series with scaling on sparse products), so
    it equals :func:`spectral_filter` with :func:`heat_kernel` and the *full* eigenbasis.

    Args:
        x: ``(V,)`` or ``(V, C)`` signal.
        laplacian: ``(V, V)`` sparse positive semi-definite :math:`L`.
        t: diffusion time ``>= 0`` (1 / unit of the eigenvalues; m² for the cotangent Laplacian with mass in m²).
        mass: optional ``(V,)`` lumped mass (vertex areas).

    Returns:
        Diffused signal, same shape as ``x``.
    """
    if not t >= 0:
        raise ValueError(f"diffusion time t must be >= 0, got {t}")
    n = laplacian.shape[0]
    x = to_numpy(x, np.float64)
    if x.ndim not in (1, 2) or x.shape[0] != n:
        raise ValueError(f"x must be (V,) or (V, C) with V={n}, got {x.shape}")
    lap = mass_normalized(laplacian, mass)
    return expm_multiply(-t * lap, x)
