"""Concrete data sets (chapters 03-06): synthetic face images with their ground truth, CoMA's registered meshes,
and (chapter 05) paired 2D-3D data.

* :mod:`~facecourse.datasets.synthetic_images`: random FLAME heads rendered with landmarks and masks.
* :mod:`~facecourse.datasets.coma`: the CoMA mesh data set (its official layout) and its splits.
* :mod:`~facecourse.datasets.paired`: paired images + ground truth FLAME: the dataset (crops with scale jitter),
  the N subjects x K images batch sampler, the collate.
* :mod:`~facecourse.datasets.paired_synthetic`: the synthetic paired set, cached as uint8 shards (CI and full sizes).
* :mod:`~facecourse.datasets.mica`: MICA's layout (per-actor FLAME ``.npz`` + the source datasets' images).
"""

from facecourse.datasets.coma import (
    ComaFile, coma_available, coma_root, coma_split, list_coma_files, load_coma_split, load_coma_vertices,
)
from facecourse.datasets.mica import (
    MicaLayoutError, MicaSource, mica_dataset, read_mica_params, read_pts, write_mica_actor, write_mica_params,
    write_pts,
)
from facecourse.datasets.paired import (
    CropScaleJitter, CropWindow, PairedBatch, PairedFaceDataset, PairedRecord, PairedSample, PairedSource, SampleKey,
    SubjectBatchSampler, collate_paired, crop_camera, crop_image, crop_points, landmark_window,
)
from facecourse.datasets.paired_synthetic import (
    SPECS as PAIRED_SYNTHETIC_SPECS, PairedSyntheticSpec, ShardSource, build_paired_synthetic, paired_synthetic_dir,
    synthetic_paired_dataset,
)
from facecourse.datasets.synthetic_images import (
    CropJitter, SyntheticImageConfig, SyntheticImages, add_occluders, generate, random_background,
    render_identity_views, sample_identity, sample_parameters,
)

__all__ = [
    "PAIRED_SYNTHETIC_SPECS", "ComaFile", "CropJitter", "CropScaleJitter", "CropWindow", "MicaLayoutError",
    "MicaSource", "PairedBatch", "PairedFaceDataset", "PairedRecord", "PairedSample", "PairedSource",
    "PairedSyntheticSpec", "SampleKey", "ShardSource", "SubjectBatchSampler", "SyntheticImageConfig",
    "SyntheticImages", "add_occluders", "build_paired_synthetic", "collate_paired", "coma_available", "coma_root",
    "coma_split", "crop_camera", "crop_image", "crop_points", "generate", "landmark_window", "list_coma_files",
    "load_coma_split", "load_coma_vertices", "mica_dataset", "paired_synthetic_dir", "random_background",
    "read_mica_params", "read_pts", "render_identity_views", "sample_identity", "sample_parameters",
    "synthetic_paired_dataset", "write_mica_actor", "write_mica_params", "write_pts",
]
