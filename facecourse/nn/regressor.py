"""The image-to-FLAME regressor of chapter 06: :class:`FaceRegressor` (photo -> :class:`FaceParams`) and
:class:`Reconstructor` (regressor + FLAME + renderer -> parameters, meshes, landmarks, rendered image).

Architecture (DECA's coarse encoder with MICA's identity branch)::

    image (B, 3, S, S) --backbone--> f (B, C) --+--> identity mapping (MLP) ----------------> shape beta
                                                +--> head (linear) --> expression psi, global pose, jaw pose,
                                                                       camera, lighting L, albedo alpha

* The **backbone** is a :class:`~facecourse.nn.backbones.ResNet` (torchvision layout: ImageNet weights load
  with :func:`~facecourse.nn.backbones.load_backbone_weights`; none ship).
* The **identity mapping** is MICA's mapping network: ``depth`` linear layers of ``hidden`` units with
  LeakyReLU(0.2) from identity features to the shape coefficients. Its input is the backbone's features, or
  (MICA) the embedding of a separate face recogniser given as ``identity_encoder`` (frozen unless trained).
* The **head** is one linear layer (DECA regresses all codes jointly), initialised to zero so a fresh model
  predicts the mean face, neutral pose, an ambient light and the ``camera_scale`` framing: training starts
  from the mean head, the baseline it must beat.

Decoding of the head's raw outputs :math:`r` (:func:`decode_head`): codes and poses are :math:`r` itself;
the camera is :math:`s = s_0 e^{r_s}` (positive, :math:`s_0` = ``camera_scale``) and :math:`t = t_0 r_t`
(metres, :math:`t_0` = :data:`TRANSLATION_SCALE`); the lighting is :math:`L = L_0 + r_L` with :math:`L_0`
ambient grey (:data:`AMBIENT_LIGHT` of the DC term).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from facecourse.render.head import FaceParams, HeadRender, HeadRenderer
from facecourse.render.shading import SH_CONSTANTS

#: :math:`t_0`, metres per unit of the raw camera translation.
TRANSLATION_SCALE = 0.05
#: Radiance of the initial ambient light (the DC SH coefficient is this over :math:`Y_0`), as in the fit.
AMBIENT_LIGHT = 0.8
N_LIGHTING = 27
"""9 SH coefficients x 3 colours."""


@dataclass(frozen=True)
class HeadSizes:
    """How many coefficients the head predicts of each code (the order of its raw outputs).

    Attributes:
        n_exp: expression coefficients. n_albedo: albedo coefficients.
    """

    n_exp: int
    n_albedo: int

    @property
    def n_outputs(self) -> int:
        """Raw outputs: expression, global pose 3, jaw pose 3, camera 3, lighting 27, albedo."""
        return self.n_exp + 3 + 3 + 3 + N_LIGHTING + self.n_albedo


def mapping_network(n_in: int, n_out: int, hidden: int = 300, depth: int = 3) -> nn.Sequential:
    """MICA's identity mapping: ``depth`` x (Linear -> LeakyReLU(0.2)) of ``hidden`` units, then Linear to
    ``n_out`` (its last layer scaled by 0.1 at initialisation, so a fresh model stays near the mean shape)."""
    if depth < 1 or hidden < 1:
        raise ValueError(f"depth and hidden must be >= 1, got depth={depth}, hidden={hidden}")
    layers, width = [], n_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        width = hidden
    last = nn.Linear(width, n_out)
    with torch.no_grad():
        last.weight.mul_(0.1)
        last.bias.zero_()
    return nn.Sequential(*layers, last)


def decode_head(raw: torch.Tensor, shape: torch.Tensor, sizes: HeadSizes, camera_scale: torch.Tensor) -> FaceParams:
    """:class:`FaceParams` from the head's raw outputs (module docstring).

    Args:
        raw: ``(B, sizes.n_outputs)``. shape: ``(B, n_shape)`` from the identity mapping.
        sizes: the layout of ``raw``. camera_scale: scalar tensor :math:`s_0`.

    Returns:
        :class:`FaceParams` with every field but ``neck_pose`` and ``eye_pose`` set.
    """
    if raw.ndim != 2 or raw.shape[1] != sizes.n_outputs:
        raise ValueError(f"raw head outputs must be (B, {sizes.n_outputs}), got {tuple(raw.shape)}")
    parts = torch.split(raw, [sizes.n_exp, 3, 3, 1, 2, N_LIGHTING, sizes.n_albedo], dim=1)
    expression, global_pose, jaw_pose, log_scale, translation, lighting, albedo = parts
    ambient = torch.zeros(N_LIGHTING, dtype=raw.dtype, device=raw.device)
    ambient[:3] = AMBIENT_LIGHT / SH_CONSTANTS[0]  # the (9, 3) layout's first row: the DC term of each colour
    camera = torch.cat([camera_scale * log_scale.exp(), TRANSLATION_SCALE * translation], dim=1)
    return FaceParams(shape=shape, expression=expression, global_pose=global_pose, jaw_pose=jaw_pose,
                      camera=camera, lighting=(ambient + lighting).view(-1, 9, 3), albedo=albedo)


class FaceRegressor(nn.Module):
    """Photo -> :class:`FaceParams` (module docstring).

    Args:
        backbone: image features ``(B, 3, S, S) -> (B, C)``, with an ``n_features`` attribute ``C``.
        n_shape: shape coefficients predicted. sizes: the head's :class:`HeadSizes`.
        hidden, depth: the identity mapping's width and number of hidden layers.
        camera_scale: :math:`s_0`, the weak-perspective scale of a typical crop (a buffer: set it from the
            training data, :meth:`set_camera_scale`).
        identity_encoder: optional face recogniser ``(B, 3, S, S) -> (B, D)`` (with ``n_features``) whose
            embedding feeds the identity mapping (MICA); default the backbone's features.
    """

    def __init__(self, backbone: nn.Module, n_shape: int, sizes: HeadSizes, hidden: int = 300, depth: int = 3,
                 camera_scale: float = 10.0, identity_encoder: nn.Module | None = None):
        super().__init__()
        self.backbone, self.sizes, self.n_shape = backbone, sizes, n_shape
        self.identity_encoder = identity_encoder
        identity_dim = (identity_encoder or backbone).n_features
        self.identity = mapping_network(identity_dim, n_shape, hidden, depth)
        self.head = nn.Linear(backbone.n_features, sizes.n_outputs)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("camera_scale", torch.tensor(float(camera_scale)))

    def set_camera_scale(self, scale: float) -> None:
        """Set :math:`s_0` (e.g. the median camera scale of the training crops); must be finite and > 0."""
        scale = float(scale)
        if not scale > 0 or scale == float("inf"):
            raise ValueError(f"camera scale must be a finite number > 0, got {scale}")
        self.camera_scale.fill_(scale)

    def forward(self, images: torch.Tensor) -> FaceParams:
        """``images`` ``(B, 3, S, S)`` in [0, 1] -> :class:`FaceParams` of batch ``B``."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, S, S), got {tuple(images.shape)}")
        features = self.backbone(images)
        identity = features if self.identity_encoder is None else self.identity_encoder(images)
        return decode_head(self.head(features), self.identity(identity), self.sizes, self.camera_scale)


@dataclass
class Reconstruction:
    """What :class:`Reconstructor` makes of a batch of ``B`` photos.

    Attributes:
        params: predicted :class:`FaceParams`.
        head: the render of ``params`` at the input size (vertices ``head.geometry.vertices`` (B, V, 3) metres,
            landmarks ``head.landmarks`` (B, 68, 3) normalised image coordinates), or None if not rendered.
        neutral: ``(B, V, 3)`` metres, FLAME of the predicted shape alone (what NoW and the 3D losses compare).
    """

    params: FaceParams
    head: HeadRender | None
    neutral: torch.Tensor


class Reconstructor(nn.Module):
    """Regressor + FLAME + renderer: photos -> :class:`Reconstruction` (one ``forward``, so DDP sees every
    use of the parameters).

    Only the regressor is a submodule: ``state_dict()`` (and so every checkpoint) holds the regressor's weights
    and never FLAME's arrays (licensed data, and the same for every run); the FLAME model still follows
    ``.to(device)`` / ``.double()``.

    Args:
        regressor: the :class:`FaceRegressor`. renderer: the :class:`~facecourse.render.head.HeadRenderer`.
    """

    def __init__(self, regressor: FaceRegressor, renderer: HeadRenderer):
        super().__init__()
        if regressor.n_shape > renderer.flame.n_shape:
            raise ValueError(f"the regressor predicts {regressor.n_shape} shape coefficients but the FLAME model "
                             f"has {renderer.flame.n_shape}")
        self.regressor, self.renderer = regressor, renderer  # the renderer is a plain attribute, not a module

    @property
    def flame(self) -> nn.Module:
        """The renderer's FLAME model."""
        return self.renderer.flame

    def _apply(self, fn, recurse: bool = True):
        """Device and dtype moves reach FLAME too (it is not a registered submodule)."""
        super()._apply(fn, recurse)
        self.renderer.flame._apply(fn)
        return self

    def forward(self, images: torch.Tensor, render: bool = True) -> Reconstruction:
        """``images`` ``(B, 3, S, S)`` -> :class:`Reconstruction` (rendered at ``S`` unless ``render`` is False)."""
        params = self.regressor(images)
        head = self.renderer(params, images.shape[-1]) if render else None
        neutral = self.flame(shape=params.shape).vertices
        return Reconstruction(params=params, head=head, neutral=neutral)


__all__ = ["AMBIENT_LIGHT", "FaceRegressor", "HeadSizes", "N_LIGHTING", "Reconstruction", "Reconstructor",
           "TRANSLATION_SCALE", "decode_head", "mapping_network"]
