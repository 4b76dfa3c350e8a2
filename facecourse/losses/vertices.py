"""3D supervision and 3D errors between meshes in correspondence (chapters 04-05).

:func:`vertices_loss` / :class:`VerticesLoss` is the region-weighted L1 that supervises a regressor on paired
2D-3D data (MICA's weights); :func:`mesh_error_mm` reports what a reconstruction recovered. Losses work in
metres; reported errors are millimetres, converted here by name (``M_TO_MM``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from facecourse.flame.masks import MICA_REGION_WEIGHTS
from facecourse.flame.masks import region_weights as flame_region_weights
from facecourse.mesh import similarity_procrustes
from facecourse.render.head import FaceParams
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


def check_meshes(predicted: torch.Tensor, target: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``predicted`` and ``target`` are finite ``(B, V, 3)`` meshes of one shape."""
    for name, x in (("predicted", predicted), ("target", target)):
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} vertices must be a (B, V, 3) tensor, got {shape}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} vertices hold NaN or inf values")
    if predicted.shape != target.shape:
        raise ValueError(f"predicted and target vertices differ in shape: {tuple(predicted.shape)} vs "
                         f"{tuple(target.shape)}")


def vertices_distances(predicted: torch.Tensor, target: torch.Tensor,
                       weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample region-weighted L1 distance ``(B,)`` in metres (:func:`vertices_loss` before the batch mean).

    .. math:: d_b = \\frac{\\sum_v w_v \\sum_c |\\hat X_{bvc} - X_{bvc}|}{3 \\sum_v w_v}

    Args:
        predicted, target: ``(B, V, 3)`` metres (e.g. the neutral meshes of predicted and true shape).
        weights: ``(V,)`` non-negative per-vertex weights (:meth:`VerticesLoss.from_masks`), not all zero;
            ``None``: every vertex 1. A ``0/1`` weight is a vertex mask.

    Returns:
        ``(B,)`` metres; differentiable in ``predicted``.
    """
    check_meshes(predicted, target)
    diff = (predicted - target).abs().sum(-1)  # (B, V): L1 over the coordinates
    if weights is None:
        return diff.mean(1) / 3
    if weights.shape != diff.shape[1:]:
        raise ValueError(f"weights must be ({diff.shape[1]},) like the meshes' vertices, got {tuple(weights.shape)}")
    if not torch.isfinite(weights).all() or (weights < 0).any() or not (weights > 0).any():
        raise ValueError("weights must be finite, non-negative and not all zero")
    weights = weights.to(diff)
    return (diff * weights).sum(1) / (3 * weights.sum())


def vertices_loss(predicted: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Region-weighted L1 distance between meshes in correspondence, in metres: the batch mean of
    :func:`vertices_distances`,

    .. math:: \\mathcal L_{\\mathrm{vert}} = \\frac{\\sum_{b,v} w_v \\sum_{c} |\\hat X_{bvc} - X_{bvc}|}
              {3 B \\sum_v w_v}

    a weighted mean of the absolute coordinate differences: with all weights 1 it is the mean absolute
    coordinate error (metres), and scaling the weights does not change it. MICA's loss,
    :math:`\\mathrm{mean}(|\\hat X - X| \\cdot w) \\times 1000`, is this value times the constant
    :math:`1000 \\sum_v w_v / V` (its weights: :data:`facecourse.flame.MICA_REGION_WEIGHTS`).

    Args and shapes: as :func:`vertices_distances`. Returns a scalar tensor (metres).
    """
    return vertices_distances(predicted, target, weights).mean()


class VerticesLoss(nn.Module):
    """:func:`vertices_loss` with its per-vertex weights kept as a ``(V,)`` buffer.

    Build it from the FLAME region masks with :meth:`from_masks` (MICA: face 150, eyeballs and ears 0.01,
    the rest 1); it works with the synthetic and the real ``FLAME_masks.pkl`` (the same region names).
    """

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        weights = torch.as_tensor(weights, dtype=torch.float32)
        if weights.ndim != 1 or not torch.isfinite(weights).all() or (weights < 0).any() or not (weights > 0).any():
            raise ValueError("weights must be a (V,) tensor of finite, non-negative values, not all zero")
        self.register_buffer("weights", weights)

    @classmethod
    def from_masks(cls, masks: dict, n_vertices: int, region_weights: dict | None = None,
                   default: float = 1.0) -> "VerticesLoss":
        """Weights from FLAME region masks (``facecourse.flame.load_masks``): ``default`` everywhere, then each
        region of ``region_weights`` (default :data:`facecourse.flame.MICA_REGION_WEIGHTS`) in dict order."""
        table = MICA_REGION_WEIGHTS if region_weights is None else region_weights
        return cls(flame_region_weights(masks, table, n_vertices, default))

    def distances(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(B, V, 3)`` metres each -> ``(B,)`` per-sample weighted L1 (metres)."""
        return vertices_distances(predicted, target, self.weights)

    def forward(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(B, V, 3)`` metres each -> scalar weighted L1 (metres)."""
        return vertices_loss(predicted, target, self.weights)


def supervision_meshes(flame, params: FaceParams, neutral: bool = True) -> torch.Tensor:
    """The meshes a 3D loss compares: FLAME vertices ``(B, V, 3)`` metres of ``params``.

    Args:
        flame: :class:`facecourse.flame.FLAME`.
        params: :class:`~facecourse.render.FaceParams` (predicted or ground truth).
        neutral: shape only (expression and every pose zeroed, :meth:`FaceParams.neutral`): the identity, what
            MICA's vertices loss and the course's default 3D-ID loss compare; ``False``: the posed, expressive mesh.
    """
    params = params.neutral() if neutral else params
    return flame(**params.flame_inputs(), batch_size=params.batch_size or None).vertices


@dataclass
class ShapeFit:
    """Result of :func:`fit_shape`.

    Attributes:
        shape: ``(B, k)`` the fitted shape coefficients (detached).
        loss: ``(steps,)`` the loss before each step.
        error_mm: ``(steps,)`` the mean vertex distance (mm) to the target before each step.
    """

    shape: torch.Tensor
    loss: torch.Tensor
    error_mm: torch.Tensor


def fit_shape(flame, target_vertices: torch.Tensor, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
              n_shape: int, steps: int = 100, lr: float = 0.05, parameters: Iterable[torch.Tensor] = (),
              parameters_lr: float = 1e-3, init: torch.Tensor | None = None) -> ShapeFit:
    """Fit FLAME shape coefficients to target meshes by minimising a 3D loss (Adam), from the mean head.

    A small experiment of chapter 05: which meshes does a loss lead to? ``parameters`` are optimised along
    (e.g. a fine-tuned encoder's weights, to show how an unfrozen 3D-ID loss cheats).

    Args:
        flame: :class:`facecourse.flame.FLAME`.
        target_vertices: ``(B, V, 3)`` metres (neutral meshes: the fit has no pose or expression).
        loss: ``(predicted (B, V, 3), target (B, V, 3)) -> scalar``.
        n_shape: number of leading shape coefficients fitted.
        steps, lr: Adam iterations and the learning rate of the shape coefficients.
        parameters, parameters_lr: further tensors optimised along, and their learning rate.
        init: ``(B, n_shape)`` start (default zeros).

    Returns:
        :class:`ShapeFit`.
    """
    if target_vertices.ndim != 3 or target_vertices.shape[1:] != flame.v_template.shape:
        raise ValueError(f"target_vertices must be (B, {flame.v_template.shape[0]}, 3), got "
                         f"{tuple(target_vertices.shape)}")
    start = torch.zeros(len(target_vertices), n_shape) if init is None else init
    shape = start.detach().clone().to(target_vertices).requires_grad_(True)
    groups = [{"params": [shape], "lr": lr}]
    extra = list(parameters)
    if extra:
        groups.append({"params": extra, "lr": parameters_lr})
    optimiser = torch.optim.Adam(groups)
    losses, errors = [], []
    for _ in range(steps):
        predicted = flame(shape=shape).vertices
        value = loss(predicted, target_vertices)
        losses.append(value.detach())
        errors.append(((predicted.detach() - target_vertices).norm(dim=-1).mean() * M_TO_MM))
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
    return ShapeFit(shape=shape.detach(), loss=torch.stack(losses), error_mm=torch.stack(errors))
