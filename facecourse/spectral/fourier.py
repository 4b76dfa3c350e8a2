"""Graph Fourier transform on a mesh and compression by truncating it.

With an eigenbasis :math:`U` of :math:`L u = \\lambda M u` (:math:`U^\\top M U = I`, :math:`M = I` for graph
Laplacians) a signal :math:`x \\in \\mathbb R^{V \\times C}` (e.g. the vertex coordinates, :math:`C = 3`) has

.. math:: \\hat x = U^\\top M x \\quad\\text{(analysis)},\\qquad x = U \\hat x \\quad\\text{(synthesis, full basis)}.

Eigenvectors with small :math:`\\lambda` vary slowly over the surface (low frequencies). Keeping the first
:math:`k` coefficients, :math:`x_k = U_{:, :k} \\hat x_{:k}`, is the best :math:`M`-weighted least-squares
approximation of :math:`x` in their span: mesh compression by truncation.

Signals are numpy arrays (torch tensors are accepted and converted) of shape ``(V,)``, ``(V, C)`` or
``(B, V, C)``; coefficients have ``k`` in place of ``V``.
"""

from __future__ import annotations

import numpy as np

from facecourse.arrays import to_numpy
from facecourse.spectral.eigen import Eigenbasis
from facecourse.units import M_TO_MM


def _check_signal(x: np.ndarray, n: int, name: str) -> None:
    ok = (x.ndim == 1 and x.shape[0] == n) or (x.ndim in (2, 3) and x.shape[-2] == n)
    if not ok:
        raise ValueError(f"{name} must be (V,), (V, C) or (B, V, C) with V={n}, got {x.shape}")


def _weighted(x: np.ndarray, mass: np.ndarray | None) -> np.ndarray:
    if mass is None:
        return x
    return x * (mass if x.ndim == 1 else mass[:, None])


def graph_fourier(x, basis: Eigenbasis) -> np.ndarray:
    """Analysis :math:`\\hat x = U^\\top M x`.

    Args:
        x: ``(V,)``, ``(V, C)`` or ``(B, V, C)`` signal on the vertices.
        basis: :class:`~facecourse.spectral.eigen.Eigenbasis` with ``k`` eigenvectors.

    Returns:
        Coefficients ``(k,)``, ``(k, C)`` or ``(B, k, C)`` (unit of ``x`` times sqrt of the mass unit).
    """
    x = to_numpy(x, np.float64)
    u = basis.eigenvectors
    _check_signal(x, u.shape[0], "x")
    return u.T @ _weighted(x, basis.mass)


def inverse_graph_fourier(coefficients, basis: Eigenbasis) -> np.ndarray:
    """Synthesis :math:`x = U \\hat x` from ``(k,)``, ``(k, C)`` or ``(B, k, C)`` coefficients (the first
    ``k`` of the basis are used, so truncated coefficients give the truncated reconstruction)."""
    c = to_numpy(coefficients, np.float64)
    k = c.shape[0] if c.ndim == 1 else c.shape[-2]
    if k > basis.k:
        raise ValueError(f"coefficients have {k} frequencies but the basis only {basis.k}")
    return basis.eigenvectors[:, :k] @ c


def truncate(x, basis: Eigenbasis, k: int) -> np.ndarray:
    """Reconstruction :math:`x_k = U_{:, :k} U_{:, :k}^\\top M x` from the ``k`` lowest frequencies, same shape
    as ``x``."""
    return inverse_graph_fourier(graph_fourier(x, basis.truncated(k)), basis)


def reconstruction_error_mm(vertices, basis: Eigenbasis, ks) -> np.ndarray:
    """Mean per-vertex Euclidean error (mm) of the truncated reconstruction of a mesh in metres.

    .. math:: e(k) = \\frac{1000}{V}\\sum_i \\lVert x_i - (x_k)_i \\rVert_2

    Args:
        vertices: ``(V, 3)`` or ``(B, V, 3)`` in metres (for a batch the mean runs over all meshes).
        basis: eigenbasis with at least ``max(ks)`` vectors.
        ks: iterable of truncation sizes.

    Returns:
        ``(len(ks),)`` float64 errors in millimetres.
    """
    v = to_numpy(vertices, np.float64)
    if v.shape[-1] != 3 or v.ndim not in (2, 3):
        raise ValueError(f"vertices must be (V, 3) or (B, V, 3), got {v.shape}")
    coeffs = graph_fourier(v, basis)
    out = []
    for k in ks:
        if not 1 <= int(k) <= basis.k:
            raise ValueError(f"each k must be in [1, {basis.k}], got {k}")
        rec = basis.eigenvectors[:, : int(k)] @ coeffs[..., : int(k), :]
        out.append(np.linalg.norm(v - rec, axis=-1).mean() * M_TO_MM)
    return np.asarray(out)
