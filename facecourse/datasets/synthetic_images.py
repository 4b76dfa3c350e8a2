"""Synthetic face images: random FLAME heads rendered with their 68 landmarks and masks.

The image side of the paired 2D-3D data. Each sample draws an identity (FLAME shape, per-vertex albedo
coefficients), an expression and jaw opening, a head pose, SH lighting, a background and a crop (weak-
perspective camera framing the landmarks with DECA's scale jitter 1.4-1.8 and a small shift), and renders
it with :class:`facecourse.render.HeadRenderer` (built-in rasteriser, so it runs everywhere). Parameters are
:class:`facecourse.render.FaceParams`; the crop jitter that framed each image is kept apart in :class:`CropJitter`.

Outputs per sample: the image ``(3, S, S)`` in [0, 1]; iBUG-68 landmarks in normalised image coordinates
``(68, 2)`` with a visibility flag (inside the image and not hidden, by the z-buffer); the silhouette and
the face-region (skin) masks ``(1, S, S)``; the ground-truth mesh and all parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from facecourse.render.head import FaceParams, HeadRenderer, frame_camera, landmark_visibility
from facecourse.render.shading import directional_sh


@dataclass
class SyntheticImageConfig:
    """Sampling ranges (angles in degrees, lengths in metres, colours in [0, 1])."""

    n_shape: int = 20
    shape_std: float = 1.0
    n_exp: int = 10
    exp_std: float = 0.7
    jaw_max_deg: float = 12.0
    yaw_max_deg: float = 30.0
    pitch_max_deg: float = 15.0
    roll_max_deg: float = 8.0
    albedo_std: float = 1.0
    crop_scale: tuple = (1.4, 1.8)
    crop_shift: float = 0.08
    ambient: tuple = (0.45, 0.85)
    light_intensity: tuple = (0.2, 0.6)


@dataclass
class CropJitter:
    """How each image's crop was drawn (sampler state, not a face parameter): ``scale (B,)`` -- the landmark box
    spans ``1/scale`` of the image -- and ``shift (B, 2)`` of the box centre, in fractions of the box size."""

    scale: torch.Tensor
    shift: torch.Tensor

    def __getitem__(self, index) -> "CropJitter":
        return CropJitter(self.scale[index], self.shift[index])


@dataclass
class SyntheticImages:
    """A batch of rendered synthetic heads (batch ``B``, images ``S x S``).

    Attributes:
        images: ``(B, 3, S, S)`` in [0, 1].
        landmarks: ``(B, 68, 2)`` normalised image coordinates (:mod:`facecourse.render.camera`).
        visibility: ``(B, 68)`` 1 where the landmark is inside the image and not occluded.
        mask: ``(B, 1, S, S)`` silhouette of the head.
        skin_mask: ``(B, 1, S, S)`` pixels of the FLAME ``face`` region.
        vertices: ``(B, V, 3)`` ground-truth posed mesh (metres, model space).
        params: the ground truth :class:`FaceParams` (shape, expression, global and jaw pose, albedo, lighting,
            camera).
        crop: the :class:`CropJitter` the cameras were framed with.
    """

    images: torch.Tensor
    landmarks: torch.Tensor
    visibility: torch.Tensor
    mask: torch.Tensor
    skin_mask: torch.Tensor
    vertices: torch.Tensor
    params: FaceParams
    crop: CropJitter


def _axis_angle_xyz(pitch, yaw, roll):
    """Axis-angle of R = Ry(yaw) Rx(pitch) Rz(roll) (radians, ``(B,)`` each) -> ``(B, 3)``."""
    def rot(axis, a):
        c, s = torch.cos(a), torch.sin(a)
        o, z = torch.ones_like(a), torch.zeros_like(a)
        if axis == "x":
            m = [o, z, z, z, c, -s, z, s, c]
        elif axis == "y":
            m = [c, z, s, z, o, z, -s, z, c]
        else:
            m = [c, -s, z, s, c, z, z, z, o]
        return torch.stack(m, -1).reshape(-1, 3, 3)

    r = rot("y", yaw) @ rot("x", pitch) @ rot("z", roll)
    angle = torch.arccos(((r.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1))
    axis = torch.stack([r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]], -1)
    scale = torch.where(angle > 1e-6, angle / (2 * torch.sin(angle).clamp_min(1e-12)), torch.full_like(angle, 0.5))
    return axis * scale[:, None]


def random_background(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Smooth random colour fields (muted towards grey) plus fine noise, ``(n, 3, size, size)`` in [0, 1]."""
    coarse = 0.2 + 0.6 * torch.rand(n, 3, 4, 4, generator=generator)
    img = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    img = img + 0.03 * torch.randn(n, 3, size, size, generator=generator)
    return img.clamp(0, 1)


def sample_identity(n: int, n_albedo: int, config: SyntheticImageConfig, generator: torch.Generator) -> FaceParams:
    """Draw ``n`` random people: ``shape (n, config.n_shape)`` FLAME coefficients and ``albedo (n, n_albedo)``
    coefficients clamped to +-2.5 (standard-normal units scaled by ``shape_std`` / ``albedo_std``)."""
    return FaceParams(shape=config.shape_std * torch.randn(n, config.n_shape, generator=generator),
                      albedo=(config.albedo_std * torch.randn(n, n_albedo, generator=generator)).clamp(-2.5, 2.5))


def sample_parameters(n: int, n_albedo: int, config: SyntheticImageConfig, generator: torch.Generator,
                      identity: FaceParams | None = None) -> tuple[FaceParams, CropJitter]:
    """Draw ``n`` random parameter sets (CPU tensors); ``identity`` (its ``shape`` and ``albedo``) fixes who it is.

    The camera is left ``None``: :func:`generate` frames it once the landmarks are known, with the returned
    :class:`CropJitter`.
    """
    def u(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(*shape, generator=generator)

    deg = math.pi / 180
    if identity is None:
        identity = sample_identity(n, n_albedo, config, generator)
    jaw = torch.zeros(n, 3)
    jaw[:, 0] = u(0, config.jaw_max_deg * deg, n)
    pose = _axis_angle_xyz(u(-1, 1, n) * config.pitch_max_deg * deg, u(-1, 1, n) * config.yaw_max_deg * deg,
                           u(-1, 1, n) * config.roll_max_deg * deg)
    light_dir = torch.stack([u(-1, 1, n), u(-0.3, 1, n), u(0.4, 1.2, n)], -1)
    tint = 1 + 0.08 * torch.randn(n, 3, generator=generator)
    lighting = directional_sh(light_dir, intensity=u(*config.light_intensity, n)[:, None] * tint,
                              ambient=u(*config.ambient, n)[:, None] * tint)
    params = FaceParams(shape=identity.shape, albedo=identity.albedo,
                        expression=config.exp_std * torch.randn(n, config.n_exp, generator=generator),
                        global_pose=pose, jaw_pose=jaw, lighting=lighting)
    return params, CropJitter(scale=u(*config.crop_scale, n), shift=config.crop_shift * u(-1, 1, n, 2))


@torch.no_grad()
def generate(n: int, image_size: int = 224, seed: int = 0, renderer: HeadRenderer | None = None,
             config: SyntheticImageConfig | None = None, identity: FaceParams | None = None,
             batch_size: int = 16) -> SyntheticImages:
    """Render ``n`` random synthetic heads.

    Args:
        n: number of images.
        image_size: ``S`` (224 as DECA).
        seed: random seed (same seed, same images).
        renderer: default :meth:`HeadRenderer.default`.
        config: sampling ranges.
        identity: optional :class:`FaceParams` with a fixed ``shape (n, k)`` and ``albedo (n, K)`` (e.g.
            several views of one person).
        batch_size: images rendered at once.

    Returns:
        :class:`SyntheticImages`.
    """
    renderer = renderer or HeadRenderer.default()
    config = config or SyntheticImageConfig()
    gen = torch.Generator().manual_seed(seed)
    params, crop = sample_parameters(n, renderer.albedo_model.n_components, config, gen, identity)
    background = random_background(n, image_size, gen)
    dev = renderer.flame.v_template.device
    parts, cameras = [], []
    for s in range(0, n, batch_size):
        p, jitter = params[s:s + batch_size].to(dev), crop[s:s + batch_size]
        geo = renderer.geometry(p)
        p = p.replace(camera=frame_camera(geo.landmarks, jitter.scale.to(dev), jitter.shift.to(dev)))
        head = renderer(p, image_size, background[s:s + batch_size].to(dev))
        vis = landmark_visibility(head.landmarks, head.render.fragments)
        parts.append((head.render.image.clamp(0, 1), head.landmarks[..., :2], vis, head.render.mask,
                      head.skin_mask, head.geometry.vertices))
        cameras.append(p.camera.cpu())
    cat = [torch.cat(x) for x in zip(*parts)]
    return SyntheticImages(images=cat[0], landmarks=cat[1], visibility=cat[2], mask=cat[3], skin_mask=cat[4],
                           vertices=cat[5], params=params.replace(camera=torch.cat(cameras)), crop=crop)


@torch.no_grad()
def render_identity_views(n_identities: int, views: int, image_size: int, seed: int = 0,
                          renderer: HeadRenderer | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``views`` images of each of ``n_identities`` random people (for the identity embedder).

    Returns:
        images ``(N, 3, S, S)`` with ``N = n_identities * views``, labels ``(N,)`` long and the identity
        codes ``(N, n_shape + K)`` (FLAME shape, then albedo coefficients; standard-normal units).
    """
    renderer = renderer or HeadRenderer.default()
    config = SyntheticImageConfig()
    people = sample_identity(n_identities, renderer.albedo_model.n_components, config,
                             torch.Generator().manual_seed(seed + 7919))
    ident = FaceParams(shape=people.shape.repeat_interleave(views, 0), albedo=people.albedo.repeat_interleave(views, 0))
    data = generate(n_identities * views, image_size, seed=seed, renderer=renderer, config=config,
                    identity=ident, batch_size=64)
    codes = torch.cat([ident.shape, ident.albedo], dim=1)
    return data.images, torch.arange(n_identities).repeat_interleave(views), codes


def add_occluders(images: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Paint ``count`` random flat-coloured rectangles (hands, glasses, hair) over each image."""
    out = images.clone()
    n, _, h, w = images.shape
    for i in range(n):
        for _ in range(count):
            rh, rw = (torch.rand(2, generator=generator) * torch.tensor([0.25, 0.35]) + 0.1).tolist()
            y0, x0 = (torch.rand(2, generator=generator) * torch.tensor([1 - rh, 1 - rw])).tolist()
            colour = torch.rand(3, 1, 1, generator=generator)
            out[i, :, int(y0 * h):int((y0 + rh) * h), int(x0 * w):int((x0 + rw) * w)] = colour
    return out
