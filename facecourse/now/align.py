r"""Rigid alignment of a prediction to a scan: similarity Procrustes on landmarks, then a scan-to-mesh refinement.

A similarity transform maps :math:`p \mapsto s R p + t` (scale :math:`s > 0`, rotation :math:`R \in SO(3)`,
translation :math:`t`). NoW aligns the *prediction* to the scan, never the other way round, so errors stay
in scan millimetres.

1. **Procrustes (Umeyama).** For landmark pairs :math:`(p_i, q_i)` minimise
   :math:`\sum_i \lVert s R p_i + t - q_i\rVert^2`. With centred points, :math:`\Sigma = \tfrac1n \sum_i
   \bar q_i \bar p_i^\top = U D V^\top`, :math:`S = \operatorname{diag}(1, 1, \det U V^\top)`:
   :math:`R = U S V^\top`, :math:`s = \operatorname{tr}(DS) / \sigma_p^2`, :math:`t = \mu_q - s R \mu_p`.
   (The official script allows a reflection, ``reflection='best'``; a mirror image is not a pose, so here
   :math:`\det R = +1` always. The two agree whenever the best fit is a rotation, as for any sane prediction.)
2. **Refinement.** Minimise the scan-to-mesh energy :math:`E(s, R, t) = \tfrac1N \sum_i d(x_i, sRM + t)^2`
   over the cropped scan vertices :math:`x_i` (the official tool minimises the same energy with chumpy).
   Each iteration finds the closest points :math:`p_i` on the current surface and the directions
   :math:`n_i = (x_i - p_i)/\lVert x_i - p_i\rVert` (the face normal inside a face; unambiguous on edges and
   vertices, where it is the gradient of the distance) and takes a Gauss-Newton step of the point-to-plane energy
   :math:`\sum_i (n_i^\top(\Delta T(p_i) - x_i))^2`, damped (Levenberg-Marquardt) until the true
   :math:`E` drops; failing that, the point-to-point (ICP) step :math:`\Delta T = \text{Procrustes}(p_i
   \to x_i)`, which never raises it. So :math:`E` decreases monotonically.
   The metrical protocol fixes :math:`s`.

Closest points come from one AABB tree on the untransformed prediction: :math:`d(x, sRM+t) =
s\, d(T^{-1}x, M)`, so the tree is never rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from facecourse.mesh import face_normals, similarity_procrustes
from facecourse.now.distance import SurfaceDistance


@dataclass(frozen=True)
class Similarity:
    """:math:`p \\mapsto s R p + t`: ``scale`` float, ``rotation (3, 3)``, ``translation (3,)``."""

    scale: float = 1.0
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def apply(self, points) -> np.ndarray:
        """Transform ``points (N, 3)`` (or ``(3,)``)."""
        p = np.asarray(points, dtype=np.float64)
        return self.scale * p @ self.rotation.T + self.translation

    def inverse(self) -> "Similarity":
        """The inverse map :math:`x \\mapsto s^{-1} R^\\top (x - t)`."""
        rt = self.rotation.T
        return Similarity(1.0 / self.scale, rt, -(rt @ self.translation) / self.scale)

    def compose(self, inner: "Similarity") -> "Similarity":
        """``self ∘ inner``: apply ``inner`` first."""
        return Similarity(self.scale * inner.scale, self.rotation @ inner.rotation,
                          self.scale * self.rotation @ inner.translation + self.translation)

    def matrix(self) -> np.ndarray:
        """Homogeneous ``(4, 4)`` matrix."""
        m = np.eye(4)
        m[:3, :3] = self.scale * self.rotation
        m[:3, 3] = self.translation
        return m


def procrustes(source, target, with_scale: bool = True, scale: float = 1.0) -> Similarity:
    """Least-squares similarity (Umeyama) taking ``source (N, 3)`` onto ``target (N, 3)``, no reflection.

    Args:
        source: points to move (e.g. predicted landmarks).
        target: points to reach (e.g. scan landmarks), same order.
        with_scale: estimate the scale; if False it is fixed to ``scale``.
        scale: the fixed scale when ``with_scale`` is False.

    Returns:
        :class:`Similarity` ``T`` minimising :math:`\\sum_i \\lVert T(p_i) - q_i\\rVert^2`.
    """
    p = np.asarray(source, dtype=np.float64)
    q = np.asarray(target, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 2 or p.shape[1] != 3 or len(p) < 3:
        raise ValueError(f"source and target must both be (N >= 3, 3), got {p.shape} and {q.shape}")
    if with_scale and not (p - p.mean(axis=0)).any():
        raise ValueError("source points are all identical; cannot estimate a scale")
    s, rot, t = similarity_procrustes(torch.from_numpy(p)[None], torch.from_numpy(q)[None],
                                      None if with_scale else scale)
    return Similarity(float(s[0]), rot[0].numpy(), t[0].numpy())


@dataclass(frozen=True)
class Refinement:
    """Result of :func:`refine_alignment`: the refined ``transform`` (prediction -> scan), the energy
    ``history`` (mean squared distance, first entry = before refinement; unit of the scan squared) and
    the number of ``iterations``."""

    transform: Similarity
    history: list
    iterations: int


def _point_to_plane_system(p, n, x, with_scale: bool):
    """Normal equations of :math:`\\sum_i (n_i^\\top (\\Delta T(p_i) - x_i))^2` linearised at the identity,
    with :math:`\\Delta T(p) = g + e^{\\sigma} R_\\omega (p - g) + \\tau` about the scan centroid :math:`g`.

    Returns ``(JᵀJ, Jᵀr, g)`` for the unknowns ``(σ, ω, τ)`` (``σ`` dropped when the scale is fixed)."""
    g = x.mean(axis=0)
    pg = p - g
    cols = [np.cross(pg, n), n]
    if with_scale:
        cols.insert(0, (n * pg).sum(axis=1, keepdims=True))
    jac = np.concatenate(cols, axis=1)
    r0 = (n * (p - x)).sum(axis=1)
    return jac.T @ jac, jac.T @ r0, g


#: Largest change of the log-scale in one refinement step (a factor of 2): a Gauss-Newton step far from the
#: solution (e.g. landmarks in another unit than the mesh) cannot overflow ``exp`` or jump to a degenerate scale.
MAX_LOG_SCALE_STEP = float(np.log(2.0))


def _step_from_params(theta, g, with_scale: bool) -> Similarity:
    sigma, rest = (theta[0], theta[1:]) if with_scale else (0.0, theta)
    rot = Rotation.from_rotvec(rest[:3]).as_matrix()
    s = float(np.exp(np.clip(sigma, -MAX_LOG_SCALE_STEP, MAX_LOG_SCALE_STEP)))
    return Similarity(s, rot, g - s * rot @ g + rest[3:6])


def refine_alignment(scan_points, vertices, faces, init: Similarity | None = None, with_scale: bool = True,
                     max_iter: int = 50, tol: float = 1e-7, max_points: int | None = None,
                     surface: SurfaceDistance | None = None, seed: int = 0) -> Refinement:
    """Refine a similarity so the transformed mesh fits the scan points (scan-to-mesh least squares).

    Args:
        scan_points: ``(N, 3)`` cropped scan vertices (mm).
        vertices: ``(V, 3)`` prediction vertices in the prediction's own frame.
        faces: ``(F, 3)`` prediction faces.
        init: starting transform prediction -> scan (e.g. the landmark Procrustes); identity if None.
        with_scale: refine the scale too (non-metrical protocol); False keeps ``init.scale``.
        max_iter: iteration cap.
        tol: stop when the energy drops by less than ``tol`` relative.
        max_points: if set and ``N`` is larger, iterate on a fixed uniform random subset of this size
            (the final error is always measured on every point; see :func:`facecourse.now.evaluate_prediction`).
        surface: a prebuilt :class:`SurfaceDistance` of ``(vertices, faces)`` to reuse.
        seed: seed of the subset.

    Returns:
        :class:`Refinement`.
    """
    x = np.asarray(scan_points, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or len(x) < 3:
        raise ValueError(f"scan_points must be (N >= 3, 3), got {x.shape}")
    if max_points is not None and len(x) > max_points:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), max_points, replace=False))]
    surf = surface if surface is not None else SurfaceDistance(vertices, faces)
    normals = face_normals(torch.from_numpy(surf.vertices), torch.from_numpy(surf.faces), eps=1e-300).numpy()

    def evaluate(t: Similarity):
        sq, idx, closest = surf.query(t.inverse().apply(x))
        p = t.apply(closest)
        # the gradient direction of the distance, (x - p)/|x - p|: the face normal inside a face, and the
        # unambiguous direction when the closest point is on an edge or vertex (shared by several faces)
        offset = x - p
        length = np.linalg.norm(offset, axis=1, keepdims=True)
        n = np.where(length > 1e-12 * t.scale, offset / np.maximum(length, 1e-300), normals[idx] @ t.rotation.T)
        return t.scale**2 * sq.mean(), p, n

    current = init if init is not None else Similarity()
    energy, p, n = evaluate(current)
    history = [float(energy)]
    damping = 0.0
    it = 0
    for it in range(1, max_iter + 1):
        jtj, jtr, g = _point_to_plane_system(p, n, x, with_scale)
        cand_energy = np.inf
        for _ in range(4):  # Levenberg-Marquardt: damp the Gauss-Newton step until the true energy drops
            theta = np.linalg.lstsq(jtj + damping * np.diag(np.diag(jtj)), -jtr, rcond=None)[0]
            candidate = _step_from_params(theta, g, with_scale).compose(current)
            cand_energy, cand_p, cand_n = evaluate(candidate)
            if cand_energy < energy:
                damping *= 0.1
                break
            damping = max(10.0 * damping, 1e-3)
        if not cand_energy < energy:  # fall back to the monotone point-to-point step
            candidate = procrustes(p, x, with_scale=with_scale).compose(current)
            cand_energy, cand_p, cand_n = evaluate(candidate)
        if not cand_energy < energy:
            break
        decrease = (energy - cand_energy) / max(energy, 1e-300)
        current, energy, p, n = candidate, cand_energy, cand_p, cand_n
        history.append(float(energy))
        if decrease < tol:
            break
    return Refinement(current, history, it)


__all__ = ["MAX_LOG_SCALE_STEP", "Refinement", "Similarity", "procrustes", "refine_alignment"]
