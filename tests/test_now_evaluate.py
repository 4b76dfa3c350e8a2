"""facecourse.now.evaluate on files: missing/malformed predictions, resume, invariance, the CLI end to end.

Runs on a toy head (ellipsoid with a nose, ``toy_now`` in conftest.py) so it needs no FLAME model; the
synthetic FLAME set is tested in test_now_synthetic.py.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facecourse.now import M_TO_MM, Similarity, evaluate_now, evaluate_prediction, result_path, write_prediction, write_report


def test_metric_is_invariant_to_a_similarity_of_the_prediction(toy_now):
    data, pred, images, (v, f, lm) = toy_now
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


def test_missing_and_malformed_are_reported_and_the_rest_goes_on(toy_now, tmp_path):
    data, pred, images, (v, f, lm) = toy_now
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
    assert cd["num_missing_files"] == 2 and cd["num_malformed_files"] == 3  # counted apart (the official tool: missing)
    assert len(cd["computed_distances"]) == 3 == len(cd["input_files"])
    np.testing.assert_array_equal(cd["computed_distances"][0], report.records[5].distances)


def test_resume_skips_finished_images(toy_now, tmp_path):
    data, pred, images, (v, f, lm) = toy_now
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


def test_cli_end_to_end(toy_now, tmp_path, capsys):
    from facecourse.cli import main

    data, pred, images, _ = toy_now
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
