"""Static (matplotlib) and interactive (k3d) mesh views.

Model space is FLAME's: +x towards the subject's left, +y up, +z out of the face towards the viewer.
:func:`plot_mesh` draws a shaded mesh with the painter's algorithm into a 2D axis, which is fast, looks
right in HTML exports and needs no OpenGL; :func:`k3d_mesh` is its interactive counterpart.
"""

from __future__ import annotations

import numpy as np
from matplotlib import cm
from matplotlib.collections import PolyCollection
from matplotlib.colors import Normalize

from facecourse.arrays import to_numpy


def view_rotation(azimuth: float = 0.0, elevation: float = 0.0) -> np.ndarray:
    """Rotation ``(3, 3)`` from model space to view space (viewer on +z, looking down -z).

    Args:
        azimuth: turn of the object about the vertical (y) axis in degrees; 90 shows the left profile
            (the subject's left cheek faces the viewer).
        elevation: tilt about the x axis in degrees; positive looks from above.
    """
    a, e = np.deg2rad(azimuth), np.deg2rad(elevation)
    ry = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    return rx @ ry


def plot_mesh(
    ax,
    vertices,
    faces,
    azimuth: float = 0.0,
    elevation: float = 0.0,
    scalars=None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    color=(0.85, 0.72, 0.62),
    vertex_colors=None,
    light=(0.3, 0.4, 1.0),
    title: str | None = None,
):
    """Draw a Lambert-shaded mesh into a matplotlib axis (painter's algorithm, back faces culled).

    Args:
        ax: a 2D matplotlib axis.
        vertices: ``(V, 3)`` positions (any unit).
        faces: ``(F, 3)`` int vertex indices.
        azimuth, elevation: view angles in degrees (:func:`view_rotation`).
        scalars: optional ``(V,)`` values painted with ``cmap`` (averaged per face).
        vertex_colors: optional ``(V, 3)`` RGB in [0, 1] (averaged per face); overrides ``color``.
        light: direction towards the light in view space.
        title: optional axis title.

    Returns:
        The ``ScalarMappable`` when ``scalars`` is given (for a colour bar), else ``None``.
    """
    v = to_numpy(vertices).astype(np.float64) @ view_rotation(azimuth, elevation).T
    f = to_numpy(faces).astype(np.int64)
    tri = v[f]  # (F, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True).clip(1e-12)
    front = normal[:, 2] > 0
    order = np.argsort(tri[:, :, 2].mean(axis=1))
    order = order[front[order]]
    light = np.asarray(light, dtype=np.float64)
    shade = 0.25 + 0.75 * np.clip(normal @ (light / np.linalg.norm(light)), 0, 1)
    mappable = None
    if scalars is not None:
        s = to_numpy(scalars).astype(np.float64)[f].mean(axis=1)
        norm = Normalize(vmin=s.min() if vmin is None else vmin, vmax=s.max() if vmax is None else vmax)
        mappable = cm.ScalarMappable(norm=norm, cmap=cmap)
        base = mappable.to_rgba(s)[:, :3]
        shade = 0.55 + 0.45 * (shade - 0.25) / 0.75  # keep the colour map readable
    elif vertex_colors is not None:
        base = to_numpy(vertex_colors).astype(np.float64)[f].mean(axis=1)
    else:
        base = np.broadcast_to(np.asarray(color, dtype=np.float64), (len(f), 3))
    rgb = np.clip(base * shade[:, None], 0, 1)
    # Edges drawn in the face colour hide the anti-aliasing seams between neighbouring polygons.
    ax.add_collection(PolyCollection(tri[order][:, :, :2], facecolors=rgb[order], edgecolors=rgb[order],
                                     linewidths=0.3))
    lo, hi = v[:, :2].min(axis=0), v[:, :2].max(axis=0)
    pad = 0.05 * (hi - lo).max()
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return mappable


def frontal_camera(vertices, fov_deg: float = 45.0, margin: float = 1.3) -> list[float]:
    """A k3d camera ``[eye x, y, z, target x, y, z, up x, y, z]`` looking at the mesh's bounding-box centre from
    the front (+z, FLAME's facing direction) with +y up, at the distance where the larger of its width and height
    fills the field of view ``fov_deg`` (times ``margin``). ``vertices``: ``(V, 3)``."""
    v = np.asarray(vertices, dtype=np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    centre = (lo + hi) / 2
    extent = float(max(hi[0] - lo[0], hi[1] - lo[1])) * margin
    distance = extent / (2 * np.tan(np.deg2rad(fov_deg) / 2)) + (hi[2] - lo[2]) / 2
    eye = centre + np.array([0.0, 0.0, distance])
    return [*eye.tolist(), *centre.tolist(), 0.0, 1.0, 0.0]


def k3d_mesh(vertices, faces, scalars=None, color: int = 0xD9B89E, plot=None, name: str | None = None,
             color_range=None, colormap=None):
    """Interactive k3d mesh (add it to ``plot`` or a new ``k3d.plot()`` that opens frontal, y up, framed on the
    mesh: :func:`frontal_camera`); returns ``(plot, mesh)``.

    Args:
        vertices: ``(V, 3)``; faces: ``(F, 3)``; scalars: optional ``(V,)`` attribute painted with
            ``colormap`` (default matplotlib viridis) over ``color_range``.
        Update ``mesh.vertices`` (float32) to animate it from an ipywidgets slider.
    """
    import k3d

    v = to_numpy(vertices).astype(np.float32)
    f = to_numpy(faces).astype(np.uint32)
    if plot is None:  # k3d is z-up, FLAME y-up: look at the face from +z with +y up, framed on the mesh
        plot = k3d.plot(grid_visible=False, camera_auto_fit=False, camera_up_axis="y")
        plot.camera = frontal_camera(v)
    kwargs = {}
    if scalars is not None:
        s = to_numpy(scalars).astype(np.float32)
        kwargs = dict(
            attribute=s,
            color_map=colormap if colormap is not None else k3d.colormaps.matplotlib_color_maps.Viridis,
            color_range=list(color_range) if color_range is not None else [float(s.min()), float(s.max())],
        )
    mesh = k3d.mesh(v, f, color=color, flat_shading=False, name=name, **kwargs)
    plot += mesh
    return plot, mesh
