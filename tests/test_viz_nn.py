"""Chapter 03 figures: one panel per order / level / mesh, colour scales that mark the receptive field."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import trimesh  # noqa: E402

from facecourse.nn import build_hierarchy, mesh_laplacian  # noqa: E402
from facecourse.nn.chebconv import impulse_responses  # noqa: E402
from facecourse.viz.nn import (  # noqa: E402
    plot_hierarchy, plot_impulse_responses, plot_mesh_row, plot_reconstructions, plot_training_history,
)


pytestmark = pytest.mark.usefixtures("data_dir")  # $FACECOURSE_DATA in tmp_path (conftest.py)


def test_figures():
    m = trimesh.creation.icosphere(3, radius=0.1)
    v = m.vertices
    front = int(np.argmax(v[:, 2]))
    r = impulse_responses(mesh_laplacian(m.faces, len(v)), front, 4)
    fig = plot_impulse_responses(v, m.faces, r, vertex=front)
    assert len([a for a in fig.axes if a.collections]) == 4
    zoomed = plot_impulse_responses(v, m.faces, r, vertex=front, zoom=0.02)
    x0, x1 = zoomed.axes[0].get_xlim()
    assert x1 - x0 == pytest.approx(0.04) and (x0 + x1) / 2 == pytest.approx(v[front, 0], abs=1e-9)
    with pytest.raises(ValueError, match="zoom must be a positive half-width"):
        plot_impulse_responses(v, m.faces, r, zoom=0.02)
    h = build_hierarchy(v, m.faces, factors=(4, 4))
    fig = plot_hierarchy(h)
    assert [a.get_title() for a in fig.axes[:3]] == [f"level {i}: {n} vertices" for i, n in enumerate(h.sizes)]
    x = torch.as_tensor(v, dtype=torch.float32)[None].repeat(2, 1, 1)
    fig = plot_reconstructions(x, x + 0.001, m.faces)
    assert fig.axes[4].get_title() == "mean 1.73 mm"  # |(1, 1, 1)| mm = sqrt(3)
    assert len(plot_mesh_row(x, m.faces, titles=["a", "b"]).axes) == 2
    fig = plot_training_history([{"epoch": 1, "loss": 1.0, "test_mean_mm": 3.0}, {"epoch": 2, "loss": 0.5,
                                                                                    "test_mean_mm": 2.0}])
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="history is empty"):
        plot_training_history([])
