"""Render a mesh: project, rasterise, interpolate normals and albedo, shade with SH lighting, composite.

.. math::
    I(p) = m(p)\\, \\rho(p) \\odot \\sum_{k=1}^{9} H_k(n(p)) L_k + (1 - m(p))\\, I_{bg}(p)

with the silhouette :math:`m`, the interpolated albedo :math:`\\rho` (per-vertex colours, or a UV texture
sampled at interpolated UVs), the interpolated and re-normalised view-frame normal :math:`n`
(:mod:`facecourse.render.shading`) and a background image :math:`I_{bg}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facecourse.mesh import vertex_normals
from facecourse.render.albedo import sample_texture
from facecourse.render.backend import rasterize_any
from facecourse.render.rasterize import Fragments, check_finite, interpolate, interpolate_face_attributes
from facecourse.render.shading import sh_shading


@dataclass
class RenderOutput:
    """Images ``(B, C, H, W)`` of one render.

    Attributes:
        image: shaded colour composited over the background, in [0, 1] where the inputs are.
        mask: ``(B, 1, H, W)`` silhouette (1 on the mesh).
        albedo: interpolated albedo (0 on background).
        shading: SH irradiance (0 on background).
        normals: unit view-frame normals (0 on background).
        depth: ``(B, 1, H, W)`` the camera's depth (0 on background).
        fragments: the rasteriser output.
    """

    image: torch.Tensor
    mask: torch.Tensor
    albedo: torch.Tensor
    shading: torch.Tensor
    normals: torch.Tensor
    depth: torch.Tensor
    fragments: Fragments


def _chw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def render(vertices: torch.Tensor, faces: torch.Tensor, camera, image_size, albedo: torch.Tensor | None = None,
           lighting: torch.Tensor | None = None, texture: torch.Tensor | None = None,
           face_uv: torch.Tensor | None = None, background: torch.Tensor | None = None,
           backend: str = "auto", cull_backfaces: bool = False, shading: str = "pixel") -> RenderOutput:
    """Render shaded meshes.

    Args:
        vertices: ``(B, V, 3)`` model space (metres).
        faces: ``(F, 3)`` int64, counter-clockwise seen from outside.
        camera: :class:`~facecourse.render.camera.WeakPerspectiveCamera` or
            :class:`~facecourse.render.camera.PerspectiveCamera` (anything with ``project``,
            ``view_normals`` and ``perspective_correct``).
        image_size: ``H`` or ``(H, W)``.
        albedo: ``(B, V, 3)`` per-vertex albedo in [0, 1] (default mid grey), ignored when ``texture``
            is given.
        lighting: ``(B, 9, 3)`` SH coefficients (default: no shading, image = albedo).
        texture: ``(B, 3, T, T)`` UV texture (with ``face_uv``).
        face_uv: ``(F, 3, 2)`` UV coordinates per face corner.
        background: ``(B, 3, H, W)`` image behind the mesh (default black).
        backend: ``"auto"``, ``"torch"`` or ``"pytorch3d"`` (:mod:`facecourse.render.backend`).
        cull_backfaces: skip faces turned away from the camera.
        shading: ``"pixel"`` (Phong-style: interpolate the vertex normals, re-normalise, shade every pixel)
            or ``"vertex"`` (Gouraud: shade the vertices, interpolate the irradiance).

    Returns:
        :class:`RenderOutput`.
    """
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must have shape (B, V, 3), got {tuple(vertices.shape)}")
    check_finite(vertices, "vertices")
    if faces.ndim != 2 or faces.shape[-1] != 3 or faces.shape[0] == 0:
        raise ValueError(f"faces must be a non-empty (F, 3) tensor, got {tuple(faces.shape)}")
    b = vertices.shape[0]
    faces = faces.to(vertices.device)
    screen = camera.project(vertices)
    fragments = rasterize_any(screen, faces, image_size, backend=backend,
                              perspective_correct=camera.perspective_correct, cull_backfaces=cull_backfaces)
    mask = fragments.mask[..., None].to(vertices.dtype)  # (B, H, W, 1)
    if shading not in ("pixel", "vertex"):
        raise ValueError(f"shading must be 'pixel' or 'vertex', got {shading!r}")
    view_vertex_normals = camera.view_normals(vertex_normals(vertices, faces))
    normals = interpolate(view_vertex_normals, faces, fragments)
    normals = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    normals = normals * mask
    if texture is not None:
        if face_uv is None:
            raise ValueError("texture given without face_uv (F, 3, 2)")
        uv = interpolate_face_attributes(face_uv.to(vertices), fragments)
        albedo_img = sample_texture(texture, uv, fragments.mask).permute(0, 2, 3, 1)
    else:
        if albedo is None:
            albedo = torch.full_like(vertices, 0.7)
        if albedo.shape != vertices.shape:
            raise ValueError(f"albedo must have shape {tuple(vertices.shape)}, got {tuple(albedo.shape)}")
        albedo_img = interpolate(albedo, faces, fragments)
    if lighting is None:
        irradiance = mask.expand_as(albedo_img)
    elif shading == "pixel":
        irradiance = sh_shading(normals, lighting) * mask
    else:
        irradiance = interpolate(sh_shading(view_vertex_normals, lighting), faces, fragments)
    colour = albedo_img * irradiance
    h, w = fragments.pix_to_face.shape[1:]
    if background is None:
        background = torch.zeros(b, 3, h, w, dtype=vertices.dtype, device=vertices.device)
    image = _chw(colour) + (1 - _chw(mask)) * background
    return RenderOutput(image=image, mask=_chw(mask), albedo=_chw(albedo_img), shading=_chw(irradiance),
                        normals=_chw(normals), depth=fragments.zbuf[:, None], fragments=fragments)
