"""Graph Laplacians of a triangle mesh (scipy.sparse).

With adjacency :math:`A` and degree matrix :math:`D = \\operatorname{diag}(A\\mathbf 1)`:

* combinatorial :math:`L = D - A`,
* symmetric normalised :math:`L_{sym} = I - D^{-1/2} A D^{-1/2}` (spectrum in :math:`[0, 2]`),
* random walk :math:`L_{rw} = I - D^{-1} A`,
* the Chebyshev-rescaled :math:`\\tilde L = \\frac{2}{\\lambda_{max}} L_{sym} - I` (COMA and PyG's ChebConv
  use :math:`\\lambda_{max} = 2`, so :math:`\\tilde L = -D^{-1/2} A D^{-1/2}`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from facecourse.mesh.topology import adjacency_matrix


def combinatorial_laplacian(faces, n_vertices: int | None = None) -> sp.csr_matrix:
    """:math:`L = D - A`, ``(V, V)`` csr float64."""
    a = adjacency_matrix(faces, n_vertices)
    return (sp.diags(np.asarray(a.sum(axis=1)).ravel()) - a).tocsr()


def _inverse_power(degrees: np.ndarray, power: float) -> np.ndarray:
    out = np.zeros_like(degrees, dtype=np.float64)
    nz = degrees > 0
    out[nz] = degrees[nz] ** (-power)
    return out


def normalized_laplacian(faces, n_vertices: int | None = None) -> sp.csr_matrix:
    """:math:`L_{sym} = I - D^{-1/2} A D^{-1/2}`, ``(V, V)`` csr float64 (isolated vertices: row of I)."""
    a = adjacency_matrix(faces, n_vertices)
    d = _inverse_power(np.asarray(a.sum(axis=1)).ravel(), 0.5)
    n = a.shape[0]
    return (sp.identity(n, format="csr") - sp.diags(d) @ a @ sp.diags(d)).tocsr()


def random_walk_laplacian(faces, n_vertices: int | None = None) -> sp.csr_matrix:
    """:math:`L_{rw} = I - D^{-1} A`, ``(V, V)`` csr float64 (not symmetric)."""
    a = adjacency_matrix(faces, n_vertices)
    d = _inverse_power(np.asarray(a.sum(axis=1)).ravel(), 1.0)
    return (sp.identity(a.shape[0], format="csr") - sp.diags(d) @ a).tocsr()


def scaled_laplacian(faces, n_vertices: int | None = None, lambda_max: float = 2.0) -> sp.csr_matrix:
    """Chebyshev input :math:`\\tilde L = \\frac{2}{\\lambda_{max}} L_{sym} - I`, ``(V, V)`` csr float64.

    Its spectrum lies in :math:`[-1, 1]` when :math:`\\lambda_{max} \\ge \\lambda_{max}(L_{sym})`, which
    :math:`\\lambda_{max} = 2` always guarantees (the COMA / PyG default).
    """
    if lambda_max <= 0:
        raise ValueError(f"lambda_max must be positive, got {lambda_max}")
    lsym = normalized_laplacian(faces, n_vertices)
    return ((2.0 / lambda_max) * lsym - sp.identity(lsym.shape[0], format="csr")).tocsr()


def to_torch_sparse(matrix: sp.spmatrix, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Convert a scipy sparse matrix to a coalesced ``torch.sparse_coo_tensor`` of the same shape."""
    coo = sp.coo_matrix(matrix)
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data).to(dtype)
    return torch.sparse_coo_tensor(indices, values, coo.shape, device=device,
                                   check_invariants=False).coalesce()
