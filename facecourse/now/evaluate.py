"""The NoW protocol, one image and a whole split.

One image (:func:`evaluate_prediction`): crop the scan with its landmarks
(:func:`facecourse.now.crop_scan`), align the prediction by landmark Procrustes
(:func:`facecourse.now.procrustes`), refine on the scan-to-mesh energy
(:func:`facecourse.now.refine_alignment`), and measure, for every cropped scan vertex, the exact distance to
the aligned predicted surface (:class:`facecourse.now.SurfaceDistance`), in millimetres.

A split (:func:`evaluate_now`): every image of the list, in parallel processes, each result saved
atomically as soon as it is computed (``<out>/per_image/<subject>/<challenge>/<IMG>.npz``) so an
interrupted run resumes; missing predictions are counted and listed, malformed ones reported with their
path, and the run goes on. The official ``*_computed_distances.npy`` content (per-image distance arrays in
list order, the number of missing files, plus the input files) is written at the end.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecourse.data.atomic import atomic_open, atomic_path
from facecourse.now.align import Refinement, Similarity, procrustes, refine_alignment
from facecourse.now.crop import CroppedScan, check_landmark_geometry, crop_scan
from facecourse.now.distance import SurfaceDistance
from facecourse.now.layout import (
    CHALLENGES, NowImage, PredictionMalformed, PredictionMissing, load_prediction, load_scan,
    prediction_base, prediction_files, read_image_list, scan_files,
)
from facecourse.now.metrics import error_stats
from facecourse.now.units import unit_to_mm
from facecourse.settings import progress_bar

#: Bump when the computation changes, so cached per-image results are recomputed.
RESULT_VERSION = 1


@dataclass(frozen=True)
class ImageEvaluation:
    """Everything one image's evaluation computes.

    Attributes:
        distances: ``(N,)`` mm, one per cropped scan vertex.
        crop: the :class:`CroppedScan` (its vertices are the measured points).
        initial: landmark Procrustes, prediction -> scan.
        transform: final (refined) transform, prediction -> scan.
        refinement: the :class:`Refinement` (energy history in mm²), or None if not refined.
        aligned_vertices: ``(V, 3)`` prediction vertices in scan millimetres.
    """

    distances: np.ndarray
    crop: CroppedScan
    initial: Similarity
    transform: Similarity
    refinement: Refinement | None
    aligned_vertices: np.ndarray


#: Accepted range of (landmark spread) / (mesh size) of a prediction. A face's 7 landmarks span about a third
#: of its mesh's bounding-box diagonal; a factor of ~1000 outside means millimetres next to metres.
LANDMARK_TO_MESH_RATIO = (1e-2, 10.0)


def check_prediction_units(pred_vertices, pred_landmarks, name: str = "prediction") -> float:
    """The ratio of the landmarks' spread (RMS distance to their centroid) to the mesh's bounding-box diagonal.

    Args:
        pred_vertices: ``(V, 3)``; pred_landmarks: ``(7, 3)``, supposed to be in the same unit.

    Raises:
        ValueError: the ratio is outside :data:`LANDMARK_TO_MESH_RATIO`, naming it as a unit mismatch.
    """
    v = np.asarray(pred_vertices, dtype=np.float64)
    lm = np.asarray(pred_landmarks, dtype=np.float64).reshape(-1, 3)
    size = float(np.linalg.norm(v.max(axis=0) - v.min(axis=0)))
    spread = float(np.sqrt(((lm - lm.mean(axis=0)) ** 2).sum(axis=1).mean()))
    ratio = spread / size if size > 0 else np.inf
    lo, hi = LANDMARK_TO_MESH_RATIO
    if not lo <= ratio <= hi:
        raise ValueError(f"{name}: landmarks and mesh are in different units: the landmarks spread {spread:.4g}, "
                         f"the mesh measures {size:.4g} (ratio {ratio:.3g}, expected {lo:g}..{hi:g}; a factor of "
                         "about 1000 means millimetres next to metres)")
    return ratio


def evaluate_prediction(scan_vertices, scan_faces, scan_landmarks, pred_vertices, pred_faces, pred_landmarks,
                        metrical: bool = False, pred_unit: str = "m", refine: bool = True,
                        max_refine_points: int | None = None, radius_scale: float = 1.0) -> ImageEvaluation:
    """NoW error of one prediction against one scan.

    Args:
        scan_vertices: ``(V, 3)`` mm; scan_faces: ``(F, 3)``; scan_landmarks: ``(7, 3)`` mm.
        pred_vertices: ``(U, 3)`` in the prediction's unit; pred_faces: ``(G, 3)``;
            pred_landmarks: ``(7, 3)`` (or ``(1, 7, 3)``) NoW-7 landmarks in the same unit.
        metrical: the metrical protocol: the scale is fixed to ``pred_unit`` -> mm, only rotation and
            translation are estimated. Otherwise the scale is estimated and units are free. (The official
            metrical script keeps the translation of the *scaled* Procrustes; here the initial translation
            is the least-squares one for the fixed scale. The refinement that follows fits it either way.)
        pred_unit: ``"m"``, ``"cm"`` or ``"mm"`` (metrical only).
        refine: run the scan-to-mesh refinement after Procrustes (the protocol does).
        max_refine_points: optional subset size for the refinement iterations.
        radius_scale: factor on the crop radius (:func:`facecourse.now.crop_scan`); 1.0 is the protocol,
            other values are for ablations only.

    Returns:
        :class:`ImageEvaluation`.

    Raises:
        ValueError: ``radius_scale`` not a finite number > 0, bad landmarks
            (:func:`facecourse.now.crop.check_landmark_geometry`) or landmarks in another unit than the mesh
            (:func:`check_prediction_units`).
    """
    scan_lm = check_landmark_geometry(scan_landmarks, "scan landmarks")
    pred_lm = check_landmark_geometry(pred_landmarks, "predicted landmarks")
    check_prediction_units(pred_vertices, pred_lm)
    surface = SurfaceDistance(pred_vertices, pred_faces)
    crop = crop_scan(scan_vertices, scan_faces, scan_lm, radius_scale)
    initial = procrustes(pred_lm, scan_lm, with_scale=not metrical,
                         scale=unit_to_mm(pred_unit) if metrical else 1.0)
    refinement = None
    transform = initial
    if refine:
        refinement = refine_alignment(crop.vertices, surface.vertices, surface.faces, initial,
                                      with_scale=not metrical, max_points=max_refine_points, surface=surface)
        transform = refinement.transform
    sq = surface.query(transform.inverse().apply(crop.vertices))[0]
    distances = transform.scale * np.sqrt(sq)
    return ImageEvaluation(distances, crop, initial, transform, refinement, transform.apply(surface.vertices))


#: Outcomes of one image: evaluated; a prediction file absent; a prediction file unusable (unreadable, wrong
#: shape, non-finite, degenerate or unit-mismatched landmarks); anything else that failed (e.g. a dataset scan).
STATUSES = ("ok", "missing", "malformed", "failed")


@dataclass
class ImageRecord:
    """Outcome for one image: ``status`` in :data:`STATUSES`; ``distances`` ``(N,)`` mm when ok; ``message``
    explains a failure (with the file and the reason); ``files`` are the inputs used or looked for."""

    image: NowImage
    status: str
    distances: np.ndarray | None = None
    message: str = ""
    files: list = field(default_factory=list)
    cached: bool = False


def result_path(out_dir: str | os.PathLike, image: NowImage) -> Path:
    """Where the per-image result of ``image`` is saved."""
    return Path(out_dir) / "per_image" / image.subject / image.challenge / f"{image.stem}.npz"


def _cache_key(dataset_dir, pred_dir, image: NowImage, metrical: bool, pred_unit: str) -> str:
    """Identity of the inputs and options of one image (files by path, size and modification time)."""
    files = list(scan_files(dataset_dir, image.subject)) + list(prediction_files(pred_dir, image))
    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return json.dumps({"v": RESULT_VERSION, "files": stats, "metrical": metrical,
                       "unit": pred_unit if metrical else None})


def _load_cached(path: Path, key: str):
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key:
                return z["distances"].astype(np.float64), json.loads(str(z["files"]))
    except (OSError, ValueError, KeyError):
        pass
    return None


def evaluate_image(dataset_dir, pred_dir, image: NowImage, out_dir=None, metrical: bool = False,
                   pred_unit: str = "m") -> ImageRecord:
    """Evaluate one image of a split from files, reusing/saving its result in ``out_dir`` if given.

    Never raises: missing files give ``status="missing"``, unusable ones ``"malformed"`` with the path in
    ``message``, and any other failure (a missing or broken ground-truth scan, an unexpected error) ``"failed"``
    with the exception, so one image never stops a split.
    """
    try:
        return _evaluate_image(dataset_dir, pred_dir, image, out_dir, metrical, pred_unit)
    except Exception as exc:  # noqa: BLE001 -- recorded for this image; the rest of the split goes on
        return ImageRecord(image, "failed", message=f"{type(exc).__name__}: {exc}",
                           files=[str(Path(dataset_dir) / "scans" / image.subject),
                                  str(prediction_base(pred_dir, image))])


def _evaluate_image(dataset_dir, pred_dir, image: NowImage, out_dir, metrical: bool, pred_unit: str) -> ImageRecord:
    """:func:`evaluate_image` without the catch-all: missing and malformed predictions are records, the rest raises."""
    try:
        key = _cache_key(dataset_dir, pred_dir, image, metrical, pred_unit)
    except PredictionMissing as exc:
        return ImageRecord(image, "missing", message=str(exc), files=[str(p) for p in exc.paths])
    path = result_path(out_dir, image) if out_dir is not None else None
    if path is not None and path.is_file():
        cached = _load_cached(path, key)
        if cached is not None:
            return ImageRecord(image, "ok", cached[0], files=cached[1], cached=True)
    scan_v, scan_f, scan_lm = load_scan(dataset_dir, image.subject)
    try:
        v, f, lm, used = load_prediction(pred_dir, image)
        result = evaluate_prediction(scan_v, scan_f, scan_lm, v, f, lm, metrical=metrical, pred_unit=pred_unit)
    except PredictionMalformed as exc:
        return ImageRecord(image, "malformed", message=str(exc), files=[str(exc.path)])
    except (ValueError, FloatingPointError, OverflowError, np.linalg.LinAlgError) as exc:  # e.g. degenerate
        # or unit-mismatched landmarks, an alignment that cannot be computed: report against the prediction files
        mesh_path, lmk_path = prediction_files(pred_dir, image)
        return ImageRecord(image, "malformed", message=f"{mesh_path}, {lmk_path}: {exc}",
                           files=[str(mesh_path), str(lmk_path)])
    files = [str(p) for p in scan_files(dataset_dir, image.subject)] + [str(p) for p in used]
    if path is not None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, distances=result.distances.astype(np.float32), key=np.array(key),
                         files=np.array(json.dumps(files)))
    return ImageRecord(image, "ok", result.distances.astype(np.float32).astype(np.float64), files=files)


def _evaluate_image_task(args) -> ImageRecord:
    return evaluate_image(*args)


@dataclass
class NowReport:
    """A split's evaluation: one :class:`ImageRecord` per listed image, in list order."""

    records: list
    split: str
    metrical: bool

    def ok(self, challenge: str | None = None) -> list:
        """Evaluated records, optionally of one challenge."""
        return [r for r in self.records if r.status == "ok" and (challenge is None or r.image.challenge == challenge)]

    def count(self, status: str) -> int:
        """Number of images with ``status`` (one of :data:`STATUSES`)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        return sum(r.status == status for r in self.records)

    def stats(self) -> dict:
        """``{"all": stats, <challenge>: stats, ...}`` (see :func:`facecourse.now.error_stats`) plus image counts."""
        out = {}
        for name in ("all",) + CHALLENGES:
            recs = self.ok(None if name == "all" else name)
            out[name] = dict(error_stats([r.distances for r in recs]), n_images=len(recs))
        return out

    def summary(self) -> dict:
        """The JSON-ready summary: statistics overall and per challenge, counts, missing and malformed files."""
        return {
            "split": self.split,
            "metrical": self.metrical,
            "n_images_listed": len(self.records),
            "n_images_evaluated": len(self.ok()),
            "stats_mm": self.stats(),
            "missing": [{"image": r.image.line, "message": r.message, "files": r.files}
                        for r in self.records if r.status == "missing"],
            "malformed": [{"image": r.image.line, "message": r.message, "files": r.files}
                          for r in self.records if r.status == "malformed"],
            "failed": [{"image": r.image.line, "message": r.message, "files": r.files}
                       for r in self.records if r.status == "failed"],
            "counts": {status: self.count(status) for status in STATUSES},
        }

    def computed_distances(self) -> dict:
        """The content of the official ``*_computed_distances.npy``: ``computed_distances`` (list of per-image
        arrays, list order, evaluated images only), ``num_missing_files`` (predictions not found, as the official
        tool counts them), and ``input_files`` (per array); plus ``num_malformed_files`` and ``num_failed``."""
        ok = self.ok()
        return {"computed_distances": [r.distances for r in ok],
                "num_missing_files": self.count("missing"),
                "num_malformed_files": self.count("malformed"),
                "num_failed": self.count("failed"),
                "input_files": [r.files for r in ok],
                "images": [r.image.line for r in ok]}


def evaluate_now(dataset_dir, pred_dir, out_dir=None, split: str = "val", metrical: bool = False,
                 pred_unit: str = "m", workers: int = 1, progress: bool = True, images=None) -> NowReport:
    """Evaluate every image of a NoW split.

    Args:
        dataset_dir: the ``NoW_Dataset`` folder (image lists, ``scans``, ``scans_lmks_onlypp``).
        pred_dir: the predictions root (``<subject>/<challenge>/<IMG>.obj|.ply`` + ``.npy|.txt``).
        out_dir: where per-image results are saved (resume) ; None keeps everything in memory.
        split: ``"val"`` or ``"test"``.
        metrical: fix the scale to ``pred_unit`` (see :func:`evaluate_prediction`).
        pred_unit: unit of the predictions for the metrical protocol.
        workers: processes (1 = in this process). Workers are started with "spawn", so a plain script
            that asks for more than one must call this under ``if __name__ == "__main__":`` (notebooks and
            the ``facecourse now-eval`` CLI need nothing).
        progress: show a tqdm bar.
        images: optional list of :class:`NowImage` overriding the split file.

    Returns:
        :class:`NowReport` (records in list order).
    """
    if not Path(pred_dir).is_dir():
        raise FileNotFoundError(f"predictions folder not found: {pred_dir}")
    images = read_image_list(dataset_dir, split) if images is None else list(images)
    tasks = [(str(dataset_dir), str(pred_dir), im, None if out_dir is None else str(out_dir), metrical, pred_unit)
             for im in images]
    records: list = [None] * len(tasks)
    bar = progress_bar(total=len(tasks), desc=f"NoW {split}", disable=not progress, unit="img")
    if workers <= 1 or len(tasks) <= 1:
        for i, t in enumerate(tasks):
            records[i] = _evaluate_image_task(t)
            bar.update()
    else:
        # "spawn", not the Linux default "fork": a process whose torch/OpenMP thread pool is already running
        # (any notebook after one tensor operation) deadlocks in forked workers.
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_evaluate_image_task, t): i for i, t in enumerate(tasks)}
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    records[i] = fut.result()
                except Exception as exc:  # noqa: BLE001 -- a worker that died: recorded, the others go on
                    records[i] = ImageRecord(tasks[i][2], "failed", message=f"worker failed: {type(exc).__name__}: {exc}")
                bar.update()
    bar.close()
    return NowReport(records, split, metrical)


def _json_ready(x):
    """NaN -> None (strict JSON), numpy scalars -> Python numbers, recursively."""
    if isinstance(x, dict):
        return {str(k): _json_ready(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_ready(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if np.isnan(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def write_report(report: NowReport, out_dir, method: str = "RECON", extra: dict | None = None) -> dict:
    """Write ``summary.json`` and ``<method>[_metrical]_computed_distances.npy`` into ``out_dir``.

    Args:
        report: the evaluation.
        out_dir: destination folder.
        method: method identifier used in the distances file name (as the official tool).
        extra: more JSON-ready entries for the summary (e.g. baselines).

    Returns:
        The summary dict written.
    """
    out = Path(out_dir)
    summary = _json_ready(dict(report.summary(), method=method, **(extra or {})))
    with atomic_open(out / "summary.json", "w") as handle:
        json.dump(summary, handle, indent=2, allow_nan=False)
    name = f"{method}{'_metrical' if report.metrical else ''}_computed_distances.npy"
    with atomic_path(out / name) as tmp:
        with open(tmp, "wb") as handle:
            # an object array, exactly as the official tool saves it (np.load(..., allow_pickle=True).item())
            np.save(handle, np.array(report.computed_distances(), dtype=object), allow_pickle=True)
    return summary


def baseline_stats(dataset_dir, images, predict, metrical: bool = False, pred_unit: str = "m",
                   refine: bool = True, radius_scale: float = 1.0) -> dict:
    """Statistics of a photo-independent prediction (mean face, ground-truth shape) on a list of images.

    Each subject is evaluated once and counted once per image it has (weights), which equals evaluating
    the same prediction on every image.

    Args:
        dataset_dir: the NoW dataset folder.
        images: the :class:`NowImage` list.
        predict: ``subject -> (vertices (V, 3), faces (F, 3), landmarks (7, 3))`` in ``pred_unit``, or None
            when there is no prediction for that subject.
        metrical, pred_unit, refine, radius_scale: as :func:`evaluate_prediction` (the defaults are the
            protocol; ``refine=False`` and ``radius_scale != 1`` are for ablations).

    Returns:
        ``{"all": stats, <challenge>: stats, "_distances": {subject: (N,)}, "_counts": {...}}`` where the
        underscore entries keep what the CED needs.
    """
    counts: dict = defaultdict(lambda: defaultdict(int))
    for im in images:
        counts[im.subject][im.challenge] += 1
    dist = {}
    for subject in sorted(counts):
        pred = predict(subject)
        if pred is None:
            continue
        scan_v, scan_f, scan_lm = load_scan(dataset_dir, subject)
        dist[subject] = evaluate_prediction(scan_v, scan_f, scan_lm, *pred, metrical=metrical,
                                            pred_unit=pred_unit, refine=refine,
                                            radius_scale=radius_scale).distances
    subjects = sorted(dist)
    out = {}
    for name in ("all",) + CHALLENGES:
        w = [sum(counts[s].values()) if name == "all" else counts[s][name] for s in subjects]
        out[name] = dict(error_stats([dist[s] for s in subjects], np.asarray(w, dtype=np.int64)), n_images=int(sum(w)))
    out["_distances"] = dist
    out["_counts"] = {s: dict(counts[s]) for s in subjects}
    return out


__all__ = [
    "ImageEvaluation", "ImageRecord", "LANDMARK_TO_MESH_RATIO", "NowReport", "RESULT_VERSION", "STATUSES",
    "baseline_stats", "check_prediction_units", "evaluate_image",
    "evaluate_now", "evaluate_prediction", "result_path", "write_report",
]
