"""NoW figures: the scan with its landmarks and crop, alignment profiles, error heat maps, CED curves.

Scans live in arbitrary scanner frames; :func:`landmark_frame` gives the rotation that shows any face from
the front (x = subject's left, y = up, z = towards the viewer) using its 7 landmarks, so every figure
is frontal whatever the scan's coordinates.
"""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection

from facecourse.now.metrics import CED_MAX_MM
from facecourse.viz.mesh import plot_mesh, view_rotation


def landmark_frame(landmarks) -> tuple[np.ndarray, np.ndarray]:
    """``(rotation (3, 3), origin (3,))`` so that ``(p - origin) @ rotation.T`` is frontal: x from the right
    eye's outer corner to the left one's, y from the mouth up to the eyes, z out of the face.

    Args:
        landmarks: ``(7, 3)`` NoW-7 landmarks.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    x = lm[3] - lm[0]
    x /= np.linalg.norm(x)
    up = lm[:4].mean(axis=0) - lm[5:].mean(axis=0)
    y = up - x * (x @ up)
    y /= np.linalg.norm(y)
    return np.stack([x, y, np.cross(x, y)]), lm[4].copy()


def _to_frame(points, frame):
    rot, origin = frame
    return (np.asarray(points, dtype=np.float64) - origin) @ rot.T


def plot_scan_crop(ax, scan_vertices, scan_faces, landmarks, crop, azimuth: float = 0.0, title: str | None = None):
    """The scan (frontal), its 7 landmarks (red) and the crop sphere's outline, kept vertices highlighted.

    Args:
        ax: matplotlib axis.
        scan_vertices: ``(V, 3)`` mm; scan_faces: ``(F, 3)``; landmarks: ``(7, 3)`` mm.
        crop: :class:`facecourse.now.CroppedScan` of this scan.
        azimuth: turn of the view (degrees, 90 = left profile).
    """
    frame = landmark_frame(landmarks)
    v = _to_frame(scan_vertices, frame)
    inside = np.zeros(len(v))
    inside[crop.index] = 1.0
    colors = np.where(inside[:, None] > 0, [0.95, 0.75, 0.55], [0.6, 0.6, 0.65])
    plot_mesh(ax, v, scan_faces, azimuth=azimuth, vertex_colors=colors, title=title)
    view = view_rotation(azimuth, 0.0)
    lm = _to_frame(landmarks, frame) @ view.T
    ax.scatter(lm[:, 0], lm[:, 1], s=18, c="red", zorder=5)
    c = _to_frame(crop.centre[None], frame)[0] @ view.T
    t = np.linspace(0, 2 * np.pi, 200)
    ax.plot(c[0] + crop.radius * np.cos(t), c[1] + crop.radius * np.sin(t), "b--", lw=1)
    ax.plot(*c[:2], "b+", ms=10)


def plot_profile(ax, scan_points, vertices, faces, landmarks, half_width: float = 1.5, title: str | None = None,
                 label: str = "prediction"):
    """Mid-sagittal profile: scan points within ``half_width`` mm of the face's symmetry plane (dots) and
    the cross-section of the mesh ``(vertices, faces)`` with that plane (lines), seen from the subject's left.

    Args:
        scan_points: ``(N, 3)`` mm (e.g. the cropped scan).
        vertices: ``(V, 3)`` mm, already in the scan frame (e.g. before or after alignment).
        faces: ``(F, 3)``.
        landmarks: ``(7, 3)`` scan landmarks (define the plane).
    """
    import trimesh

    frame = landmark_frame(landmarks)
    s = _to_frame(scan_points, frame)
    mid = _to_frame(np.asarray(landmarks)[[1, 2]], frame)[:, 0].mean()  # between the inner eye corners
    near = np.abs(s[:, 0] - mid) < half_width
    ax.scatter(s[near, 2], s[near, 1], s=2, c="0.3", label="scan")
    mesh = trimesh.Trimesh(_to_frame(vertices, frame), faces, process=False)
    seg = trimesh.intersections.mesh_plane(mesh, [1.0, 0.0, 0.0], [mid, 0.0, 0.0])
    ax.add_collection(LineCollection(seg[:, :, [2, 1]], colors="tab:blue", linewidths=1.5, label=label))
    lo, hi = s[near][:, [2, 1]].min(axis=0), s[near][:, [2, 1]].max(axis=0)
    pad = 0.15 * (hi - lo).max()
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("depth z (mm)")
    ax.set_ylabel("height y (mm)")
    ax.legend(loc="lower left", fontsize=8)
    if title:
        ax.set_title(title)


def plot_error_map(ax, crop, distances, landmarks, vmax: float = 4.0, cmap: str = "inferno", title: str | None = None):
    """Heat map of the per-vertex error ``distances (N,)`` mm on the cropped scan (frontal); returns the
    mappable for a colour bar."""
    v = _to_frame(crop.vertices, landmark_frame(landmarks))
    return plot_mesh(ax, v, crop.faces, scalars=distances, cmap=cmap, vmin=0.0, vmax=vmax, title=title)


def plot_ced(ax, curves: dict, max_error: float = CED_MAX_MM, title: str | None = None):
    """Cumulative error curves.

    Args:
        ax: matplotlib axis.
        curves: ``{name: (thresholds (T,) mm, percent (T,))}`` as :func:`facecourse.now.cumulative_error_curve`.
        max_error: x-axis limit (mm).
    """
    for name, (tau, pct) in curves.items():
        ax.plot(tau, pct, label=name)
    ax.set_xlim(0, max_error)
    ax.set_ylim(0, 100)
    ax.set_xlabel("error (mm)")
    ax.set_ylabel("scan vertices within error (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)


__all__ = ["landmark_frame", "plot_ced", "plot_error_map", "plot_profile", "plot_scan_crop"]
