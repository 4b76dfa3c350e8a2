"""Chapter-02 figures: they draw what they are given and reject malformed input by name."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import trimesh  # noqa: E402

from facecourse.spectral import eigenbasis  # noqa: E402
from facecourse.viz.spectral import (  # noqa: E402
    eigenvector_explorer, plot_eigenvectors, plot_error_curve, plot_filter_response,
)


@pytest.fixture(scope="module")
def sphere():
    m = trimesh.creation.icosphere(2)
    f = np.asarray(m.faces, dtype=np.int64)
    return np.asarray(m.vertices), f, eigenbasis(f, 8, cache=False)


def test_plot_eigenvectors_panels_and_symmetric_colours(sphere):
    v, f, b = sphere
    fig = plot_eigenvectors(v, f, b.eigenvectors, [1, 2, 3, 5, 7], b.eigenvalues, ncols=3)
    axes = fig.axes
    assert len(axes) == 6 and sum(bool(ax.collections) for ax in axes) == 5
    colls = [ax.collections[0] for ax in axes if ax.collections]
    assert "lambda" in axes[0].get_title()
    assert len(colls[0].get_facecolors()) > 0
    plt.close(fig)
    spiky = b.eigenvectors.copy()
    spiky[0, 1] = 100 * np.abs(spiky[:, 1]).max()          # one huge value must not wash out the rest
    panel = plot_eigenvectors(v, f, spiky, [1]).axes[0].collections[0].get_facecolors()[:, :3]
    assert (np.abs(panel[:, 0] - panel[:, 2]) > 0.3).mean() > 0.3, "most faces clearly red or blue"
    plt.close("all")
    with pytest.raises(ValueError, match="indices"):
        plot_eigenvectors(v, f, b.eigenvectors, [8])
    with pytest.raises(ValueError, match="eigenvectors"):
        plot_eigenvectors(v, f, b.eigenvectors[:-1], [1])


def test_curves(sphere):
    _, _, b = sphere
    fig, ax = plt.subplots()
    plot_error_curve(ax, [1, 2, 4], [3.0, 2.0, 1.0], label="cot")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [3.0, 2.0, 1.0])
    assert ax.get_yscale() == "log"
    lam = np.linspace(0, 2, 11)
    plot_filter_response(ax, lam, {"g": np.exp(-lam)}, eigenvalues=b.eigenvalues)
    with pytest.raises(ValueError, match="response"):
        plot_filter_response(ax, lam, {"g": lam[:-1]})
    with pytest.raises(ValueError, match="ks"):
        plot_error_curve(ax, [1, 2], [1.0])
    plt.close(fig)


def test_explorer_slider_repaints(sphere):
    v, f, b = sphere
    box = eigenvector_explorer(v, f, b.eigenvectors, b.eigenvalues, index=2)
    slider, label = box.children[0].children
    plot = box.children[1]
    mesh = plot.objects[0]
    np.testing.assert_allclose(mesh.attribute, b.eigenvectors[:, 2].astype(np.float32))
    slider.value = 5
    np.testing.assert_allclose(mesh.attribute, b.eigenvectors[:, 5].astype(np.float32))
    assert "lambda_5" in label.value
