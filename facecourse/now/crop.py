r"""The NoW face crop: keep the scan vertices inside a sphere placed on the face by the 7 landmarks.

With the NoW-7 landmarks :math:`l_0 \dots l_6` (outer/inner right eye corner, inner/outer left eye corner,
nose bottom, mouth corners; iBUG 36, 39, 42, 45, 33, 48, 54), the nose bridge is
:math:`b = (l_1 + l_2)/2`, the centre is a third of the way from the nose bottom up to the bridge,

.. math:: c = l_4 + 0.3\,(b - l_4), \qquad r = 1.4\,\frac{\lVert l_0 - l_3\rVert + \lVert b - l_4\rVert}{2},

and a scan vertex :math:`x` is kept when :math:`\lVert x - c\rVert \le r`. ``radius_scale`` (default 1, the
protocol) multiplies :math:`r`, for ablations of the protocol only (notebook 07). Faces survive when all three of
their vertices do (the error is measured from vertices only, the faces are kept for display).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Landmark order of the NoW-7 set (names for figures and .pp files).
NOW7_NAMES = ("right_eye_outer", "right_eye_inner", "left_eye_inner", "left_eye_outer", "nose_bottom",
              "mouth_right", "mouth_left")


def check_landmarks7(landmarks, name: str = "landmarks") -> np.ndarray:
    """Validate NoW-7 landmarks: ``(7, 3)`` or ``(1, 7, 3)`` finite numbers -> ``(7, 3)`` float64.

    Raises:
        ValueError: naming ``name`` when the shape or values are wrong.
    """
    arr = np.asarray(landmarks, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape != (7, 3):
        raise ValueError(f"{name} must hold the 7 NoW landmarks as (7, 3) (or (1, 7, 3)), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values")
    return arr


def check_landmark_geometry(landmarks, name: str = "landmarks") -> np.ndarray:
    """Refuse NoW-7 landmarks ``(7, 3)`` from which no alignment can be computed: two that coincide (closer than
    1e-9 of their spread) or all seven on one line (second singular value of the centred points below 1e-6 of
    the first: Procrustes then has no unique rotation). Returns them as :func:`check_landmarks7` does.

    Raises:
        ValueError: naming ``name`` and the coincident pair, or saying they are collinear.
    """
    arr = check_landmarks7(landmarks, name)
    spread = np.linalg.svd(arr - arr.mean(axis=0), compute_uv=False)
    pair = np.linalg.norm(arr[:, None] - arr[None], axis=-1)
    np.fill_diagonal(pair, np.inf)
    if spread[0] == 0 or pair.min() <= 1e-9 * spread[0]:
        i, j = np.unravel_index(np.argmin(pair), pair.shape)
        raise ValueError(f"{name} has coincident points: landmarks {min(i, j)} and {max(i, j)} are at the same place")
    if spread[1] <= 1e-6 * spread[0]:
        raise ValueError(f"{name} are collinear (all 7 on one line): no rotation can be fitted to them")
    return arr


def check_radius_scale(radius_scale) -> float:
    """Validate the crop-radius factor: a finite number > 0 (1.0 is the NoW protocol) -> float.

    Raises:
        ValueError: naming ``radius_scale`` when it is not a finite number > 0.
    """
    if isinstance(radius_scale, bool):
        raise ValueError(f"radius_scale must be a finite number > 0, got {radius_scale!r}")
    try:
        value = float(radius_scale)
    except (TypeError, ValueError):
        raise ValueError(f"radius_scale must be a finite number > 0, got {radius_scale!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"radius_scale must be a finite number > 0, got {radius_scale!r}")
    return value


def face_crop_sphere(landmarks, radius_scale: float = 1.0) -> tuple[np.ndarray, float]:
    """Centre ``(3,)`` and radius of the NoW crop sphere from the scan's 7 landmarks ``(7, 3)`` (same units,
    the radius too).

    Args:
        landmarks: ``(7, 3)`` (or ``(1, 7, 3)``) NoW-7 landmarks.
        radius_scale: factor on the protocol radius (1.0 = NoW; other values for ablations only).

    Raises:
        ValueError: bad landmarks, or ``radius_scale`` not a finite number > 0.
    """
    lm = check_landmarks7(landmarks)
    factor = check_radius_scale(radius_scale)
    bridge = 0.5 * (lm[1] + lm[2])
    centre = lm[4] + 0.3 * (bridge - lm[4])
    radius = 1.4 * 0.5 * (np.linalg.norm(lm[0] - lm[3]) + np.linalg.norm(bridge - lm[4]))
    return centre, float(radius) * factor


@dataclass(frozen=True)
class CroppedScan:
    """A scan cropped to the face: ``vertices (N, 3)``, ``faces (M, 3)`` re-indexed into them, ``index (N,)``
    the kept rows of the original vertices, and the crop sphere (``centre (3,)``, ``radius``)."""

    vertices: np.ndarray
    faces: np.ndarray
    index: np.ndarray
    centre: np.ndarray
    radius: float


def crop_scan(vertices, faces, landmarks, radius_scale: float = 1.0) -> CroppedScan:
    """Crop a scan to the NoW face sphere (:func:`face_crop_sphere`).

    Args:
        vertices: ``(V, 3)`` scan vertices (mm).
        faces: ``(F, 3)`` int scan faces (may be empty: a point cloud).
        landmarks: ``(7, 3)`` scan landmarks (mm).
        radius_scale: factor on the protocol crop radius (1.0 = NoW, the default; other values for
            ablations of the protocol only).

    Returns:
        :class:`CroppedScan` (its ``radius`` includes ``radius_scale``).

    Raises:
        ValueError: bad shapes, ``radius_scale`` not a finite number > 0, or no vertex inside the sphere
            (landmarks not on this scan).
    """
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise ValueError(f"scan vertices must have shape (V, 3) with V > 0, got {v.shape}")
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    centre, radius = face_crop_sphere(landmarks, radius_scale)
    keep = np.linalg.norm(v - centre, axis=1) <= radius
    index = np.flatnonzero(keep)
    if len(index) == 0:
        raise ValueError(f"no scan vertex lies within {radius:.3g} of the crop centre {centre}: "
                         "do the landmarks belong to this scan (same units)?")
    remap = np.full(len(v), -1, dtype=np.int64)
    remap[index] = np.arange(len(index))
    kept_faces = remap[f[keep[f].all(axis=1)]] if len(f) else np.zeros((0, 3), dtype=np.int64)
    return CroppedScan(v[index], kept_faces, index, centre, radius)


__all__ = ["CroppedScan", "NOW7_NAMES", "check_landmarks7", "check_radius_scale", "crop_scan", "face_crop_sphere"]
