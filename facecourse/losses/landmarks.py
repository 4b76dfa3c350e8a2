"""2D landmark losses (DECA's self-supervision): weighted L1 on iBUG-68 landmarks, eye closure, lip distance.

All landmarks are in normalised image coordinates (:mod:`facecourse.render.camera`), ``(B, 68, 2)``.
Ground truth may carry a third column, the detector's confidence / visibility in [0, 1] (DECA's format);
an explicit ``visibility`` ``(B, 68)`` can be passed instead. Invisible landmarks (weight 0) contribute
nothing, and a batch with no visible landmark gives a loss of exactly 0 (no NaN).
"""

from __future__ import annotations

import torch

#: Upper / lower eyelid landmark pairs (iBUG-68): right eye 37-41, 38-40; left eye 43-47, 44-46.
EYELID_PAIRS = ((37, 41), (38, 40), (43, 47), (44, 46))
#: Upper / lower inner-lip pairs (iBUG-68): 61-67, 62-66, 63-65.
LIP_PAIRS = ((61, 67), (62, 66), (63, 65))


def deca_landmark_weights(dtype=torch.float32, device=None) -> torch.Tensor:
    """Per-landmark weights ``(68,)`` of DECA's weighted landmark loss.

    1 everywhere, except: jaw-line points 5, 6, 10, 11 -> 2; nose 27..35 -> 1.5 with nose tip/wings 30, 31,
    35 -> 3; mouth 48..67 -> 1.5 with the corners 48 and 54 -> 3.
    """
    w = torch.ones(68, dtype=dtype, device=device)
    w[5:7] = 2
    w[10:12] = 2
    w[27:36] = 1.5
    w[[30, 31, 35]] = 3
    w[48:68] = 1.5
    w[[48, 54]] = 3
    return w


def _split(target: torch.Tensor, visibility: torch.Tensor | None, pred: torch.Tensor):
    if pred.ndim != 3 or pred.shape[-1] < 2:
        raise ValueError(f"predicted landmarks must have shape (B, L, 2), got {tuple(pred.shape)}")
    if target.ndim != 3 or target.shape[:2] != pred.shape[:2] or target.shape[-1] not in (2, 3):
        raise ValueError(f"target landmarks must have shape {tuple(pred.shape[:2])} + (2 or 3,), "
                         f"got {tuple(target.shape)}")
    vis = target[..., 2] if target.shape[-1] == 3 else torch.ones_like(target[..., 0])
    if visibility is not None:
        if visibility.shape != pred.shape[:2]:
            raise ValueError(f"visibility must have shape {tuple(pred.shape[:2])}, got {tuple(visibility.shape)}")
        vis = vis * visibility.to(vis)
    return target[..., :2], vis


def landmark_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None,
                  visibility: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted, visibility-masked L1 landmark loss (DECA's ``weighted_landmark_loss``).

    .. math::
        \\mathcal L = \\frac{\\sum_{b,l} w_l c_{bl} \\lVert \\hat l_{bl} - l_{bl} \\rVert_1}
                          {2 \\sum_{b,l} w_l c_{bl}}

    (the 2 averages over x and y), with per-landmark weights :math:`w` and visibilities :math:`c`.

    Args:
        pred: ``(B, L, 2)`` predicted landmarks (normalised image coordinates).
        target: ``(B, L, 2)`` or ``(B, L, 3)`` (third column = visibility/confidence).
        weights: ``(L,)`` (default: :func:`deca_landmark_weights` when L = 68, else ones).
        visibility: optional ``(B, L)`` in [0, 1], multiplied with the target's third column.

    Returns:
        scalar loss; 0 when nothing is visible.
    """
    xy, vis = _split(target, visibility, pred)
    if weights is None:
        weights = deca_landmark_weights(pred.dtype, pred.device) if pred.shape[1] == 68 else torch.ones_like(vis[0])
    c = vis * weights.to(vis)[None]
    err = (pred[..., :2] - xy).abs().sum(-1)
    return (err * c).sum() / (2 * c.sum()).clamp_min(1e-8)


def _pair_distances(landmarks: torch.Tensor, pairs) -> torch.Tensor:
    idx = torch.tensor(pairs, device=landmarks.device)
    d = landmarks[:, idx[:, 0], :2] - landmarks[:, idx[:, 1], :2]
    return torch.sqrt((d * d).sum(-1) + 1e-12)  # the epsilon keeps the gradient finite at a closed eye


def _pair_loss(pred, target, visibility, pairs) -> torch.Tensor:
    xy, vis = _split(target, visibility, pred)
    idx = torch.tensor(pairs, device=pred.device)
    c = torch.minimum(vis[:, idx[:, 0]], vis[:, idx[:, 1]])
    err = (_pair_distances(pred, pairs) - _pair_distances(xy, pairs)).abs()
    return (err * c).sum() / c.sum().clamp_min(1e-8)


def eye_closure_loss(pred: torch.Tensor, target: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
    """Eye-closure loss: L1 between predicted and target upper-to-lower eyelid distances.

    .. math::
        \\mathcal L = \\operatorname{mean}_{(i,j)} \\bigl|\\, \\lVert \\hat l_i - \\hat l_j \\rVert_2
        - \\lVert l_i - l_j \\rVert_2 \\bigr|

    over :data:`EYELID_PAIRS`, weighted by the smaller visibility of the pair. It makes blinks count
    even though eyelid landmarks move little in absolute terms. Shapes as :func:`landmark_loss`.
    """
    return _pair_loss(pred, target, visibility, EYELID_PAIRS)


def lip_distance_loss(pred: torch.Tensor, target: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
    """Lip-distance loss: as :func:`eye_closure_loss` for the inner-lip pairs :data:`LIP_PAIRS`
    (mouth opening)."""
    return _pair_loss(pred, target, visibility, LIP_PAIRS)
