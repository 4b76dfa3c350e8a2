"""Figures for chapter 03: receptive fields, the mesh hierarchy, training curves, reconstructions.

All static matplotlib (the notebook's k3d views reuse :func:`~facecourse.viz.k3d_mesh`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.collections import LineCollection
import numpy as np

from facecourse.arrays import to_numpy
from facecourse.viz.mesh import plot_mesh, view_rotation
from facecourse.viz.spectral import _grid
from facecourse.units import M_TO_MM


def plot_impulse_responses(vertices, faces, responses, vertex: int | None = None, azimuth: float = 0.0,
                           elevation: float = 0.0, panel_size: float = 2.6, cmap: str = "RdBu_r",
                           gamma: float = 0.3, zoom: float | None = None):
    """Paint :math:`T_k(\\tilde L)\\delta_v` (rows of ``responses (K, V)``) on the mesh, one panel per order.

    Values are shown as :math:`\\operatorname{sign}(r)|r|^\\gamma` (small values stay visible) on a colour
    scale symmetric about 0: white = exactly zero = outside the receptive field; ``vertex`` is marked
    with a black dot. ``zoom`` (metres, needs ``vertex``): show only a square of half-width ``zoom`` centred
    on the vertex, so a support a few edges wide is readable.

    Returns:
        The ``Figure``.
    """
    if zoom is not None and (vertex is None or not zoom > 0):
        raise ValueError(f"zoom must be a positive half-width in metres with a vertex, got zoom={zoom!r}, "
                         f"vertex={vertex!r}")
    r = to_numpy(responses)
    r = np.sign(r) * np.abs(r) ** gamma
    v = to_numpy(vertices)
    fig, axes = _grid(len(r), len(r), panel_size)
    for k, ax in enumerate(axes[:len(r)]):
        m = float(np.abs(r[k]).max()) or 1.0
        plot_mesh(ax, v, faces, azimuth, elevation, scalars=r[k], cmap=cmap, vmin=-m, vmax=m,
                  title=f"$T_{{{k}}}(\\tilde L)\\,\\delta_v$")
        if vertex is not None:
            p = v[vertex] @ view_rotation(azimuth, elevation).T
            ax.plot(p[0], p[1], "k.", markersize=6)
            if zoom is not None:
                ax.set_xlim(p[0] - zoom, p[0] + zoom)
                ax.set_ylim(p[1] - zoom, p[1] + zoom)
    fig.tight_layout()
    return fig


def plot_hierarchy(hierarchy, azimuth: float = 0.0, elevation: float = 0.0, panel_size: float = 2.8):
    """One panel per level of a :class:`~facecourse.nn.hierarchy.MeshHierarchy`: the mesh and its vertex count.

    Returns:
        The ``Figure``.
    """
    n = len(hierarchy.vertices)
    fig, axes = _grid(n, n, panel_size)
    for level, ax in enumerate(axes[:n]):
        v, f = hierarchy.vertices[level], hierarchy.faces[level]
        plot_mesh(ax, v, f, azimuth, elevation, title=f"level {level}: {len(v)} vertices")
        if level > 0:  # triangle edges of the front faces, so the coarse levels read as meshes
            p = v @ view_rotation(azimuth, elevation).T
            front = f[np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]])[:, 2] > 0]
            ax.add_collection(LineCollection(p[front[:, [0, 1, 2, 0]]][:, :, :2], colors="k", linewidths=0.3,
                                             alpha=0.6))
    fig.tight_layout()
    return fig


def plot_training_history(history: list[dict]):
    """Training loss (normalised L1) and held-out mean error (mm) per epoch, from a pre-training report.

    Returns:
        The ``Figure``.
    """
    if not history:
        raise ValueError("history is empty (was the model loaded from a finished checkpoint without history?)")
    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3))
    a.plot(epochs, [h["loss"] for h in history], marker=".")
    a.set(xlabel="epoch", ylabel="L1 (normalised)", title="training loss", yscale="log")
    b.plot(epochs, [h["test_mean_mm"] for h in history], marker=".", color="C1")
    b.set(xlabel="epoch", ylabel="mm", title="held-out mean vertex error")
    fig.tight_layout()
    return fig


def plot_reconstructions(inputs, reconstructions, faces, azimuth: float = 0.0, max_error_mm: float | None = None,
                         panel_size: float = 2.4):
    """Rows: input meshes, reconstructions, per-vertex error in mm painted on the input (titled with its mean).

    Returns:
        The ``Figure``.
    """
    x, y = to_numpy(inputs), to_numpy(reconstructions)
    if x.shape != y.shape or x.ndim != 3:
        raise ValueError(f"inputs and reconstructions must both be (N, V, 3), got {x.shape} and {y.shape}")
    err = np.linalg.norm(x - y, axis=-1) * M_TO_MM
    vmax = float(err.max()) if max_error_mm is None else max_error_mm
    n = len(x)
    fig, axes = plt.subplots(3, n, figsize=(panel_size * n, panel_size * 3), squeeze=False)
    for i in range(n):
        plot_mesh(axes[0, i], x[i], faces, azimuth, title="input" if i == 0 else None)
        plot_mesh(axes[1, i], y[i], faces, azimuth, title="reconstruction" if i == 0 else None)
        mappable = plot_mesh(axes[2, i], x[i], faces, azimuth, scalars=err[i], cmap="magma", vmin=0, vmax=vmax,
                             title=f"mean {err[i].mean():.2f} mm")
    fig.colorbar(mappable, ax=axes[2, :].tolist(), shrink=0.8, label="mm")
    return fig


def plot_mesh_row(meshes, faces, titles=None, azimuth: float = 0.0, panel_size: float = 2.4):
    """A row of meshes ``(N, V, 3)`` (e.g. a latent interpolation). Returns the ``Figure``."""
    m = to_numpy(meshes)
    fig, axes = _grid(len(m), len(m), panel_size)
    for i, ax in enumerate(axes[:len(m)]):
        plot_mesh(ax, m[i], faces, azimuth, title=None if titles is None else titles[i])
    fig.tight_layout()
    return fig
