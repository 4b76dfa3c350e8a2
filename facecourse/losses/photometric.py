"""Photometric loss: masked L1 between the rendered and the input image (the mask: :func:`facecourse.render.head.region_mask`)."""

from __future__ import annotations

import torch


def photometric_loss(rendered: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean absolute colour difference.

    .. math::
        \\mathcal L = \\frac{\\sum_{b,p} m_{bp} \\lVert I_{bp} - \\hat I_{bp} \\rVert_1}{C \\sum_{b,p} m_{bp}}

    Args:
        rendered: ``(B, C, H, W)``.
        target: ``(B, C, H, W)``.
        mask: ``(B, 1, H, W)`` or ``(B, H, W)`` weights in [0, 1] (e.g. rendered skin pixels); no gradient
            flows into it.

    Returns:
        scalar; 0 (not NaN) for an empty mask.
    """
    if rendered.shape != target.shape or rendered.ndim != 4:
        raise ValueError(f"rendered and target must both be (B, C, H, W), got {tuple(rendered.shape)} "
                         f"and {tuple(target.shape)}")
    if mask.ndim == 3:
        mask = mask[:, None]
    if mask.shape != (rendered.shape[0], 1, *rendered.shape[2:]):
        raise ValueError(f"mask must have shape (B, 1, H, W) = {(rendered.shape[0], 1, *rendered.shape[2:])}, "
                         f"got {tuple(mask.shape)}")
    m = mask.detach().to(rendered.dtype)
    diff = (rendered - target).abs() * m
    return diff.sum() / (rendered.shape[1] * m.sum()).clamp_min(1e-8)
