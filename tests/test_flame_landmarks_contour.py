"""The dynamic contour's sign, fixed by what a camera sees (not by agreement with one port).

Oracle: the head turned by a yaw is rasterised by :func:`facecourse.render.rasterize` (frontal weak-perspective
camera, 256 px). For a projected contour point of depth :math:`d` the *depth step* is
:math:`\\max_{3\\times3} z_{\\mathrm{buf}} - d` over the pixels around it, background counting as infinitely
far. On the outline seen by the camera (the occluding contour or the silhouette) something much farther, or
nothing, lies right beside the point: a large positive step. A point hidden behind the surface has surface in
front of it in every pixel around it: a negative step.

For a head turned by +yaw (face towards +x) the subject's left cheek turns away; its contour points
(iBUG 11-16; 0-5 for -yaw) must lie on the outline, and no contour point may be hidden. The contour of the
opposite yaw — what a flipped sign selects — has those points behind the cheek, centimetres deep: the test
asserts both, so it fails when the sign (of the yaw, the row table or a reader) is flipped.

Run on both synthetic sizes, for each embedding format the loader accepts (DECA's ``landmark_embedding.npy``,
RingNet's ``flame_static_embedding.pkl`` + ``flame_dynamic_embedding.npy``) read on its own, and on the real
FLAME model with each embedding file present beside it (skipped when there is none).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from facecourse.flame import FLAME, synthetic_model_path
from facecourse.flame import io as fio
from facecourse.flame.landmarks import barycentric_points
from facecourse.flame.paths import usable_real_model
from facecourse.render.camera import WeakPerspectiveCamera, ndc_to_pixels
from facecourse.render.rasterize import rasterize

IMAGE_SIZE = 256
#: Depth step (metres) above which a point is on the outline: 1 cm farther or background beside it
#: (measured on the synthetic heads: the far-side points have 28 mm or background).
OUTLINE_STEP = 0.01
#: Depth slack (metres) of "not hidden": rasterisation at ~1 mm per pixel (measured: no step below -0.1 mm).
HIDDEN_SLACK = 0.003
#: How deep (metres) the flipped choice's far-side points must be hidden (measured medians: 42-96 mm).
FLIPPED_DEPTH = 0.01
FORMATS = {"deca": (fio.DECA_EMBEDDING,), "ringnet": (fio.RINGNET_STATIC, fio.RINGNET_DYNAMIC)}
#: Head turns: (global yaw, neck yaw) in degrees; the contour follows the chain global -> neck.
TURNS = [(30, 0), (-30, 0), (20, 0), (-20, 0), (15, 15), (-15, -15)]


def _models():
    cases = [pytest.param(("synthetic", size), id=f"synthetic-{size}") for size in ("small", "full")]
    cases.append(pytest.param(("real", None), id="real",
                              marks=pytest.mark.skipif(usable_real_model() is None, reason="no real FLAME model")))
    return cases


@pytest.fixture(scope="module", params=_models())
def model_path(request):
    kind, size = request.param
    return synthetic_model_path(size) if kind == "synthetic" else usable_real_model()


@pytest.fixture(scope="module")
def flames(model_path, tmp_path_factory):
    """The model read with each embedding format present beside it, one format at a time: ``{format: FLAME}``."""
    out = {}
    for name, files in FORMATS.items():
        if all((model_path.parent / f).is_file() for f in files):
            folder = tmp_path_factory.mktemp(name)
            for f in files:
                shutil.copy(model_path.parent / f, folder / f)
            out[name] = FLAME.from_file(model_path, n_shape=1, n_exp=1, dtype=torch.float64, landmark_dir=folder)
    assert out, f"the loader accepts no embedding beside {model_path}"
    return out


@pytest.fixture(scope="module")
def renders(flames):
    """Per head turn: pose, camera and the rasterised depth ``(H, W)`` (``inf`` on background); shared by the
    formats (the embedding does not move the vertices)."""
    flame = next(iter(flames.values()))
    cache = {}
    for glob, neck in TURNS:
        pose = torch.tensor([[0.0, np.deg2rad(glob), 0.0]], dtype=torch.float64)
        neck_pose = torch.tensor([[0.0, np.deg2rad(neck), 0.0]], dtype=torch.float64)
        v = flame(global_pose=pose, neck_pose=neck_pose).vertices
        lo, hi = v[0, :, :2].amin(0), v[0, :, :2].amax(0)
        centre, extent = (lo + hi) / 2, (hi - lo).amax()
        camera = WeakPerspectiveCamera(torch.cat([(2 / (1.1 * extent)).reshape(1), -centre])[None])
        frags = rasterize(camera.project(v), flame.faces, IMAGE_SIZE)
        cache[glob, neck] = (pose, neck_pose, camera, torch.where(frags.mask, frags.zbuf, torch.inf)[0].numpy())
    return cache


def depth_steps(points: torch.Tensor, camera: WeakPerspectiveCamera, zbuf: np.ndarray) -> np.ndarray:
    """Depth step (metres) of model-space points ``(1, L, 3)``: max z-buffer over the 3 x 3 pixels around the
    projection minus the point's depth; ``inf`` when background is beside it. ``(L,)``."""
    p = ndc_to_pixels(camera.project(points), zbuf.shape)[0].numpy()
    steps = []
    for x, y, d in p:
        j, i = int(round(x)), int(round(y))
        steps.append(zbuf[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].max() - d)
    return np.array(steps)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("turn", TURNS, ids=[f"yaw{g:+d}{f'_neck{n:+d}' if n else ''}" for g, n in TURNS])
def test_chosen_contour_is_on_the_outline_the_camera_sees(model_path, flames, renders, fmt, turn):
    if fmt not in flames:
        pytest.skip(f"no {fmt} embedding beside {model_path}")
    flame = flames[fmt]
    pose, neck_pose, camera, zbuf = renders[turn]
    out = flame(global_pose=pose, neck_pose=neck_pose)
    far = slice(11, 17) if sum(turn) > 0 else slice(0, 6)  # the cheek turning away from the camera

    chosen = depth_steps(out.landmarks[:, :17], camera, zbuf)
    assert (chosen > -HIDDEN_SLACK).all(), f"hidden contour points (depth step, mm): {chosen * 1e3}"
    assert (chosen[far] > OUTLINE_STEP).all(), f"far-side points off the outline (mm): {chosen[far] * 1e3}"

    # the flipped sign's choice: the row the opposite turn selects, on this head
    flipped_row = flame(global_pose=-pose, neck_pose=-neck_pose).contour_row
    flipped = barycentric_points(out.vertices, flame.faces, flame.dynamic_faces[flipped_row],
                                 flame.dynamic_bary[flipped_row])
    steps = depth_steps(flipped, camera, zbuf)
    assert np.median(steps[far]) < -FLIPPED_DEPTH, f"the flipped contour is not hidden (mm): {steps[far] * 1e3}"
