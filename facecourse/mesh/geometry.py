"""Differentiable per-face and per-vertex geometry on batched meshes (torch)."""

from __future__ import annotations

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
