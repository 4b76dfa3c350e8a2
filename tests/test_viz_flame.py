"""FLAME views: the static grid draws every variation (one framing, displacements painted); the sliders change
the k3d mesh."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from facecourse.flame import FLAME
from facecourse.viz.flame import head_vertices, interactive_head, variation_grid, variation_params


@pytest.fixture(scope="module")
def flame(tiny_flame_path):
    return FLAME.from_file(tiny_flame_path, n_shape=6, n_exp=4)


def test_variation_params_change_only_their_component(flame):
    p = variation_params(flame, "expression", 2, 1.5)
    assert p["expression"].tolist() == [[0.0, 0.0, 1.5]] and "shape" not in p
    rest = head_vertices(flame)
    moved = head_vertices(flame, **p)
    expect = rest + 1.5 * flame.shapedirs[:, :, flame.n_shape + 2].numpy()
    np.testing.assert_allclose(moved, expect, atol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        variation_params(flame, "nose", 0, 1.0)


def test_grid_has_one_panel_per_variation(flame):
    fig = variation_grid(flame, rows=(("shape", 0), ("jaw", 0)), values=(-2, 0, 2), jaw_values=(0, 0.2))
    axes = np.array(fig.axes[:6]).reshape(2, 3)
    assert [len(ax.collections) for ax in axes[0]] == [1, 1, 1]
    assert [len(ax.collections) for ax in axes[1]] == [1, 1, 0]
    assert len(fig.axes) == 8, "a displacement colour bar per row"
    assert len({(ax.get_xlim(), ax.get_ylim()) for ax in axes.ravel()[:5]}) == 1, "one framing: sizes compare"
    def hues(ax):  # each face's RGB over its red: the default skin colour, only shaded, gives one ratio
        rgb = ax.collections[0].get_facecolors()[:, :3]
        return rgb / rgb[:, :1]
    assert np.ptp(hues(axes[0, 1]), axis=0).max() < 1e-6, "the rest head keeps its colour"
    assert np.ptp(hues(axes[0, 2]), axis=0).max() > 0.2, "a varied head is painted by its displacement"
    plain = variation_grid(flame, rows=(("shape", 0),), values=(-2, 0, 2), displacement=False)
    assert len(plain.axes) == 3, "no colour bar without displacement"


def test_sliders_move_the_k3d_mesh(flame):
    box = interactive_head(flame, n_shape=2, n_exp=1)
    sliders = box.children[0].children[0].children
    jaw = box.children[0].children[1]
    plot = box.children[1]
    mesh = plot.objects[0]
    before = np.array(mesh.vertices)
    sliders[0].value = 2.0
    after = np.array(mesh.vertices)
    np.testing.assert_allclose(after, before + 2.0 * flame.shapedirs[:, :, 0].numpy(), atol=1e-5)
    jaw.value = 0.3
    expect = head_vertices(flame, shape=torch.tensor([[2.0, 0.0]]), jaw_pose=torch.tensor([[0.3, 0.0, 0.0]]))
    np.testing.assert_allclose(np.array(mesh.vertices), expect, atol=1e-5)


def test_head_colors_paint_eyes_and_lips():
    import numpy as np

    from facecourse.flame import load_masks, load_model, synthetic_model_path
    from facecourse.viz.flame import IRIS, LIPS, SCLERA, SKIN, head_colors

    path = synthetic_model_path("small")
    template, masks = load_model(path)["v_template"], load_masks(path.parent)
    colors = head_colors(template, masks)
    assert colors.shape == template.shape and colors.min() >= 0 and colors.max() <= 1
    np.testing.assert_allclose(colors[masks["lips"]], np.tile(LIPS, (len(masks["lips"]), 1)))
    for name in ("left_eyeball", "right_eyeball"):
        eye = np.asarray(masks[name])
        iris = np.all(np.isclose(colors[eye], IRIS), axis=1)
        assert 0 < iris.sum() < 0.25 * len(eye) and np.all(np.isclose(colors[eye][~iris], SCLERA))
        front = template[eye, 2] > template[eye, 2].mean()
        assert front[iris].all(), "the iris looks ahead (+z)"
    skin = np.ones(len(template), bool)
    skin[np.concatenate([masks["lips"], masks["left_eyeball"], masks["right_eyeball"]])] = False
    np.testing.assert_allclose(colors[skin], np.tile(SKIN, (skin.sum(), 1)))
