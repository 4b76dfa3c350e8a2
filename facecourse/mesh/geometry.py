"""Differentiable per-face and per-vertex geometry on batched meshes (torch), and barycentric coordinates
of points in triangles (numpy, for building embeddings and sampling matrices)."""

from __future__ import annotations

import numpy as np
import torch


def _batched(vertices: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if vertices.ndim == 2:
        return vertices[None], True
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must have shape (B, V, 3) or (V, 3), got {tuple(vertices.shape)}")
    return vertices, False


def _face_cross(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Per-face :math:`(v_1 - v_0) \\times (v_2 - v_0)`, ``(B, F, 3)``; its norm is twice the area."""
    faces = torch.as_tensor(faces, dtype=torch.long, device=vertices.device)
    tri = vertices[:, faces]  # (B, F, 3, 3)
    return torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)


def face_normals(vertices: torch.Tensor, faces: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Unit face normals of counter-clockwise triangles.

    Args:
        vertices: ``(B, V, 3)`` or ``(V, 3)``.
        faces: ``(F, 3)`` int64.

    Returns:
        ``(B, F, 3)`` (or ``(F, 3)`` for unbatched input) unit vectors.
    """
    v, single = _batched(vertices)
    n = _face_cross(v, faces)
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(eps)
    return n[0] if single else n


def face_areas(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Triangle areas :math:`\\tfrac12 \\lVert (v_1-v_0)\\times(v_2-v_0) \\rVert`, ``(B, F)`` (or ``(F,)``), in
    the squared unit of the vertices."""
    v, single = _batched(vertices)
    a = 0.5 * _face_cross(v, faces).norm(dim=-1)
    return a[0] if single else a


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Area-weighted unit vertex normals: :math:`n_i \\propto \\sum_{f \\ni i} (v_1-v_0)\\times(v_2-v_0)`.

    Args:
        vertices: ``(B, V, 3)`` or ``(V, 3)``.
        faces: ``(F, 3)`` int64.

    Returns:
        ``(B, V, 3)`` (or ``(V, 3)``) unit vectors; isolated vertices get zero vectors.
    """
    v, single = _batched(vertices)
    faces_t = torch.as_tensor(faces, dtype=torch.long, device=v.device)
    cross = _face_cross(v, faces_t)  # (B, F, 3)
    n = torch.zeros_like(v)
    for corner in range(3):
        n = n.index_add(1, faces_t[:, corner], cross)
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(eps)
    return n[0] if single else n


def barycentric_coordinates(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric coordinates :math:`(w_a, w_b, w_c)` of points in triangles, one triangle per point.

    The point's projection onto the triangle's plane is :math:`w_a a + w_b b + w_c c` with
    :math:`w_a + w_b + w_c = 1` (least squares in the plane, so points off the plane are projected). Points
    outside the triangle get negative weights; callers that need a convex combination clip. A degenerate
    triangle (zero area) falls back to its corner nearest the point: weights ``(1, 0, 0)``, ``(0, 1, 0)`` or
    ``(0, 0, 1)``.

    Args:
        p: ``(N, 3)`` points.
        a, b, c: ``(N, 3)`` corners of the triangle of each point (any length unit, the same for all).

    Returns:
        ``(N, 3)`` float weights of ``a``, ``b``, ``c``, each row summing to 1.
    """
    p, a, b, c = (np.asarray(x, dtype=np.float64) for x in (p, a, b, c))
    for name, x in (("p", p), ("a", a), ("b", b), ("c", c)):
        if x.ndim != 2 or x.shape[1] != 3 or len(x) != len(p):
            raise ValueError(f"{name} must have shape (N, 3) with N = {len(p)} (rows of p), got {x.shape}")
    e0, e1, d = b - a, c - a, p - a
    d00, d01, d11 = (e0 * e0).sum(1), (e0 * e1).sum(1), (e1 * e1).sum(1)
    d20, d21 = (d * e0).sum(1), (d * e1).sum(1)
    den = d00 * d11 - d01 * d01
    good = den > 1e-30 * np.maximum(d00 * d11, 1e-300)
    safe = np.where(good, den, 1.0)
    wb = (d11 * d20 - d01 * d21) / safe
    wc = (d00 * d21 - d01 * d20) / safe
    w = np.stack([1.0 - wb - wc, wb, wc], axis=1)
    if not good.all():
        dist = np.stack([((p - q) ** 2).sum(1) for q in (a, b, c)], axis=1)
        w[~good] = np.eye(3)[dist[~good].argmin(1)]
    return w


def similarity_procrustes(source: torch.Tensor, target: torch.Tensor,
                          scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares similarity (Umeyama) taking corresponding points ``source`` onto ``target``.

    Finds :math:`(s, R, t)` minimising :math:`\\sum_i \\lVert s R p_i + t - q_i \\rVert^2` with
    :math:`R \\in SO(3)` (no reflection): with centred points and the SVD
    :math:`\\tfrac1N \\sum_i \\bar q_i \\bar p_i^\\top = U \\Sigma V^\\top`,
    :math:`R = U \\operatorname{diag}(1, 1, \\det UV^\\top) V^\\top`,
    :math:`s = \\operatorname{tr}(\\Sigma\\, \\operatorname{diag}(1, 1, \\det UV^\\top)) / \\sigma_p^2` and
    :math:`t = \\mu_q - s R \\mu_p`.

    Args:
        source: ``(B, N, 3)`` points to move.
        target: ``(B, N, 3)`` points to reach, same order.
        scale: ``None`` estimates the scale; a number fixes it (e.g. 1 for a rigid fit).

    Returns:
        ``scale (B,)``, ``rotation (B, 3, 3)``, ``translation (B, 3)``.
    """
    if source.shape != target.shape or source.ndim != 3 or source.shape[-1] != 3:
        raise ValueError(f"source and target must both be (B, N, 3), got {tuple(source.shape)} and "
                         f"{tuple(target.shape)}")
    mu_p, mu_q = source.mean(1, keepdim=True), target.mean(1, keepdim=True)
    pc, qc = source - mu_p, target - mu_q
    u, sigma, vh = torch.linalg.svd(qc.transpose(1, 2) @ pc / source.shape[1])
    det = torch.linalg.det(u @ vh)
    sign = torch.stack([torch.ones_like(det), torch.ones_like(det), torch.where(det < 0, -1.0, 1.0).to(det)], -1)
    rotation = u @ torch.diag_embed(sign) @ vh
    if scale is None:
        s = (sigma * sign).sum(-1) / (pc * pc).sum((1, 2)) * source.shape[1]
    else:
        s = torch.full_like(det, float(scale))
    translation = mu_q[:, 0] - s[:, None] * (rotation @ mu_p[:, 0, :, None])[..., 0]
    return s, rotation, translation
