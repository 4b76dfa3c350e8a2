"""Figures for chapter 04: images with landmarks, rasterisation of a zoomed triangle, loss illustrations.

All images are ``(3, H, W)`` tensors/arrays in [0, 1]; landmarks are in normalised image coordinates
(:mod:`facecourse.render.camera`) and converted to pixels with :func:`facecourse.render.ndc_to_pixels`.
"""

from __future__ import annotations

import numpy as np
import torch

from facecourse.arrays import to_numpy
from facecourse.render.camera import ndc_to_pixels
from facecourse.render.rasterize import rasterize


def plot_image(ax, image, landmarks=None, visibility=None, title: str | None = None, color: str = "lime",
               marker_size: float = 6.0, label: str | None = None):
    """Show an image ``(3, H, W)`` (or ``(H, W)``) with optional landmarks ``(L, 2)`` (normalised coords).

    Invisible landmarks (``visibility`` 0) are drawn as hollow circles. Returns the ``AxesImage`` (for a
    colour bar of a one-channel image).
    """
    img = to_numpy(image)
    h, w = img.shape[-2:]
    shown = ax.imshow(np.clip(img.transpose(1, 2, 0), 0, 1) if img.ndim == 3 else img,
                      cmap=None if img.ndim == 3 else "gray", interpolation="nearest")
    if landmarks is not None:
        pix = to_numpy(ndc_to_pixels(torch.as_tensor(to_numpy(landmarks)), (h, w)))
        vis = np.ones(len(pix), bool) if visibility is None else to_numpy(visibility) > 0.5
        ax.scatter(pix[vis, 0], pix[vis, 1], s=marker_size, c=color, label=label)
        if (~vis).any():
            ax.scatter(pix[~vis, 0], pix[~vis, 1], s=marker_size * 2, facecolors="none", edgecolors=color)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return shown


def plot_landmark_error(ax, image, predicted, target, title: str | None = None):
    """Image with target (green) and predicted (red) landmarks joined by error segments."""
    plot_image(ax, image, target, title=title, color="lime", label="target")
    h, w = to_numpy(image).shape[-2:]
    p = to_numpy(ndc_to_pixels(torch.as_tensor(to_numpy(predicted)), (h, w)))
    t = to_numpy(ndc_to_pixels(torch.as_tensor(to_numpy(target)), (h, w)))
    ax.scatter(p[:, 0], p[:, 1], s=6, c="red", label="predicted")
    for a, b in zip(p, t):
        ax.plot([a[0], b[0]], [a[1], b[1]], color="yellow", lw=0.7)


def plot_rasterized_triangle(ax, triangle, image_size: int = 12, title: str | None = None):
    """Rasterise one triangle on a small pixel grid and draw pixels, pixel centres and barycentrics.

    Covered pixels are coloured by their barycentric coordinates (RGB = :math:`\\lambda_0, \\lambda_1,
    \\lambda_2`); pixel centres (integer pixel coordinates) are dots; the triangle's edges are drawn in pixel
    coordinates.

    Args:
        triangle: ``(3, 2)`` vertices in normalised image coordinates.
        image_size: pixels per side.

    Returns:
        the fragments of the render.
    """
    tri = torch.as_tensor(to_numpy(triangle), dtype=torch.float64)
    screen = torch.cat([tri, torch.zeros(3, 1, dtype=torch.float64)], -1)[None]
    frag = rasterize(screen, torch.tensor([[0, 1, 2]]), image_size)
    colours = frag.bary[0].numpy()
    img = np.where(frag.mask[0].numpy()[..., None], colours, 0.92)
    ax.imshow(img, interpolation="nearest")
    ys, xs = np.meshgrid(np.arange(image_size), np.arange(image_size), indexing="ij")
    ax.scatter(xs.ravel(), ys.ravel(), s=4, c="k")
    pix = to_numpy(ndc_to_pixels(tri, (image_size, image_size)))
    loop = np.vstack([pix, pix[:1]])
    ax.plot(loop[:, 0], loop[:, 1], color="k", lw=1.5)
    for k, (x, y) in enumerate(pix):
        ax.annotate(f"$v_{k}$", (x, y), textcoords="offset points", xytext=(4, 4))
    ax.set_xticks(np.arange(-0.5, image_size, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, image_size, 1), minor=True)
    ax.grid(which="minor", color="0.6", lw=0.4)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlim(-0.5, image_size - 0.5)
    ax.set_ylim(image_size - 0.5, -0.5)
    if title:
        ax.set_title(title)
    return frag
