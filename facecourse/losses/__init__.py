"""Losses for face reconstruction.

2D self-supervision (chapter 04, DECA-style): landmarks, eye closure, lip distance, photometric,
identity, and the regularisers on the codes. (3D losses of chapter 05 are added beside them.)
"""

from facecourse.losses.identity import (
    FaceRecogniser,
    IResNet,
    SmallFaceEmbedder,
    VGGFace2ResNet50,
    composite,
    identity_loss,
    iresnet,
    load_recogniser,
    synthetic_recogniser,
    verification_accuracy,
    vggface2_resnet50,
)
from facecourse.losses.landmarks import (
    EYELID_PAIRS,
    LIP_PAIRS,
    deca_landmark_weights,
    eye_closure_loss,
    landmark_loss,
    lip_distance_loss,
)
from facecourse.losses.photometric import photometric_loss, region_mask
from facecourse.losses.regularizers import (
    albedo_regularizer,
    expression_regularizer,
    l2_regularizer,
    light_regularizer,
    shape_regularizer,
)

__all__ = [
    # 2D (chapter 04)
    "EYELID_PAIRS", "FaceRecogniser", "IResNet", "LIP_PAIRS", "SmallFaceEmbedder", "VGGFace2ResNet50",
    "albedo_regularizer", "composite", "deca_landmark_weights", "expression_regularizer", "eye_closure_loss",
    "identity_loss", "iresnet", "l2_regularizer", "landmark_loss", "light_regularizer", "lip_distance_loss",
    "load_recogniser", "photometric_loss", "region_mask", "shape_regularizer", "synthetic_recogniser",
    "verification_accuracy", "vggface2_resnet50",
]
