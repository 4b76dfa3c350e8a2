"""Albedo (diffuse reflectance) models: a per-vertex colour model for the synthetic head, and FLAME's
UV texture spaces when the licensed files are present.

**Per-vertex model** (:class:`VertexAlbedoModel`): :math:`\\rho = \\mathrm{clip}(\\bar\\rho + \\sum_k
\\alpha_k B_k, 0, 1)` with a mean colour per vertex :math:`\\bar\\rho` ``(V, 3)`` and a few components
``(K, V, 3)``, each confined to a region from ``FLAME_masks.pkl``: skin tone, skin redness, lips, brows,
iris colour, hair. :func:`synthetic_albedo_model` builds it from a template mesh and its masks.

**UV texture model** (:class:`UVTextureModel`): an image-space linear model :math:`T = \\bar T + \\sum_k
\\alpha_k T_k` sampled at per-pixel UV coordinates. Official file formats (as DECA reads them):

* ``FLAME_texture.npz`` (FLAME texture space): ``mean`` (512*512*3 values, 0..255) and ``tex_dir``
  (..., 200), pixels in BGR order;
* ``FLAME_albedo_from_BFM.npz`` (BFM albedo converted to FLAME's UV layout): ``MU`` and ``PC`` (..., 199),
  values in 0..1, BGR order.

Both are stored row-major ``(T, T, 3)`` with the first row at the *top* of the texture image; UV
coordinates follow the OBJ convention (:math:`v = 0` at the bottom), i.e. row :math:`= (1 - v)\\,T`. The UV
layout (``vt``/``ft``) comes from FLAME's ``head_template.obj`` (:func:`load_obj_uv`) or from ``vt``/``ft``
keys in the npz when present.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

#: Component names of the synthetic per-vertex albedo model, in order.
SYNTHETIC_COMPONENTS = ("skin_tone", "skin_red", "lips", "brows", "iris", "hair")

_SKIN = (0.80, 0.62, 0.52)
_LIPS = (0.72, 0.42, 0.42)
_BROWS = (0.42, 0.30, 0.24)
_SCLERA = (0.92, 0.90, 0.88)
_IRIS = (0.30, 0.30, 0.32)
_HAIR = (0.28, 0.20, 0.15)


@dataclass
class VertexAlbedoModel:
    """Linear per-vertex albedo: ``mean (V, 3)``, ``basis (K, V, 3)``, component ``names`` (K)."""

    mean: torch.Tensor
    basis: torch.Tensor
    names: tuple[str, ...]

    @property
    def n_components(self) -> int:
        """Number of components ``K``."""
        return self.basis.shape[0]

    def __call__(self, coefficients: torch.Tensor) -> torch.Tensor:
        """Albedo ``(B, V, 3)`` in [0, 1] for coefficients ``(B, K')`` (K' <= K; missing ones are zero)."""
        if coefficients.ndim != 2 or coefficients.shape[1] > self.n_components:
            raise ValueError(f"albedo coefficients must have shape (B, <= {self.n_components}), "
                             f"got {tuple(coefficients.shape)}")
        k = coefficients.shape[1]
        basis = self.basis[:k].to(coefficients)
        out = self.mean.to(coefficients) + torch.einsum("bk,kvc->bvc", coefficients, basis)
        return out.clamp(0.0, 1.0)

    def to(self, *args, **kwargs) -> "VertexAlbedoModel":
        """A copy with the tensors moved/cast like ``torch.Tensor.to``."""
        return VertexAlbedoModel(self.mean.to(*args, **kwargs), self.basis.to(*args, **kwargs), self.names)


def _region(n_vertices: int, idx) -> np.ndarray:
    m = np.zeros(n_vertices, dtype=bool)
    if idx is not None and len(idx):
        m[np.asarray(idx, dtype=np.int64)] = True
    return m


def synthetic_albedo_model(template: np.ndarray | torch.Tensor, masks: dict[str, np.ndarray]) -> VertexAlbedoModel:
    """Build the synthetic head's per-vertex albedo model from the template and the FLAME vertex masks.

    Regions: eyeballs (``left_eyeball``/``right_eyeball``: sclera, with the front-most cap as iris), lips
    (``lips``), brows (the upper third, in height, of ``left_eye_region``/``right_eye_region`` minus the
    eyeballs), hair (``scalp``), and skin (everything else). Components (unit coefficient = a plausible
    1-sigma change): skin tone (lighter/darker skin), skin redness, lip colour, brow darkness, iris colour
    (brown <-> blue), hair lightness.

    Args:
        template: ``(V, 3)`` template vertices (model space, metres).
        masks: region name -> vertex indices (:func:`facecourse.flame.load_masks`).

    Returns:
        :class:`VertexAlbedoModel` with ``K = 6`` components named :data:`SYNTHETIC_COMPONENTS`.
    """
    v = np.asarray(template.detach().cpu() if torch.is_tensor(template) else template, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"template must have shape (V, 3), got {v.shape}")
    n = v.shape[0]
    eyes = _region(n, masks.get("left_eyeball")) | _region(n, masks.get("right_eyeball"))
    iris = np.zeros(n, dtype=bool)
    for key in ("left_eyeball", "right_eyeball"):
        ball = _region(n, masks.get(key))
        if ball.any():
            z = v[ball, 2]
            iris[np.flatnonzero(ball)[z >= z.max() - 0.12 * (z.max() - z.min())]] = True  # cap of ~30 degrees
    lips = _region(n, masks.get("lips")) & ~eyes
    brows = np.zeros(n, dtype=bool)
    for key in ("left_eye_region", "right_eye_region"):
        reg = _region(n, masks.get(key)) & ~eyes
        if reg.any():
            y = v[reg, 1]
            brows[np.flatnonzero(reg)[y >= y.max() - (y.max() - y.min()) / 3]] = True
    hair = _region(n, masks.get("scalp")) & ~eyes
    skin = ~(eyes | lips | brows | hair)

    mean = np.tile(np.asarray(_SKIN), (n, 1))
    mean[lips], mean[brows], mean[hair] = _LIPS, _BROWS, _HAIR
    mean[eyes], mean[iris] = _SCLERA, _IRIS
    basis = np.zeros((len(SYNTHETIC_COMPONENTS), n, 3))
    face = skin | lips
    basis[0, face] = (-0.12, -0.11, -0.10)                 # skin tone: darker for positive coefficients
    basis[1, skin] = (0.04, -0.02, -0.02)                  # redness
    basis[2, lips] = (-0.06, -0.08, -0.06)                 # lips: pale pink <-> deep red
    basis[3, brows] = (-0.08, -0.07, -0.06)                # brow darkness
    basis[4, iris] = (0.05, 0.14, 0.22)                    # iris: brown (-1) <-> blue-grey (+1)
    basis[5, hair] = (0.10, 0.08, 0.05)                    # hair lightness
    return VertexAlbedoModel(torch.tensor(mean, dtype=torch.float32), torch.tensor(basis, dtype=torch.float32),
                             SYNTHETIC_COMPONENTS)


def load_obj_uv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the UV layout of an OBJ file (e.g. FLAME's ``head_template.obj``).

    Returns:
        ``vt (T, 2)`` float UV coordinates and ``ft (F, 3)`` int64 UV index per face corner (0-based).
    """
    vt, ft = [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "vt":
                vt.append([float(parts[1]), float(parts[2])])
            elif parts[0] == "f":
                corners = [p.split("/") for p in parts[1:]]
                if len(corners) != 3 or any(len(c) < 2 or not c[1] for c in corners):
                    raise ValueError(f"{path}: faces must be triangles with UV indices (f v/vt ...), got {line!r}")
                ft.append([int(c[1]) - 1 for c in corners])
    if not vt or not ft:
        raise ValueError(f"{path}: no 'vt' or no UV-indexed 'f' lines")
    return np.asarray(vt, dtype=np.float64), np.asarray(ft, dtype=np.int64)


@dataclass
class UVTextureModel:
    """Linear UV texture model: ``mean (3, T, T)`` and ``basis (K, 3, T, T)`` RGB in [0, 1], UV layout
    ``uv (Vt, 2)`` and ``uv_faces (F, 3)``."""

    mean: torch.Tensor
    basis: torch.Tensor
    uv: torch.Tensor
    uv_faces: torch.Tensor

    @property
    def n_components(self) -> int:
        """Number of components ``K``."""
        return self.basis.shape[0]

    def __call__(self, coefficients: torch.Tensor) -> torch.Tensor:
        """Texture images ``(B, 3, T, T)`` for coefficients ``(B, K')`` (K' <= K)."""
        if coefficients.ndim != 2 or coefficients.shape[1] > self.n_components:
            raise ValueError(f"texture coefficients must have shape (B, <= {self.n_components}), "
                             f"got {tuple(coefficients.shape)}")
        k = coefficients.shape[1]
        return self.mean.to(coefficients) + torch.einsum("bk,kchw->bchw", coefficients,
                                                         self.basis[:k].to(coefficients))

    def face_uv(self) -> torch.Tensor:
        """UV coordinates per face corner ``(F, 3, 2)`` (for :func:`interpolate_face_attributes`)."""
        return self.uv[self.uv_faces]


def load_texture_model(path: str | Path, n_components: int = 50, uv_obj: str | Path | None = None,
                       resolution: int | None = None) -> UVTextureModel:
    """Load ``FLAME_texture.npz`` or ``FLAME_albedo_from_BFM.npz`` (formats in the module docstring).

    Args:
        path: the npz file (``np.load`` with ``allow_pickle=False``).
        n_components: how many components to keep.
        uv_obj: an OBJ with the UV layout (``head_template.obj``); default ``head_template.obj`` beside
            ``path``, or ``vt``/``ft`` arrays inside the npz.
        resolution: optional output texture size (DECA resizes to 256); default: the file's.

    Returns:
        :class:`UVTextureModel` in RGB, values in [0, 1].
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        if {"mean", "tex_dir"} <= keys:
            mean, basis, scale = data["mean"], data["tex_dir"], 1 / 255.0
        elif {"MU", "PC"} <= keys:
            mean, basis, scale = data["MU"], data["PC"], 1.0
        else:
            raise ValueError(f"{path}: expected keys mean/tex_dir (FLAME_texture.npz) or MU/PC "
                             f"(FLAME_albedo_from_BFM.npz), found {sorted(keys)}")
        vt_ft = (data["vt"], data["ft"]) if {"vt", "ft"} <= keys else None
    size = int(round(np.sqrt(mean.size / 3)))
    if size * size * 3 != mean.size:
        raise ValueError(f"{path}: mean has {mean.size} values, not a square RGB texture")
    k_all = basis.size // mean.size
    basis = basis.reshape(size, size, 3, k_all)[..., :n_components]
    mean_t = torch.tensor(mean.reshape(size, size, 3)[..., ::-1] * scale, dtype=torch.float32)  # BGR -> RGB
    basis_t = torch.tensor(np.ascontiguousarray(basis[:, :, ::-1]) * scale, dtype=torch.float32)
    mean_t = mean_t.permute(2, 0, 1).contiguous()
    basis_t = basis_t.permute(3, 2, 0, 1).contiguous()
    if resolution is not None and resolution != size:
        mean_t = F.interpolate(mean_t[None], size=(resolution, resolution), mode="bilinear", align_corners=False)[0]
        basis_t = F.interpolate(basis_t, size=(resolution, resolution), mode="bilinear", align_corners=False)
    if vt_ft is None:
        obj = Path(uv_obj) if uv_obj is not None else path.with_name("head_template.obj")
        if not obj.is_file():
            raise FileNotFoundError(f"UV layout not found: pass uv_obj= (FLAME's head_template.obj); tried {obj}")
        vt_ft = load_obj_uv(obj)
    uv = torch.tensor(np.asarray(vt_ft[0], dtype=np.float64), dtype=torch.float32)
    uv_faces = torch.tensor(np.asarray(vt_ft[1], dtype=np.int64))
    return UVTextureModel(mean_t, basis_t, uv, uv_faces)


#: Official texture-space files, searched in this order by :func:`find_texture_model`.
TEXTURE_FILES = ("FLAME_albedo_from_BFM.npz", "FLAME_texture.npz")


def find_texture_model(folders=None) -> Path | None:
    """The first official FLAME texture space present (``None`` if none).

    Looks for :data:`TEXTURE_FILES` in ``folders`` (default: the data directory and its ``FLAME2020``
    folder, where the FLAME model lives; ``head_template.obj`` with the UV layout must sit beside it).
    """
    if folders is None:
        from facecourse.data.paths import data_dir
        from facecourse.flame.paths import real_model_path

        folders = (data_dir(), real_model_path().parent)
    for folder in folders:
        for name in TEXTURE_FILES:
            path = Path(folder) / name
            if path.is_file():
                return path
    return None


def sample_texture(texture: torch.Tensor, uv: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Bilinearly sample texture images at per-pixel UV coordinates (differentiable in both).

    Args:
        texture: ``(B, C, T, T)``, first row = top of the texture image.
        uv: ``(B, H, W, 2)`` OBJ-convention UVs in [0, 1] (``v = 0`` at the bottom).
        mask: optional ``(B, H, W)`` bool; pixels outside it are set to zero.

    Returns:
        ``(B, C, H, W)``.
    """
    grid = torch.stack([uv[..., 0] * 2 - 1, 1 - uv[..., 1] * 2], dim=-1).to(texture.dtype)
    out = F.grid_sample(texture, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if mask is not None:
        out = out * mask[:, None].to(out.dtype)
    return out
