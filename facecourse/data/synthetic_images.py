"""Synthetic face images: random FLAME heads rendered with their 68 landmarks and masks.

The image side of the paired 2D-3D data. Each sample draws an identity (FLAME shape, per-vertex albedo
coefficients), an expression and jaw opening, a head pose, SH lighting, a background and a crop (weak-
perspective camera framing the landmarks with DECA's scale jitter 1.4-1.8 and a small shift), and renders
it with :func:`facecourse.render.render` (built-in rasteriser, so it runs everywhere).

Outputs per sample: the image ``(3, S, S)`` in [0, 1]; iBUG-68 landmarks in normalised image coordinates
``(68, 2)`` with a visibility flag (inside the image and not hidden, by the z-buffer); the silhouette and
the face-region (skin) masks ``(1, S, S)``; the ground-truth mesh and all parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from facecourse.flame import FLAME, default_model_path, is_synthetic, load_masks, synthetic_model_path, vertex_mask
from facecourse.losses.photometric import region_mask
from facecourse.render import WeakPerspectiveCamera, directional_sh, render, synthetic_albedo_model
from facecourse.render.albedo import find_texture_model, load_texture_model
from facecourse.render.rasterize import Fragments


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
class SyntheticImages:
    """A batch of rendered synthetic heads (batch ``B``, images ``S x S``).

    Attributes:
        images: ``(B, 3, S, S)`` in [0, 1].
        landmarks: ``(B, 68, 2)`` normalised image coordinates (:mod:`facecourse.render.camera`).
        visibility: ``(B, 68)`` 1 where the landmark is inside the image and not occluded.
        mask: ``(B, 1, S, S)`` silhouette of the head.
        skin_mask: ``(B, 1, S, S)`` pixels of the FLAME ``face`` region.
        vertices: ``(B, V, 3)`` ground-truth posed mesh (metres, model space).
        params: ``shape, expression, global_pose, jaw_pose, albedo, lighting, camera`` tensors.
    """

    images: torch.Tensor
    landmarks: torch.Tensor
    visibility: torch.Tensor
    mask: torch.Tensor
    skin_mask: torch.Tensor
    vertices: torch.Tensor
    params: dict = field(default_factory=dict)


class HeadRenderer:
    """FLAME + per-vertex albedo model + renderer: parameters -> images, landmarks and masks.

    The one rendering path for the synthetic data and for analysis-by-synthesis fitting.
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
                n_texture: int = 50):
        """The course's model: real FLAME when present, else synthetic (:func:`facecourse.flame.default_model_path`),
        with FLAME's UV texture space when the model is real and a texture file is present
        (:func:`facecourse.render.albedo.find_texture_model`), else the per-vertex albedo model."""
        path = default_model_path(size)
        texture_path = None if is_synthetic(path) else find_texture_model()
        texture = load_texture_model(texture_path, n_texture, resolution=256) if texture_path else None
        return cls(FLAME.from_file(path, n_shape=n_shape, n_exp=n_exp), load_masks(path.parent), backend, texture)

    def geometry(self, params: dict):
        """FLAME output for ``params`` (``shape``, ``expression``, ``global_pose``, ``jaw_pose``; optional
        ``neck_pose``, ``eye_pose``)."""
        keys = ("shape", "expression", "global_pose", "neck_pose", "jaw_pose", "eye_pose")
        return self.flame(**{k: params[k] for k in keys if k in params})

    def camera_landmarks(self, params: dict) -> torch.Tensor:
        """Projected landmarks ``(B, 68, 2)`` (normalised image coordinates) without rendering."""
        geo = self.geometry(params)
        return WeakPerspectiveCamera(params["camera"]).project(geo.landmarks)[..., :2]

    def __call__(self, params: dict, image_size: int, background: torch.Tensor | None = None):
        """Render.

        Args:
            params: FLAME codes (see :meth:`geometry`), ``albedo (B, K)``, ``lighting (B, 9, 3)``,
                ``camera (B, 3)`` weak perspective.
            image_size: ``S``.
            background: optional ``(B, 3, S, S)``.

        Returns:
            ``(render output, flame output, landmarks (B, 68, 2), skin mask (B, 1, S, S))``.
        """
        geo = self.geometry(params)
        cam = WeakPerspectiveCamera(params["camera"])
        if self.texture_model is not None:
            tex = self.texture_model(params["albedo"].to(self.texture_model.mean))
            out = render(geo.vertices, self.flame.faces, cam, image_size, texture=tex.to(geo.vertices),
                         face_uv=self.texture_model.face_uv().to(geo.vertices), lighting=params["lighting"],
                         background=background, backend=self.backend)
        else:
            albedo = self.albedo_model.to(geo.vertices.device)(params["albedo"])
            out = render(geo.vertices, self.flame.faces, cam, image_size, albedo=albedo,
                         lighting=params["lighting"], background=background, backend=self.backend)
        lmk = cam.project(geo.landmarks)
        skin = region_mask(out.fragments, self.flame.faces, self.face_vertices.to(geo.vertices.device))
        return out, geo, lmk, skin


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


def sample_identity(n: int, n_albedo: int, config: SyntheticImageConfig, generator: torch.Generator) -> dict:
    """Draw ``n`` random people: ``shape (n, config.n_shape)`` FLAME coefficients and ``albedo (n, n_albedo)``
    coefficients clamped to +-2.5 (standard-normal units scaled by ``shape_std`` / ``albedo_std``)."""
    return {"shape": config.shape_std * torch.randn(n, config.n_shape, generator=generator),
            "albedo": (config.albedo_std * torch.randn(n, n_albedo, generator=generator)).clamp(-2.5, 2.5)}


def sample_parameters(n: int, n_albedo: int, config: SyntheticImageConfig, generator: torch.Generator,
                      identity: dict | None = None) -> dict:
    """Draw ``n`` random parameter sets (CPU tensors); ``identity`` (``shape``, ``albedo``) fixes who it is.

    Camera parameters are filled in by :func:`generate` once the landmarks are known (``crop_scale``,
    ``crop_shift`` here).
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
    return {"shape": identity["shape"], "albedo": identity["albedo"],
            "expression": config.exp_std * torch.randn(n, config.n_exp, generator=generator),
            "global_pose": pose, "jaw_pose": jaw, "lighting": lighting,
            "crop_scale": u(*config.crop_scale, n), "crop_shift": config.crop_shift * u(-1, 1, n, 2)}


@torch.no_grad()
def generate(n: int, image_size: int = 224, seed: int = 0, renderer: HeadRenderer | None = None,
             config: SyntheticImageConfig | None = None, identity: dict | None = None,
             batch_size: int = 16) -> SyntheticImages:
    """Render ``n`` random synthetic heads.

    Args:
        n: number of images.
        image_size: ``S`` (224 as DECA).
        seed: random seed (same seed, same images).
        renderer: default :meth:`HeadRenderer.default`.
        config: sampling ranges.
        identity: optional fixed ``shape (n, k)`` / ``albedo (n, K)`` (e.g. several views of one person).
        batch_size: images rendered at once.

    Returns:
        :class:`SyntheticImages`.
    """
    renderer = renderer or HeadRenderer.default()
    config = config or SyntheticImageConfig()
    gen = torch.Generator().manual_seed(seed)
    params = sample_parameters(n, renderer.albedo_model.n_components, config, gen, identity)
    background = random_background(n, image_size, gen)
    dev = renderer.flame.v_template.device
    parts = []
    for s in range(0, n, batch_size):
        p = {k: v[s:s + batch_size].to(dev) for k, v in params.items()}
        geo = renderer.geometry(p)
        p["camera"] = frame_camera(geo.landmarks, p["crop_scale"], p["crop_shift"])
        out, geo, lmk, skin = renderer(p, image_size, background[s:s + batch_size].to(dev))
        vis = landmark_visibility(lmk, out.fragments)
        parts.append((out.image.clamp(0, 1), lmk[..., :2], vis, out.mask, skin, geo.vertices, p["camera"]))
    cat = [torch.cat(x) for x in zip(*parts)]
    params["camera"] = cat[6].cpu()
    return SyntheticImages(images=cat[0], landmarks=cat[1], visibility=cat[2], mask=cat[3], skin_mask=cat[4],
                           vertices=cat[5], params=params)


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
    ident = {k: v.repeat_interleave(views, 0) for k, v in people.items()}
    data = generate(n_identities * views, image_size, seed=seed, renderer=renderer, config=config,
                    identity=ident, batch_size=64)
    codes = torch.cat([ident["shape"], ident["albedo"]], dim=1)
    return data.images, torch.arange(n_identities).repeat_interleave(views), codes


#: How each NoW challenge is imitated: expression scale, yaw range (degrees), occluders, crop scale.
NOW_CHALLENGE_STYLE = {
    "multiview_neutral": {"exp_std": 0.0, "jaw_max_deg": 0.0, "yaw_max_deg": 45.0, "occluders": 0},
    "multiview_expressions": {"exp_std": 1.2, "jaw_max_deg": 18.0, "yaw_max_deg": 45.0, "occluders": 0},
    "multiview_occlusions": {"exp_std": 0.3, "jaw_max_deg": 5.0, "yaw_max_deg": 30.0, "occluders": 2},
    "selfie": {"exp_std": 0.5, "jaw_max_deg": 8.0, "yaw_max_deg": 15.0, "occluders": 0},
}


def _add_occluders(images: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
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


def render_now_images(dataset_dir, image_size: int = 512, seed: int = 0, progress: bool = True) -> int:
    """Render the photos of a synthetic NoW set (:mod:`facecourse.now.synthetic`) in the official layout.

    For every line ``subject/challenge/IMG.jpg`` of ``imagepathsvalidation.txt`` and ``imagepathstest.txt``
    a head with the subject's shape coefficients (from ``synthetic_now.json``) and a per-subject albedo is
    rendered with the style of
    its challenge (:data:`NOW_CHALLENGE_STYLE`: neutral or expressive faces, yaw range, occluders, selfie
    close-ups) and written to ``iphone_pictures/<subject>/<challenge>/IMG.jpg`` (atomically; existing
    files are kept, so the function is resumable).

    Args:
        dataset_dir: the ``final_release_version`` folder.
        image_size: side of the square photos in pixels.
        seed: random seed.

    Returns:
        number of images written.
    """
    import hashlib
    from pathlib import Path

    import matplotlib.image as mpimg
    from tqdm.auto import tqdm

    from facecourse.data.atomic import atomic_path
    from facecourse.now.layout import image_path
    from facecourse.now.synthetic import META_FILE, missing_images, synthetic_meta

    root = Path(dataset_dir)
    meta = synthetic_meta(root)
    if meta is None:
        raise FileNotFoundError(f"{root / META_FILE} not found: render_now_images needs a synthetic NoW set")
    todo = missing_images(root)
    if not todo:
        return 0
    model = Path(meta.get("flame_model") or synthetic_model_path("full"))
    if not model.is_file():
        model = synthetic_model_path("full")
    renderer = HeadRenderer(FLAME.from_file(model, n_shape=meta["n_shape"], n_exp=50), load_masks(model.parent))
    gen = torch.Generator().manual_seed(seed)  # per-subject albedos, drawn in a fixed (sorted) order
    n_alb = renderer.albedo_model.n_components
    albedos = {s: torch.randn(1, n_alb, generator=gen).clamp(-2, 2) for s in sorted(meta["subjects"])}
    written = 0
    for im in tqdm(todo, desc="NoW images", disable=not progress):
        # every random draw of an image depends on its own seed only, so a resumed run writes the same files
        image_seed = seed * 100003 + int(hashlib.sha1(im.line.encode()).hexdigest()[:8], 16)
        style = NOW_CHALLENGE_STYLE[im.challenge]
        config = SyntheticImageConfig(n_shape=meta["n_shape"], exp_std=style["exp_std"],
                                      jaw_max_deg=style["jaw_max_deg"], yaw_max_deg=style["yaw_max_deg"],
                                      crop_scale=(1.3, 1.5) if im.challenge == "selfie" else (1.6, 2.2))
        shape = torch.tensor(meta["subjects"][im.subject]["shape"], dtype=torch.float32)[None]
        data = generate(1, image_size, seed=image_seed, renderer=renderer, config=config,
                        identity={"shape": shape, "albedo": albedos[im.subject]})
        occluder_gen = torch.Generator().manual_seed(image_seed + 1)  # own stream: resuming draws the same
        img = _add_occluders(data.images, style["occluders"], occluder_gen) if style["occluders"] else data.images
        path = image_path(root, im)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            mpimg.imsave(tmp, img[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy(), format="jpg")
        written += 1
    return written
