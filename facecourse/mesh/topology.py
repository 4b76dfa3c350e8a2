"""Mesh connectivity: unique undirected edges, the vertex adjacency matrix and the topology hash."""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp

from facecourse.arrays import to_numpy


def as_faces(faces, n_vertices: int | None = None) -> np.ndarray:
    """Validate triangle indices and return them as a contiguous int64 ``(F, 3)`` array.

    Args:
        faces: ``(F, 3)`` integer array-like (numpy or torch); float indices are refused, not truncated.
        n_vertices: when given, every index must lie in ``[0, n_vertices)``; negative indices are always
            refused.

    Raises:
        ValueError: naming what was wrong (shape, dtype, or the index range found).
    """
    faces = to_numpy(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces must be an integer array of shape (F, 3), got {faces.dtype} {faces.shape}")
    faces = np.ascontiguousarray(faces, dtype=np.int64)
    if faces.size and (faces.min() < 0 or (n_vertices is not None and faces.max() >= n_vertices)):
        upper = "" if n_vertices is None else f", {n_vertices}"
        raise ValueError(f"faces index vertices outside [0{upper}): range [{faces.min()}, {faces.max()}]")
    return faces


def edges_from_faces(faces) -> np.ndarray:
    """Unique undirected edges of a triangle mesh.

    Args:
        faces: ``(F, 3)`` integer vertex indices.

    Returns:
        ``(E, 2)`` int64 array, each row ``(i, j)`` with ``i < j``, rows sorted lexicographically.
    """
    faces = as_faces(faces)
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
    faces = as_faces(faces, n_vertices)
    n = int(faces.max()) + 1 if n_vertices is None else int(n_vertices)
    e = edges_from_faces(faces)
    rows = np.concatenate([e[:, 0], e[:, 1]])
    cols = np.concatenate([e[:, 1], e[:, 0]])
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def vertex_degrees(faces, n_vertices: int | None = None) -> np.ndarray:
    """Number of neighbours of each vertex, ``(V,)`` int64 (the diagonal of :math:`D`)."""
    return np.asarray(adjacency_matrix(faces, n_vertices).sum(axis=1)).ravel().astype(np.int64)


def topology_hash(faces, n_vertices: int | None = None) -> str:
    """SHA-256 hex digest of the faces (as contiguous int64) and the vertex count: the cache key of a
    topology."""
    f = as_faces(faces)
    n = int(f.max()) + 1 if n_vertices is None else int(n_vertices)
    h = hashlib.sha256()
    h.update(f"V={n};F={f.shape[0]};".encode())
    h.update(f.tobytes())
    return h.hexdigest()
