"""A FLAME head rendered from its parameters: :class:`FaceParams`, :class:`HeadRenderer` and the image-space
helpers every user of it needs (region masks, landmark visibility, framing a face in a crop).

:class:`FaceParams` is the one container the synthetic-data generator, the analysis-by-synthesis fit, the
losses and the regressor exchange. Shapes (``B`` = batch):

==============  ============  ============================================================================
field           shape         meaning
==============  ============  ============================================================================
``shape``       ``(B, k)``    FLAME identity coefficients, ``k <= n_shape`` (missing trailing ones = 0)
``expression``  ``(B, k)``    FLAME expression coefficients, ``k <= n_exp``
``global_pose`` ``(B, 3)``    axis-angle of the root joint (radians)
``neck_pose``   ``(B, 3)``    axis-angle of the neck
``jaw_pose``    ``(B, 3)``    axis-angle of the jaw
``eye_pose``    ``(B, 6)``    left eye, right eye axis-angles
``camera``      ``(B, 3)``    weak perspective ``[s, tx, ty]`` (:mod:`facecourse.render.camera`)
``lighting``    ``(B, 9, 3)`` SH coefficients per colour channel (:mod:`facecourse.render.shading`)
``albedo``      ``(B, K)``    albedo-model coefficients (:mod:`facecourse.render.albedo`)
==============  ============  ============================================================================

``None`` means zeros (the mean face, neutral pose); the camera alone has no neutral value and must be given
to render or project.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator

import torch

from facecourse.flame import FLAME, default_model_path, is_synthetic, load_masks, vertex_mask
from facecourse.flame.model import FLAMEOutput
from facecourse.render.albedo import find_texture_model, load_texture_model, synthetic_albedo_model
from facecourse.render.camera import WeakPerspectiveCamera
from facecourse.render.rasterize import Fragments, interpolate
from facecourse.render.renderer import RenderOutput, render
from facecourse.render.soft import soft_silhouette

#: The inputs of :class:`facecourse.flame.FLAME` among the fields of :class:`FaceParams`.
FLAME_FIELDS = ("shape", "expression", "global_pose", "neck_pose", "jaw_pose", "eye_pose")
#: The pose fields (zeroed, with the expression, by :meth:`FaceParams.neutral`).
POSE_FIELDS = ("global_pose", "neck_pose", "jaw_pose", "eye_pose")


@dataclass
class FaceParams:
    """Parameters of a batch of faces (see the module docstring for each field's shape; ``None`` = zeros)."""

    shape: torch.Tensor | None = None
    expression: torch.Tensor | None = None
    global_pose: torch.Tensor | None = None
    neck_pose: torch.Tensor | None = None
    jaw_pose: torch.Tensor | None = None
    eye_pose: torch.Tensor | None = None
    camera: torch.Tensor | None = None
    lighting: torch.Tensor | None = None
    albedo: torch.Tensor | None = None

    def __post_init__(self):
        scalars = [name for name, value in self.items() if value.ndim == 0]
        if scalars:
            raise ValueError(f"FaceParams fields must be batched tensors (B, ...), got scalars in {scalars}")
        sizes = {name: value.shape[0] for name, value in self.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"FaceParams fields disagree on the batch size: {sizes}")

    def items(self) -> Iterator[tuple[str, torch.Tensor]]:
        """``(name, tensor)`` of every field that is set (not ``None``), in declaration order."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                yield f.name, value

    @property
    def batch_size(self) -> int:
        """``B``; 0 when no field is set."""
        return next((value.shape[0] for _, value in self.items()), 0)

    def __len__(self) -> int:
        return self.batch_size

    def _map(self, fn) -> "FaceParams":
        return FaceParams(**{name: fn(value) for name, value in self.items()})

    def to(self, *args, **kwargs) -> "FaceParams":
        """Every set field moved/cast with ``Tensor.to(*args, **kwargs)`` (device, dtype)."""
        return self._map(lambda t: t.to(*args, **kwargs))

    def detach(self) -> "FaceParams":
        """Every set field detached from the autograd graph."""
        return self._map(torch.Tensor.detach)

    def clone(self) -> "FaceParams":
        """A deep copy of the tensors."""
        return self._map(torch.Tensor.clone)

    def __getitem__(self, index) -> "FaceParams":
        """The faces at ``index`` along the batch (an int keeps the batch dimension: ``params[i]`` has ``B = 1``)."""
        if isinstance(index, str):
            raise TypeError(f"FaceParams is indexed along the batch; read a field as an attribute (params.{index})")
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return self._map(lambda t: t[index])

    @classmethod
    def cat(cls, params: list["FaceParams"]) -> "FaceParams":
        """Concatenate along the batch; a field must be set in all parts or in none."""
        if not params:
            raise ValueError("FaceParams.cat needs at least one FaceParams")
        out = {}
        for f in dataclasses.fields(cls):
            values = [getattr(p, f.name) for p in params]
            given = [v is not None for v in values]
            if any(given) and not all(given):
                raise ValueError(f"FaceParams.cat: field {f.name!r} is set in some parts and None in others")
            if all(given):
                out[f.name] = torch.cat(values)
        return cls(**out)

    def replace(self, **changes) -> "FaceParams":
        """A copy with some fields replaced (``None`` clears a field)."""
        return dataclasses.replace(self, **changes)

    def flame_inputs(self) -> dict[str, torch.Tensor]:
        """The set FLAME inputs as keyword arguments of :meth:`facecourse.flame.FLAME.forward`."""
        return {name: value for name, value in self.items() if name in FLAME_FIELDS}

    def neutral(self) -> "FaceParams":
        """The identity alone: shape kept, expression and every pose zeroed (what NoW and a neutral 3D-ID
        loss compare); camera, lighting and albedo kept."""
        return self.replace(expression=None, **{name: None for name in POSE_FIELDS})


@dataclass
class HeadRender:
    """What :class:`HeadRenderer` draws for a batch of ``B`` faces at ``S x S`` pixels.

    Attributes:
        render: the :class:`~facecourse.render.renderer.RenderOutput` (image, silhouette, fragments, ...).
        geometry: the :class:`~facecourse.flame.model.FLAMEOutput` (vertices ``(B, V, 3)`` metres, ...).
        landmarks: ``(B, 68, 3)`` projected iBUG landmarks ``(u, v, depth)``, normalised image coordinates.
        skin_mask: ``(B, 1, S, S)`` pixels of the FLAME ``face`` region (the photometric loss's mask).
    """

    render: RenderOutput
    geometry: FLAMEOutput
    landmarks: torch.Tensor
    skin_mask: torch.Tensor


def region_mask(fragments: Fragments, faces: torch.Tensor, vertex_mask: torch.Tensor) -> torch.Tensor:
    """Pixels of a vertex region (e.g. skin = face minus eyes and lips) in a rendered image.

    A pixel belongs to the region when the interpolated 0/1 vertex indicator exceeds 1/2.

    Args:
        fragments: from the rasteriser, ``B x H x W``.
        faces: ``(F, 3)`` int64.
        vertex_mask: ``(V,)`` bool or 0/1.

    Returns:
        ``(B, 1, H, W)`` float 0/1 (no gradient).
    """
    with torch.no_grad():
        ind = vertex_mask.to(fragments.bary.dtype).reshape(-1, 1)
        val = interpolate(ind, faces, fragments)[..., 0]
        return ((val > 0.5) & fragments.mask).to(fragments.bary.dtype)[:, None]


class HeadRenderer:
    """FLAME + albedo model + renderer: :class:`FaceParams` -> images, landmarks and masks.

    The one rendering path for the synthetic data, the analysis-by-synthesis fit and the regressor.
    """

    def __init__(self, flame, masks: dict, backend: str = "torch", texture_model=None):
        """
        Args:
            flame: a :class:`facecourse.flame.FLAME`.
            masks: its vertex regions (:func:`facecourse.flame.load_masks`).
            backend: rasteriser backend (:func:`facecourse.render.rasterize_any`).
            texture_model: optional :class:`facecourse.render.UVTextureModel` (FLAME's texture space, UV
                layout on the same faces); the ``albedo`` codes then index it instead of the per-vertex
                model.
        """
        self.flame = flame
        self.masks = masks
        if texture_model is not None and texture_model.uv_faces.shape != flame.faces.shape:
            raise ValueError(f"texture UV faces {tuple(texture_model.uv_faces.shape)} do not match the model's "
                             f"faces {tuple(flame.faces.shape)}")
        self.texture_model = texture_model
        self.albedo_model = texture_model if texture_model is not None else synthetic_albedo_model(
            flame.v_template, masks)
        #: ``(V,)`` bool, the skin region of the photometric loss (empty when the masks have no ``face``).
        self.face_vertices = vertex_mask(masks, ["face"] if "face" in masks else [], flame.n_vertices)
        self.backend = backend

    @classmethod
    def default(cls, size: str = "small", n_shape: int = 100, n_exp: int = 50, backend: str = "torch",
                n_texture: int = 50) -> "HeadRenderer":
        """The course's model: real FLAME when present, else synthetic (:func:`facecourse.flame.default_model_path`),
        with FLAME's UV texture space when the model is real and a texture file is present
        (:func:`facecourse.render.albedo.find_texture_model`), else the per-vertex albedo model."""
        path = default_model_path(size)
        texture_path = None if is_synthetic(path) else find_texture_model()
        texture = load_texture_model(texture_path, n_texture, resolution=256) if texture_path else None
        return cls(FLAME.from_file(path, n_shape=n_shape, n_exp=n_exp), load_masks(path.parent), backend, texture)

    def geometry(self, params: FaceParams) -> FLAMEOutput:
        """FLAME output (vertices ``(B, V, 3)`` metres, landmarks, ...) of the FLAME fields of ``params``."""
        return self.flame(**params.flame_inputs(), batch_size=params.batch_size or None)

    @staticmethod
    def _camera(params: FaceParams) -> WeakPerspectiveCamera:
        if params.camera is None:
            raise ValueError("FaceParams.camera is None: a weak-perspective camera (B, 3) is needed to project")
        return WeakPerspectiveCamera(params.camera)

    def camera_landmarks(self, params: FaceParams) -> torch.Tensor:
        """Projected landmarks ``(B, 68, 2)`` (normalised image coordinates) without rendering."""
        return self._camera(params).project(self.geometry(params).landmarks)[..., :2]

    def soft_silhouette(self, params: FaceParams, image_size: int, sigma: float = 1.0) -> torch.Tensor:
        """The head's soft silhouette ``(B, S, S)`` in [0, 1] (:func:`facecourse.render.soft.soft_silhouette`,
        blur ``sigma`` pixels²): unlike the rendered mask it has a gradient with respect to the outline."""
        screen = self._camera(params).project(self.geometry(params).vertices)
        return soft_silhouette(screen, self.flame.faces, image_size, sigma=sigma)

    def __call__(self, params: FaceParams, image_size: int, background: torch.Tensor | None = None) -> HeadRender:
        """Render ``params`` (``camera`` required; ``lighting`` ``None`` = unshaded albedo; ``albedo`` ``None``
        = the model's mean) at ``image_size`` pixels over ``background`` ``(B, 3, S, S)`` (default black)."""
        geo = self.geometry(params)
        cam = self._camera(params)
        b = geo.vertices.shape[0]
        codes = params.albedo if params.albedo is not None else geo.vertices.new_zeros(b, self.albedo_model.n_components)
        if self.texture_model is not None:
            tex = self.texture_model(codes.to(self.texture_model.mean))
            out = render(geo.vertices, self.flame.faces, cam, image_size, texture=tex.to(geo.vertices),
                         face_uv=self.texture_model.face_uv().to(geo.vertices), lighting=params.lighting,
                         background=background, backend=self.backend)
        else:
            albedo = self.albedo_model.to(geo.vertices.device)(codes)
            out = render(geo.vertices, self.flame.faces, cam, image_size, albedo=albedo,
                         lighting=params.lighting, background=background, backend=self.backend)
        skin = region_mask(out.fragments, self.flame.faces, self.face_vertices.to(geo.vertices.device))
        return HeadRender(render=out, geometry=geo, landmarks=cam.project(geo.landmarks), skin_mask=skin)


def landmark_visibility(points: torch.Tensor, fragments: Fragments, tolerance: float = 0.005) -> torch.Tensor:
    """Visibility of projected points: inside the image and not behind the rendered surface.

    Args:
        points: ``(B, L, 3)`` ``(u, v, depth)`` from the camera that made ``fragments``.
        fragments: rasteriser output ``(B, H, W)``.
        tolerance: depth slack (camera depth units; 5 mm for weak perspective in metres).

    Returns:
        ``(B, L)`` float 0/1.
    """
    b, h, w = fragments.pix_to_face.shape
    col = torch.floor((points[..., 0] + 1) * w / 2).long()
    row = torch.floor((points[..., 1] + 1) * h / 2).long()
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    flat = (row.clamp(0, h - 1) * w + col.clamp(0, w - 1))
    zbuf = torch.gather(fragments.zbuf.reshape(b, -1), 1, flat)
    covered = torch.gather(fragments.mask.reshape(b, -1), 1, flat)
    front = ~covered | (points[..., 2] <= zbuf + tolerance)
    return (inside & front).to(points.dtype)


def frame_camera(landmarks: torch.Tensor, crop_scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Weak-perspective camera that frames the landmarks like a face crop.

    With the landmarks' bounding box (model x, y) of centre :math:`c` and size :math:`d = \\max(w, h)`:
    :math:`s = 2 / (k d)` (the box spans :math:`1/k` of the image) and :math:`t = -c + \\delta d`.

    Args:
        landmarks: ``(B, 68, 3)`` model space. crop_scale: ``(B,)`` k. shift: ``(B, 2)`` fractions of d.

    Returns:
        ``(B, 3)`` ``[s, tx, ty]``.
    """
    lo, hi = landmarks[..., :2].amin(1), landmarks[..., :2].amax(1)
    centre, size = (lo + hi) / 2, (hi - lo).amax(-1)
    s = 2.0 / (crop_scale * size)
    t = -centre + shift * size[:, None]
    return torch.cat([s[:, None], t], dim=-1)
