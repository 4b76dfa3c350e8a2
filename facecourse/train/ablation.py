"""The ablation the paper's claim rests on (chapter 06): what each 3D term adds to the regressor.

Four variants of one base config (default the CI preset), each trained with several seeds (train-or-load:
:func:`~facecourse.train.regressor.pretrained_regressor`, so a rerun only evaluates):

=====  =========================================  ================================================
name   what is trained                            relative to the base config
=====  =========================================  ================================================
``a``  2D losses only                             ``w_vertices = w_id3d = 0``
``b``  + vertices loss                            ``w_id3d = 0``
``c``  + vertices + 3D-ID (autoencoder latent)    ``id3d_encoder = "autoencoder"``, latent only
``d``  + vertices + 3D-ID (identity encoder)      ``id3d_encoder = "identity"``, latent only
=====  =========================================  ================================================

The base config supplies the weights of the full method (``w_vertices``, ``w_id3d`` > 0). Every run is
evaluated with the NoW protocol on the validation split (:func:`~facecourse.train.regressor.now_report`) and
on the paired data's held-out heads; the mean face (the template, "ignore the photo") is evaluated on the
same images. The table gives per variant the mean over seeds of the NoW median / mean / std (mm) with the
seed spread (standard deviation over seeds), and the CED curves pool the seeds' distances.

A run that fails (training diverges, a broken checkpoint) is reported with its reason and the others go on;
the table and the files are written whatever failed (:func:`write_ablation`: ``ablation.csv``,
``ablation_runs.csv``, ``ablation.md``, ``ablation_ced.csv``, each atomically). ``facecourse ablate`` runs it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from facecourse.data.atomic import atomic_open
from facecourse.data.paths import data_dir
from facecourse.now.layout import face_box_path, image_path, read_image_list, scan_files, split_file
from facecourse.now.metrics import CED_MAX_MM, cumulative_error_curve
from facecourse.now.paths import default_now_dir
from facecourse.now.synthetic import META_FILE as SYNTHETIC_META_FILE
from facecourse.settings import progress_bar
from facecourse.train.regressor import (RegressorConfig, add_config_arguments, config_from_args, held_out_errors,
                                        load_renderer, mean_face_stats, now_report, pretrained_regressor)


@dataclass(frozen=True)
class AblationVariant:
    """One row of the ablation: a ``name``, a human ``label`` and the config ``overrides`` it applies to the base."""

    name: str
    label: str
    overrides: dict = field(default_factory=dict)


ABLATION_VARIANTS: tuple[AblationVariant, ...] = (
    AblationVariant("a", "2D losses only", {"w_vertices": 0.0, "w_id3d": 0.0}),
    AblationVariant("b", "+ vertices", {"w_id3d": 0.0}),
    AblationVariant("c", "+ vertices + 3D-ID (autoencoder latent)", {"id3d_encoder": "autoencoder", "id3d_levels": ()}),
    AblationVariant("d", "+ vertices + 3D-ID (identity encoder)", {"id3d_encoder": "identity", "id3d_levels": ()}),
)
"""The paper's ablation (module docstring)."""

MEAN_FACE = "mean face"
"""The baseline's name in the table."""


def variant_config(base: RegressorConfig, variant: AblationVariant, seed: int) -> RegressorConfig:
    """``base`` with ``variant.overrides`` and ``seed``; a ``ValueError`` when the base config's 3D weights are
    0 where the variant needs them (the ablation would then compare a method with itself)."""
    needs = {"b": ("w_vertices",), "c": ("w_vertices", "w_id3d"), "d": ("w_vertices", "w_id3d")}.get(variant.name, ())
    for name in needs:
        if getattr(base, name) <= 0 and name not in variant.overrides:
            raise ValueError(f"ablation variant {variant.name!r} needs the base config's {name} > 0, "
                             f"got {getattr(base, name)}")
    return dataclasses.replace(base, **variant.overrides, seed=int(seed))


@dataclass
class AblationRun:
    """One trained variant and seed.

    Attributes:
        variant: the :class:`AblationVariant` name. seed: its seed. config_key: the run's config key.
        status: ``"ok"`` or ``"failed"``; message: the failure's reason ('' when ok).
        metrics: ``now_median_mm``, ``now_mean_mm``, ``now_std_mm``, ``val_face_mm``, ``val_head_mm`` (mm).
        distances: the NoW scan-to-mesh distances (mm) of every evaluated image (for the CED).
        checkpoint: the run's checkpoint path ('' when it failed before one existed).
    """

    variant: str
    seed: int
    config_key: str
    status: str = "ok"
    message: str = ""
    metrics: dict = field(default_factory=dict)
    distances: list = field(default_factory=list, repr=False)
    checkpoint: str = ""


@dataclass
class AblationResult:
    """All runs, the variants they belong to, and the mean face on the same NoW images.

    Attributes:
        variants: the :class:`AblationVariant` s run. runs: one :class:`AblationRun` per variant and seed.
        mean_face: ``now_median_mm``, ``now_mean_mm``, ``now_std_mm``, ``val_face_mm``, ``val_head_mm`` of the
            template head. mean_face_distances, mean_face_weights: its per-subject distances and their image
            counts (the CED of the baseline).
    """

    variants: tuple
    runs: list
    mean_face: dict
    mean_face_distances: list = field(default_factory=list, repr=False)
    mean_face_weights: list = field(default_factory=list, repr=False)

    def failed(self) -> list[AblationRun]:
        """The runs that failed."""
        return [r for r in self.runs if r.status != "ok"]

    def table(self) -> list[dict[str, Any]]:
        """One row per variant (mean and seed spread of the metrics over its successful seeds) and the mean
        face's, as dicts: ``variant``, ``label``, ``seeds_ok``, ``seeds``, ``<metric>`` and ``<metric>_spread``."""
        rows = []
        for v in self.variants:
            runs = [r for r in self.runs if r.variant == v.name]
            ok = [r for r in runs if r.status == "ok"]
            row: dict[str, Any] = {"variant": v.name, "label": v.label, "seeds_ok": len(ok), "seeds": len(runs)}
            for metric in METRICS:
                values = np.array([r.metrics[metric] for r in ok if metric in r.metrics], dtype=float)
                row[metric] = float(values.mean()) if len(values) else math.nan
                row[f"{metric}_spread"] = float(values.std()) if len(values) else math.nan
            rows.append(row)
        base: dict[str, Any] = {"variant": MEAN_FACE, "label": "template head (ignores the photo)", "seeds_ok": 1,
                                "seeds": 1}
        for metric in METRICS:
            base[metric] = self.mean_face.get(metric, math.nan)
            base[f"{metric}_spread"] = 0.0
        return rows + [base]

    def ced(self, variant: str, max_error: float = CED_MAX_MM, n_thresholds: int = 401
            ) -> tuple[np.ndarray, np.ndarray]:
        """``(thresholds (T,) mm, percent (T,))``: the cumulative error distribution of ``variant`` (its seeds'
        distances pooled) or of :data:`MEAN_FACE`."""
        if variant == MEAN_FACE:
            return cumulative_error_curve(self.mean_face_distances, np.asarray(self.mean_face_weights, np.int64),
                                          max_error, n_thresholds)
        if variant not in {v.name for v in self.variants}:
            raise ValueError(f"variant must be one of {[v.name for v in self.variants] + [MEAN_FACE]}, got {variant!r}")
        chunks = [d for r in self.runs if r.variant == variant and r.status == "ok" for d in r.distances]
        return cumulative_error_curve(chunks, None, max_error, n_thresholds)

    def markdown(self) -> str:
        """The table as markdown: NoW median / mean / std and the held-out face error, mean ± seed spread (mm)."""
        head = ("| variant | | seeds | NoW median (mm) | NoW mean (mm) | NoW std (mm) | held-out face (mm) |\n"
                "|---|---|---|---|---|---|---|\n")
        lines = []
        for row in self.table():
            cells = [f"{row[m]:.3f} ± {row[m + '_spread']:.3f}" if row["variant"] != MEAN_FACE else f"{row[m]:.3f}"
                     for m in ("now_median_mm", "now_mean_mm", "now_std_mm", "val_face_mm")]
            lines.append(f"| {row['variant']} | {row['label']} | {row['seeds_ok']}/{row['seeds']} | " + " | ".join(cells) + " |")
        notes = "".join(f"\n- FAILED {r.variant} seed {r.seed}: {r.message}" for r in self.failed())
        return head + "\n".join(lines) + "\n" + notes


METRICS = ("now_median_mm", "now_mean_mm", "now_std_mm", "val_face_mm", "val_head_mm")
"""The metrics of each run and of the table (mm)."""


def mean_face_baseline(now_dir: str | Path, val_metrics: dict, split: str = "val") -> tuple[dict, list, list]:
    """The template head on ``split`` of ``now_dir`` (:func:`~facecourse.train.regressor.mean_face_stats`):
    ``(metrics, per-subject distances, image counts)``; ``val_metrics`` (the mean head's held-out errors from
    :func:`~facecourse.train.regressor.neutral_errors`) fill ``val_face_mm`` / ``val_head_mm``."""
    stats = mean_face_stats(now_dir, split)
    subjects = sorted(stats["_distances"])
    metrics = {f"now_{k}_mm": float(stats["all"][k]) for k in ("median", "mean", "std")}
    metrics.update({k.replace("val_mean_", "val_"): v for k, v in val_metrics.items() if k.startswith("val_mean_")})
    return (metrics, [stats["_distances"][s] for s in subjects],
            [sum(stats["_counts"][s].values()) for s in subjects])


EVALUATION_FILE = "ablation_evaluation.npz"
"""A run's cached evaluation, beside its checkpoint (:func:`evaluate_variant`)."""


def _package_sources() -> list[Path]:
    return sorted(Path(__file__).resolve().parents[1].rglob("*.py"))


def evaluation_key(checkpoint: str | Path, now_dir: str | Path, split: str = "val") -> str:
    """SHA-256 of everything an evaluation of ``checkpoint`` on ``split`` of ``now_dir`` depends on: the
    checkpoint's bytes, the facecourse sources, the split's image list and the size and modification time of
    every image, face box and scan it names (and of the synthetic set's ``synthetic_now.json``). A cached
    evaluation with another key is stale. (The paired held-out heads are those of the run's config, which with
    the sources determines the synthetic set; a real paired dataset changed in place is not noticed.)"""
    digest = hashlib.sha256(Path(checkpoint).read_bytes())
    for source in _package_sources():
        digest.update(source.read_bytes())
    now_dir = Path(now_dir).resolve()
    images = read_image_list(now_dir, split)
    files = [split_file(now_dir, split), now_dir / SYNTHETIC_META_FILE]
    files += [p for im in images for p in (image_path(now_dir, im), face_box_path(now_dir, im))]
    files += [p for subject in sorted({im.subject for im in images}) for p in scan_files(now_dir, subject)]
    digest.update(str(now_dir).encode())
    for path in files:
        stat = path.stat() if path.exists() else None
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode() if stat else f"{path}:absent".encode())
    return digest.hexdigest()


def _read_evaluation(path: Path, key: str) -> tuple[dict, list, dict] | None:
    """``(metrics, distances, val_mean)`` of a cached evaluation with ``key``, else ``None`` (missing, stale or
    unreadable: the run is evaluated again)."""
    try:
        with np.load(path, allow_pickle=False) as cached:
            if str(cached["key"]) != key:
                return None
            record = json.loads(str(cached["record"]))
            distances = np.split(cached["distances"], cached["offsets"][1:-1])
    except (OSError, KeyError, ValueError):
        return None
    return record["metrics"], distances, record["val_mean"]


def _write_evaluation(path: Path, key: str, metrics: dict, distances: list, val_mean: dict) -> None:
    offsets = np.cumsum([0] + [len(d) for d in distances])
    flat = np.concatenate([np.asarray(d, np.float64).ravel() for d in distances]) if distances else np.zeros(0)
    with atomic_open(path, "wb") as handle:
        np.savez(handle, key=np.array(key), record=np.array(json.dumps({"metrics": metrics, "val_mean": val_mean})),
                 distances=flat, offsets=offsets)


def evaluate_variant(config: RegressorConfig, now_dir: Path, progress: bool = True,
                     device: torch.device | str | None = None) -> tuple[AblationRun, dict]:
    """Train-or-load the regressor of ``config`` and evaluate it: its :class:`AblationRun` (status ok) and the
    held-out metrics of the mean head on the same heads (``val_mean_*``).

    The evaluation is cached beside the checkpoint (:data:`EVALUATION_FILE`, written atomically) under its
    :func:`evaluation_key`: a rerun with the same checkpoint, code and NoW files reads it instead of
    evaluating again."""
    regressor, _, path = pretrained_regressor(config, progress=progress, device=device)
    key = evaluation_key(path, now_dir)
    cache = Path(path).parent / EVALUATION_FILE
    cached = _read_evaluation(cache, key)
    if cached is None:
        eval_device = next(regressor.parameters()).device
        metrics = held_out_errors(regressor, load_renderer(config), config, eval_device)
        report = now_report(regressor, now_dir, config.image_size, eval_device)
        stats = report.stats()["all"]
        metrics.update({f"now_{k}_mm": float(stats[k]) for k in ("median", "mean", "std")})
        own = {k: v for k, v in metrics.items() if not k.startswith("val_mean_")}
        val_mean = {k: v for k, v in metrics.items() if k.startswith("val_mean_")}
        distances = [np.asarray(r.distances, np.float64) for r in report.ok()]
        _write_evaluation(cache, key, own, distances, val_mean)
    else:
        own, distances, val_mean = cached
    run = AblationRun("", config.seed, config.key(), metrics=own, distances=distances, checkpoint=str(path))
    return run, val_mean


def run_ablation(base: RegressorConfig | None = None, variants: Sequence[AblationVariant] = ABLATION_VARIANTS,
                 seeds: Sequence[int] = (0, 1), now_dir: str | Path | None = None, progress: bool = True,
                 device: torch.device | str | None = None,
                 evaluate: Callable[..., tuple[AblationRun, dict]] = evaluate_variant) -> AblationResult:
    """Train-or-load and evaluate every variant x seed of ``base`` (default the current mode's preset) on the
    NoW ``now_dir`` (default :func:`~facecourse.now.paths.default_now_dir`); a failing run is recorded with
    its reason (:class:`AblationRun` ``status="failed"``) and the others go on. ``evaluate`` is the per-run
    step (:func:`evaluate_variant`; replaceable for tests of the bookkeeping)."""
    base = RegressorConfig.for_mode() if base is None else base
    now_dir = Path(now_dir) if now_dir is not None else default_now_dir()
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    names = [v.name for v in variants]
    if not variants or len(set(names)) != len(names):
        raise ValueError(f"variants must be a non-empty list of distinct names, got {names}")
    runs, val_mean = [], {}
    jobs = [(v, s) for v in variants for s in seeds]
    bar = progress_bar(jobs, desc="ablation", unit="run", disable=not progress)
    for variant, seed in bar:
        try:
            config = variant_config(base, variant, seed)
        except ValueError as error:
            runs.append(AblationRun(variant.name, int(seed), "", "failed", str(error)))
            continue
        try:
            run, mean_metrics = evaluate(config, now_dir, progress=progress, device=device)
        except Exception as error:  # one run's failure is reported, the others go on  # noqa: BLE001
            runs.append(AblationRun(variant.name, int(seed), config.key(), "failed", f"{type(error).__name__}: {error}"))
            bar.write(f"FAILED ablation {variant.name} seed {seed}: {type(error).__name__}: {error}")
            continue
        run.variant = variant.name
        runs.append(run)
        val_mean = val_mean or mean_metrics
    bar.close()
    metrics, distances, weights = mean_face_baseline(now_dir, val_mean)
    return AblationResult(tuple(variants), runs, metrics, distances, weights)


def _csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def write_ablation(result: AblationResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``ablation.csv`` (:meth:`AblationResult.table`), ``ablation_runs.csv`` (one row per run with its
    status, reason and checkpoint), ``ablation.md`` and ``ablation_ced.csv`` (threshold in mm, then percent per
    variant and the mean face) into ``out_dir``, each atomically; returns the paths by kind."""
    out_dir = Path(out_dir)
    run_rows = [{"variant": r.variant, "seed": r.seed, "status": r.status, "message": r.message,
                 **{m: r.metrics.get(m, math.nan) for m in METRICS}, "config_key": r.config_key,
                 "checkpoint": r.checkpoint} for r in result.runs]
    curves = {v.name: result.ced(v.name)[1] for v in result.variants}
    tau, curves[MEAN_FACE] = result.ced(MEAN_FACE)
    ced_rows = [{"threshold_mm": float(t), **{k: float(c[i]) for k, c in curves.items()}} for i, t in enumerate(tau)]
    texts = {"table": ("ablation.csv", _csv_text(result.table())), "runs": ("ablation_runs.csv", _csv_text(run_rows)),
             "markdown": ("ablation.md", result.markdown()), "ced": ("ablation_ced.csv", _csv_text(ced_rows))}
    paths = {}
    for kind, (name, text) in texts.items():
        with atomic_open(out_dir / name, "w") as handle:
            handle.write(text)
        paths[kind] = out_dir / name
    return paths


def default_ablation_dir(base: RegressorConfig) -> Path:
    """``data_dir()/"runs"/"ablation-<base.key()>"``."""
    return data_dir() / "runs" / f"ablation-{base.key()}"


# -------------------------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``facecourse ablate``."""
    add_config_arguments(parser)  # the base config: the full method's w_vertices and w_id3d > 0
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="seeds per variant (default 0 1)")
    parser.add_argument("--variants", nargs="+", default=[v.name for v in ABLATION_VARIANTS],
                        choices=[v.name for v in ABLATION_VARIANTS], help="variants to run (default all)")
    parser.add_argument("--now-dir", type=Path, dest="now_dir", help="NoW dataset folder (default: real NoW when "
                        "installed, else the synthetic NoW-format set)")
    parser.add_argument("--out", type=Path, help="where the tables go (default <data>/runs/ablation-<config key>)")
    parser.add_argument("--device", help="torch device (default: FACECOURSE_DEVICE, CUDA if available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Run ``facecourse ablate``: print the markdown table and the files; exit 1 when any run failed."""
    base = config_from_args(args, "ablate")
    variants = [v for v in ABLATION_VARIANTS if v.name in args.variants]
    result = run_ablation(base, variants, args.seeds, args.now_dir, progress=not args.no_progress, device=args.device)
    paths = write_ablation(result, args.out or default_ablation_dir(base))
    print(result.markdown())
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 1 if result.failed() else 0


__all__ = [
    "ABLATION_VARIANTS", "AblationResult", "AblationRun", "AblationVariant", "EVALUATION_FILE", "MEAN_FACE",
    "METRICS", "default_ablation_dir", "evaluate_variant", "evaluation_key", "mean_face_baseline", "run_ablation", "variant_config",
    "write_ablation",
]
