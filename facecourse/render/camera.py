"""Cameras: weak perspective ``[s, tx, ty]`` and pinhole perspective; normalised <-> pixel coordinates.

This module is the one place where facecourse writes down its image conventions (DESIGN.md).

**Model space** (FLAME): metres, :math:`+x` = the subject's left, :math:`+y` up, :math:`+z` out of the face
towards a frontal camera.

**Normalised image coordinates** :math:`(u, v) \\in [-1, 1]^2`: :math:`+u` to the right of the image,
:math:`+v` *down* the image (row order, like pixels). :math:`u = -1` is the left border of the leftmost
pixel column, :math:`u = +1` the right border of the rightmost one; the same for :math:`v` with rows. Each
axis is normalised by its own size (for a non-square image a pixel is not square in :math:`(u, v)`).

**Axis flips.** The image :math:`v` axis points down while model :math:`y` points up, so every camera flips
:math:`y`. Model :math:`+x` (the subject's left) appears on the image *right* in a frontal view: we look at
the subject's face, so their left is on our right — there is no flip in :math:`x`.

**Weak perspective** (as DECA regresses it), per batch element :math:`[s, t_x, t_y]`:

.. math::
    u = s\\,(x + t_x), \\qquad v = -s\\,(y + t_y), \\qquad d = -z,

where :math:`d` is a depth used only for ordering (smaller = nearer the camera).

**Pinhole perspective** with rotation :math:`R`, translation :math:`T` (model -> camera frame, the OpenCV
frame: :math:`+x` right, :math:`+y` down, :math:`+z` forward), focal lengths :math:`f_x, f_y` and principal
point :math:`(c_x, c_y)` all in normalised units:

.. math::
    X_c = R X + T, \\qquad u = f_x \\frac{X_c}{Z_c} + c_x, \\qquad v = f_y \\frac{Y_c}{Z_c} + c_y,
    \\qquad d = Z_c > 0.

A focal length of :math:`f` pixels on a :math:`W`-pixel-wide image is :math:`2f/W` normalised.
:func:`frontal_rotation` is the rotation that looks at the face from the front (flips :math:`y` and :math:`z`).
For a frontal pinhole camera at distance :math:`D`, the weak-perspective scale that matches it near the
face is :math:`s = f/D`.

**Pixels.** Pixel :math:`(i, j)` (row :math:`i`, column :math:`j`) has its *centre* at pixel coordinates
:math:`(x, y) = (j, i)` (integer centres, as OpenCV) and at normalised coordinates
:math:`u = (2j + 1)/W - 1`, :math:`v = (2i + 1)/H - 1`. :func:`ndc_to_pixels` and :func:`pixels_to_ndc`
are the only conversions.

**View frame** (for lighting): :math:`+x` image right, :math:`+y` image up, :math:`+z` towards the camera.
For the weak-perspective camera it is model space; cameras expose :meth:`view_normals`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def _check_points(points: torch.Tensor, name: str, last: int = 3) -> None:
    if points.ndim != 3 or points.shape[-1] != last:
        raise ValueError(f"{name} must have shape (B, N, {last}), got {tuple(points.shape)}")


def weak_perspective(points: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """Project model-space points with a weak-perspective camera.

    Args:
        points: ``(B, N, 3)`` model space (metres).
        camera: ``(B, 3)`` = ``[s, tx, ty]``: scale (normalised units per metre) and a model-space
            translation in metres applied before scaling.

    Returns:
        ``(B, N, 3)``: ``(u, v, d)`` with :math:`u = s(x + t_x)`, :math:`v = -s(y + t_y)`, :math:`d = -z`
        (smaller = nearer).
    """
    _check_points(points, "points")
    if camera.ndim != 2 or camera.shape != (points.shape[0], 3):
        raise ValueError(f"camera must have shape (B, 3) = [s, tx, ty] with B={points.shape[0]}, "
                         f"got {tuple(camera.shape)}")
    s, t = camera[:, None, :1], camera[:, None, 1:]
    xy = s * (points[..., :2] + t)
    return torch.stack([xy[..., 0], -xy[..., 1], -points[..., 2]], dim=-1)


def frontal_rotation(batch_size: int = 1, dtype=torch.float32, device=None) -> torch.Tensor:
    """Rotation ``(B, 3, 3)`` from model space to the OpenCV camera frame of a frontal camera:
    ``diag(1, -1, -1)`` (image right = model +x, image down = model -y, forward = model -z)."""
    r = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=dtype, device=device))
    return r.expand(batch_size, 3, 3).clone()


def perspective(points: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor,
                focal: torch.Tensor | float, principal: torch.Tensor | None = None) -> torch.Tensor:
    """Project model-space points with a pinhole camera.

    Args:
        points: ``(B, N, 3)`` model space (metres).
        rotation: ``(B, 3, 3)`` model -> camera (OpenCV frame, +z forward).
        translation: ``(B, 3)`` metres.
        focal: scalar, ``(B,)`` or ``(B, 2)`` focal lengths in normalised units (``2 f_px / W``).
        principal: ``(B, 2)`` principal point in normalised units (default 0 = image centre).

    Returns:
        ``(B, N, 3)``: ``(u, v, Z_c)``; :math:`Z_c` in metres, positive in front of the camera.
    """
    _check_points(points, "points")
    b = points.shape[0]
    if rotation.shape != (b, 3, 3):
        raise ValueError(f"rotation must have shape ({b}, 3, 3), got {tuple(rotation.shape)}")
    if translation.shape != (b, 3):
        raise ValueError(f"translation must have shape ({b}, 3), got {tuple(translation.shape)}")
    cam = points @ rotation.transpose(1, 2) + translation[:, None]
    f = torch.as_tensor(focal, dtype=points.dtype, device=points.device)
    if f.ndim == 0:
        f = f.reshape(1, 1, 1)
    elif f.ndim == 1:
        f = f.reshape(-1, 1, 1)
    elif f.ndim == 2 and f.shape[-1] == 2:
        f = f.reshape(-1, 1, 2)
    else:
        raise ValueError(f"focal must be a scalar, (B,) or (B, 2), got {tuple(f.shape)}")
    z = cam[..., 2:]
    uv = f * cam[..., :2] / z
    if principal is not None:
        uv = uv + principal[:, None]
    return torch.cat([uv, z], dim=-1)


@dataclass
class WeakPerspectiveCamera:
    """Weak-perspective camera ``[s, tx, ty]`` (DECA's ``cam``), ``params`` of shape ``(B, 3)``."""

    params: torch.Tensor

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """``(B, N, 3)`` model points -> ``(B, N, 3)`` ``(u, v, depth)``; see :func:`weak_perspective`."""
        return weak_perspective(points, self.params)

    def view_normals(self, normals: torch.Tensor) -> torch.Tensor:
        """Model-space normals ``(B, N, 3)`` -> view frame (the identity for this camera)."""
        return normals

    perspective_correct = False


@dataclass
class PerspectiveCamera:
    """Pinhole camera: ``rotation (B, 3, 3)``, ``translation (B, 3)``, ``focal`` (normalised units),
    optional ``principal (B, 2)``; see :func:`perspective`."""

    rotation: torch.Tensor
    translation: torch.Tensor
    focal: torch.Tensor | float
    principal: torch.Tensor | None = None

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """``(B, N, 3)`` model points -> ``(B, N, 3)`` ``(u, v, Z_c)``."""
        return perspective(points, self.rotation, self.translation, self.focal, self.principal)

    def view_normals(self, normals: torch.Tensor) -> torch.Tensor:
        """Model-space normals ``(B, N, 3)`` -> view frame (+x right, +y up, +z towards the camera):
        ``diag(1, -1, -1) R n``."""
        flip = torch.tensor([1.0, -1.0, -1.0], dtype=normals.dtype, device=normals.device)
        return (normals @ self.rotation.transpose(1, 2)) * flip

    perspective_correct = True


def ndc_to_pixels(points: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Normalised image coordinates -> pixel coordinates (integer values at pixel centres).

    :math:`x = (u + 1) W / 2 - 1/2`, :math:`y = (v + 1) H / 2 - 1/2`. Extra trailing channels (e.g. depth)
    pass through unchanged.

    Args:
        points: ``(..., 2+)`` with ``(u, v)`` first.
        image_size: ``(H, W)``.

    Returns:
        same shape, ``(x, y)`` in pixels (x = column, y = row).
    """
    h, w = image_size
    x = (points[..., 0] + 1) * (w / 2) - 0.5
    y = (points[..., 1] + 1) * (h / 2) - 0.5
    return torch.cat([torch.stack([x, y], dim=-1), points[..., 2:]], dim=-1)


def pixels_to_ndc(points: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`ndc_to_pixels`: pixel coordinates ``(..., 2+)`` -> normalised ``(u, v, ...)``."""
    h, w = image_size
    u = (points[..., 0] + 0.5) * (2 / w) - 1
    v = (points[..., 1] + 0.5) * (2 / h) - 1
    return torch.cat([torch.stack([u, v], dim=-1), points[..., 2:]], dim=-1)


def pixel_centers(image_size: tuple[int, int], dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised coordinates of all pixel centres, ``(H, W, 2)`` as ``(u, v)``."""
    h, w = image_size
    ys, xs = torch.meshgrid(torch.arange(h, dtype=dtype, device=device),
                            torch.arange(w, dtype=dtype, device=device), indexing="ij")
    return pixels_to_ndc(torch.stack([xs, ys], dim=-1), image_size)
