"""``facecourse now-eval``: the NoW protocol on a folder of predictions.

    facecourse now-eval --dataset DIR --predictions DIR --split val [--metrical] [--workers N] --out DIR

Prints a table (overall and per challenge, with the mean-face and ground-truth baselines and the
published real-NoW numbers) and writes into ``--out``: ``summary.json``, ``per_image/`` (one ``.npz`` per
image, reused on the next run: the evaluation resumes), ``<method>_computed_distances.npy`` (the
official tool's content) and ``ced.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facecourse.now.layout import SPLIT_FILES


def dataset_problem(dataset: Path, split: str) -> str | None:
    """What makes ``dataset`` unusable for ``split`` (no folder, no image list, no scans), or None."""
    if not dataset.is_dir():
        return f"--dataset {dataset} is not a folder"
    missing = [name for name in (SPLIT_FILES[split], "scans", "scans_lmks_onlypp") if not (dataset / name).exists()]
    if missing:
        return (f"--dataset {dataset} is not a NoW dataset folder: it has no {', '.join(missing)} "
                "(expected NoW_Dataset/final_release_version with imagepathsvalidation.txt, scans/, scans_lmks_onlypp/)")
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``now-eval`` options."""
    parser.add_argument("--dataset", type=Path, default=None,
                        help="NoW dataset folder (with imagepathsvalidation.txt, scans/, scans_lmks_onlypp/); "
                             "default: the real NoW data if present, else the synthetic set")
    parser.add_argument("--predictions", type=Path, required=True,
                        help="predictions root: <subject>/<challenge>/<IMG>.obj|.ply + .npy|.txt")
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument("--metrical", action="store_true",
                        help="metrical protocol: scale fixed by --pred-unit, only rotation and translation fitted")
    parser.add_argument("--pred-unit", choices=("m", "cm", "mm"), default="m",
                        help="unit of the predictions (metrical protocol only; FLAME exports are in m)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default <predictions>/results)")
    parser.add_argument("--method", default="RECON", help="method name used in file names and the table")
    parser.add_argument("--no-baselines", action="store_true", help="skip the mean-face/ground-truth baselines")
    parser.add_argument("--flame", type=Path, default=None, help="FLAME pickle for the mean-face baseline")


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, write the outputs; exit code 0 when at least one image was evaluated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from facecourse.now.baselines import PUBLISHED_NOTE, baseline_curve, format_table, now_baselines
    from facecourse.now.evaluate import evaluate_now, write_report
    from facecourse.now.metrics import PUBLISHED_NOW, cumulative_error_curve
    from facecourse.now.paths import default_now_dir
    from facecourse.viz.now import plot_ced

    dataset = args.dataset if args.dataset is not None else default_now_dir()
    problem = dataset_problem(dataset, args.split)
    if problem is None and not args.predictions.is_dir():
        problem = f"--predictions {args.predictions} is not a folder"
    if problem is not None:
        print(f"now-eval: {problem}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else args.predictions / "results"
    print(f"NoW {'metrical' if args.metrical else 'non-metrical'} evaluation, split {args.split}\n"
          f"  dataset:     {dataset}\n  predictions: {args.predictions}\n  output:      {out}")
    report = evaluate_now(dataset, args.predictions, out, split=args.split, metrical=args.metrical,
                          pred_unit=args.pred_unit, workers=args.workers)
    cached = sum(r.cached for r in report.records)
    if cached:
        print(f"resumed: {cached} image(s) reused from {out / 'per_image'}")
    for r in report.records:
        if r.status != "ok":
            print(f"{r.status.upper():9s} {r.image.line}: {r.message}")
    baselines = {}
    if not args.no_baselines:
        baselines = now_baselines(dataset, [r.image for r in report.records], args.metrical, args.flame)
    stats = report.stats()
    print()
    print(format_table(stats, baselines, title=args.method))
    print(f"\nimages: {len(report.records)} listed, {len(report.ok())} evaluated, {report.count('missing')} missing, "
          f"{report.count('malformed')} malformed, {report.count('failed')} failed")
    clean = {k: {c: s for c, s in b.items() if not c.startswith("_")} for k, b in baselines.items()}
    write_report(report, out, args.method, extra={
        "dataset": str(dataset), "predictions": str(args.predictions), "pred_unit": args.pred_unit,
        "baselines_mm": clean, "published_real_now_test_mm": PUBLISHED_NOW, "published_note": PUBLISHED_NOTE})
    curves = {}
    if report.ok():
        curves[args.method] = cumulative_error_curve([r.distances for r in report.ok()])
    for name, b in baselines.items():
        curves[name] = baseline_curve(b)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    plot_ced(ax, curves, title=f"NoW {args.split} ({'metrical' if args.metrical else 'non-metrical'})")
    fig.tight_layout()
    from facecourse.data.atomic import atomic_path

    with atomic_path(out / "ced.png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    print(f"wrote {out / 'summary.json'}, {out / 'ced.png'}, per-image results in {out / 'per_image'}")
    return 0 if report.ok() else 1


__all__ = ["add_arguments", "run"]
