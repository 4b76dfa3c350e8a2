"""FLAME predictions -> the NoW prediction layout.

NoW measures identity only, so a prediction is the *neutral* head of the estimated shape: expression, jaw
(and every other pose) zeroed, with its 7 NoW landmarks (iBUG 36, 39, 42, 45, 33, 48, 54; FLAME's
``out.landmarks_now7``) in the same frame.

Unit choice: predictions are written in FLAME's metres. The non-metrical protocol estimates the scale, so
it is unit-free; the metrical protocol needs the unit, which is ``"m"`` here -- the official tool's
default ``predicted_mesh_unit`` too (``facecourse now-eval --metrical --pred-unit m``).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from facecourse.now.layout import NowImage, write_prediction


@torch.no_grad()
def flame_now_prediction(flame, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Neutral FLAME heads of the given identities and their NoW-7 landmarks.

    Args:
        flame: a :class:`facecourse.flame.FLAME`.
        shape: ``(B, k <= n_shape)`` shape coefficients.

    Returns:
        ``(vertices (B, V, 3), landmarks (B, 7, 3))`` in metres, expression/jaw/pose all zero.
    """
    if shape.ndim != 2:
        raise ValueError(f"shape must be (B, k), got {tuple(shape.shape)}")
    p = next(flame.buffers())
    out = flame(shape=shape.to(device=p.device, dtype=p.dtype))
    return out.vertices, out.landmarks_now7


def mean_face_prediction(flame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The template head ("ignore the photo" baseline): ``(vertices (V, 3) m, faces (F, 3), landmarks (7, 3) m)``."""
    v, lm = flame_now_prediction(flame, next(flame.buffers()).new_zeros(1, 1))
    return v[0].cpu().double().numpy(), flame.faces.cpu().numpy(), lm[0].cpu().double().numpy()


def export_flame_predictions(pred_dir: str | os.PathLike, images, flame, shape: torch.Tensor,
                             mesh_suffix: str = ".obj") -> list:
    """Write one neutral FLAME prediction per image into ``pred_dir`` in the NoW layout (metres).

    Args:
        pred_dir: predictions root.
        images: ``B`` :class:`facecourse.now.NowImage` (or image-list lines).
        flame: the FLAME module.
        shape: ``(B, k)`` shape coefficients, one row per image.
        mesh_suffix: ``".obj"`` or ``".ply"``.

    Returns:
        ``B`` pairs ``(mesh path, landmarks path)``.
    """
    images = [im if isinstance(im, NowImage) else NowImage.parse(im) for im in images]
    if len(images) != shape.shape[0]:
        raise ValueError(f"got {len(images)} images for {shape.shape[0]} shape rows")
    vertices, landmarks = flame_now_prediction(flame, shape)
    faces = flame.faces.cpu().numpy()
    return [write_prediction(pred_dir, im, v.cpu().double().numpy(), faces, lm.cpu().double().numpy(), mesh_suffix)
            for im, v, lm in zip(images, vertices, landmarks)]


__all__ = ["export_flame_predictions", "flame_now_prediction", "mean_face_prediction"]
