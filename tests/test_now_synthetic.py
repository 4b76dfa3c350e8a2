"""The synthetic NoW-format set and the FLAME exporter, on the synthetic FLAME model (built on demand)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import toy_head

from facecourse.flame import FLAME, synthetic_model_path
from facecourse.now import (
    CHALLENGES, M_TO_MM, NowImage, Similarity, evaluate_now, load_landmarks_file, load_scan, point_mesh_distance,
    read_image_list, scan_files,
)
from facecourse.now.baselines import now_baselines
from facecourse.now.export import export_flame_predictions, flame_now_prediction
from facecourse.now.synthetic import (
    build_synthetic_now, ground_truth_prediction, is_complete, render_now_images, scan_from_head, synthetic_meta,
    synthetic_now_dir,
)


@pytest.fixture(scope="module")
def dataset():
    return synthetic_now_dir()


@pytest.fixture(scope="module")
def flame(dataset):
    return FLAME.from_file(synthetic_model_path("full"), n_shape=synthetic_meta(dataset)["n_shape"], n_exp=10,
                           dtype=torch.float64)


def test_layout_and_units(dataset):
    assert is_complete(dataset)
    val, test = read_image_list(dataset, "val"), read_image_list(dataset, "test")
    assert {im.challenge for im in val} == set(CHALLENGES) and val and test
    assert not {im.subject for im in val} & {im.subject for im in test}
    for subject in sorted({im.subject for im in val + test}):
        v, f, lm = load_scan(dataset, subject)
        extent = np.ptp(v, axis=0)
        assert 100.0 < extent.max() < 400.0, "scans are in millimetres"
        assert point_mesh_distance(lm, v, f).max() < 3.0, "landmarks lie on the scan (annotation noise only)"
        assert ground_truth_prediction(dataset, subject) is not None
    assert build_synthetic_now(dataset.parent) == dataset  # idempotent: a finished set is kept as it is


def test_exporter_zeroes_expression_and_writes_the_now_layout(flame, tmp_path):
    beta = torch.randn(2, flame.n_shape, dtype=torch.float64)
    images = [NowImage("S1", "selfie", "IMG_1.jpg"), "S2/multiview_expressions/IMG_7.jpg"]
    paths = export_flame_predictions(tmp_path, images, flame, beta)
    neutral = flame(shape=beta)
    smiling = flame(shape=beta, expression=torch.randn(2, 10, dtype=torch.float64),
                    jaw_pose=torch.tensor([[0.2, 0.0, 0.0]] * 2, dtype=torch.float64))
    from facecourse.mesh import load_mesh

    for k, (mesh_path, lmk_path) in enumerate(paths):
        v, f = load_mesh(mesh_path)
        np.testing.assert_allclose(v, neutral.vertices[k].numpy(), atol=1e-6)       # metres, neutral
        assert np.abs(v - smiling.vertices[k].numpy()).max() > 1e-4
        np.testing.assert_allclose(load_landmarks_file(lmk_path), neutral.landmarks_now7[k].numpy(), atol=1e-9)
        np.testing.assert_array_equal(f, flame.faces.numpy())
    assert paths[1][0].relative_to(tmp_path).as_posix() == "S2/multiview_expressions/IMG_7.obj"
    v, lm = flame_now_prediction(flame, beta)
    assert v.shape == (2, flame.n_vertices, 3) and lm.shape == (2, 7, 3)


def test_ground_truth_is_near_zero_and_beats_the_mean_face(dataset, flame, tmp_path):
    meta = synthetic_meta(dataset)
    images = [im for im in read_image_list(dataset, "val") if im.challenge == "selfie"]
    beta = torch.tensor([meta["subjects"][im.subject]["shape"] for im in images], dtype=torch.float64)
    export_flame_predictions(tmp_path / "gt", images, flame, beta)
    gt = evaluate_now(dataset, tmp_path / "gt", images=images, progress=False).stats()["all"]
    assert gt["median"] < 0.3, "the exact identity only sees the 0.2 mm scan noise"
    base = now_baselines(dataset, images)
    assert base["ground-truth shape"]["all"]["median"] == pytest.approx(gt["median"], abs=0.02)
    assert base["mean face (template)"]["all"]["median"] > 2 * gt["median"]
    # metrical: metres with the unit given, the same answer for the exact identity
    metrical = evaluate_now(dataset, tmp_path / "gt", images=images, metrical=True, progress=False).stats()["all"]
    assert metrical["median"] < 0.3


def test_cli_on_the_synthetic_set(dataset, flame, tmp_path, capsys):
    from facecourse.cli import main

    data = tmp_path / "NoW"
    shutil.copytree(dataset, data)
    images = read_image_list(data, "val")[:6]
    (data / "imagepathsvalidation.txt").write_text("".join(im.line + "\n" for im in images))
    meta = synthetic_meta(data)
    beta = torch.tensor([meta["subjects"][im.subject]["shape"] for im in images], dtype=torch.float64)
    export_flame_predictions(tmp_path / "pred", images, flame, 0.5 * beta)
    assert main(["now-eval", "--dataset", str(data), "--predictions", str(tmp_path / "pred"), "--split", "val",
                 "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "baseline: mean face (template)" in text and "baseline: ground-truth shape" in text
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    s = summary["stats_mm"]["all"]
    b = summary["baselines_mm"]
    assert b["ground-truth shape"]["all"]["median"] < s["median"] < b["mean face (template)"]["all"]["median"]
    assert summary["n_images_evaluated"] == 6
    assert scan_files(data, images[0].subject)[0].suffix == ".obj"
    assert M_TO_MM == 1000.0


def test_real_layout_baselines_have_no_ground_truth(dataset, tmp_path):
    from facecourse.flame import real_model_path
    from facecourse.now.synthetic import GROUND_TRUTH_SUBDIR, META_FILE

    data = tmp_path / "real_like"
    shutil.copytree(dataset, data, ignore=shutil.ignore_patterns(META_FILE, GROUND_TRUTH_SUBDIR))
    images = read_image_list(data, "val")[:2]
    base = now_baselines(data, images)
    assert list(base) == (["mean face (template)"] if real_model_path().is_file()
                          else ["mean face (SYNTHETIC FLAME: get FLAME 2020)"])
    assert base[next(iter(base))]["all"]["n_images"] == 2


def test_a_rebuilt_flame_model_makes_the_set_stale(dataset, tmp_path):
    import json
    import shutil

    copy = tmp_path / "final_release_version"
    shutil.copytree(dataset, copy)
    assert is_complete(copy)
    meta = json.loads((copy / "synthetic_now.json").read_text())
    assert meta["flame_model_sha256"]
    meta["flame_model_sha256"] = "0" * 64  # as if the synthetic FLAME had been regenerated since
    (copy / "synthetic_now.json").write_text(json.dumps(meta))
    assert not is_complete(copy)


def test_scan_from_head_looks_like_a_scan():
    v, f, lm = toy_head(3)
    sv, sf, slm, scanner = scan_from_head(v, f, lm, np.random.default_rng(1))
    back = Similarity(1.0, scanner[:3, :3], scanner[:3, 3]).inverse()
    local = back.apply(sv)
    assert len(sv) > 1.5 * len(v)                                  # densified, even after cutting
    eyes_y, mouth_y = lm[:4, 1].mean(), lm[5:, 1].mean()
    assert local[:, 1].min() >= mouth_y - 1.3 * (eyes_y - mouth_y) - 1.0  # cut at the neck
    assert local[:, 2].min() > v[:, 2].min() + 0.25 * np.ptp(v[:, 2])   # back of the head missing
    assert np.abs(np.linalg.norm(back.apply(slm) - lm, axis=1)).max() < 3.0  # landmarks travel with the scan
    assert sf.max() < len(sv) and np.isfinite(sv).all()


def _tiny_now_set(root, validation_lines, test_lines):
    """A synthetic NoW folder with two subjects (small synthetic FLAME) and the given image lists."""
    root.mkdir()
    meta = {"flame_model": str(synthetic_model_path("small")), "n_shape": 10,
            "subjects": {"SYN_0001": {"split": "val", "shape": [0.5] * 10},
                         "SYN_0002": {"split": "test", "shape": [-0.5] * 10}}}
    (root / "synthetic_now.json").write_text(json.dumps(meta))
    (root / "imagepathsvalidation.txt").write_text("".join(f"{line}\n" for line in validation_lines))
    (root / "imagepathstest.txt").write_text("".join(f"{line}\n" for line in test_lines))
    return root


def test_render_now_images_official_layout(tmp_path):
    import matplotlib.image as mpimg

    root = _tiny_now_set(tmp_path / "final_release_version",
                         ["SYN_0001/multiview_neutral/IMG_0001.jpg", "SYN_0001/multiview_occlusions/IMG_0002.jpg"],
                         ["SYN_0002/selfie/IMG_0003.jpg"])
    assert render_now_images(root, image_size=64, progress=False) == 3
    img = mpimg.imread(root / "iphone_pictures" / "SYN_0001" / "multiview_neutral" / "IMG_0001.jpg")
    assert img.shape == (64, 64, 3)
    assert (root / "iphone_pictures" / "SYN_0002" / "selfie" / "IMG_0003.jpg").is_file()
    assert render_now_images(root, image_size=64, progress=False) == 0  # resumable: nothing left to do


def test_render_now_images_resumed_run_writes_the_same_images(tmp_path):
    """Each photo's randomness (head, background, occluders) depends on its own seed only: a run that
    resumes after some photos were written draws the same photos as an uninterrupted one."""
    lines = [f"SYN_0001/multiview_occlusions/IMG_000{i}.jpg" for i in (1, 2, 3)]
    whole = _tiny_now_set(tmp_path / "whole", lines, [])
    resumed = _tiny_now_set(tmp_path / "resumed", lines, [])
    assert render_now_images(whole, image_size=48, progress=False) == 3
    assert render_now_images(resumed, image_size=48, progress=False) == 3
    photos = resumed / "iphone_pictures" / "SYN_0001" / "multiview_occlusions"
    for name in ("IMG_0002.jpg", "IMG_0003.jpg"):  # interrupted after the first photo
        (photos / name).unlink()
    assert render_now_images(resumed, image_size=48, progress=False) == 2
    for name in ("IMG_0001.jpg", "IMG_0002.jpg", "IMG_0003.jpg"):
        expected = (whole / "iphone_pictures" / "SYN_0001" / "multiview_occlusions" / name).read_bytes()
        assert (photos / name).read_bytes() == expected, name


def test_every_synthetic_photo_has_a_face_box_around_the_face():
    """The boxes frame the rendered face: the face pixels (not the black background) fill most of the box,
    and almost none lie far outside it."""
    import matplotlib.image as mpimg
    from facecourse.now.layout import face_box_path, image_path, read_face_box, read_image_list
    from facecourse.now.synthetic import synthetic_now_dir
    root = synthetic_now_dir()
    for im in read_image_list(root, "val")[::3]:
        box = read_face_box(face_box_path(root, im))
        pixels = mpimg.imread(image_path(root, im))
        face = pixels.astype(float).sum(-1) > 30  # jpg: the background is black up to compression noise
        rows, cols = np.nonzero(face)
        inside = (cols >= box.left) & (cols <= box.right) & (rows >= box.top) & (rows <= box.bottom)
        box_area = (box.right - box.left) * (box.bottom - box.top)
        assert inside.sum() > 0.7 * box_area, (im, box)
        margin = 0.6 * (box.right - box.left)
        far = (cols < box.left - margin) | (cols > box.right + margin) | (rows > box.bottom + margin)
        assert far.mean() < 0.05, (im, box)
