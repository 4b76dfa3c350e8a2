"""A differentiable triangle rasteriser in pure PyTorch (CPU and CUDA), with the conventions of
:mod:`facecourse.render.camera`.

Two passes, as pytorch3d's hard rasteriser (blur radius 0, one face per pixel):

1. **Visibility** (no gradient): every face is tested against the pixel centres inside its bounding box;
   a pixel keeps the nearest face (z-buffer). Faces are sorted by bounding-box area and processed in
   chunks so that (faces x candidate pixels) stays below a memory budget: no Python loop over faces or
   pixels, only over chunks.
2. **Barycentrics** (differentiable): for the winning face of each pixel the barycentric coordinates of
   the pixel centre :math:`p` are recomputed from the projected vertices :math:`a, b, c`,

   .. math::
       \\lambda_a = \\frac{E(b, c, p)}{E(a, b, c)},\\quad
       \\lambda_b = \\frac{E(c, a, p)}{E(a, b, c)},\\quad
       \\lambda_c = \\frac{E(a, b, p)}{E(a, b, c)},\\qquad
       E(a, b, p) = (b_x - a_x)(p_y - a_y) - (b_y - a_y)(p_x - a_x),

   so gradients of anything interpolated with them flow to the vertex positions. Which face covers a pixel
   (and so the silhouette) is piecewise constant: it has no gradient, exactly as in pytorch3d with blur 0.

With a perspective camera the screen-space weights are made perspective-correct,
:math:`\\tilde\\lambda_k = (\\lambda_k / z_k) / \\sum_j \\lambda_j / z_j`, and the depth is
:math:`1 / \\sum_k \\lambda_k / z_k`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from facecourse.render.camera import ndc_to_pixels

#: Default upper bound on (face, candidate pixel) pairs tested at once (memory ~ 100 bytes each).
DEFAULT_MAX_CANDIDATES = 1 << 21


@dataclass
class Fragments:
    """Rasteriser output for a batch of ``B`` images of ``H x W`` pixels.

    Attributes:
        pix_to_face: ``(B, H, W)`` int64 index into ``faces`` of the front-most face, -1 for background.
        bary: ``(B, H, W, 3)`` barycentric coordinates of the pixel centre in that face (differentiable
            w.r.t. the projected vertices), zeros on background.
        zbuf: ``(B, H, W)`` depth of the pixel (camera's depth unit; smaller = nearer), 0 on background.
    """

    pix_to_face: torch.Tensor
    bary: torch.Tensor
    zbuf: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """``(B, H, W)`` bool: pixels covered by the mesh (the silhouette)."""
        return self.pix_to_face >= 0


def _edge(ax, ay, bx, by, px, py):
    """Edge function :math:`E(a, b, p)`: twice the signed area of triangle (a, b, p) (pixel frame)."""
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` unchanged when every entry is finite; else a ``ValueError`` naming ``name``, the first bad batch
    element and vertex (rows of the last two dimensions), and how many entries are NaN or infinite."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        where = torch.nonzero(bad)[0].tolist()
        raise ValueError(f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf), the first at index "
                         f"{tuple(where)}")
    return x


def _check_inputs(screen: torch.Tensor, faces: torch.Tensor, image_size) -> tuple[int, int]:
    if screen.ndim != 3 or screen.shape[-1] != 3:
        raise ValueError(f"screen must have shape (B, V, 3) = (u, v, depth), got {tuple(screen.shape)}")
    if faces.ndim != 2 or faces.shape[-1] != 3 or faces.dtype != torch.long:
        raise ValueError(f"faces must be an int64 tensor of shape (F, 3), got {faces.dtype} {tuple(faces.shape)}")
    if faces.shape[0] == 0:
        raise ValueError("faces is empty (F = 0): there is no triangle to rasterise")
    if int(faces.min()) < 0 or int(faces.max()) >= screen.shape[1]:
        raise ValueError(f"faces index vertices outside [0, {screen.shape[1]})")
    check_finite(screen, "screen (projected vertices)")
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if h <= 0 or w <= 0:
        raise ValueError(f"image_size must be positive (H, W), got {image_size}")
    return int(h), int(w)


def _chunk_bounds(area: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Split faces sorted by ascending bounding-box area into chunks of cost n * max_area <= budget."""
    bounds, start, n_total = [], 0, len(area)
    while start < n_total:
        cost = np.arange(1, n_total - start + 1, dtype=np.int64) * area[start:]
        n = max(1, int(np.searchsorted(cost, budget, side="right")))
        bounds.append((start, start + n))
        start += n
    return bounds


@torch.no_grad()
def _visibility(pix: torch.Tensor, faces: torch.Tensor, h: int, w: int, perspective_correct: bool,
                cull_backfaces: bool, max_candidates: int) -> torch.Tensor:
    """Front-most face per pixel, ``(B, H, W)`` long (-1 = none); ``pix`` is ``(B, V, 3)`` in pixels."""
    b = pix.shape[0]
    dev = pix.device
    tri = pix[:, faces]  # (B, F, 3, 3)
    x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]
    area = _edge(x[..., 0], y[..., 0], x[..., 1], y[..., 1], x[..., 2], y[..., 2])
    x0 = torch.ceil(x.amin(-1)).clamp(min=0)
    x1 = torch.floor(x.amax(-1)).clamp(max=w - 1)
    y0 = torch.ceil(y.amin(-1)).clamp(min=0)
    y1 = torch.floor(y.amax(-1)).clamp(max=h - 1)
    ok = (x0 <= x1) & (y0 <= y1) & (area.abs() > 1e-12) & torch.isfinite(area)
    if perspective_correct:
        ok &= (z > 0).all(-1)
    if cull_backfaces:  # counter-clockwise seen from the camera is clockwise in the y-down pixel frame
        ok &= area < 0
    bi, fi = ok.nonzero(as_tuple=True)
    zbuf = torch.full((b * h * w,), float("inf"), dtype=pix.dtype, device=dev)
    best = torch.full((b * h * w,), -1, dtype=torch.long, device=dev)
    if bi.numel() == 0:
        return best.view(b, h, w)
    bw = (x1[bi, fi] - x0[bi, fi] + 1).long()
    bh = (y1[bi, fi] - y0[bi, fi] + 1).long()
    bbox_area = bw * bh
    order = torch.argsort(bbox_area)
    bi, fi, bw, bbox_area = bi[order], fi[order], bw[order], bbox_area[order]
    for s, e in _chunk_bounds(bbox_area.cpu().numpy(), max_candidates):
        cb, cf, cw = bi[s:e], fi[s:e], bw[s:e]
        k = torch.arange(int(bbox_area[e - 1]), device=dev)
        valid = k[None] < bbox_area[s:e, None]  # (n, K)
        px = (x0[cb, cf][:, None] + (k[None] % cw[:, None])).to(pix.dtype)
        py = (y0[cb, cf][:, None] + torch.div(k[None], cw[:, None], rounding_mode="floor")).to(pix.dtype)
        tx, ty, tz = x[cb, cf], y[cb, cf], z[cb, cf]  # (n, 3)
        a = area[cb, cf][:, None]
        l0 = _edge(tx[:, 1:2], ty[:, 1:2], tx[:, 2:3], ty[:, 2:3], px, py) / a
        l1 = _edge(tx[:, 2:3], ty[:, 2:3], tx[:, 0:1], ty[:, 0:1], px, py) / a
        l2 = 1 - l0 - l1
        valid &= (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
        if perspective_correct:
            depth = 1.0 / (l0 / tz[:, 0:1] + l1 / tz[:, 1:2] + l2 / tz[:, 2:3])
        else:
            depth = l0 * tz[:, 0:1] + l1 * tz[:, 1:2] + l2 * tz[:, 2:3]
        flat = (cb[:, None] * (h * w) + py.long() * w + px.long())[valid]
        depth, face = depth[valid], cf[:, None].expand_as(valid)[valid]
        if flat.numel() == 0:
            continue
        zc = torch.full_like(zbuf, float("inf")).scatter_reduce(0, flat, depth, "amin")
        win = depth == zc[flat]
        fc = torch.full_like(best, torch.iinfo(torch.long).max).scatter_reduce(0, flat[win], face[win], "amin")
        better = zc < zbuf
        zbuf = torch.where(better, zc, zbuf)
        best = torch.where(better, fc, best)
    return best.view(b, h, w)


def barycentrics_from_faces(pix: torch.Tensor, faces: torch.Tensor, pix_to_face: torch.Tensor,
                            perspective_correct: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable barycentrics and depth of every pixel centre in a given face.

    Args:
        pix: ``(B, V, 3)`` projected vertices in pixel coordinates plus depth (:func:`ndc_to_pixels`).
        faces: ``(F, 3)`` int64.
        pix_to_face: ``(B, H, W)`` face per pixel, -1 for background.
        perspective_correct: divide by the vertex depths (pinhole cameras).

    Returns:
        ``bary (B, H, W, 3)`` and ``zbuf (B, H, W)``, zero on background.
    """
    b, h, w = pix_to_face.shape
    mask = pix_to_face >= 0
    fidx = pix_to_face.clamp(min=0)
    tri_vid = faces[fidx]  # (B, H, W, 3)
    tri = torch.gather(pix, 1, tri_vid.reshape(b, -1, 1).expand(-1, -1, 3)).reshape(b, h, w, 3, 3)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=pix.dtype, device=pix.device),
                            torch.arange(w, dtype=pix.dtype, device=pix.device), indexing="ij")
    x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]
    area = _edge(x[..., 0], y[..., 0], x[..., 1], y[..., 1], x[..., 2], y[..., 2])
    area = torch.where(mask, area, torch.ones_like(area))
    l0 = _edge(x[..., 1], y[..., 1], x[..., 2], y[..., 2], xs, ys) / area
    l1 = _edge(x[..., 2], y[..., 2], x[..., 0], y[..., 0], xs, ys) / area
    l2 = _edge(x[..., 0], y[..., 0], x[..., 1], y[..., 1], xs, ys) / area
    bary = torch.stack([l0, l1, l2], dim=-1)
    if perspective_correct:
        zs = torch.where(mask[..., None], z, torch.ones_like(z))
        q = bary / zs
        denom = q.sum(-1, keepdim=True)
        bary = q / denom
        zbuf = 1.0 / denom[..., 0]
    else:
        zbuf = (bary * z).sum(-1)
    # where, not a product with the mask: background pixels read face 0, whose values must not leak (0 * NaN)
    return torch.where(mask[..., None], bary, 0.0), torch.where(mask, zbuf, 0.0)


def rasterize(screen: torch.Tensor, faces: torch.Tensor, image_size, perspective_correct: bool = False,
              cull_backfaces: bool = False, max_candidates: int = DEFAULT_MAX_CANDIDATES) -> Fragments:
    """Rasterise projected triangles (built-in backend).

    Args:
        screen: ``(B, V, 3)`` projected vertices ``(u, v, depth)`` in normalised image coordinates
            (:mod:`facecourse.render.camera`); smaller depth = nearer.
        faces: ``(F, 3)`` int64, shared by the batch.
        image_size: ``H`` or ``(H, W)``.
        perspective_correct: perspective-correct barycentrics/depth (needs depth > 0; pinhole cameras).
        cull_backfaces: drop triangles that are clockwise as seen from the camera (counter-clockwise
            meshes: their back side).
        max_candidates: memory budget of the visibility pass (face x pixel tests per chunk).

    Returns:
        :class:`Fragments` with ``pix_to_face``, differentiable ``bary`` and ``zbuf``.
    """
    h, w = _check_inputs(screen, faces, image_size)
    faces = faces.to(screen.device)
    pix = ndc_to_pixels(screen, (h, w))
    pix_to_face = _visibility(pix.detach(), faces, h, w, perspective_correct, cull_backfaces, max_candidates)
    bary, zbuf = barycentrics_from_faces(pix, faces, pix_to_face, perspective_correct)
    return Fragments(pix_to_face=pix_to_face, bary=bary, zbuf=zbuf)


def interpolate(attributes: torch.Tensor, faces: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Interpolate per-vertex attributes at every pixel with the fragments' barycentrics.

    :math:`a(p) = \\sum_k \\lambda_k(p)\\, a_{F_{f(p),k}}`; zero on background.

    Args:
        attributes: ``(B, V, C)`` or ``(V, C)`` (colours, normals, UVs, positions, ...).
        faces: ``(F, 3)`` int64.
        fragments: from :func:`rasterize` (or the pytorch3d backend).

    Returns:
        ``(B, H, W, C)``.
    """
    b, h, w = fragments.pix_to_face.shape
    if attributes.ndim == 2:
        attributes = attributes[None].expand(b, -1, -1)
    if attributes.ndim != 3 or attributes.shape[0] != b:
        raise ValueError(f"attributes must have shape (B={b}, V, C) or (V, C), got {tuple(attributes.shape)}")
    c = attributes.shape[-1]
    vid = faces.to(attributes.device)[fragments.pix_to_face.clamp(min=0)]  # (B, H, W, 3)
    vals = torch.gather(attributes, 1, vid.reshape(b, -1, 1).expand(-1, -1, c)).reshape(b, h, w, 3, c)
    values = (fragments.bary.to(attributes.dtype)[..., None] * vals).sum(-2)
    return torch.where(fragments.mask[..., None], values, 0.0)  # background never reads face 0's attributes


def interpolate_face_attributes(face_attributes: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Interpolate per-face-corner attributes ``(B, F, 3, C)`` or ``(F, 3, C)`` (e.g. UVs with seams).

    Returns:
        ``(B, H, W, C)``, zero on background.
    """
    b, h, w = fragments.pix_to_face.shape
    if face_attributes.ndim == 3:
        face_attributes = face_attributes[None].expand(b, -1, -1, -1)
    if face_attributes.ndim != 4 or face_attributes.shape[2] != 3:
        raise ValueError(f"face_attributes must have shape (B, F, 3, C) or (F, 3, C), "
                         f"got {tuple(face_attributes.shape)}")
    c = face_attributes.shape[-1]
    fidx = fragments.pix_to_face.clamp(min=0).reshape(b, -1, 1, 1).expand(-1, -1, 3, c)
    vals = torch.gather(face_attributes, 1, fidx).reshape(b, h, w, 3, c)
    values = (fragments.bary.to(face_attributes.dtype)[..., None] * vals).sum(-2)
    return torch.where(fragments.mask[..., None], values, 0.0)
