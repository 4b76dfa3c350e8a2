"""Laplacians of a triangle mesh (scipy.sparse), graph and geometric.

Graph Laplacians, from the adjacency :math:`A` and degree matrix :math:`D = \\operatorname{diag}(A\\mathbf 1)`:

* combinatorial :math:`L = D - A`, so :math:`(Lx)_i = \\sum_{j \\sim i} (x_i - x_j)` and
  :math:`x^\\top L x = \\sum_{(i,j) \\in E} (x_i - x_j)^2` (the Dirichlet energy of the graph),
* symmetric normalised :math:`L_{sym} = I - D^{-1/2} A D^{-1/2}` (spectrum in :math:`[0, 2]`),
* random walk :math:`L_{rw} = I - D^{-1} A` (same spectrum as :math:`L_{sym}`, not symmetric),
* the Chebyshev-rescaled :math:`\\tilde L = \\frac{2}{\\lambda_{max}} L - I` (COMA and PyG's ChebConv
  use :math:`L_{sym}` and :math:`\\lambda_{max} = 2`, so :math:`\\tilde L = -D^{-1/2} A D^{-1/2}`).

The geometric (cotangent) Laplacian weighs each edge by the angles opposite it,

.. math:: L^{cot}_{ij} = -\\tfrac12 (\\cot\\alpha_{ij} + \\cot\\beta_{ij}),\\qquad
          L^{cot}_{ii} = -\\sum_{j \\ne i} L^{cot}_{ij},

and with the lumped mass matrix :math:`M = \\operatorname{diag}(\\text{vertex areas})` the operator
:math:`M^{-1} L^{cot}` approximates :math:`-\\Delta` on the surface. Sign convention: all Laplacians here are
positive semi-definite; libigl's ``igl.cotmatrix`` is the negative of :func:`cotangent_laplacian`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from facecourse.arrays import to_numpy
from facecourse.mesh.topology import adjacency_matrix, as_faces

GRAPH_KINDS = ("combinatorial", "normalized", "random_walk")
MASS_KINDS = ("voronoi", "barycentric")


def _check_lambda_max(lambda_max: float) -> None:
    """Raise unless ``lambda_max`` (the upper end of a spectrum, for the Chebyshev rescaling) is positive."""
    if not lambda_max > 0:
        raise ValueError(f"lambda_max must be positive, got {lambda_max}")


def _inverse_power(degrees: np.ndarray, power: float) -> np.ndarray:
    out = np.zeros_like(degrees, dtype=np.float64)
    nz = degrees > 0
    out[nz] = degrees[nz] ** (-power)
    return out


def graph_laplacian(adjacency: sp.spmatrix, kind: str = "combinatorial") -> sp.csr_matrix:
    """Laplacian of any undirected graph given by its (weighted) symmetric adjacency matrix.

    Args:
        adjacency: ``(V, V)`` symmetric, non-negative, zero diagonal.
        kind: ``"combinatorial"`` (:math:`D - A`), ``"normalized"`` (:math:`I - D^{-1/2}AD^{-1/2}`) or
            ``"random_walk"`` (:math:`I - D^{-1}A`). Isolated vertices get a zero row (combinatorial) or a
            row of :math:`I` (normalised kinds).

    Returns:
        ``(V, V)`` csr float64.
    """
    if kind not in GRAPH_KINDS:
        raise ValueError(f"kind must be one of {GRAPH_KINDS}, got {kind!r}")
    a = sp.csr_matrix(adjacency, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"adjacency must be a square (V, V) matrix, got shape {a.shape}")
    deg = np.asarray(a.sum(axis=1)).ravel()
    n = a.shape[0]
    if kind == "combinatorial":
        return (sp.diags(deg) - a).tocsr()
    if kind == "normalized":
        d = _inverse_power(deg, 0.5)
        return (sp.identity(n, format="csr") - sp.diags(d) @ a @ sp.diags(d)).tocsr()
    return (sp.identity(n, format="csr") - sp.diags(_inverse_power(deg, 1.0)) @ a).tocsr()


def combinatorial_laplacian(faces, n_vertices: int | None = None) -> sp.csr_matrix:
    """:math:`L = D - A` of the mesh graph, ``(V, V)`` csr float64 (rows sum to zero)."""
    return graph_laplacian(adjacency_matrix(faces, n_vertices), "combinatorial")


def normalized_laplacian(faces, n_vertices: int | None = None) -> sp.csr_matrix:
    """:math:`L_{sym} = I - D^{-1/2} A D^{-1/2}`, ``(V, V)`` csr float64 (isolated vertices: row of I)."""
    return graph_laplacian(adjacency_matrix(faces, n_vertices), "normalized")


def random_walk_laplacian(faces, n_vertices: int | None = None) -> sp.csr_matrix:
    """:math:`L_{rw} = I - D^{-1} A`, ``(V, V)`` csr float64 (not symmetric)."""
    return graph_laplacian(adjacency_matrix(faces, n_vertices), "random_walk")


def rescale_laplacian(laplacian: sp.spmatrix, lambda_max: float) -> sp.csr_matrix:
    """:math:`\\tilde L = \\frac{2}{\\lambda_{max}} L - I`: maps the spectrum :math:`[0, \\lambda_{max}]` to
    :math:`[-1, 1]`, the interval of the Chebyshev polynomials. ``(V, V)`` csr float64."""
    _check_lambda_max(lambda_max)
    lap = sp.csr_matrix(laplacian, dtype=np.float64)
    return ((2.0 / lambda_max) * lap - sp.identity(lap.shape[0], format="csr")).tocsr()


def scaled_laplacian(faces, n_vertices: int | None = None, lambda_max: float = 2.0) -> sp.csr_matrix:
    """Chebyshev input :math:`\\tilde L = \\frac{2}{\\lambda_{max}} L_{sym} - I`, ``(V, V)`` csr float64.

    Its spectrum lies in :math:`[-1, 1]` when :math:`\\lambda_{max} \\ge \\lambda_{max}(L_{sym})`, which
    :math:`\\lambda_{max} = 2` always guarantees (the COMA / PyG default).
    """
    return rescale_laplacian(normalized_laplacian(faces, n_vertices), lambda_max)  # checks lambda_max


def mass_vector(mass, n: int) -> np.ndarray | None:
    """The diagonal of a lumped mass matrix, checked: ``(V,)`` float64 with positive entries.

    Args:
        mass: ``None`` (:math:`M = I`), a ``(V,)`` vector or a sparse diagonal ``(V, V)`` matrix (vertex areas,
            e.g. from :func:`mass_matrix`, m² for FLAME).
        n: the number of vertices ``V`` it must have.

    Returns:
        ``(V,)`` float64, or ``None`` when ``mass`` is ``None``.
    """
    if mass is None:
        return None
    m = mass.diagonal() if sp.issparse(mass) else mass
    m = np.asarray(m, dtype=np.float64).ravel()
    if m.shape != (n,) or not (m > 0).all():
        raise ValueError(f"mass must be a positive (V,) vector or diagonal matrix with V={n}, got shape {m.shape}")
    return m


def mass_normalized(laplacian: sp.spmatrix, mass=None) -> sp.csr_matrix:
    """The operator :math:`M^{-1} L` (:math:`L` itself when ``mass`` is ``None``), ``(V, V)`` csr float64.

    Its eigenpairs are those of the generalised problem :math:`L u = \\lambda M u`; with the cotangent
    Laplacian it approximates :math:`-\\Delta` on the surface (1/m² for FLAME).

    Args:
        laplacian: ``(V, V)`` sparse :math:`L`; mass: see :func:`mass_vector`.
    """
    lap = sp.csr_matrix(laplacian, dtype=np.float64)
    m = mass_vector(mass, lap.shape[0])
    return lap if m is None else (sp.diags(1.0 / m) @ lap).tocsr()


def _as_vertices(vertices, faces: np.ndarray) -> np.ndarray:
    v = to_numpy(vertices, np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {v.shape}")
    if faces.size and faces.max() >= len(v):
        raise ValueError(f"faces index vertex {faces.max()} but vertices has only {len(v)} rows")
    if not np.isfinite(v).all():
        raise ValueError("vertices contain non-finite values")
    return v


#: A face whose doubled area is below this fraction of the product of two of its edge lengths (a sine of the
#: corner angle under 1e-12) is degenerate: its cotangents would be ~1e300.
DEGENERATE_SINE = 1e-12


def _corner_cotangents(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``(F, 3)``: cotangent of the angle at corner ``c`` of each face, for ``c = 0, 1, 2``.

    Raises:
        ValueError: naming the first degenerate face (zero area: collinear or repeated corners) and how many
            there are.
    """
    cot = np.empty(f.shape, dtype=np.float64)
    for c in range(3):
        p, a, b = v[f[:, c]], v[f[:, (c + 1) % 3]], v[f[:, (c + 2) % 3]]
        e1, e2 = a - p, b - p
        cross = np.linalg.norm(np.cross(e1, e2), axis=1)
        degenerate = cross <= DEGENERATE_SINE * np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1)
        degenerate |= cross == 0
        if degenerate.any():
            first = int(np.flatnonzero(degenerate)[0])
            raise ValueError(f"faces hold {int(degenerate.sum())} degenerate triangle(s) (zero area), the first is "
                             f"face {first} = vertices {f[first].tolist()}: the cotangent Laplacian is undefined there "
                             "(remove or repair those faces)")
        cot[:, c] = np.einsum("ij,ij->i", e1, e2) / cross
    return cot


def cotangent_laplacian(vertices, faces) -> sp.csr_matrix:
    """Positive semi-definite cotangent Laplacian (stiffness matrix) of a triangle mesh.

    Each corner angle :math:`\\theta` of a face contributes :math:`\\tfrac12\\cot\\theta` to the weight
    :math:`w_{ij}` of the opposite edge :math:`(i, j)`; :math:`L_{ij} = -w_{ij}`, :math:`L_{ii} = \\sum_j w_{ij}`,
    so :math:`x^\\top L x = \\sum_{(i,j)} w_{ij}(x_i - x_j)^2` is the Dirichlet energy of the piecewise linear
    function :math:`x`. Scale invariant (cotangents have no unit). Equals ``-igl.cotmatrix(V, F)``.

    Args:
        vertices: ``(V, 3)`` positions (numpy or torch), any unit.
        faces: ``(F, 3)`` int vertex indices.

    Returns:
        ``(V, V)`` symmetric csr float64 whose rows sum to zero.
    """
    f = as_faces(faces)
    v = _as_vertices(vertices, f)
    half_cot = 0.5 * _corner_cotangents(v, f)
    rows = np.concatenate([f[:, (c + 1) % 3] for c in range(3)])
    cols = np.concatenate([f[:, (c + 2) % 3] for c in range(3)])
    w = np.concatenate([half_cot[:, c] for c in range(3)])
    n = len(v)
    weights = sp.coo_matrix((w, (rows, cols)), shape=(n, n)).tocsr()
    weights = weights + weights.T
    return (sp.diags(np.asarray(weights.sum(axis=1)).ravel()) - weights).tocsr()


def mass_matrix(vertices, faces, kind: str = "voronoi") -> sp.csr_matrix:
    """Lumped (diagonal) mass matrix: the surface area attributed to each vertex.

    ``"barycentric"``: a third of each adjacent triangle's area. ``"voronoi"``: the mixed Voronoi area of
    Meyer et al. 2003 (the Voronoi cell inside non-obtuse triangles,
    :math:`\\tfrac18\\sum(\\lVert e\\rVert^2 \\cot\\theta)`; for an obtuse triangle half its area to the obtuse
    corner and a quarter to each other corner), as ``igl.massmatrix`` computes it. Both sum to the total
    surface area.

    Args:
        vertices: ``(V, 3)`` positions; faces: ``(F, 3)`` int; kind: ``"voronoi"`` or ``"barycentric"``.

    Returns:
        ``(V, V)`` diagonal csr float64 in squared vertex units (m² for FLAME).
    """
    if kind not in MASS_KINDS:
        raise ValueError(f"kind must be one of {MASS_KINDS}, got {kind!r}")
    f = as_faces(faces)
    v = _as_vertices(vertices, f)
    area = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    if kind == "barycentric":
        corner = np.repeat(area[:, None] / 3.0, 3, axis=1)
    else:
        cot = _corner_cotangents(v, f)
        # squared length of the edge opposite each corner
        sq = np.stack([np.sum((v[f[:, (c + 1) % 3]] - v[f[:, (c + 2) % 3]]) ** 2, axis=1) for c in range(3)], 1)
        corner = np.empty_like(cot)
        for c in range(3):
            # Voronoi part of corner c: the two edges at c, each weighted by the cotangent opposite it
            c1, c2 = (c + 1) % 3, (c + 2) % 3
            corner[:, c] = (sq[:, c1] * cot[:, c1] + sq[:, c2] * cot[:, c2]) / 8.0
        obtuse = cot < 0  # (F, 3): the corner with a negative cotangent is obtuse
        any_obtuse = obtuse.any(axis=1)
        corner[any_obtuse] = np.where(obtuse[any_obtuse], 0.5, 0.25) * area[any_obtuse, None]
    diag = np.bincount(f.ravel(), weights=corner.ravel(), minlength=len(v))
    return sp.diags(diag).tocsr()


def to_torch_sparse(matrix: sp.spmatrix, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Convert a scipy sparse matrix to a coalesced ``torch.sparse_coo_tensor`` of the same shape."""
    coo = sp.coo_matrix(matrix)
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data).to(dtype)
    return torch.sparse_coo_tensor(indices, values, coo.shape, device=device,
                                   check_invariants=False).coalesce()
