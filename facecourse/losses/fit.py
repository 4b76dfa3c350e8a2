"""Analysis-by-synthesis: fit FLAME, albedo, lighting and a weak-perspective camera to one image with the
2D losses only (chapter 04).

.. math::
    \\min_{\\beta, \\psi, \\theta, \\alpha, L, c}\\;
    \\lambda_{lmk} \\mathcal L_{lmk} + \\lambda_{eye} \\mathcal L_{eye} + \\lambda_{lip} \\mathcal L_{lip}
    + \\lambda_{pho} \\mathcal L_{pho} + \\lambda_{id} \\mathcal L_{id}
    + \\lambda_\\beta \\lVert\\beta\\rVert^2 + \\lambda_\\psi \\lVert\\psi\\rVert^2
    + \\lambda_\\alpha \\lVert\\alpha\\rVert^2 + \\lambda_L \\mathcal R(L)

in two stages (as the classic fitting pipelines do): first the camera and head pose on landmarks only
(a rigid alignment that the other terms cannot fix from far away), then everything with Adam.
:func:`facecourse.losses.vertices.mesh_error_mm` measures what the fit recovered in 3D.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from facecourse.losses.image import image_loss_terms
from facecourse.losses.landmarks import landmark_loss
from facecourse.render.head import FaceParams, HeadRenderer
from facecourse.render.shading import SH_CONSTANTS
from facecourse.units import M_TO_MM
from facecourse.settings import progress_bar


@dataclass
class FitConfig:
    """Loss weights (DECA's, with stronger code priors for a single image) and optimisation settings."""

    rigid_steps: int = 60
    steps: int = 150
    lr: float = 0.02
    n_shape: int = 20
    n_exp: int = 10
    w_landmark: float = 1.0
    w_eye: float = 1.0
    w_lip: float = 0.5
    w_photometric: float = 2.0
    w_identity: float = 0.2
    w_shape: float = 1e-3
    w_expression: float = 1e-3
    w_albedo: float = 1e-3
    w_light: float = 1.0


@dataclass
class FitResult:
    """Fitted :class:`FaceParams` (detached), the loss history (list of dicts per step), the final render
    composited over the input image ``(B, 3, S, S)`` and its landmarks ``(B, 68, 2)``."""

    params: FaceParams
    history: list = field(default_factory=list)
    image: torch.Tensor | None = None
    landmarks: torch.Tensor | None = None


def init_camera(model_landmarks: torch.Tensor, target: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
    """Closed-form weak-perspective camera aligning model landmarks to 2D targets (least squares).

    Solves :math:`\\min_{s, a} \\sum_l c_l \\lVert (u_l, -v_l) - (s x_l + a_x, s y_l + a_y) \\rVert^2`
    (a 2D similarity without rotation), then :math:`t = a / s`.

    Args:
        model_landmarks: ``(B, L, 3)``; target: ``(B, L, 2)`` normalised image coordinates; visibility ``(B, L)``.

    Returns:
        ``(B, 3)`` ``[s, tx, ty]``.
    """
    w = visibility[..., None].to(target)
    q = torch.stack([target[..., 0], -target[..., 1]], -1)  # image v is down, model y is up
    p = model_landmarks[..., :2]
    wsum = w.sum(1).clamp_min(1e-8)
    pm, qm = (w * p).sum(1) / wsum, (w * q).sum(1) / wsum
    pc, qc = p - pm[:, None], q - qm[:, None]
    s = (w * pc * qc).sum((1, 2)) / (w * pc * pc).sum((1, 2)).clamp_min(1e-12)
    a = qm - s[:, None] * pm
    return torch.cat([s[:, None], a / s[:, None]], -1)


def initial_params(renderer: HeadRenderer, target_landmarks: torch.Tensor, visibility: torch.Tensor,
                   config: FitConfig) -> FaceParams:
    """Mean face, neutral pose, grey-white ambient light, camera from :func:`init_camera`."""
    b = target_landmarks.shape[0]
    zeros = lambda *shape: target_landmarks.new_zeros(b, *shape)  # noqa: E731
    lighting = zeros(9, 3)
    lighting[:, 0] = 0.8 / SH_CONSTANTS[0]
    params = FaceParams(shape=zeros(config.n_shape), expression=zeros(config.n_exp), global_pose=zeros(3),
                        jaw_pose=zeros(3), albedo=zeros(renderer.albedo_model.n_components), lighting=lighting)
    with torch.no_grad():
        geo = renderer.geometry(params)
    return params.replace(camera=init_camera(geo.landmarks, target_landmarks, visibility))


#: Learning rate of each variable relative to ``FitConfig.lr`` (Adam steps are in the variable's units:
#: log camera scale, metres for the camera translation, radians for poses, standard deviations for codes).
LR_FACTORS = {"log_scale": 0.5, "translation": 0.05, "global_pose": 0.5, "jaw_pose": 0.5, "shape": 1.0,
              "expression": 1.0, "albedo": 1.0, "lighting": 1.0}


def _variables(params: FaceParams) -> dict[str, torch.Tensor]:
    """Optimisation variables (the keys of :data:`LR_FACTORS`): the codes, plus the camera as log-scale and
    translation (metres)."""
    var = {k: v.clone() for k, v in params.items() if k != "camera"}
    var["log_scale"] = params.camera[:, :1].log()
    var["translation"] = params.camera[:, 1:].clone()
    return {k: v.requires_grad_() for k, v in var.items()}


def _params(var: dict[str, torch.Tensor]) -> FaceParams:
    """The :class:`FaceParams` of the optimisation variables (inverse of :func:`_variables`)."""
    codes = {k: v for k, v in var.items() if k not in ("log_scale", "translation")}
    return FaceParams(**codes, camera=torch.cat([var["log_scale"].exp(), var["translation"]], dim=-1))


def fit_to_image(renderer: HeadRenderer, image: torch.Tensor, landmarks: torch.Tensor, visibility: torch.Tensor | None = None,
                 recogniser=None, config: FitConfig | None = None, progress: bool = True) -> FitResult:
    """Fit a :class:`facecourse.render.HeadRenderer` to images with 2D losses only.

    Adam on the variables of :data:`LR_FACTORS` (the camera as log-scale and metric translation so that
    one learning rate suits all), a rigid stage on landmarks, then all terms with a cosine-decayed rate.

    Args:
        renderer: parameters -> render (FLAME + albedo + SH + weak perspective).
        image: ``(B, 3, S, S)`` in [0, 1].
        landmarks: ``(B, 68, 2)`` target landmarks (normalised image coordinates).
        visibility: ``(B, 68)`` (default all visible).
        recogniser: face recogniser for the identity loss (``None`` = no identity term).
        config: :class:`FitConfig`.

    Returns:
        :class:`FitResult`.
    """
    config = config or FitConfig()
    size = image.shape[-1]
    visibility = torch.ones_like(landmarks[..., 0]) if visibility is None else visibility
    var = _variables(initial_params(renderer, landmarks, visibility, config))
    history = []
    rigid = ("log_scale", "translation", "global_pose")
    opt = torch.optim.Adam([{"params": [var[k]], "lr": config.lr * LR_FACTORS[k]} for k in rigid])
    for _ in progress_bar(range(config.rigid_steps), desc="rigid fit", disable=not progress):
        loss = landmark_loss(renderer.camera_landmarks(_params(var)), landmarks, visibility=visibility)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append({"stage": 0, "landmark": loss.item()})
    opt = torch.optim.Adam([{"params": [v], "lr": config.lr * LR_FACTORS[k]} for k, v in var.items()])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(config.steps, 1), eta_min=0.05 * config.lr)
    bar = progress_bar(range(config.steps), desc="full fit", disable=not progress)
    for _ in bar:
        params = _params(var)
        head = renderer(params, size)
        terms = image_loss_terms(config, head, params, image, landmarks, visibility, recogniser)
        total = sum(terms.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        sched.step()
        history.append({"stage": 1, "total": total.item(), **{k: v.item() for k, v in terms.items()}})
        bar.set_postfix(total=f"{total.item():.4f}")
    params = _params(var).detach()
    with torch.no_grad():
        head = renderer(params, size, background=image)
    return FitResult(params=params, history=history, image=head.render.image.clamp(0, 1),
                     landmarks=head.landmarks[..., :2])


@torch.no_grad()
def component_sensitivity(renderer: HeadRenderer, params: FaceParams, image_size: int, component: str = "shape",
                          step: float = 1.0,
                          vertex_mask: torch.Tensor | None = None) -> dict:
    """How visible each code component is: 3D motion (mm) vs 2D landmark motion (pixels) for a unit step.

    For each component :math:`k` of the field ``component`` of ``params`` (its first face), the code is moved by
    ``step`` standard deviations and we measure the RMS displacement of the (masked) vertices in
    millimetres, the RMS displacement of the projected landmarks in pixels at ``image_size`` (with the
    weak-perspective camera of ``params``), and the fraction of the squared 3D motion along the camera's
    viewing axis (model :math:`z` after the head pose, i.e. depth).

    Returns:
        ``{"mm": (K,), "px": (K,), "depth_fraction": (K,)}`` tensors.
    """
    base = params[0]
    code = getattr(base, component)
    n = code.shape[1]
    batch = FaceParams.cat([base] * n)
    batch = batch.replace(**{component: getattr(batch, component) + step * torch.eye(n, dtype=code.dtype,
                                                                                     device=code.device)})
    g0, g1 = renderer.geometry(base), renderer.geometry(batch)
    d = g1.vertices - g0.vertices
    if vertex_mask is not None:
        d = d[:, vertex_mask]
    mm = d.pow(2).sum(-1).mean(-1).sqrt() * M_TO_MM
    depth_fraction = d[..., 2].pow(2).sum(-1) / d.pow(2).sum((-2, -1)).clamp_min(1e-20)
    l0 = renderer.camera_landmarks(base)
    l1 = renderer.camera_landmarks(batch)
    px = ((l1 - l0) * (image_size / 2)).pow(2).sum(-1).mean(-1).sqrt()
    return {"mm": mm, "px": px, "depth_fraction": depth_fraction}
