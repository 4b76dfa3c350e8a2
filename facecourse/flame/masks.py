"""FLAME vertex regions (``FLAME_masks.pkl``) as boolean masks and per-vertex weights.

Regions are lists of vertex indices (:func:`facecourse.flame.load_masks`); official names:
:data:`facecourse.flame.io.MASK_NAMES`. Losses weight regions differently, e.g. MICA's per-vertex weights
(face 150, eyeballs and ears 0.01, the rest 1: :data:`MICA_REGION_WEIGHTS`).
"""

from __future__ import annotations

import torch

#: MICA's per-vertex loss weights by region (everything else 1).
MICA_REGION_WEIGHTS = {"face": 150.0, "left_eyeball": 0.01, "right_eyeball": 0.01, "left_ear": 0.01,
                       "right_ear": 0.01}


def _indices(masks: dict, name: str, n_vertices: int) -> torch.Tensor:
    if name not in masks:
        raise KeyError(f"unknown region '{name}'; available: {sorted(masks)}")
    idx = torch.as_tensor(masks[name], dtype=torch.long).reshape(-1)
    if idx.numel() and (idx.min() < 0 or idx.max() >= n_vertices):
        raise ValueError(f"region '{name}' has vertex indices outside [0, {n_vertices})")
    return idx


def vertex_mask(masks: dict, names, n_vertices: int) -> torch.Tensor:
    """Boolean ``(V,)`` mask of the union of the regions ``names`` (a name or a list of names)."""
    names = [names] if isinstance(names, str) else list(names)
    mask = torch.zeros(n_vertices, dtype=torch.bool)
    for name in names:
        mask[_indices(masks, name, n_vertices)] = True
    return mask


def region_weights(masks: dict, weights: dict, n_vertices: int, default: float = 1.0) -> torch.Tensor:
    """Per-vertex weights ``(V,)`` float32: ``default`` everywhere, then each region's weight in dict order.

    Later regions override earlier ones where they overlap (as when MICA sets the face, then eyeballs/ears).
    """
    out = torch.full((n_vertices,), float(default))
    for name, value in weights.items():
        out[_indices(masks, name, n_vertices)] = float(value)
    return out


__all__ = ["MICA_REGION_WEIGHTS", "region_weights", "vertex_mask"]
