"""COMA's mesh hierarchy: quadric-error decimation, down-sampling and barycentric up-sampling matrices.

Level :math:`l+1` keeps :math:`\\lceil V_l / f \\rceil` of the :math:`V_l` vertices of level :math:`l`
(COMA: :math:`f = 4`, so FLAME's 5023 vertices become 1256, 314, 79 and 20). The kept vertices are chosen
by quadric-error edge collapses (``fast_simplification``); every collapse merges one vertex into another,
so the surviving vertices are a subset of the fine ones and the coarse template takes their positions.

* Down-sampling :math:`D_l \\in \\{0,1\\}^{V_{l+1}\\times V_l}` selects the kept vertices:
  :math:`D_{ij} = 1` iff coarse vertex :math:`i` is fine vertex :math:`j`.
* Up-sampling :math:`U_l \\in \\mathbb R_{\\ge 0}^{V_l\\times V_{l+1}}`: each fine vertex is projected to its
  closest point on the coarse surface; its row holds the barycentric weights of that point in the coarse
  triangle's three corners (rows sum to 1, so constants are preserved).

Hierarchies are cached under ``data_dir()/"cache"`` keyed by a hash of the topology (faces and vertex
count), the level configuration and the template geometry, so a network rebuilt from a checkpoint (which
stores its template) always sees the same matrices.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import fast_simplification
import igl
import numpy as np
import scipy.sparse as sp

from facecourse.data.atomic import atomic_open
from facecourse.data.paths import data_dir
from facecourse.mesh.geometry import barycentric_coordinates
from facecourse.spectral.eigen import topology_hash  # the one topology key of the package

CACHE_VERSION = 1


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


@dataclass
class MeshHierarchy:
    """Meshes and sampling operators of a COMA hierarchy with ``L`` down-sampling steps.

    Attributes:
        vertices: ``L + 1`` template positions ``(V_l, 3)`` (level 0 = input mesh).
        faces: ``L + 1`` face arrays ``(F_l, 3)`` int64.
        down: ``L`` csr matrices :math:`D_l` of shape ``(V_{l+1}, V_l)``.
        up: ``L`` csr matrices :math:`U_l` of shape ``(V_l, V_{l+1})``.
        topology: :func:`topology_hash` of level 0.
        factors: reduction factor of each step.
    """

    vertices: list[np.ndarray]
    faces: list[np.ndarray]
    down: list[sp.csr_matrix]
    up: list[sp.csr_matrix]
    topology: str
    factors: tuple[int, ...]

    @property
    def sizes(self) -> list[int]:
        """Vertex counts ``[V_0, ..., V_L]``."""
        return [len(v) for v in self.vertices]

    @property
    def n_levels(self) -> int:
        """Number of down-sampling steps ``L``."""
        return len(self.down)


def hierarchy_cache_path(vertices, faces, factors=(4, 4, 4, 4)) -> Path:
    """Cache file of a hierarchy: ``data_dir()/"cache"/"hierarchy-<topology>-<template>-f<factors>-v1.npz"``.

    Keyed by :func:`topology_hash`, the level configuration and a hash of the template positions (rounded
    to float32), since the quadric decimation depends on the geometry as well.
    """
    v = np.ascontiguousarray(np.asarray(vertices, dtype=np.float32))
    geometry = hashlib.sha256(v.tobytes()).hexdigest()[:8]
    config = "x".join(str(int(f)) for f in factors)
    topo = topology_hash(faces, len(v))[:16]
    return data_dir() / "cache" / f"hierarchy-{topo}-{geometry}-f{config}-v{CACHE_VERSION}.npz"


def build_hierarchy(vertices, faces, factors=(4, 4, 4, 4), cache: bool = True) -> MeshHierarchy:
    """Build (or load from the disk cache) the COMA hierarchy of a template mesh.

    Args:
        vertices: ``(V, 3)`` template positions (e.g. FLAME's ``v_template``, metres).
        faces: ``(F, 3)`` int faces.
        factors: reduction factor per level; COMA: ``(4, 4, 4, 4)`` giving
            5023 -> 1256 -> 314 -> 79 -> 20 on FLAME (:math:`V_{l+1} = \\lceil V_l / f_l \\rceil`).
        cache: read/write :func:`hierarchy_cache_path` (atomic write).

    Returns:
        :class:`MeshHierarchy`.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must be (V, 3), got {v.shape}")
    factors = tuple(int(x) for x in factors)
    if not factors or min(factors) < 2:
        raise ValueError(f"factors must be a non-empty sequence of integers >= 2, got {factors}")
    topo = topology_hash(f, len(v))
    path = hierarchy_cache_path(v, f, factors)
    if cache and path.is_file():
        return _load(path, topo, factors)
    verts, facs, down, up = [v], [f], [], []
    for factor in factors:
        n_target = -(-len(verts[-1]) // factor)
        if n_target < 3:
            raise ValueError(f"a {len(v)}-vertex mesh is too small for factors {factors}: level {len(down) + 1} "
                             f"would keep {n_target} vertices; use fewer levels")
        kept, coarse_faces = decimate(verts[-1], facs[-1], n_target)
        coarse_vertices = verts[-1][kept]
        down.append(downsample_matrix(kept, len(verts[-1])))
        up.append(upsample_matrix(verts[-1], coarse_vertices, coarse_faces))
        verts.append(coarse_vertices)
        facs.append(coarse_faces)
    h = MeshHierarchy(verts, facs, down, up, topo, factors)
    if cache:
        _save(path, h)
    return h


def _save(path: Path, h: MeshHierarchy) -> None:
    arrays = {"topology": np.array(h.topology), "factors": np.array(h.factors, dtype=np.int64)}
    for i, (v, f) in enumerate(zip(h.vertices, h.faces)):
        arrays[f"vertices_{i}"], arrays[f"faces_{i}"] = v, f
    for i, (d, u) in enumerate(zip(h.down, h.up)):
        arrays[f"kept_{i}"] = d.indices.astype(np.int64)
        uc = u.tocoo()
        arrays[f"up_{i}"] = np.stack([uc.row, uc.col]).astype(np.int64)
        arrays[f"upw_{i}"] = uc.data
    with atomic_open(path) as handle:
        np.savez(handle, **arrays)


def _load(path: Path, topo: str, factors: tuple[int, ...]) -> MeshHierarchy:
    with np.load(path, allow_pickle=False) as z:
        if str(z["topology"]) != topo or tuple(z["factors"].tolist()) != factors:
            raise ValueError(f"hierarchy cache {path} does not match the topology/config; delete it")
        n = len(factors)
        verts = [z[f"vertices_{i}"] for i in range(n + 1)]
        facs = [z[f"faces_{i}"] for i in range(n + 1)]
        down = [downsample_matrix(z[f"kept_{i}"], len(verts[i])) for i in range(n)]
        up = [sp.csr_matrix((z[f"upw_{i}"], tuple(z[f"up_{i}"])), shape=(len(verts[i]), len(verts[i + 1])))
              for i in range(n)]
    return MeshHierarchy(verts, facs, down, up, topo, factors)
