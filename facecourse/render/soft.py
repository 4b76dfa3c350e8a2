"""A soft silhouette (SoftRas, Liu et al. 2019): the coverage of each pixel as a smooth function of the
projected vertices, so that a loss on the *outline* has a gradient — which the hard rasteriser
(:mod:`facecourse.render.rasterize`) cannot give: its ``pix_to_face`` is piecewise constant.

Each triangle :math:`f_j` covers pixel centre :math:`p` with probability

.. math::
    D_j(p) = \\sigma\\!\\Big(\\delta_j(p)\\,\\frac{d_j(p)^2}{\\sigma_{px}}\\Big),\\qquad
    \\delta_j(p) = \\begin{cases} +1 & p \\text{ inside } f_j \\\\ -1 & \\text{outside} \\end{cases}

with :math:`d_j(p)` the distance (pixels) from :math:`p` to the triangle's boundary (the nearest of its three
edges, as segments), :math:`\\sigma(\\cdot)` the logistic function and :math:`\\sigma_{px}` the blur in
pixels²; the pixel's coverage is the probability that *some* triangle covers it,

.. math:: S(p) = 1 - \\prod_j \\big(1 - D_j(p)\\big),

accumulated as a sum of :math:`\\log(1 - D_j) = \\log\\sigma(-\\delta_j d_j^2 / \\sigma_{px})` (stable). As
:math:`\\sigma_{px} \\to 0`, :math:`S` tends to the hard mask at every pixel centre not on an edge. No depth
order is needed for a silhouette. Cost: every (triangle, pixel) pair, ``O(B F H W)`` in chunks of faces — meant
for small images (the course's 64-pixel crops) and teaching, not as a production renderer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facecourse.render.camera import ndc_to_pixels
from facecourse.render.rasterize import _check_inputs


def point_segment_distance2(px: torch.Tensor, py: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor,
                            bx: torch.Tensor, by: torch.Tensor) -> torch.Tensor:
    """Squared distance from points ``p`` to segments ``[a, b]`` (broadcast shapes, same unit):
    :math:`\\lVert p - a - t (b - a)\\rVert^2` with :math:`t = \\mathrm{clamp}\\big(\\frac{(p-a)\\cdot(b-a)}
    {\\lVert b-a\\rVert^2}, 0, 1\\big)`."""
    ex, ey = bx - ax, by - ay
    t = (((px - ax) * ex + (py - ay) * ey) / (ex * ex + ey * ey).clamp_min(1e-20)).clamp(0.0, 1.0)
    dx, dy = px - ax - t * ex, py - ay - t * ey
    return dx * dx + dy * dy


def soft_silhouette(screen: torch.Tensor, faces: torch.Tensor, image_size, sigma: float = 1.0,
                    faces_per_chunk: int = 256) -> torch.Tensor:
    """Soft coverage of every pixel by the projected mesh (module docstring), differentiable in ``screen``.

    Args:
        screen: ``(B, V, 3)`` projected vertices ``(u, v, depth)`` in normalised image coordinates
            (:mod:`facecourse.render.camera`); the depth is not used.
        faces: ``(F, 3)`` int64.
        image_size: ``H`` or ``(H, W)``.
        sigma: blur :math:`\\sigma_{px}`, pixels² (> 0): about ``sqrt(sigma)`` pixels of transition across an
            edge; small values approach the hard mask, large ones reach further (gradients from farther away).
        faces_per_chunk: faces evaluated at once (memory ~ ``faces_per_chunk * H * W`` per batch element).

    Returns:
        ``(B, H, W)`` coverage in [0, 1].

    Raises:
        ValueError: bad shapes, empty or out-of-range faces, non-finite vertices, ``sigma`` not > 0.
    """
    h, w = _check_inputs(screen, faces, image_size)
    if not (isinstance(sigma, (int, float)) and sigma > 0 and sigma != float("inf")):
        raise ValueError(f"sigma (pixels^2) must be a finite number > 0, got {sigma!r}")
    if faces_per_chunk < 1:
        raise ValueError(f"faces_per_chunk must be >= 1, got {faces_per_chunk}")
    faces = faces.to(screen.device)
    pix = ndc_to_pixels(screen, (h, w))
    ys, xs = torch.meshgrid(torch.arange(h, dtype=pix.dtype, device=pix.device),
                            torch.arange(w, dtype=pix.dtype, device=pix.device), indexing="ij")
    px, py = xs.reshape(1, 1, -1), ys.reshape(1, 1, -1)  # (1, 1, P)
    log_uncovered = pix.new_zeros(pix.shape[0], h * w)
    for start in range(0, faces.shape[0], faces_per_chunk):
        tri = pix[:, faces[start:start + faces_per_chunk], :2]  # (B, f, 3, 2)
        x, y = tri[..., 0, None], tri[..., 1, None]  # (B, f, 3, 1)
        d2 = torch.stack([point_segment_distance2(px, py, x[:, :, i], y[:, :, i], x[:, :, (i + 1) % 3],
                                                  y[:, :, (i + 1) % 3]) for i in range(3)]).amin(0)  # (B, f, P)
        edges = [(x[:, :, (i + 1) % 3] - x[:, :, i]) * (py - y[:, :, i])
                 - (y[:, :, (i + 1) % 3] - y[:, :, i]) * (px - x[:, :, i]) for i in range(3)]
        area = ((x[:, :, 1] - x[:, :, 0]) * (y[:, :, 2] - y[:, :, 0])
                - (y[:, :, 1] - y[:, :, 0]) * (x[:, :, 2] - x[:, :, 0]))  # (B, f, 1), either orientation
        inside = torch.stack([e * area.sign() >= 0 for e in edges]).all(0)
        sign = torch.where(inside, 1.0, -1.0).to(d2)
        term = F.logsigmoid(-sign * d2 / sigma)
        log_uncovered = log_uncovered + torch.where(area.abs() > 1e-12, term, 0.0).sum(1)  # degenerate: no cover
    return (1.0 - log_uncovered.exp()).view(-1, h, w)


__all__ = ["point_segment_distance2", "soft_silhouette"]
