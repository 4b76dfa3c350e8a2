"""Backend switch: the built-in PyTorch rasteriser or pytorch3d's, behind one interface and one convention.

Both return :class:`facecourse.render.rasterize.Fragments` for screen points in facecourse's normalised
image coordinates (:mod:`facecourse.render.camera`: +u right, +v down, each axis in [-1, 1]).

pytorch3d's NDC has +x *left* and +y *up*, the top-left pixel at (+1, +1), and for a non-square image the
shorter side spans [-1, 1] while the longer one spans [-r, r], r = long / short. So a facecourse point
:math:`(u, v)` on an :math:`H \\times W` image is :math:`(x, y) = (-u\\,W/S, -v\\,H/S)` with
:math:`S = \\min(H, W)`. pytorch3d also skips faces behind the camera (depth below ~0), so for
orthographic (weak-perspective) depths, which may be negative, all depths are shifted by a constant —
this changes no ordering and no barycentric coordinate.

pytorch3d is not a dependency (no wheels for most torch/CUDA pairs); ``backend="auto"`` uses it when it
imports, else the built-in rasteriser.
"""

from __future__ import annotations

import importlib.util

import torch

from facecourse.render.rasterize import DEFAULT_MAX_CANDIDATES, Fragments, rasterize

BACKENDS = ("torch", "pytorch3d")


def pytorch3d_available() -> bool:
    """True when ``pytorch3d`` can be imported."""
    return importlib.util.find_spec("pytorch3d") is not None


def resolve_backend(backend: str = "auto") -> str:
    """Resolve ``"auto"`` to ``"pytorch3d"`` when importable, else ``"torch"``; validate explicit names."""
    if backend == "auto":
        return "pytorch3d" if pytorch3d_available() else "torch"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'auto' or one of {BACKENDS}, got {backend!r}")
    if backend == "pytorch3d" and not pytorch3d_available():
        raise ImportError("backend='pytorch3d' requested but pytorch3d is not installed; use 'torch'")
    return backend


def to_pytorch3d_ndc(screen: torch.Tensor, image_size: tuple[int, int], shift_depth: bool) -> torch.Tensor:
    """facecourse ``(u, v, depth)`` ``(B, V, 3)`` -> pytorch3d NDC ``(x, y, z)`` (see the module docstring).

    Args:
        shift_depth: add a per-batch constant so that every depth is >= 1 (orthographic cameras).
    """
    h, w = image_size
    s = min(h, w)
    z = screen[..., 2]
    if shift_depth:
        z = z - z.detach().amin(dim=1, keepdim=True) + 1.0
    return torch.stack([-screen[..., 0] * (w / s), -screen[..., 1] * (h / s), z], dim=-1)


def rasterize_pytorch3d(screen: torch.Tensor, faces: torch.Tensor, image_size: tuple[int, int],
                        perspective_correct: bool = False, cull_backfaces: bool = False) -> Fragments:
    """Rasterise with ``pytorch3d.renderer.mesh.rasterize_meshes`` (blur 0, one face per pixel).

    Same arguments and output as :func:`facecourse.render.rasterize.rasterize`; the face indices are
    converted from pytorch3d's packed indices (``b * F + f``) back to indices into ``faces``.
    """
    from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
    from pytorch3d.structures import Meshes

    b, n_faces = screen.shape[0], faces.shape[0]
    verts = to_pytorch3d_ndc(screen, image_size, shift_depth=not perspective_correct)
    meshes = Meshes(verts=verts, faces=faces.to(screen.device)[None].expand(b, -1, -1))
    pix_to_face, zbuf, bary, _ = rasterize_meshes(
        meshes, image_size=tuple(image_size), blur_radius=0.0, faces_per_pixel=1,
        perspective_correct=perspective_correct, cull_backfaces=cull_backfaces)
    p2f = pix_to_face[..., 0]
    mask = p2f >= 0
    offsets = torch.arange(b, device=p2f.device)[:, None, None] * n_faces
    p2f = torch.where(mask, p2f - offsets, torch.full_like(p2f, -1))
    m = mask.to(screen.dtype)
    z = zbuf[..., 0]
    if not perspective_correct:  # undo the depth shift so zbuf is in the caller's depth
        z = z + (screen[..., 2].detach().amin(dim=1) - 1.0)[:, None, None]
    return Fragments(pix_to_face=p2f, bary=bary[..., 0, :] * m[..., None], zbuf=z * m)


def rasterize_any(screen: torch.Tensor, faces: torch.Tensor, image_size, backend: str = "auto",
                  perspective_correct: bool = False, cull_backfaces: bool = False,
                  max_candidates: int = DEFAULT_MAX_CANDIDATES) -> Fragments:
    """Rasterise with the chosen backend (``"auto"``, ``"torch"`` or ``"pytorch3d"``).

    Args:
        screen: ``(B, V, 3)`` ``(u, v, depth)`` from a camera's ``project``.
        faces: ``(F, 3)`` int64.
        image_size: ``H`` or ``(H, W)``.

    Returns:
        :class:`Fragments`.
    """
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if resolve_backend(backend) == "pytorch3d":
        return rasterize_pytorch3d(screen, faces, size, perspective_correct, cull_backfaces)
    return rasterize(screen, faces, size, perspective_correct, cull_backfaces, max_candidates)
