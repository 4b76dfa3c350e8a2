"""Reference points printed beside every NoW result.

* **Mean face**: the FLAME template (zero shape) for every image -- "ignore the photo". Published methods
  sit within about half a millimetre of it on real NoW, which is why it is always shown.
* **Ground-truth shape**: the clean FLAME head the synthetic scan was made from (synthetic set only). Its
  error is the scan noise: a sanity check of the pipeline, near zero.
* **Published**: :data:`facecourse.now.PUBLISHED_NOW`, measured by the organisers on the *real* NoW
  test set; never comparable with numbers measured on synthetic scans.
"""

from __future__ import annotations

import math
import os

import numpy as np

from facecourse.now.evaluate import baseline_stats
from facecourse.now.layout import CHALLENGES
from facecourse.now.metrics import PUBLISHED_NOW, cumulative_error_curve

PUBLISHED_NOTE = ("published values on the real NoW test set (organisers); not comparable with results on "
                  "synthetic scans")


def baseline_flame_path(dataset_dir: str | os.PathLike):
    """The FLAME pickle for the mean-face baseline: the synthetic full model for the synthetic set (its scans
    come from it), else :func:`facecourse.flame.default_model_path` ("full": real FLAME 2020 when present)."""
    from facecourse.flame import default_model_path, synthetic_model_path
    from facecourse.now.synthetic import synthetic_meta

    return synthetic_model_path("full") if synthetic_meta(dataset_dir) else default_model_path("full")


def now_baselines(dataset_dir: str | os.PathLike, images, metrical: bool = False, flame_path=None) -> dict:
    """Mean-face and (synthetic only) ground-truth-shape statistics on ``images``.

    Args:
        dataset_dir: NoW dataset folder.
        images: the evaluated :class:`facecourse.now.NowImage` list.
        metrical: protocol variant (baseline predictions are in metres).
        flame_path: FLAME pickle of the mean face (default :func:`baseline_flame_path`).

    Returns:
        ``{"mean face (template)": stats, "ground-truth shape": stats}`` (the latter only for the synthetic
        set), each as :func:`facecourse.now.baseline_stats` returns. On real scans with only the synthetic
        FLAME model available, the mean-face entry is renamed to say so.
    """
    from facecourse.flame import FLAME, is_synthetic
    from facecourse.now.export import mean_face_prediction
    from facecourse.now.synthetic import ground_truth_prediction, synthetic_meta

    flame_path = flame_path or baseline_flame_path(dataset_dir)
    flame = FLAME.from_file(flame_path, n_shape=1, n_exp=0)
    template = mean_face_prediction(flame)
    name = "mean face (template)"
    if is_synthetic(flame_path) and not synthetic_meta(dataset_dir):
        name = "mean face (SYNTHETIC FLAME: get FLAME 2020)"  # real scans vs a made-up head: not the real baseline
    out = {name: baseline_stats(dataset_dir, images, lambda s: template, metrical, "m")}
    gt = baseline_stats(dataset_dir, images, lambda s: ground_truth_prediction(dataset_dir, s), metrical, "m")
    if gt["all"]["n_images"]:
        out["ground-truth shape"] = gt
    return out


def baseline_curve(stats: dict, **kwargs) -> tuple:
    """Cumulative error curve ``(thresholds, percent)`` of a baseline from :func:`now_baselines` /
    :func:`facecourse.now.baseline_stats` (each subject weighted by its number of images)."""
    subjects = sorted(stats["_distances"])
    weights = np.asarray([sum(stats["_counts"][s].values()) for s in subjects], dtype=np.int64)
    return cumulative_error_curve([stats["_distances"][s] for s in subjects], weights, **kwargs)


def _fmt(x: float) -> str:
    return "   n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:6.3f}"


def format_table(stats: dict, baselines: dict | None = None, title: str = "prediction", published: bool = True) -> str:
    """A text table: median / mean / std (mm) and image counts, overall and per challenge, then baselines
    (overall) and the published real-NoW numbers, marked as not comparable.

    Args:
        stats: ``{"all": {...}, <challenge>: {...}}`` (:meth:`facecourse.now.NowReport.stats`).
        baselines: as :func:`now_baselines` returns.
        title: name of the evaluated method.
        published: append :data:`PUBLISHED_NOW`.
    """
    rows = [(f"{title} (all)", stats["all"])]  # (name, stats) or a note line (str)
    rows += [(f"  {c}", stats[c]) for c in CHALLENGES if c in stats]
    rows += [(f"baseline: {name}", b["all"]) for name, b in (baselines or {}).items()]
    if published:
        rows.append(f"* {PUBLISHED_NOTE}:")
        rows += [(f"  * {name}", dict(st, n_images="real")) for name, st in PUBLISHED_NOW.items()]
    width = max(34, *(len(r[0]) + 1 for r in rows if isinstance(r, tuple)))
    head = f"{'':{width}s} {'median':>6s} {'mean':>6s} {'std':>6s} {'images':>7s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        if isinstance(r, str):
            lines.append(r)
            continue
        name, st = r
        n = st.get("n_images", "")
        lines.append(f"{name:{width}s} {_fmt(st['median'])} {_fmt(st['mean'])} {_fmt(st['std'])} {n!s:>7s}")
    return "\n".join(lines)


__all__ = ["PUBLISHED_NOTE", "baseline_curve", "baseline_flame_path", "format_table", "now_baselines"]
