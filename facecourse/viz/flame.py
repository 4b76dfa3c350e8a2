"""FLAME views: an interactive k3d head with ipywidgets sliders and its static matplotlib counterpart.

Both views evaluate the same parameter sets (:func:`slider_params`), so the static grid shows exactly what
the sliders do: the first shape components, the first expression components and the jaw opening.
"""

from __future__ import annotations

import numpy as np
import torch

from facecourse.arrays import to_numpy
from facecourse.units import M_TO_MM
from facecourse.viz.mesh import k3d_mesh, plot_mesh, view_rotation

#: Variation kinds of :func:`variation_grid`.
KINDS = ("shape", "expression", "jaw")
#: RGB colours of :func:`head_colors`.
SKIN, LIPS, SCLERA, IRIS = (0.86, 0.70, 0.60), (0.72, 0.36, 0.36), (0.95, 0.95, 0.93), (0.22, 0.16, 0.12)


def head_colors(template, masks: dict, iris_half_angle_deg: float = 28.0) -> np.ndarray:
    """Per-vertex colours for static head views: skin, lips, white eyeballs with a dark iris looking ahead.

    Without them the eyeballs are drawn in skin colour and the eyes read as closed.

    Args:
        template: ``(V, 3)`` rest-pose vertices (metres), e.g. ``flame.v_template``.
        masks: FLAME vertex regions (:func:`facecourse.flame.load_masks`); uses ``lips``,
            ``left_eyeball`` and ``right_eyeball``.
        iris_half_angle_deg: eyeball vertices within this angle of the eyeball's forward axis (+z from its
            centre) are painted as iris.

    Returns:
        ``(V, 3)`` float RGB in [0, 1]; pass as ``vertex_colors`` to :func:`facecourse.viz.plot_mesh`.
    """
    v = to_numpy(template, np.float64)
    colors = np.tile(np.asarray(SKIN), (len(v), 1))
    colors[np.asarray(masks["lips"], dtype=np.int64)] = LIPS
    for name in ("left_eyeball", "right_eyeball"):
        idx = np.asarray(masks[name], dtype=np.int64)
        direction = v[idx] - v[idx].mean(axis=0)
        direction /= np.linalg.norm(direction, axis=1, keepdims=True).clip(1e-12)
        colors[idx] = SCLERA
        colors[idx[direction[:, 2] > np.cos(np.deg2rad(iris_half_angle_deg))]] = IRIS
    return colors


def slider_params(flame, shape=(), expression=(), jaw: float = 0.0) -> dict:
    """FLAME keyword arguments for a batch of one from slider values.

    Args:
        flame: a :class:`facecourse.flame.FLAME`.
        shape: values of the first ``len(shape)`` shape coefficients (standard deviations).
        expression: values of the first expression coefficients.
        jaw: jaw opening in radians (rotation about the model's +x axis; positive opens the mouth).

    Returns:
        dict for ``flame(**params)``.
    """
    p = flame.v_template
    params = {}
    if len(shape):
        params["shape"] = torch.as_tensor([list(shape)], dtype=p.dtype, device=p.device)
    if len(expression):
        params["expression"] = torch.as_tensor([list(expression)], dtype=p.dtype, device=p.device)
    params["jaw_pose"] = torch.as_tensor([[float(jaw), 0.0, 0.0]], dtype=p.dtype, device=p.device)
    return params


@torch.no_grad()
def head_vertices(flame, **params) -> np.ndarray:
    """``(V, 3)`` numpy vertices of ``flame(**params)`` for a batch of one."""
    return flame(**params).vertices[0].detach().cpu().numpy()


def variation_params(flame, kind: str, index: int, value: float) -> dict:
    """Parameters setting one component: ``kind`` in :data:`KINDS`, ``index`` its number (ignored for jaw)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "jaw":
        return slider_params(flame, jaw=value)
    values = [0.0] * (index + 1)
    values[index] = value
    return slider_params(flame, **{kind: values})


def variation_grid(flame, rows=(("shape", 0), ("shape", 1), ("expression", 0), ("expression", 1), ("jaw", 0)),
                   values=(-2.0, 0.0, 2.0), jaw_values=(0.0, 0.15, 0.3), azimuth: float = 25.0,
                   axes_size: float = 2.6, vertex_colors=None, displacement: bool = True):
    """Static grid: one row per varied component, one column per value (front-ish view).

    Every panel is framed on one shared box (the union of all the heads' extents), so a change of size shows as
    one; with ``displacement`` the heads that differ from their row's rest head (coefficient or jaw angle 0) are
    painted by how far each vertex moved from it, in mm, on one colour scale per row (its colour bar at the row's
    end, up to the row's largest 99th percentile: the jaw moves several times more than a shape component), and the
    rest heads keep ``vertex_colors``.

    Args:
        flame: a :class:`facecourse.flame.FLAME`.
        rows: ``(kind, index)`` pairs, kind in :data:`KINDS`.
        values: coefficient values (standard deviations) for shape/expression rows.
        jaw_values: jaw angles (radians) for the jaw row.
        azimuth: view angle (degrees) of :func:`facecourse.viz.plot_mesh`.
        axes_size: inches per panel.
        vertex_colors: optional ``(V, 3)`` RGB (e.g. :func:`head_colors`).
        displacement: paint the displacement from the row's rest head.

    Returns:
        the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    n_cols = max(len(values), len(jaw_values))
    faces = flame.faces.cpu().numpy()
    heads, moved = {}, {}
    for r, (kind, index) in enumerate(rows):
        rest = head_vertices(flame, **variation_params(flame, kind, index, 0.0))
        for c, value in enumerate(jaw_values if kind == "jaw" else values):
            if value == 0:
                heads[r, c] = rest
                continue
            heads[r, c] = head_vertices(flame, **variation_params(flame, kind, index, value))
            moved[r, c] = np.linalg.norm(heads[r, c] - rest, axis=1) * M_TO_MM
    in_view = np.concatenate(list(heads.values())) @ view_rotation(azimuth, 0.0).T
    lo, hi = in_view[:, :2].min(axis=0), in_view[:, :2].max(axis=0)
    pad = 0.05 * (hi - lo).max()
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(axes_size * n_cols + (1.0 if displacement else 0.0),
                                                         axes_size * len(rows)), squeeze=False, layout="constrained")
    for r, (kind, index) in enumerate(rows):
        vals = jaw_values if kind == "jaw" else values
        vmax = max((float(np.percentile(m, 99)) for (row, _), m in moved.items() if row == r), default=0.0) or 1.0
        mappable = None
        for c in range(n_cols):
            ax = axes[r, c]
            if c >= len(vals):
                ax.axis("off")
                continue
            label = (f"jaw {vals[c]:.2f} rad" if kind == "jaw"
                     else f"{'expr.' if kind == 'expression' else kind} {index + 1}: {vals[c]:+.1f}σ")
            if displacement and (r, c) in moved:
                mappable = plot_mesh(ax, heads[r, c], faces, azimuth=azimuth, title=label, scalars=moved[r, c],
                                     cmap="magma", vmin=0.0, vmax=vmax)
            else:
                plot_mesh(ax, heads[r, c], faces, azimuth=azimuth, title=label, vertex_colors=vertex_colors)
            ax.set_xlim(lo[0] - pad, hi[0] + pad)
            ax.set_ylim(lo[1] - pad, hi[1] + pad)
        if mappable is not None:
            fig.colorbar(mappable, ax=axes[r, :].tolist(), shrink=0.8, label="moved (mm)")
    return fig


def interactive_head(flame, n_shape: int = 3, n_exp: int = 3, value_range: float = 3.0,
                     jaw_max: float = 0.4):
    """k3d head with ipywidgets sliders for the first shape/expression components and the jaw.

    Args:
        flame: a :class:`facecourse.flame.FLAME`.
        n_shape, n_exp: number of shape / expression sliders (each in ``[-value_range, value_range]``).
        jaw_max: largest jaw opening (radians).

    Returns:
        an ``ipywidgets.VBox`` (display it; the k3d plot updates in place when a slider moves).
    """
    import ipywidgets as widgets

    n_shape, n_exp = min(n_shape, flame.n_shape), min(n_exp, flame.n_exp)
    faces = flame.faces.cpu().numpy()
    plot, mesh = k3d_mesh(head_vertices(flame, **slider_params(flame)), faces)
    style = {"description_width": "initial"}
    sliders = [widgets.FloatSlider(value=0.0, min=-value_range, max=value_range, step=0.1,
                                   description=f"shape {i + 1}", style=style) for i in range(n_shape)]
    sliders += [widgets.FloatSlider(value=0.0, min=-value_range, max=value_range, step=0.1,
                                    description=f"expression {i + 1}", style=style) for i in range(n_exp)]
    jaw = widgets.FloatSlider(value=0.0, min=0.0, max=jaw_max, step=0.01, description="jaw (rad)", style=style)

    def update(_=None):
        vals = [s.value for s in sliders]
        params = slider_params(flame, shape=vals[:n_shape], expression=vals[n_shape:], jaw=jaw.value)
        mesh.vertices = head_vertices(flame, **params).astype(np.float32)

    for s in [*sliders, jaw]:
        s.observe(update, names="value")
    return widgets.VBox([widgets.HBox([widgets.VBox(sliders), jaw]), plot])


__all__ = ["KINDS", "head_colors", "head_vertices", "interactive_head", "slider_params", "variation_grid", "variation_params"]
