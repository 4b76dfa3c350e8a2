"""NoW never loses a run: every way one image can fail is recorded for that image (path and reason) through the
``facecourse now-eval`` CLI, the rest is evaluated, and ``summary.json`` / the distances file are written."""

from __future__ import annotations

import json

import numpy as np
import pytest

import facecourse.now.evaluate as evaluate
from facecourse.cli import main
from facecourse.now import M_TO_MM, procrustes, refine_alignment, write_prediction
from facecourse.now.align import MAX_LOG_SCALE_STEP


def _now_eval(data, pred, out, *extra):
    return main(["now-eval", "--dataset", str(data), "--predictions", str(pred), "--out", str(out),
                 "--no-baselines", *extra])


def _lmk_file(pred, image):
    return pred / image.subject / image.challenge / f"{image.stem}.npy"


def test_every_bad_prediction_is_recorded_and_the_run_finishes(toy_now, tmp_path, capsys):
    data, pred, images, (v, f, lm) = toy_now
    v_m, lm_m = v / M_TO_MM, lm / M_TO_MM
    write_prediction(pred, images[0], v_m, f, lm)                    # landmarks in mm next to a mesh in metres
    _lmk_file(pred, images[1]).write_bytes(b"")                      # an empty .npy (np.load: EOFError)
    line = np.linspace(0, 1, 7)[:, None] * np.array([[0.05, 0.01, 0.0]])
    write_prediction(pred, images[2], v_m, f, line)                  # collinear landmarks
    twin = lm_m.copy()
    twin[3] = twin[0]
    write_prediction(pred, images[3], v_m, f, twin)                  # two coincident landmarks
    _lmk_file(pred, images[4]).unlink()                              # missing
    out = tmp_path / "out"
    assert _now_eval(data, pred, out) == 0
    summary = json.loads((out / "summary.json").read_text())
    by_image = {e["image"]: e for kind in ("missing", "malformed", "failed") for e in summary[kind]}
    assert "different units" in by_image[images[0].line]["message"]
    assert "millimetres next to metres" in by_image[images[0].line]["message"]
    assert str(_lmk_file(pred, images[1])) in by_image[images[1].line]["message"]
    assert "collinear" in by_image[images[2].line]["message"]
    assert "coincident" in by_image[images[3].line]["message"]
    assert summary["counts"] == {"ok": 3, "missing": 1, "malformed": 4, "failed": 0}
    cd = np.load(out / "RECON_computed_distances.npy", allow_pickle=True).item()
    assert cd["num_missing_files"] == 1 and cd["num_malformed_files"] == 4 and len(cd["computed_distances"]) == 3
    printed = capsys.readouterr().out
    assert "4 malformed" in printed and "1 missing" in printed
    # a rerun does not stop at the same image either: the same records, the good ones from the cache
    assert _now_eval(data, pred, out) == 0
    assert json.loads((out / "summary.json").read_text())["counts"] == summary["counts"]


def test_an_unexpected_error_in_one_image_is_recorded(toy_now, tmp_path, monkeypatch):
    data, pred, images, _ = toy_now
    real = evaluate.evaluate_prediction

    def flaky(*args, **kwargs):
        flaky.calls += 1
        if flaky.calls == 2:  # the second image
            raise RuntimeError("something nobody anticipated")
        return real(*args, **kwargs)

    flaky.calls = 0
    monkeypatch.setattr(evaluate, "evaluate_prediction", flaky)
    out = tmp_path / "out"
    assert _now_eval(data, pred, out) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["failed"] == 1 and summary["counts"]["ok"] == len(images) - 1
    failed = summary["failed"][0]
    assert failed["image"] == images[1].line and "RuntimeError: something nobody anticipated" in failed["message"]


def test_a_missing_scan_fails_that_image_only(toy_now, tmp_path):
    data, pred, images, _ = toy_now
    for path in (data / "scans" / images[0].subject).iterdir():
        path.unlink()
    out = tmp_path / "out"
    assert _now_eval(data, pred, out) == 0
    summary = json.loads((out / "summary.json").read_text())
    lost = {e["image"] for e in summary["failed"]}
    assert lost == {im.line for im in images if im.subject == images[0].subject}
    assert summary["counts"]["ok"] == sum(im.subject != images[0].subject for im in images)


@pytest.mark.parametrize("make", ["absent", "empty", "not-now"])
def test_a_bad_dataset_folder_is_a_message_not_a_traceback(toy_now, tmp_path, capsys, make):
    _, pred, _, _ = toy_now
    dataset = tmp_path / "dataset"
    if make != "absent":
        dataset.mkdir()
    if make == "not-now":
        (dataset / "imagepathsvalidation.txt").write_text("A/selfie/IMG_1.jpg\n")
    assert _now_eval(dataset, pred, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"--dataset {dataset}" in err
    if make == "not-now":
        assert "scans" in err
    assert not (tmp_path / "out").exists()


def test_a_missing_predictions_folder_is_a_message(toy_now, tmp_path, capsys):
    data, _, _, _ = toy_now
    assert _now_eval(data, tmp_path / "nowhere", tmp_path / "out") == 2
    assert "--predictions" in capsys.readouterr().err


def test_the_refinement_scale_is_bounded(toy_now):
    """A start 1000x off in scale (landmarks in mm, mesh in m) no longer overflows exp(): each step changes the
    scale by at most a factor of 2 and the energy never goes up."""
    data, _, images, (v, f, lm) = toy_now
    from facecourse.now import crop_scan, load_scan

    sv, sf, slm = load_scan(data, images[0].subject)
    init = procrustes(lm, slm)  # fitted to millimetre landmarks ...
    crop = crop_scan(sv, sf, slm)
    with np.errstate(over="raise"):
        result = refine_alignment(crop.vertices, v / M_TO_MM, f, init, max_iter=15)  # ... applied to a mesh in m
    assert np.isfinite(result.transform.scale) and result.transform.scale > 0
    assert all(b <= a for a, b in zip(result.history, result.history[1:]))
    steps = np.abs(np.diff(np.log([init.scale, result.transform.scale])))
    assert steps[0] <= MAX_LOG_SCALE_STEP * result.iterations + 1e-12


def test_degenerate_landmarks_are_named():
    from facecourse.now import check_landmark_geometry

    good = np.random.default_rng(0).normal(size=(7, 3))
    assert check_landmark_geometry(good).shape == (7, 3)
    with pytest.raises(ValueError, match="coincident points: landmarks 2 and 5"):
        check_landmark_geometry(np.concatenate([good[:5], good[2:3], good[6:]]), "predicted landmarks")
    with pytest.raises(ValueError, match="collinear"):
        check_landmark_geometry(np.outer(np.arange(7.0), [1.0, 2.0, 3.0]))
