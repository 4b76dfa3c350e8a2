"""Figures for chapter 02: eigenvectors painted on the mesh, error-vs-k curves, filter responses.

Every interactive view here has a static matplotlib counterpart: :func:`plot_eigenvectors` for
:func:`eigenvector_explorer`.
"""

from __future__ import annotations

import numpy as np
import matplotlib.pyplot as plt

from facecourse.arrays import to_numpy
from facecourse.viz.mesh import k3d_mesh, plot_mesh

#: Diverging colour map for signed signals such as eigenvectors (white = 0).
DIVERGING = "RdBu_r"


def _grid(n: int, ncols: int, panel_size: float, height: float = 1.0):
    """A figure of ``n`` panels, ``ncols`` per row, ``panel_size`` inches wide and ``height * panel_size`` high;
    the unused cells are blank. Returns ``(fig, axes)`` with ``axes`` flat."""
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows * height), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes.ravel()


#: Percentile of :math:`|u_i|` the eigenvector colour scales end at: a few large values (small vertex areas of
#: the cotangent basis, sharp features) would otherwise wash out the rest of a high-frequency mode.
EIGENVECTOR_CLIP_PERCENTILE = 98.0


def _symmetric_range(values: np.ndarray) -> tuple[float, float]:
    """``(-r, r)`` with ``r`` the :data:`EIGENVECTOR_CLIP_PERCENTILE` percentile of ``|values|`` (1 when 0)."""
    r = float(np.percentile(np.abs(values), EIGENVECTOR_CLIP_PERCENTILE)) or 1.0
    return -r, r


def plot_eigenvectors(vertices, faces, eigenvectors, indices, eigenvalues=None, ncols: int = 4,
                      azimuth: float = 0.0, elevation: float = 0.0, panel_size: float = 2.6,
                      cmap: str = DIVERGING):
    """Grid of eigenvectors painted on the mesh (one static :func:`~facecourse.viz.plot_mesh` panel each).

    Args:
        vertices: ``(V, 3)``; faces: ``(F, 3)``.
        eigenvectors: ``(V, k)`` columns :math:`u_i`.
        indices: which columns to show.
        eigenvalues: optional ``(k,)``, printed in the panel titles.
        ncols: panels per row; azimuth, elevation: view angles in degrees; panel_size: inches per panel.

    Returns:
        The matplotlib ``Figure`` (colour scale symmetric about 0 in each panel, red > 0 > blue, saturated beyond
        the :data:`EIGENVECTOR_CLIP_PERCENTILE` percentile of :math:`|u_i|`).
    """
    u, n = to_numpy(eigenvectors), len(to_numpy(vertices))
    lam = None if eigenvalues is None else to_numpy(eigenvalues)
    indices = list(indices)
    if u.ndim != 2 or u.shape[0] != n:
        raise ValueError(f"eigenvectors must be (V, k) with V={n}, got {u.shape}")
    if not indices or max(indices) >= u.shape[1]:
        raise ValueError(f"indices must be non-empty column indices < {u.shape[1]}, got {indices}")
    fig, axes = _grid(len(indices), ncols, panel_size, height=1.1)  # room for the titles
    for ax, i in zip(axes, indices):
        lo, hi = _symmetric_range(u[:, i])
        title = f"$u_{{{i}}}$" + ("" if lam is None else f", $\\lambda$={float(lam[i]):.3g}")
        plot_mesh(ax, vertices, faces, azimuth=azimuth, elevation=elevation, scalars=u[:, i], cmap=cmap,
                  vmin=lo, vmax=hi, title=title)
    fig.tight_layout()
    return fig


def k3d_eigenvector(vertices, faces, eigenvectors, index: int = 1, plot=None):
    """Interactive k3d view of eigenvector ``index`` (diverging colours, symmetric range); returns
    ``(plot, mesh)`` like :func:`~facecourse.viz.k3d_mesh`. Static counterpart: :func:`plot_eigenvectors`."""
    import k3d

    u = to_numpy(eigenvectors)[:, index]
    return k3d_mesh(vertices, faces, scalars=u, plot=plot, name=f"u_{index}",
                    color_range=_symmetric_range(u), colormap=k3d.colormaps.matplotlib_color_maps.RdBu_r)


def eigenvector_explorer(vertices, faces, eigenvectors, eigenvalues=None, index: int = 1):
    """A k3d mesh with an ipywidgets slider choosing the eigenvector painted on it.

    Args:
        vertices: ``(V, 3)``; faces: ``(F, 3)``; eigenvectors: ``(V, k)``; eigenvalues: optional ``(k,)``
            (shown in the slider's description); index: first eigenvector shown.

    Returns:
        An ``ipywidgets.VBox`` (display it as the last expression of a cell). Static counterpart:
        :func:`plot_eigenvectors`.
    """
    import ipywidgets as widgets

    u = to_numpy(eigenvectors).astype(np.float32)
    lam = None if eigenvalues is None else to_numpy(eigenvalues)
    plot, mesh = k3d_eigenvector(vertices, faces, u, index)
    slider = widgets.IntSlider(value=index, min=0, max=u.shape[1] - 1, description="eigenvector")
    label = widgets.Label()

    def show(change=None):
        i = slider.value
        mesh.attribute = u[:, i]
        mesh.color_range = list(_symmetric_range(u[:, i]))
        label.value = "" if lam is None else f"lambda_{i} = {lam[i]:.4g}"

    slider.observe(show, names="value")
    show()
    return widgets.VBox([widgets.HBox([slider, label]), plot])


def plot_error_curve(ax, ks, errors_mm, label: str | None = None, logy: bool = True, **line_kwargs):
    """Reconstruction error (mm) against the number ``k`` of eigenvectors kept.

    Args:
        ax: matplotlib axis; ks: ``(n,)`` truncation sizes; errors_mm: ``(n,)`` errors in millimetres
            (e.g. :func:`~facecourse.spectral.reconstruction_error_mm`); label: legend entry; logy: log scale.
    """
    ks, errors_mm = np.asarray(ks), np.asarray(errors_mm)
    if ks.shape != errors_mm.shape:
        raise ValueError(f"ks {ks.shape} and errors_mm {errors_mm.shape} must have the same shape")
    ax.plot(ks, errors_mm, marker="o", ms=3, label=label, **line_kwargs)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("eigenvectors kept $k$")
    ax.set_ylabel("mean vertex error [mm]")
    ax.grid(True, which="both", alpha=0.3)
    if label:
        ax.legend()
    return ax


def plot_filter_response(ax, lam, responses: dict, eigenvalues=None, title: str | None = None):
    """Filter responses :math:`g(\\lambda)` (and approximations of it) over the spectrum.

    Args:
        ax: matplotlib axis.
        lam: ``(n,)`` eigenvalue grid.
        responses: ``{label: (n,) values}``, e.g. the exact filter and Chebyshev approximations.
        eigenvalues: optional ``(k,)`` eigenvalues of the mesh, marked as ticks on the axis.
        title: optional title.
    """
    lam = np.asarray(lam)
    for label, values in responses.items():
        values = np.asarray(values)
        if values.shape != lam.shape:
            raise ValueError(f"response {label!r} has shape {values.shape}, expected {lam.shape}")
        ax.plot(lam, values, label=label)
    if eigenvalues is not None:
        ax.plot(np.asarray(eigenvalues), np.zeros(len(eigenvalues)), "|", color="k", ms=8, alpha=0.5,
                label="eigenvalues")
    ax.set_xlabel("$\\lambda$")
    ax.set_ylabel("$g(\\lambda)$")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax
