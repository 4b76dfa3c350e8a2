"""COMA's mesh hierarchy: levels of quadric-error decimation with their down- and up-sampling matrices
(the operators themselves are :mod:`facecourse.mesh.sampling`), cached on disk.

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

import numpy as np
import scipy.sparse as sp

from facecourse.data.atomic import atomic_open
from facecourse.data.paths import data_dir
from facecourse.mesh.sampling import decimate, downsample_matrix, upsample_matrix
from facecourse.mesh.topology import topology_hash  # the one topology key of the package

CACHE_VERSION = 1


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
