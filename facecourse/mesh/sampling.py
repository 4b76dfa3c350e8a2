"""Mesh down- and up-sampling operators (COMA): quadric-error decimation to an exact vertex count, the 0/1
selection matrix :math:`D` of the kept vertices and the barycentric up-sampling matrix :math:`U`.

* :math:`D \\in \\{0,1\\}^{V_c\\times V_f}`: :math:`D_{ij} = 1` iff coarse vertex :math:`i` is fine vertex :math:`j`.
* :math:`U \\in \\mathbb R_{\\ge 0}^{V_f\\times V_c}`: each fine vertex is projected to its closest point on the
  coarse surface; its row holds the barycentric weights of that point (rows sum to 1).

:mod:`facecourse.nn.hierarchy` chains them into COMA's levels.
"""

from __future__ import annotations

import fast_simplification
import igl
import numpy as np
import scipy.sparse as sp

from facecourse.mesh.geometry import barycentric_coordinates


def decimate(vertices, faces, n_target: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadric-error decimation of a mesh down to ``n_target`` vertices (exactly, whenever reachable).

    ``fast_simplification`` (quadric error metric) runs past the target and records its edge collapses
    ``(i0, i1)`` = "vertex ``i1`` merged into ``i0``". Applying the first ``c`` collapses to the faces
    (each vertex replaced by the root of its merge chain, degenerate and duplicate triangles dropped) leaves
    the vertices still referenced by a triangle; ``c`` is chosen so that exactly ``n_target`` remain (when
    no ``c`` gives that count, e.g. tiny closed components on a coarse level, the closest count is kept).
    The survivors are original vertices, so the down-sampling is an exact selection (COMA's ``D``).

    Args:
        vertices: ``(V, 3)`` float positions.
        faces: ``(F, 3)`` int vertex indices.
        n_target: vertices to keep, ``3 <= n_target < V``.

    Returns:
        ``kept (n_target,)`` (or the closest reachable count) int64 sorted indices of the surviving fine vertices and
        ``coarse_faces (F', 3)`` int64 indexing into ``kept``.
    """
    v = np.ascontiguousarray(np.asarray(vertices, dtype=np.float64))
    f = np.ascontiguousarray(np.asarray(faces, dtype=np.int64))
    n = len(v)
    if not 3 <= n_target < n:
        raise ValueError(f"n_target must be in [3, {n}), got {n_target}")
    if f.ndim != 2 or f.shape[1] != 3 or (f.size and f.max() >= n):
        raise ValueError(f"faces must be (F, 3) indices below V={n}, got shape {f.shape}")
    count = max(1, int(len(f) * n_target / n * 0.5))  # run well past the target: spare collapses
    _, _, collapses = fast_simplification.simplify(v, f, target_count=count, return_collapses=True)
    collapses = np.asarray(collapses, dtype=np.int64)
    c, tried = n - n_target, set()
    while 0 <= c <= len(collapses) and c not in tried:
        tried.add(c)
        kept, coarse_faces = _apply_collapses(f, n, collapses[:c])
        if len(kept) == n_target:
            return kept, coarse_faces
        c += len(kept) - n_target  # too many survivors: collapse more; too few: collapse less
    # The exact count is out of reach when a collapse removes a whole small closed part at once (an eyeball
    # of a coarse level cannot shrink below a tetrahedron): keep the closest count, preferring more vertices.
    results = (_apply_collapses(f, n, collapses[:c]) for c in range(len(collapses) + 1))
    best = min((r for r in results if len(r[1])), key=lambda r: (abs(len(r[0]) - n_target), -len(r[0])),
               default=None)
    if best is None:
        raise RuntimeError(f"could not decimate {n} vertices towards {n_target} (mesh too small or degenerate)")
    return best


def _apply_collapses(faces: np.ndarray, n: int, collapses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Surviving vertices ``(n',)`` and re-indexed faces after merging ``collapses[:, 1]`` into ``[:, 0]``."""
    root = np.arange(n)
    root[collapses[:, 1]] = collapses[:, 0]
    while True:  # follow merge chains to their end
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    g = root[faces]
    g = g[(g[:, 0] != g[:, 1]) & (g[:, 1] != g[:, 2]) & (g[:, 0] != g[:, 2])]
    _, first = np.unique(np.sort(g, axis=1), axis=0, return_index=True)
    g = g[np.sort(first)]
    kept = np.unique(g)
    remap = np.full(n, -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    return kept.astype(np.int64), remap[g]


def downsample_matrix(kept, n_fine: int) -> sp.csr_matrix:
    """0/1 selection matrix :math:`D`, ``(len(kept), n_fine)`` csr float64: ``(D x)_i = x_{kept_i}``."""
    kept = np.asarray(kept, dtype=np.int64)
    if kept.ndim != 1 or (kept.size and (kept.min() < 0 or kept.max() >= n_fine)):
        raise ValueError(f"kept must be a 1D array of indices below n_fine={n_fine}")
    return sp.csr_matrix((np.ones(len(kept)), (np.arange(len(kept)), kept)), shape=(len(kept), n_fine))


def upsample_matrix(fine_vertices, coarse_vertices, coarse_faces) -> sp.csr_matrix:
    """Barycentric up-sampling matrix :math:`U`, ``(V_fine, V_coarse)`` csr float64.

    Row :math:`i` holds the barycentric coordinates :math:`(w_a, w_b, w_c)` of the point of the coarse
    surface closest to fine vertex :math:`i` (libigl ``point_mesh_squared_distance``), so
    :math:`(U y)_i = w_a y_a + w_b y_b + w_c y_c`. Weights are clipped to :math:`\\ge 0` and renormalised
    to sum to 1 (round-off of points on triangle edges).
    """
    p = np.ascontiguousarray(np.asarray(fine_vertices, dtype=np.float64))
    cv = np.ascontiguousarray(np.asarray(coarse_vertices, dtype=np.float64))
    cf = np.ascontiguousarray(np.asarray(coarse_faces, dtype=np.int64))
    if p.ndim != 2 or p.shape[1] != 3 or cv.ndim != 2 or cv.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got {p.shape} and {cv.shape}")
    if cf.ndim != 2 or cf.shape[1] != 3 or len(cf) == 0:
        raise ValueError(f"coarse_faces must be a non-empty (F, 3) array, got {cf.shape}")
    _, tri, closest = igl.point_mesh_squared_distance(p, cv, cf)
    corners = cf[tri]  # (V_fine, 3)
    w = barycentric_coordinates(closest, cv[corners[:, 0]], cv[corners[:, 1]], cv[corners[:, 2]])
    w = np.clip(w, 0.0, None)
    w /= w.sum(axis=1, keepdims=True)
    rows = np.repeat(np.arange(len(p)), 3)
    u = sp.csr_matrix((w.ravel(), (rows, corners.ravel())), shape=(len(p), len(cv)))
    u.sum_duplicates()
    return u
