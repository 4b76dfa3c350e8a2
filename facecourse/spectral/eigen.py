"""The low end of a Laplacian's spectrum: eigenpairs by shift-invert Lanczos, cached per topology.

For a symmetric positive semi-definite :math:`L` (optionally with a diagonal mass matrix :math:`M`) we solve

.. math:: L u_i = \\lambda_i M u_i,\\qquad 0 = \\lambda_0 \\le \\lambda_1 \\le \\dots \\le \\lambda_{k-1},
          \\qquad U^\\top M U = I,

with :math:`M = I` for graph Laplacians. The smallest eigenvalues are the hard ones for Lanczos, so
``scipy.sparse.linalg.eigsh`` runs in shift-invert mode around :math:`\\sigma` slightly below 0: it iterates
with :math:`(L - \\sigma M)^{-1}`, whose largest eigenvalues :math:`1/(\\lambda_i - \\sigma)` belong to the
smallest :math:`\\lambda_i` (and :math:`L - \\sigma M` is positive definite, so the factorisation is safe).

Graph Laplacians depend only on the faces, so their eigenbasis is cached per topology (in memory and on disk
under ``data_dir()/"cache"/"spectral"``, keyed by a hash of the faces); the cotangent basis also depends on the
vertex positions, which then enter the key too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from facecourse.arrays import to_numpy
from facecourse.data.atomic import atomic_path
from facecourse.data.paths import data_dir
from facecourse.mesh.topology import adjacency_matrix, as_faces, topology_hash
from facecourse.spectral.laplacian import cotangent_laplacian, graph_laplacian, mass_matrix, mass_vector

BASIS_KINDS = ("combinatorial", "normalized", "cotangent")


@dataclass(frozen=True)
class Eigenbasis:
    """The ``k`` smallest eigenpairs of a mesh Laplacian.

    Attributes:
        eigenvalues: ``(k,)`` ascending, float64 (units: 1/m² for the cotangent kind with a mass matrix in
            m², unitless for graph Laplacians).
        eigenvectors: ``(V, k)`` float64, :math:`U^\\top M U = I`; each column's largest-magnitude entry is
            positive (a fixed sign, so results are reproducible).
        mass: ``(V,)`` diagonal of :math:`M` (vertex areas), or ``None`` for :math:`M = I`.
        kind: which Laplacian (``"combinatorial"``, ``"normalized"`` or ``"cotangent"``).
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    mass: np.ndarray | None
    kind: str

    @property
    def k(self) -> int:
        """Number of eigenpairs."""
        return len(self.eigenvalues)

    def truncated(self, k: int) -> "Eigenbasis":
        """The first ``k`` eigenpairs (views, no copy)."""
        if not 1 <= k <= self.k:
            raise ValueError(f"k must be in [1, {self.k}], got {k}")
        return Eigenbasis(self.eigenvalues[:k], self.eigenvectors[:, :k], self.mass, self.kind)


def _fix_signs(vectors: np.ndarray) -> np.ndarray:
    idx = np.argmax(np.abs(vectors), axis=0)
    signs = np.sign(vectors[idx, np.arange(vectors.shape[1])])
    signs[signs == 0] = 1.0
    return vectors * signs


def start_vector(n: int) -> np.ndarray:
    """The fixed Lanczos start vector ``(n,)``: a standard-normal draw of a fixed seed (never orthogonal to an
    eigenvector in practice), so ARPACK's result does not depend on what ran before in the process (its default
    start vector comes from a random state that earlier calls advance)."""
    return np.random.default_rng(0x5EED).standard_normal(n)


#: Extra eigenpairs computed beyond ``k`` and dropped: the end of a degenerate cluster (a sphere's 2l+1 equal
#: eigenvalues) at the cut is then found whole instead of losing one of its members.
EXTRA_PAIRS = 8
#: Largest residual :math:`\\lVert L u - \\lambda M u \\rVert / (\\lVert L \\rVert_\\infty \\lVert u \\rVert_M)` accepted.
RESIDUAL_TOLERANCE = 1e-6


def eigen_residuals(laplacian, values: np.ndarray, vectors: np.ndarray, mass=None) -> np.ndarray:
    """Relative residuals ``(k,)`` of eigenpairs: :math:`\\lVert L u_i - \\lambda_i M u_i \\rVert_2 /
    (\\lVert L \\rVert_\\infty \\lVert u_i \\rVert_2)` (0 for exact pairs)."""
    lap = sp.csr_matrix(laplacian, dtype=np.float64)
    m = mass_vector(mass, lap.shape[0])
    mu = vectors if m is None else vectors * m[:, None]
    scale = max(float(abs(lap).sum(axis=1).max()), np.finfo(float).tiny)
    return np.linalg.norm(lap @ vectors - mu * values[None], axis=0) / (scale * np.linalg.norm(vectors, axis=0))


def smallest_eigenpairs(laplacian: sp.spmatrix, k: int, mass=None,
                        sigma: float | None = None, tol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest eigenpairs of :math:`L u = \\lambda M u` by shift-invert ``eigsh``.

    Deterministic and complete: Lanczos starts from :func:`start_vector` (the same result whatever ran before),
    :data:`EXTRA_PAIRS` more pairs are computed and dropped (so a degenerate cluster at the cut is not cut
    short), and every returned pair's :func:`eigen_residuals` must be below :data:`RESIDUAL_TOLERANCE`.

    Args:
        laplacian: ``(V, V)`` symmetric positive semi-definite sparse matrix.
        k: number of eigenpairs, ``1 <= k < V``.
        mass: optional diagonal mass matrix, ``(V,)`` vector or sparse ``(V, V)`` (positive entries).
        sigma: shift; default :math:`-10^{-5}` times the mean diagonal of :math:`L` over that of :math:`M`
            (slightly below 0 on the scale of the spectrum).
        tol: Lanczos tolerance (0 = machine precision).

    Returns:
        ``(eigenvalues (k,), eigenvectors (V, k))``, ascending, :math:`M`-orthonormal, fixed signs.

    Raises:
        RuntimeError: a pair's residual is above the tolerance (names the largest).
    """
    lap = sp.csc_matrix(laplacian, dtype=np.float64)
    n = lap.shape[0]
    if lap.shape != (n, n):
        raise ValueError(f"laplacian must be square, got {lap.shape}")
    if not 1 <= k < n:
        raise ValueError(f"k must satisfy 1 <= k < V={n}, got {k}")
    m = mass_vector(mass, n)
    if sigma is None:
        scale = lap.diagonal().mean() / (1.0 if m is None else m.mean())
        sigma = -1e-5 * scale
    if sigma >= 0:
        raise ValueError(f"sigma must be slightly below 0 (L - sigma M positive definite), got {sigma}")
    mm = None if m is None else sp.diags(m).tocsc()
    k_solve = min(k + EXTRA_PAIRS, n - 1)
    values, vectors = spla.eigsh(lap, k=k_solve, M=mm, sigma=sigma, which="LM", tol=tol, v0=start_vector(n))
    order = np.argsort(values)[:k]
    values, vectors = values[order], vectors[:, order]
    residuals = eigen_residuals(lap, values, vectors, m)
    if residuals.max() > RESIDUAL_TOLERANCE:
        worst = int(residuals.argmax())
        raise RuntimeError(f"eigsh returned an inaccurate eigenpair: residual {residuals[worst]:.2e} of pair {worst} "
                           f"(lambda = {values[worst]:.6g}) exceeds {RESIDUAL_TOLERANCE:g}")
    return values, _fix_signs(vectors)


def full_eigenpairs(laplacian, mass=None) -> tuple[np.ndarray, np.ndarray]:
    """All eigenpairs by a dense ``scipy.linalg.eigh`` (:math:`O(V^3)` time, :math:`O(V^2)` memory): the
    reference "exact" spectral decomposition. Same conventions as :func:`smallest_eigenpairs`."""
    dense = laplacian.toarray() if sp.issparse(laplacian) else np.asarray(laplacian, dtype=np.float64)
    m = mass_vector(mass, dense.shape[0])
    values, vectors = scipy.linalg.eigh(dense, None if m is None else np.diag(m))
    return values, _fix_signs(vectors)


def largest_eigenvalue(laplacian: sp.spmatrix, mass=None, tol: float = 1e-4) -> float:
    """:math:`\\lambda_{max}` of :math:`L u = \\lambda M u` by Lanczos (``which="LA"``), float."""
    lap = sp.csr_matrix(laplacian, dtype=np.float64)
    m = mass_vector(mass, lap.shape[0])
    if m is None:
        value = spla.eigsh(lap, k=1, which="LA", tol=tol, return_eigenvectors=False, v0=start_vector(lap.shape[0]))
    else:  # M^{-1/2} L M^{-1/2} has the same spectrum and is symmetric
        s = sp.diags(1.0 / np.sqrt(m))
        value = spla.eigsh(s @ lap @ s, k=1, which="LA", tol=tol, return_eigenvectors=False,
                           v0=start_vector(lap.shape[0]))
    return float(value[0])


def laplacian_of(kind: str, faces, vertices=None, n_vertices: int | None = None,
                 mass_kind: str = "voronoi") -> tuple[sp.csr_matrix, np.ndarray | None]:
    """The Laplacian named ``kind`` and its mass vector (``None`` for graph Laplacians).

    Args:
        kind: ``"combinatorial"``, ``"normalized"`` or ``"cotangent"`` (needs ``vertices``).
        faces: ``(F, 3)`` int; vertices: ``(V, 3)`` positions; mass_kind: see
            :func:`~facecourse.spectral.laplacian.mass_matrix`.

    Returns:
        ``(L (V, V) csr, mass (V,) or None)``.
    """
    if kind not in BASIS_KINDS:
        raise ValueError(f"kind must be one of {BASIS_KINDS}, got {kind!r}")
    if kind == "cotangent":
        if vertices is None:
            raise ValueError("kind='cotangent' needs the vertices (V, 3)")
        return cotangent_laplacian(vertices, faces), mass_matrix(vertices, faces, mass_kind).diagonal()
    return graph_laplacian(adjacency_matrix(faces, n_vertices), kind), None


_MEMORY: dict[str, Eigenbasis] = {}


def _frozen(basis: Eigenbasis) -> Eigenbasis:
    """Make the arrays of a cached basis read-only, so no caller can corrupt the cache in place."""
    for a in (basis.eigenvalues, basis.eigenvectors, basis.mass):
        if a is not None:
            a.setflags(write=False)
    return basis


def _cache_key(kind: str, faces, vertices, n_vertices, mass_kind: str) -> str:
    key = f"{kind}_{topology_hash(faces, n_vertices)[:24]}"
    if kind == "cotangent":
        v = np.ascontiguousarray(to_numpy(vertices, np.float64))
        key += f"_{mass_kind}_{hashlib.sha256(v.tobytes()).hexdigest()[:16]}"
    return key


def cache_dir() -> Path:
    """Folder of the on-disk eigenbasis cache: ``data_dir()/"cache"/"spectral"``."""
    return data_dir() / "cache" / "spectral"


def _load_cached(key: str, k: int, kind: str) -> Eigenbasis | None:
    """The stored basis with the smallest ``k' >= k`` for ``key``; unreadable files are skipped (recomputed)."""
    stored = sorted(cache_dir().glob(f"{key}_k*.npz"), key=lambda p: int(p.stem.rsplit("_k", 1)[1]))
    for path in stored:
        if int(path.stem.rsplit("_k", 1)[1]) < k:
            continue
        try:
            with np.load(path, allow_pickle=False) as z:
                values, vectors, mass = z["eigenvalues"], z["eigenvectors"], z["mass"]
        except (OSError, ValueError, KeyError, EOFError):
            continue
        if values.ndim != 1 or vectors.ndim != 2 or vectors.shape[1] != len(values) or len(values) < k:
            continue
        return _frozen(Eigenbasis(values, vectors, mass if mass.size else None, kind))
    return None


def eigenbasis(faces, k: int, kind: str = "normalized", vertices=None, n_vertices: int | None = None,
               mass_kind: str = "voronoi", cache: bool = True, method: str = "auto") -> Eigenbasis:
    """The ``k`` smallest eigenpairs of a mesh Laplacian, computed once per topology.

    Looks in memory, then on disk (``cache_dir()/<kind>_<hash>_k<k>.npz``, any stored ``k' >= k`` serves),
    else runs :func:`smallest_eigenpairs` and stores the result (written atomically).

    Args:
        faces: ``(F, 3)`` int. k: number of eigenpairs (``< V``).
        kind: ``"normalized"`` (default, :math:`L_{sym}`), ``"combinatorial"`` or ``"cotangent"`` (generalised
            problem with the lumped mass matrix; needs ``vertices`` ``(V, 3)``).
        cache: ``False`` computes afresh and stores nothing.
        method: ``"eigsh"`` (:func:`smallest_eigenpairs`), ``"dense"`` (:func:`full_eigenpairs`, then the first
            ``k``) or ``"auto"``: dense when ``k > V / 5``, where Lanczos needs about ``2k`` basis vectors and a
            dense solve is faster.

    Returns:
        :class:`Eigenbasis` with exactly ``k`` pairs (read-only arrays when cached: copy before editing).
    """
    if kind not in BASIS_KINDS:
        raise ValueError(f"kind must be one of {BASIS_KINDS}, got {kind!r}")
    if method not in ("auto", "eigsh", "dense"):
        raise ValueError(f"method must be 'auto', 'eigsh' or 'dense', got {method!r}")
    if kind == "cotangent" and vertices is None:
        raise ValueError("kind='cotangent' needs the vertices (V, 3)")
    key = _cache_key(kind, faces, vertices, n_vertices, mass_kind)
    if cache and key in _MEMORY and _MEMORY[key].k >= k:
        return _MEMORY[key].truncated(k)
    if cache:
        basis = _load_cached(key, k, kind)
        if basis is not None:
            _MEMORY[key] = basis
            return basis.truncated(k)
    lap, mass = laplacian_of(kind, faces, vertices, n_vertices, mass_kind)
    if not 1 <= k < lap.shape[0]:
        raise ValueError(f"k must satisfy 1 <= k < V={lap.shape[0]}, got {k}")
    if method == "dense" or (method == "auto" and k > lap.shape[0] / 5):
        values, vectors = full_eigenpairs(lap, mass)
        values, vectors = values[:k].copy(), vectors[:, :k].copy()
    else:
        values, vectors = smallest_eigenpairs(lap, k, mass)
    basis = Eigenbasis(values, vectors, mass, kind)
    if cache:
        _MEMORY[key] = _frozen(basis)
        with atomic_path(cache_dir() / f"{key}_k{k}.npz") as tmp:
            np.savez(tmp, eigenvalues=values, eigenvectors=vectors,
                     mass=np.zeros(0) if mass is None else mass)
    return basis
