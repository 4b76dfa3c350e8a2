"""Differentiable rendering for chapter 04: cameras, rasteriser, SH shading, albedo, backend switch, and the
FLAME head renderer with its parameters (:class:`FaceParams`, :class:`HeadRenderer`, :mod:`facecourse.render.head`).

Conventions (axes, pixel centres) are written once in :mod:`facecourse.render.camera`.
"""

from facecourse.render.albedo import (
    SYNTHETIC_COMPONENTS,
    UVTextureModel,
    VertexAlbedoModel,
    find_texture_model,
    load_obj_uv,
    load_texture_model,
    sample_texture,
    synthetic_albedo_model,
)
from facecourse.render.backend import pytorch3d_available, rasterize_any, resolve_backend
from facecourse.render.camera import (
    PerspectiveCamera,
    WeakPerspectiveCamera,
    frontal_rotation,
    ndc_to_pixels,
    perspective,
    pixel_centers,
    pixels_to_ndc,
    weak_perspective,
)
from facecourse.render.head import (
    FaceParams,
    HeadRender,
    HeadRenderer,
    frame_camera,
    landmark_visibility,
    region_mask,
)
from facecourse.render.rasterize import (
    Fragments,
    barycentrics_from_faces,
    interpolate,
    interpolate_face_attributes,
    rasterize,
)
from facecourse.render.renderer import RenderOutput, render
from facecourse.render.shading import SH_CONSTANTS, directional_sh, sh_basis, sh_shading
from facecourse.render.soft import soft_silhouette

__all__ = [
    "FaceParams", "Fragments", "HeadRender", "HeadRenderer", "PerspectiveCamera", "RenderOutput", "SH_CONSTANTS", "SYNTHETIC_COMPONENTS", "UVTextureModel",
    "VertexAlbedoModel", "WeakPerspectiveCamera", "barycentrics_from_faces", "directional_sh", "find_texture_model",
    "frame_camera", "frontal_rotation", "interpolate", "interpolate_face_attributes", "landmark_visibility", "load_obj_uv", "load_texture_model", "ndc_to_pixels",
    "perspective", "pixel_centers", "pixels_to_ndc", "pytorch3d_available", "rasterize", "rasterize_any", "region_mask", "soft_silhouette",
    "render", "resolve_backend", "sample_texture", "sh_basis", "sh_shading", "synthetic_albedo_model",
    "weak_perspective",
]
