"""Concrete data sets (chapters 03-06): synthetic face images with their ground truth, CoMA's registered meshes,
and (chapter 05) paired 2D-3D data.

* :mod:`~facecourse.datasets.synthetic_images`: random FLAME heads rendered with landmarks and masks.
* :mod:`~facecourse.datasets.coma`: the CoMA mesh data set (its official layout) and its splits.
"""

from facecourse.datasets.coma import (
    ComaFile, coma_available, coma_root, coma_split, list_coma_files, load_coma_split, load_coma_vertices,
)
from facecourse.datasets.synthetic_images import (
    CropJitter, SyntheticImageConfig, SyntheticImages, add_occluders, generate, random_background,
    render_identity_views, sample_identity, sample_parameters,
)

__all__ = [
    "ComaFile", "CropJitter", "SyntheticImageConfig", "SyntheticImages", "add_occluders", "coma_available",
    "coma_root", "coma_split", "generate", "list_coma_files", "load_coma_split", "load_coma_vertices",
    "random_background", "render_identity_views", "sample_identity", "sample_parameters",
]
