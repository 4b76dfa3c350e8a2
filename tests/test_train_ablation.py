"""The ablation: variants relative to the base config, one failing run reported while the others go on, the
table's means and seed spreads, the CED curves, the files written atomically, ``facecourse ablate`` end to
end on tiny runs with the real NoW protocol, and the cached evaluation of a rerun."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import pytest

from facecourse.cli import main
from facecourse.now.layout import split_file
from facecourse.now.paths import default_now_dir
from facecourse.train import ablation
from facecourse.train.ablation import (ABLATION_VARIANTS, EVALUATION_FILE, MEAN_FACE, AblationRun, evaluate_variant,
                                       evaluation_key, run_ablation, variant_config, write_ablation)
from facecourse.train.regressor import RegressorConfig

TINY = dict(image_size=32, backbone_width=8, identity_hidden=32, epochs=1, val_every=1, now_validation=False,
            log_every=2, w_vertices=30.0, w_id3d=0.1)


def test_variants_are_relative_to_the_base_config():
    base = RegressorConfig.for_mode("ci", w_vertices=30.0, w_id3d=0.5, id3d_levels=(1.0, 0.5))
    a, b, c, d = (variant_config(base, v, seed=3) for v in ABLATION_VARIANTS)
    assert (a.w_vertices, a.w_id3d) == (0.0, 0.0) and a.seed == 3
    assert (b.w_vertices, b.w_id3d) == (30.0, 0.0)
    assert (c.w_id3d, c.id3d_encoder, c.id3d_levels) == (0.5, "autoencoder", ())
    assert (d.w_id3d, d.id3d_encoder) == (0.5, "identity")
    assert len({x.key() for x in (a, b, c, d)}) == 4
    with pytest.raises(ValueError, match="variant 'c' needs the base config's w_id3d > 0"):
        variant_config(RegressorConfig.for_mode("ci", w_vertices=30.0, w_id3d=0.0), ABLATION_VARIANTS[2], 0)


def fake_evaluate(config, now_dir, progress=True, device=None):
    """NoW median = 1 + seed / 10 (+ 0.5 with the 3D-ID term); variant 'b' seed 1 breaks."""
    if config.w_vertices > 0 and config.w_id3d == 0 and config.seed == 1:
        raise RuntimeError("loss is not finite at step 3")
    median = 1.0 + config.seed / 10 + (0.5 if config.w_id3d > 0 else 0.0)
    metrics = {"now_median_mm": median, "now_mean_mm": median + 0.2, "now_std_mm": 0.3, "val_face_mm": 2.0,
               "val_head_mm": 3.0}
    distances = [np.full(10, median), np.full(5, median + 1.0)]
    return AblationRun("", config.seed, config.key(), metrics=metrics, distances=distances), {
        "val_mean_face_mm": 2.5, "val_mean_head_mm": 3.5}


@pytest.fixture(scope="module")
def result():
    base = RegressorConfig.for_mode("ci", w_vertices=30.0, w_id3d=0.5)
    return run_ablation(base, seeds=(0, 1), progress=False, evaluate=fake_evaluate)


def test_a_failed_run_is_reported_and_the_others_go_on(result):
    assert len(result.runs) == 8
    failed = result.failed()
    assert [(r.variant, r.seed) for r in failed] == [("b", 1)]
    assert "RuntimeError: loss is not finite at step 3" in failed[0].message
    assert "FAILED b seed 1: RuntimeError" in result.markdown()


def test_the_table_gives_seed_means_spreads_and_the_mean_face(result):
    rows = {row["variant"]: row for row in result.table()}
    assert rows["a"]["now_median_mm"] == pytest.approx(1.05) and rows["a"]["now_median_mm_spread"] == pytest.approx(0.05)
    assert rows["b"]["seeds_ok"] == 1 and rows["b"]["now_median_mm"] == pytest.approx(1.0)
    assert rows["c"]["now_median_mm"] == pytest.approx(1.55)
    base = rows[MEAN_FACE]
    assert base["val_face_mm"] == 2.5 and base["val_head_mm"] == 3.5
    assert 0.3 < base["now_median_mm"] < 3, "the template on the synthetic NoW validation split"


def test_ced_pools_the_seeds_and_reaches_every_distance(result):
    tau, percent = result.ced("a")
    # seeds 0 and 1: distances 1.0 (x10), 2.0 (x5), 1.1 (x10), 2.1 (x5) mm
    assert percent[np.searchsorted(tau, 1.05)] == pytest.approx(100 * 10 / 30)
    assert percent[np.searchsorted(tau, 1.5)] == pytest.approx(100 * 20 / 30)
    assert percent[-1] == 100 and np.all(np.diff(percent) >= 0)
    tau, base = result.ced(MEAN_FACE)
    assert np.all(np.diff(base) >= 0) and 50 < base[-1] <= 100
    with pytest.raises(ValueError, match="variant must be one of"):
        result.ced("z")


def test_the_files_are_written_whole(result, tmp_path):
    paths = write_ablation(result, tmp_path / "abl")
    assert sorted(p.name for p in (tmp_path / "abl").iterdir()) == sorted(
        ["ablation.csv", "ablation_runs.csv", "ablation.md", "ablation_ced.csv"])
    table = list(csv.DictReader(paths["table"].open()))
    assert [row["variant"] for row in table] == ["a", "b", "c", "d", MEAN_FACE]
    runs = list(csv.DictReader(paths["runs"].open()))
    assert [(r["variant"], r["status"]) for r in runs if r["status"] != "ok"] == [("b", "failed")]
    assert math.isnan(float(next(r for r in runs if r["status"] == "failed")["now_median_mm"]))
    ced = list(csv.DictReader(paths["ced"].open()))
    assert list(ced[0]) == ["threshold_mm", "a", "b", "c", "d", MEAN_FACE] and len(ced) == 401


def test_facecourse_ablate_trains_evaluates_and_writes_the_table(tmp_path, capsys):
    sets = [f"{k}={v}" for k, v in TINY.items()]
    code = main(["ablate", "--variants", "a", "c", "--seeds", "0", "--out", str(tmp_path), "--no-progress",
                 "--device", "cpu", "--set", *sets])
    printed = capsys.readouterr().out
    assert code == 0, printed
    table = {row["variant"]: row for row in csv.DictReader((tmp_path / "ablation.csv").open())}
    assert set(table) == {"a", "c", MEAN_FACE}
    for name in ("a", "c"):
        assert table[name]["seeds_ok"] == "1" and 0 < float(table[name]["now_median_mm"]) < 5
        assert 0 < float(table[name]["val_face_mm"]) < 20
    assert table["a"]["now_median_mm"] != table["c"]["now_median_mm"], "two different trainings"
    assert "| a | 2D losses only | 1/1 |" in printed


def test_a_rerun_reads_the_cached_evaluation_until_an_input_changes(monkeypatch):
    base = RegressorConfig.from_dict({**RegressorConfig.for_mode().to_dict(), **TINY})
    config = variant_config(base, ABLATION_VARIANTS[0], 0)  # trained by the test above (or here, train-or-load)
    now_dir = default_now_dir()
    first, mean_first = evaluate_variant(config, now_dir, progress=False, device="cpu")
    cache = Path(first.checkpoint).parent / EVALUATION_FILE
    assert cache.is_file()

    def evaluated_again(*args, **kwargs):
        raise AssertionError("the cached evaluation was not used")

    with monkeypatch.context() as patch:
        patch.setattr(ablation, "now_report", evaluated_again)
        second, mean_second = evaluate_variant(config, now_dir, progress=False, device="cpu")
    assert second.metrics == first.metrics and mean_second == mean_first and first.metrics["now_median_mm"] > 0
    assert len(second.distances) == len(first.distances) > 0
    assert all(np.array_equal(a, b) for a, b in zip(first.distances, second.distances))

    key = evaluation_key(first.checkpoint, now_dir)
    image_list = split_file(now_dir, "val")
    stat = image_list.stat()
    os.utime(image_list, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:
        assert evaluation_key(first.checkpoint, now_dir) != key, "a changed NoW file must make the cache stale"
    finally:
        os.utime(image_list, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert evaluation_key(first.checkpoint, now_dir) == key

    cache.write_bytes(b"not an npz")  # an unreadable cache is evaluated again, not an error
    third, _ = evaluate_variant(config, now_dir, progress=False, device="cpu")
    assert third.metrics == first.metrics
    assert np.load(cache)["key"] == key
