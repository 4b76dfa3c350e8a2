"""facecourse.now on files: layout, missing/malformed predictions, resume, invariance, the CLI end to end.

Runs on a toy head (ellipsoid with a nose) so it needs no FLAME model; the synthetic FLAME set is tested
in test_now_synthetic.py.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from facecourse.now import (
    M_TO_MM, NowImage, PredictionMissing, Similarity, load_prediction, evaluate_now, evaluate_prediction, load_landmarks_file, read_image_list,
    result_path, write_image_list, write_pp, write_prediction, write_report,
)
from facecourse.now.synthetic import scan_from_head

AXES = np.array([75.0, 100.0, 90.0])
LM_XY = np.array([[-45.0, 25], [-15, 25], [15, 25], [45, 25], [0, -20], [-25, -45], [25, -45]])


def _bump(d):
    return 12.0 * np.exp(-((d[:, 0] / 0.25) ** 2 + ((d[:, 1] + 0.1) / 0.3) ** 2)) * (d[:, 2] > 0)


def toy_head(subdivisions=3, axes=AXES):
    """``(vertices mm, faces, NoW-7-like landmarks mm)`` of an ellipsoid head with a nose bump."""
    m = trimesh.creation.icosphere(subdivisions=subdivisions)
    d = np.asarray(m.vertices)
    v = d * axes + _bump(d)[:, None] * np.array([0, 0, 1.0])
    dl = np.column_stack([LM_XY[:, 0] / axes[0], LM_XY[:, 1] / axes[1], np.zeros(7)])
    dl[:, 2] = np.sqrt(1 - dl[:, 0] ** 2 - dl[:, 1] ** 2)
    lm = dl * axes + _bump(dl)[:, None] * np.array([0, 0, 1.0])
    return v, np.asarray(m.faces), lm


def make_toy_dataset(root, subjects=("SUBJ_A", "SUBJ_B")):
    rng = np.random.default_rng(0)
    images = []
    for k, subject in enumerate(subjects):
        v, f, lm = toy_head(3, AXES * (1 + 0.05 * k))
        sv, sf, slm, _ = scan_from_head(v, f, lm, rng)
        from facecourse.mesh import save_mesh

        save_mesh(root / "scans" / subject / f"{subject}.obj", sv, sf)
        write_pp(root / "scans_lmks_onlypp" / subject / f"{subject}.pp", slm)
        images += [NowImage(subject, c, f"IMG_{i}.jpg") for i, c in
                   enumerate(["multiview_neutral", "multiview_expressions", "multiview_occlusions", "selfie"])]
    write_image_list(root / "imagepathsvalidation.txt", images)
    return images


@pytest.fixture()
def toy(tmp_path):
    data, pred = tmp_path / "NoW", tmp_path / "pred"
    images = make_toy_dataset(data)
    v, f, lm = toy_head(2)  # coarser "prediction": the right shape family, in metres
    for im in images:
        write_prediction(pred, im, v / M_TO_MM, f, lm / M_TO_MM)
    return data, pred, images, (v, f, lm)


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


def test_layout_round_trip(toy, tmp_path):
    data, pred, images, _ = toy
    assert read_image_list(data, "val") == images
    assert NowImage.parse("/abs/prefix/S/selfie/IMG_1.jpg") == NowImage("S", "selfie", "IMG_1.jpg")
    with pytest.raises(ValueError, match="challenge"):
        NowImage.parse("S/unknown/IMG.jpg")
    (tmp_path / "l.txt").write_text("\n".join("1 2 3" for _ in range(7)))
    assert load_landmarks_file(tmp_path / "l.txt").shape == (7, 3)
    np.save(tmp_path / "l1.npy", np.zeros((1, 7, 3)))
    assert load_landmarks_file(tmp_path / "l1.npy").shape == (7, 3)
    v, f, lm = toy_head(1)
    im = NowImage("S", "selfie", "IMG_9.jpg")
    write_prediction(tmp_path / "p", im, v, f, lm, mesh_suffix=".ply")
    lv, lf, llm, used = load_prediction(tmp_path / "p", im)
    np.testing.assert_allclose(lv, v)
    np.testing.assert_array_equal(lf, f)
    assert used[0].suffix == ".ply" and np.allclose(llm, lm)
    with pytest.raises(PredictionMissing) as missing:
        load_prediction(tmp_path / "p", NowImage("S", "selfie", "IMG_8.jpg"))
    assert [p.suffix for p in missing.value.paths] == [".obj", ".ply"]


def test_metric_is_invariant_to_a_similarity_of_the_prediction(toy):
    data, pred, images, (v, f, lm) = toy
    from facecourse.now import load_scan

    sv, sf, slm = load_scan(data, images[0].subject)
    base = evaluate_prediction(sv, sf, slm, v, f, lm)
    rng = np.random.default_rng(2)
    t = Similarity(0.001, Rotation.random(random_state=3).as_matrix(), rng.normal(size=3))
    moved = evaluate_prediction(sv, sf, slm, t.apply(v), f, t.apply(lm))
    np.testing.assert_allclose(moved.distances, base.distances, atol=1e-4)
    assert base.refinement.history[-1] <= base.refinement.history[0]
    # metrical: a prediction in metres, scale fixed by the unit; same as non-metrical for the right size
    metrical = evaluate_prediction(sv, sf, slm, t.apply(v) / t.scale / M_TO_MM, f, t.apply(lm) / t.scale / M_TO_MM,
                                   metrical=True, pred_unit="m")
    assert metrical.transform.scale == pytest.approx(M_TO_MM)
    assert np.median(metrical.distances) < 1.5 * np.median(base.distances) + 0.05
    wrong_unit = evaluate_prediction(sv, sf, slm, v, f, lm, metrical=True, pred_unit="m")  # mm read as m
    assert np.median(wrong_unit.distances) > 10 * np.median(base.distances)


def test_missing_and_malformed_are_reported_and_the_rest_goes_on(toy, tmp_path):
    data, pred, images, (v, f, lm) = toy
    d = pred / images[0].subject / images[0].challenge
    os.remove(d / f"{images[0].stem}.npy")                                     # missing landmarks
    np.save(pred / images[1].subject / images[1].challenge / f"{images[1].stem}.npy", np.zeros((6, 3)))  # 6 landmarks
    bad = lm.copy()
    bad[2, 1] = np.nan
    write_prediction(pred, images[2], v, f, lm)
    np.save(pred / images[2].subject / images[2].challenge / f"{images[2].stem}.npy", bad)  # NaN
    (pred / images[3].subject / images[3].challenge / f"{images[3].stem}.obj").write_text("# nothing\n")  # empty
    for suffix in (".obj", ".npy"):
        os.remove(pred / images[4].subject / images[4].challenge / f"{images[4].stem}{suffix}")  # all missing
    report = evaluate_now(data, pred, tmp_path / "out", progress=False)
    status = [r.status for r in report.records]
    assert status == ["missing", "malformed", "malformed", "malformed", "missing", "ok", "ok", "ok"]
    assert ".npy" in report.records[0].message and images[0].stem in report.records[0].message
    assert "(7, 3)" in report.records[1].message and report.records[1].files[0].endswith(".npy")
    assert "non-finite" in report.records[2].message
    assert report.records[3].files[0].endswith(".obj")
    summary = write_report(report, tmp_path / "out")
    assert summary["n_images_evaluated"] == 3 and len(summary["missing"]) == 2 and len(summary["malformed"]) == 3
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())  # strict JSON: no image -> null
    assert on_disk["stats_mm"]["multiview_neutral"]["median"] is None
    assert on_disk["stats_mm"]["selfie"]["n_images"] == 1
    cd = np.load(tmp_path / "out" / "RECON_computed_distances.npy", allow_pickle=True).item()
    assert cd["num_missing_files"] == 5 and len(cd["computed_distances"]) == 3 == len(cd["input_files"])
    np.testing.assert_array_equal(cd["computed_distances"][0], report.records[5].distances)


def test_resume_skips_finished_images(toy, tmp_path):
    data, pred, images, (v, f, lm) = toy
    out = tmp_path / "out"
    first = evaluate_now(data, pred, out, progress=False)
    assert all(r.status == "ok" and not r.cached for r in first.records)
    assert all(result_path(out, im).is_file() for im in images)
    second = evaluate_now(data, pred, out, progress=False)
    assert all(r.cached for r in second.records)
    for a, b in zip(first.records, second.records):
        np.testing.assert_array_equal(a.distances, b.distances)
    # a changed prediction is recomputed, the others are reused
    write_prediction(pred, images[0], v * 1.01, f, lm * 1.01)
    os.utime(pred / images[0].subject / images[0].challenge / f"{images[0].stem}.obj", ns=(1, 1))
    third = evaluate_now(data, pred, out, progress=False)
    assert [r.cached for r in third.records] == [False] + [True] * (len(images) - 1)
    # a different protocol never reuses
    assert not any(r.cached for r in evaluate_now(data, pred, out, metrical=True, progress=False).records)


def test_cli_end_to_end(toy, tmp_path, capsys):
    from facecourse.cli import main

    data, pred, images, _ = toy
    os.remove(pred / images[-1].subject / images[-1].challenge / f"{images[-1].stem}.obj")
    out = tmp_path / "res"
    code = main(["now-eval", "--dataset", str(data), "--predictions", str(pred), "--split", "val",
                 "--workers", "2", "--out", str(out), "--no-baselines"])
    assert code == 0
    text = capsys.readouterr().out
    assert "median" in text and "multiview_neutral" in text and "MISSING" in text and "DECA" in text
    assert "not comparable" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images_evaluated"] == len(images) - 1 and len(summary["missing"]) == 1
    assert set(summary["stats_mm"]) >= {"all", "selfie"} and summary["published_real_now_test_mm"]["MICA"]
    assert (out / "ced.png").stat().st_size > 1000
    main(["now-eval", "--dataset", str(data), "--predictions", str(pred), "--out", str(out), "--no-baselines"])
    assert "resumed: 7 image(s)" in capsys.readouterr().out



def test_parallel_workers_survive_a_running_torch_thread_pool(tmp_path):
    """Forked workers deadlocked once torch had run in the parent, as in any notebook cell after a FLAME
    forward pass (seen with notebook 07 in full mode); the workers are spawned instead."""
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(
        "import sys\n"
        "import torch\n"
        "from facecourse.flame import FLAME, synthetic_model_path\n"
        "from facecourse.now import evaluate_now, export_flame_predictions, read_image_list\n"
        "from facecourse.now.synthetic import synthetic_now_dir\n"
        "if __name__ == '__main__':\n"
        "    x = torch.randn(2000, 2000)\n"
        "    (x @ x).sum()\n"
        "    dataset = synthetic_now_dir()\n"
        "    images = read_image_list(dataset, 'val')[:8]\n"
        "    flame = FLAME.from_file(synthetic_model_path('full'), n_shape=10, n_exp=0)\n"
        "    export_flame_predictions(sys.argv[1], images, flame, torch.zeros(len(images), 10))\n"
        "    report = evaluate_now(dataset, sys.argv[1], images=images, workers=2, progress=False)\n"
        "    print('evaluated', sum(r.status == 'ok' for r in report.records), 'of', len(images))\n")
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "pred")], capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr
    assert "evaluated 8 of 8" in result.stdout
