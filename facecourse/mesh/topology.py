"""Mesh connectivity: unique undirected edges and the vertex adjacency matrix."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def _as_faces(faces) -> np.ndarray:
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces must be an integer array of shape (F, 3), got {faces.dtype} {faces.shape}")
    return faces.astype(np.int64, copy=False)


def edges_from_faces(faces) -> np.ndarray:
    """Unique undirected edges of a triangle mesh.

    Args:
        faces: ``(F, 3)`` integer vertex indices.

    Returns:
        ``(E, 2)`` int64 array, each row ``(i, j)`` with ``i < j``, rows sorted lexicographically.
    """
    faces = _as_faces(faces)
    pairs = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], axis=0)
    pairs.sort(axis=1)
    return np.unique(pairs, axis=0)


def adjacency_matrix(faces, n_vertices: int | None = None) -> sp.csr_matrix:
    """Symmetric 0/1 vertex adjacency matrix :math:`A` of the mesh graph.

    :math:`A_{ij} = 1` when vertices ``i`` and ``j`` share an edge, zero diagonal.

    Args:
        faces: ``(F, 3)`` integer vertex indices.
        n_vertices: number of vertices ``V`` (default ``faces.max() + 1``; pass it when the mesh has
            isolated vertices).

    Returns:
        ``(V, V)`` ``scipy.sparse.csr_matrix`` of float64.
    """
    faces = _as_faces(faces)
    n = int(faces.max()) + 1 if n_vertices is None else int(n_vertices)
    if faces.size and faces.max() >= n:
        raise ValueError(f"faces index vertex {faces.max()} but n_vertices={n}")
    e = edges_from_faces(faces)
    rows = np.concatenate([e[:, 0], e[:, 1]])
    cols = np.concatenate([e[:, 1], e[:, 0]])
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def vertex_degrees(faces, n_vertices: int | None = None) -> np.ndarray:
    """Number of neighbours of each vertex, ``(V,)`` int64 (the diagonal of :math:`D`)."""
    return np.asarray(adjacency_matrix(faces, n_vertices).sum(axis=1)).ravel().astype(np.int64)
