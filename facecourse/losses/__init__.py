"""Losses for face reconstruction.

2D self-supervision (chapter 04, DECA-style): landmarks, eye closure, lip distance, photometric,
identity, and the regularisers on the codes; the analysis-by-synthesis fit that uses them
(:mod:`~facecourse.losses.fit`). 3D supervision on paired data (chapter 05): the region-weighted vertices loss
and 3D errors between meshes (:mod:`~facecourse.losses.vertices`), the 3D-ID loss (:mod:`~facecourse.losses.id3d`).
"""

from facecourse.losses.image import IMAGE_TERMS, ImageLossWeights, image_loss_terms
from facecourse.losses.fit import FitConfig, FitResult, component_sensitivity, fit_to_image, init_camera
from facecourse.losses.identity import (
    FaceRecogniser,
    composite,
    identity_loss,
    load_recogniser,
    verification_accuracy,
)
from facecourse.losses.landmarks import (
    EYELID_PAIRS,
    LIP_PAIRS,
    deca_landmark_weights,
    eye_closure_loss,
    landmark_loss,
    lip_distance_loss,
)
from facecourse.losses.photometric import photometric_loss
from facecourse.losses.regularizers import (
    albedo_regularizer,
    expression_regularizer,
    l2_regularizer,
    light_regularizer,
    shape_regularizer,
)
from facecourse.losses.id3d import (
    DISTANCES,
    ID3DLoss,
    Sensitivity,
    feature_distance,
    feature_distance_matrix,
    id3d_distances,
    id3d_loss,
    loss_sensitivity,
    matched_noise,
)
from facecourse.losses.vertices import (
    ShapeFit,
    VerticesLoss,
    fit_shape,
    mesh_error_mm,
    supervision_meshes,
    vertices_distances,
    vertices_loss,
)

__all__ = [
    # 2D (chapter 04)
    "EYELID_PAIRS", "FaceRecogniser", "FitConfig", "FitResult", "LIP_PAIRS", "component_sensitivity",
    "fit_to_image", "init_camera", "mesh_error_mm", "IMAGE_TERMS", "ImageLossWeights", "image_loss_terms",
    "albedo_regularizer", "composite", "deca_landmark_weights", "expression_regularizer", "eye_closure_loss",
    "identity_loss", "l2_regularizer", "landmark_loss", "light_regularizer", "lip_distance_loss",
    "load_recogniser", "photometric_loss", "shape_regularizer", "verification_accuracy",
    # 3D supervision (chapter 05)
    "DISTANCES", "ID3DLoss", "Sensitivity", "ShapeFit", "VerticesLoss", "fit_shape", "feature_distance", "feature_distance_matrix", "id3d_distances",
    "id3d_loss", "loss_sensitivity", "matched_noise", "supervision_meshes", "vertices_distances",
    "vertices_loss",
]
