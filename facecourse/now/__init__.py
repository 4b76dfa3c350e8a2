"""The NoW benchmark protocol in Python (chapter 07): no psbody-mesh, no Eigen build, no chumpy.

Modules: :mod:`~facecourse.now.units` (``M_TO_MM``), :mod:`~facecourse.now.pp` (MeshLab picked points),
:mod:`~facecourse.now.layout` (dataset and prediction file formats), :mod:`~facecourse.now.paths` (real or
synthetic dataset folder), :mod:`~facecourse.now.crop` (face crop),
:mod:`~facecourse.now.align` (Procrustes + scan-to-mesh refinement), :mod:`~facecourse.now.distance`
(exact point-to-surface distance, libigl AABB tree), :mod:`~facecourse.now.metrics` (statistics, CED,
published numbers), :mod:`~facecourse.now.evaluate` (one image, a whole split, resumable),
:mod:`~facecourse.now.export` (FLAME predictions -> NoW layout), :mod:`~facecourse.now.synthetic`
(the synthetic NoW-format set) and :mod:`~facecourse.now.cli` (``facecourse now-eval``).
"""

from facecourse.now.align import Refinement, Similarity, procrustes, refine_alignment
from facecourse.now.crop import (
    NOW7_NAMES, CroppedScan, check_landmark_geometry, check_landmarks7, crop_scan, face_crop_sphere,
)
from facecourse.now.distance import SurfaceDistance, point_mesh_distance
from facecourse.now.evaluate import (
    ImageEvaluation, ImageRecord, NowReport, baseline_stats, evaluate_image, evaluate_now, evaluate_prediction,
    result_path, write_report,
)
from facecourse.now.baselines import format_table, now_baselines
from facecourse.now.export import export_flame_predictions, flame_now_prediction, mean_face_prediction
from facecourse.now.layout import (
    CHALLENGES, NowImage, PredictionMalformed, PredictionMissing, image_path, load_landmarks_file,
    load_prediction, load_scan, prediction_files, read_image_list, scan_files, write_image_list,
    write_prediction,
)
from facecourse.now.metrics import CED_MAX_MM, PUBLISHED_NOW, cumulative_error_curve, error_stats
from facecourse.now.paths import default_now_dir, has_real_now, real_now_dir
from facecourse.now.pp import read_pp, write_pp
from facecourse.now.synthetic import build_synthetic_now, synthetic_now_dir
from facecourse.now.units import M_TO_MM, UNIT_TO_MM, unit_to_mm

__all__ = [
    "CED_MAX_MM", "CHALLENGES", "CroppedScan", "ImageEvaluation", "ImageRecord", "M_TO_MM", "NOW7_NAMES",
    "NowImage", "NowReport", "PUBLISHED_NOW", "PredictionMalformed", "PredictionMissing", "Refinement",
    "Similarity", "SurfaceDistance", "UNIT_TO_MM", "baseline_stats", "build_synthetic_now", "check_landmark_geometry",
    "check_landmarks7",
    "crop_scan", "cumulative_error_curve", "default_now_dir", "error_stats", "evaluate_image", "evaluate_now",
    "evaluate_prediction", "export_flame_predictions", "face_crop_sphere", "flame_now_prediction",
    "format_table", "has_real_now", "image_path", "mean_face_prediction", "now_baselines", "real_now_dir",
    "synthetic_now_dir", "write_report", "load_landmarks_file", "load_prediction", "load_scan",
    "point_mesh_distance", "prediction_files", "procrustes", "read_image_list", "read_pp", "refine_alignment",
    "result_path", "scan_files", "unit_to_mm", "write_image_list", "write_pp", "write_prediction",
]
