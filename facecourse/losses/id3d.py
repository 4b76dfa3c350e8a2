"""The 3D-ID loss (chapter 05): compare two meshes through the features of a pretrained spectral mesh encoder.

Let :math:`E` be a COMA-style Chebyshev encoder (:class:`facecourse.nn.autoencoder.SpectralEncoder`) with latent
:math:`z = E(X)` and per-level activations :math:`h_l(X)` (level :math:`l` of the down-sampling hierarchy,
``(V_l, C_l)``). For a predicted mesh :math:`\\hat X` and its ground truth :math:`X` (both ``(V, 3)`` metres)

.. math:: \\mathcal L_{\\mathrm{3D\\text{-}ID}} = \\lambda_z\\, d\\big(E(\\hat X), E(X)\\big)
          + \\sum_l \\lambda_l\\, d\\big(h_l(\\hat X), h_l(X)\\big),

averaged over the batch, with :math:`d` one of

* ``"l1"``: :math:`\\frac1n \\sum_i |a_i - b_i|`, * ``"l2"``: :math:`\\frac1n \\sum_i (a_i - b_i)^2`,
* ``"cosine"``: :math:`1 - \\frac{a \\cdot b}{\\lVert a\\rVert \\lVert b\\rVert}` (scale-free),

on the flattened features (:math:`n` entries). The target features are computed under ``no_grad``: the ground
truth is a constant. The paper does not say which features, which distance, which weights or whether the
encoder is frozen; these are the arguments here and the course measures them (notebook 05, the ablation of
chapter 06). By default the encoder is frozen and in eval mode: a trainable encoder can lower the loss by
making its features agree (ultimately, constant) instead of making the meshes agree.

Which meshes go in is the caller's choice: neutral meshes (shape only, expression and pose zeroed: identity,
the default of the course) or posed ones -- :func:`facecourse.losses.vertices.supervision_meshes` makes either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from facecourse.losses.vertices import check_meshes

DISTANCES = ("l1", "l2", "cosine")
"""The feature distances :func:`feature_distance` knows."""


def feature_distance(predicted: torch.Tensor, target: torch.Tensor, distance: str = "l2") -> torch.Tensor:
    """Per-sample distance between two feature batches, flattened after the batch dimension.

    Args:
        predicted, target: ``(B, ...)`` of one shape (a latent ``(B, d)`` or level features ``(B, V_l, C_l)``).
        distance: ``"l1"`` (mean absolute difference), ``"l2"`` (mean squared difference) or ``"cosine"``
            (:math:`1 - \\cos`; 0 for parallel features, whatever their norms).

    Returns:
        ``(B,)`` distances.
    """
    if predicted.shape != target.shape:
        raise ValueError(f"predicted and target features differ in shape: {tuple(predicted.shape)} vs "
                         f"{tuple(target.shape)}")
    p, t = predicted.flatten(1), target.flatten(1)
    if distance == "l1":
        return (p - t).abs().mean(1)
    if distance == "l2":
        return (p - t).square().mean(1)
    if distance == "cosine":
        return 1 - F.cosine_similarity(p, t, dim=1, eps=1e-8)
    raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")


def _check_weights(latent_weight: float, level_weights: Sequence[float] | None) -> tuple[float, ...]:
    levels = tuple(float(w) for w in (level_weights or ()))
    weights = (float(latent_weight),) + levels
    if any(not (w >= 0 and w < float("inf")) for w in weights) or not any(w > 0 for w in weights):
        raise ValueError(f"latent_weight and level_weights must be finite, >= 0 and not all zero, got "
                         f"latent_weight={latent_weight}, level_weights={level_weights}")
    return levels


def _weighted_distance(z: torch.Tensor, h: Sequence[torch.Tensor], z_target: torch.Tensor,
                       h_target: Sequence[torch.Tensor], latent_weight: float, levels: tuple[float, ...],
                       distance: str) -> torch.Tensor:
    """``(B,)`` :math:`\\lambda_z d(z, z_t) + \\sum_l \\lambda_l d(h_l, h_{t,l})` of encoded features (zero weights skipped)."""
    if len(levels) > len(h):
        raise ValueError(f"level_weights has {len(levels)} entries but the encoder has {len(h)} levels")
    total = latent_weight * feature_distance(z, z_target, distance) if latent_weight else z.new_zeros(z.shape[0])
    for weight, hp, ht in zip(levels, h, h_target):
        if weight:
            total = total + weight * feature_distance(hp, ht, distance)
    return total


def id3d_distances(encoder: nn.Module, predicted_vertices: torch.Tensor, target_vertices: torch.Tensor, *,
                   latent_weight: float = 1.0, level_weights: Sequence[float] | None = None,
                   distance: str = "l2") -> torch.Tensor:
    """Per-sample 3D-ID loss ``(B,)``: the weighted feature distances of the module docstring.

    Args:
        encoder: a :class:`~facecourse.nn.autoencoder.SpectralEncoder` (called as
            ``encoder(vertices, return_features=True) -> (z (B, d), [h_l (B, V_l, C_l)])``).
        predicted_vertices, target_vertices: ``(B, V, 3)`` metres, in the encoder's topology.
        latent_weight: :math:`\\lambda_z`, the weight of the latent distance.
        level_weights: :math:`\\lambda_l` for the hierarchy levels ``0 .. L-1`` (finest first); ``None`` or
            shorter than ``L``: the missing levels weigh 0 (the encoder still runs whole).
        distance: see :func:`feature_distance`.

    Returns:
        ``(B,)``; differentiable in ``predicted_vertices`` (the targets are encoded under ``no_grad``).
    """
    check_meshes(predicted_vertices, target_vertices)
    levels = _check_weights(latent_weight, level_weights)
    with torch.no_grad():
        z_target, h_target = encoder(target_vertices, return_features=True)
    z, h = encoder(predicted_vertices, return_features=True)
    return _weighted_distance(z, h, z_target, h_target, latent_weight, levels, distance)


def id3d_loss(encoder: nn.Module, predicted_vertices: torch.Tensor, target_vertices: torch.Tensor, *,
              latent_weight: float = 1.0, level_weights: Sequence[float] | None = None,
              distance: str = "l2") -> torch.Tensor:
    """The 3D-ID loss, a scalar: the batch mean of :func:`id3d_distances` (same arguments).

    It does not freeze ``encoder``: :class:`ID3DLoss` does (and checks the topology).
    """
    return id3d_distances(encoder, predicted_vertices, target_vertices, latent_weight=latent_weight,
                          level_weights=level_weights, distance=distance).mean()


class ID3DLoss(nn.Module):
    """The 3D-ID loss with its encoder: frozen and in eval mode unless ``fine_tune``; topology checked.

    Args:
        encoder: the pretrained :class:`~facecourse.nn.autoencoder.SpectralEncoder` (from its checkpoint:
            :mod:`facecourse.train.encoder`).
        encoder_topology: :func:`facecourse.mesh.topology_hash` of the mesh the encoder was trained on.
        mesh_topology: the same hash of the meshes this loss will see (the FLAME model's faces).
        latent_weight, level_weights, distance: see :func:`id3d_distances`.
        fine_tune: let the optimiser change the encoder (the ablation "not frozen"); by default its parameters
            get ``requires_grad = False`` and it stays in eval mode even when the owning model is put in
            training mode. Either way it is set on ``encoder`` itself: copy it first to use one encoder both ways.

    Raises:
        ValueError: the topologies differ (both are named): features of another mesh topology mean nothing.
    """

    def __init__(self, encoder: nn.Module, encoder_topology: str, mesh_topology: str, *, latent_weight: float = 1.0,
                 level_weights: Sequence[float] | None = None, distance: str = "l2", fine_tune: bool = False):
        super().__init__()
        if encoder_topology != mesh_topology:
            raise ValueError(f"the 3D-ID encoder was trained on mesh topology {encoder_topology[:16]}..., but the "
                             f"meshes have topology {mesh_topology[:16]}...: pre-train an encoder on this FLAME "
                             f"model (facecourse pretrain-encoder --model ...)")
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        self.level_weights = _check_weights(latent_weight, level_weights)
        self.latent_weight = float(latent_weight)
        self.distance = distance
        self.fine_tune = bool(fine_tune)
        self.topology = mesh_topology
        self.encoder = encoder
        encoder.requires_grad_(self.fine_tune)  # the encoder module itself is frozen (or unfrozen) in place
        if not self.fine_tune:
            encoder.eval()

    def train(self, mode: bool = True) -> "ID3DLoss":
        """Set training mode; a frozen encoder stays in eval mode."""
        super().train(mode)
        if not self.fine_tune:
            self.encoder.eval()
        return self

    def distances(self, predicted_vertices: torch.Tensor, target_vertices: torch.Tensor) -> torch.Tensor:
        """``(B,)`` per-sample loss (:func:`id3d_distances` with this loss's settings)."""
        return id3d_distances(self.encoder, predicted_vertices, target_vertices, latent_weight=self.latent_weight,
                              level_weights=self.level_weights, distance=self.distance)

    def forward(self, predicted_vertices: torch.Tensor, target_vertices: torch.Tensor) -> torch.Tensor:
        """``(B, V, 3)`` metres each -> scalar loss (batch mean)."""
        return self.distances(predicted_vertices, target_vertices).mean()


def matched_noise(change: torch.Tensor, generator: torch.Generator | None = None,
                  vertex_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian vertex noise with the norm of a given change: the control of a sensitivity measurement.

    Args:
        change: ``(B, V, 3)`` a displacement (e.g. another identity's mesh minus this one), metres.
        generator: random generator (reproducible noise).
        vertex_mask: optional ``(V,)`` bool: noise only on these vertices (a region).

    Returns:
        ``(B, V, 3)`` i.i.d. normal noise scaled so that :math:`\\lVert n_b \\rVert_F = \\lVert \\Delta_b \\rVert_F`
        for every sample: a vertices L2 loss cannot tell it from ``change``.
    """
    if change.ndim != 3 or change.shape[-1] != 3:
        raise ValueError(f"change must be (B, V, 3), got {tuple(change.shape)}")
    noise = torch.randn(change.shape, generator=generator, dtype=change.dtype).to(change.device)
    if vertex_mask is not None:
        if vertex_mask.shape != change.shape[1:2] or not vertex_mask.any():
            raise ValueError(f"vertex_mask must be ({change.shape[1]},) bool with at least one vertex")
        noise = noise * vertex_mask.to(noise)[None, :, None]
    scale = change.flatten(1).norm(dim=1) / noise.flatten(1).norm(dim=1).clamp_min(1e-30)
    return noise * scale[:, None, None]


@dataclass(frozen=True)
class Sensitivity:
    """How much a per-sample loss responds to a change and to vertex noise of the same norm.

    Attributes:
        change: ``(B,)`` loss between the changed and the reference meshes (e.g. another identity).
        noise: ``(B,)`` loss between the reference plus :func:`matched_noise` and the reference.
    """

    change: torch.Tensor
    noise: torch.Tensor

    @property
    def ratio(self) -> torch.Tensor:
        """``(B,)`` change / noise: above 1 where the loss prefers the change to the noise as "different"."""
        return self.change / self.noise.clamp_min(1e-30)


@torch.no_grad()
def loss_sensitivity(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], reference: torch.Tensor,
                     changed: torch.Tensor, generator: torch.Generator | None = None,
                     vertex_mask: torch.Tensor | None = None) -> Sensitivity:
    """Measure a loss on a change and on noise of the change's norm (the sensitivity test of chapter 05).

    Args:
        loss: per-sample loss ``(predicted (B, V, 3), target (B, V, 3)) -> (B,)`` (e.g.
            :meth:`ID3DLoss.distances`).
        reference: ``(B, V, 3)`` metres, the target meshes.
        changed: ``(B, V, 3)`` metres, e.g. other identities' meshes.
        generator: for the noise. vertex_mask: ``(V,)`` bool: noise only there (region by region).

    Returns:
        :class:`Sensitivity` of ``loss(changed, reference)`` vs ``loss(reference + noise, reference)``.
    """
    check_meshes(changed, reference)
    noisy = reference + matched_noise(changed - reference, generator, vertex_mask)
    return Sensitivity(change=loss(changed, reference), noise=loss(noisy, reference))


@torch.no_grad()
def feature_distance_matrix(encoder: nn.Module, vertices: torch.Tensor, *, latent_weight: float = 1.0,
                            level_weights: Sequence[float] | None = None, distance: str = "l2") -> torch.Tensor:
    """All pairwise 3D-ID losses between meshes: ``D[i, j]`` = :func:`id3d_distances` of mesh ``i`` vs ``j``.

    Args:
        encoder: as in :func:`id3d_distances`.
        vertices: ``(N, V, 3)`` metres.

    Returns:
        ``(N, N)`` symmetric, zero diagonal (each mesh is encoded once).
    """
    check_meshes(vertices, vertices)
    levels = _check_weights(latent_weight, level_weights)
    z, h = encoder(vertices, return_features=True)
    n = len(vertices)
    rows, cols = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()
    total = _weighted_distance(z[rows], [f[rows] for f in h], z[cols], [f[cols] for f in h], latent_weight, levels,
                               distance)
    return total.reshape(n, n)


__all__ = ["DISTANCES", "ID3DLoss", "Sensitivity", "feature_distance", "feature_distance_matrix", "id3d_distances",
           "id3d_loss", "loss_sensitivity", "matched_noise"]
