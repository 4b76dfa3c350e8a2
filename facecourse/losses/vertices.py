"""3D errors between meshes in correspondence (chapters 04-05): what a reconstruction recovered, in millimetres.

Losses work in metres; reported errors are millimetres, converted here by name (``M_TO_MM``).
"""

from __future__ import annotations

import torch

from facecourse.mesh import similarity_procrustes
from facecourse.units import M_TO_MM


def mesh_error_mm(predicted: torch.Tensor, target: torch.Tensor, vertex_mask: torch.Tensor | None = None,
                  align: str = "translation") -> dict[str, float]:
    """Per-vertex 3D error (mm) between meshes in correspondence, after an alignment.

    Args:
        predicted, target: ``(B, V, 3)`` metres.
        vertex_mask: optional ``(V,)`` bool: vertices that count (e.g. the face region).
        align: ``"none"``, ``"translation"`` (centroids), ``"similarity"`` (rotation, translation and scale:
            Umeyama/Procrustes, what 2D supervision can at best be expected to recover).

    Returns:
        ``{"mean", "median", "x", "y", "z"}`` (per-axis mean absolute errors), floats in millimetres.
    """
    if predicted.shape != target.shape:
        raise ValueError(f"predicted and target differ in shape: {tuple(predicted.shape)} vs {tuple(target.shape)}")
    p, t = predicted, target
    if vertex_mask is not None:
        p, t = p[:, vertex_mask], t[:, vertex_mask]
    if align == "translation":
        p = p - p.mean(1, keepdim=True) + t.mean(1, keepdim=True)
    elif align == "similarity":
        scale, rotation, translation = similarity_procrustes(p, t)
        p = scale[:, None, None] * p @ rotation.transpose(1, 2) + translation[:, None]
    elif align != "none":
        raise ValueError(f"align must be 'none', 'translation' or 'similarity', got {align!r}")
    diff = (p - t) * M_TO_MM
    dist = diff.norm(dim=-1)
    return {"mean": dist.mean().item(), "median": dist.median().item(),
            "x": diff[..., 0].abs().mean().item(), "y": diff[..., 1].abs().mean().item(),
            "z": diff[..., 2].abs().mean().item()}
