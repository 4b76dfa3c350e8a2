"""Chebyshev polynomials of a (rescaled) graph Laplacian applied to signals.

For :math:`\\tilde L` with spectrum in :math:`[-1, 1]` the Chebyshev polynomials obey the three-term recursion

.. math:: T_0(\\tilde L)x = x,\\quad T_1(\\tilde L)x = \\tilde L x,\\quad
          T_k(\\tilde L)x = 2\\tilde L\\,T_{k-1}(\\tilde L)x - T_{k-2}(\\tilde L)x,

so a degree-:math:`(K-1)` polynomial filter costs :math:`K-1` sparse products and is :math:`(K-1)`-hop
localised. This one recursion serves the spectral filters of chapter 02 and the ChebConv layers of chapter 03.
"""

from __future__ import annotations

import torch


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
