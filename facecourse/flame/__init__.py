"""FLAME: safe loading of the official files, LBS as pure functions, the ``FLAME`` module, landmarks, masks.

Public entry points::

    from facecourse.flame import FLAME, default_model_path, synthetic_model_path, load_model, load_masks
    flame = FLAME.from_file(default_model_path("small"), n_shape=100, n_exp=50)
    out = flame(shape=..., expression=..., jaw_pose=...)   # out.vertices, out.landmarks, out.landmarks_now7
"""

from facecourse.flame.io import (
    EXPRESSION_SPACE_DIM, MASK_NAMES, MODEL_KEYS, SHAPE_SPACE_DIM, UnsafePickleError, find_landmark_embedding,
    load_deca_landmark_embedding, load_masks, load_model, load_ringnet_landmark_embedding, safe_load_npy,
    safe_load_pickle, save_deca_landmark_embedding, save_masks, save_model, save_ringnet_landmark_embedding,
)
from facecourse.flame.landmarks import NOW7_IBUG, NOW7_STATIC51, barycentric_points, flame_landmarks, head_yaw
from facecourse.flame.lbs import (
    batch_rigid_transform, batch_rodrigues, blend_shape_variance, blend_shapes, lbs, pose_feature, pose_offsets,
    rodrigues, skin, vertices2joints,
)
from facecourse.flame.masks import MICA_REGION_WEIGHTS, region_weights, vertex_mask
from facecourse.flame.model import FLAME, JOINT_NAMES, FLAMEOutput
from facecourse.flame.paths import default_model_path, is_synthetic, real_model_path, synthetic_model_path

__all__ = [
    "EXPRESSION_SPACE_DIM", "FLAME", "FLAMEOutput", "JOINT_NAMES", "MASK_NAMES", "MICA_REGION_WEIGHTS", "MODEL_KEYS",
    "NOW7_IBUG", "NOW7_STATIC51", "SHAPE_SPACE_DIM", "UnsafePickleError", "barycentric_points",
    "batch_rigid_transform", "batch_rodrigues", "blend_shape_variance", "blend_shapes", "default_model_path",
    "find_landmark_embedding", "flame_landmarks", "head_yaw", "is_synthetic", "lbs", "load_deca_landmark_embedding",
    "load_masks", "load_model", "load_ringnet_landmark_embedding", "pose_feature", "pose_offsets", "real_model_path",
    "region_weights", "rodrigues", "safe_load_npy", "safe_load_pickle", "save_deca_landmark_embedding", "save_masks",
    "save_model", "save_ringnet_landmark_embedding", "skin", "synthetic_model_path", "vertex_mask", "vertices2joints",
]
