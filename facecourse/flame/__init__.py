"""FLAME: safe loading of the official files, LBS as pure functions, the ``FLAME`` module, landmarks, masks."""

from facecourse.flame.io import (
    UnsafePickleError, find_landmark_embedding, load_deca_landmark_embedding, load_masks, load_model,
    load_ringnet_landmark_embedding, safe_load_npy, safe_load_pickle, save_deca_landmark_embedding, save_masks,
    save_model, save_ringnet_landmark_embedding,
)

__all__ = [
    "UnsafePickleError", "find_landmark_embedding", "load_deca_landmark_embedding", "load_masks", "load_model",
    "load_ringnet_landmark_embedding", "safe_load_npy", "safe_load_pickle", "save_deca_landmark_embedding",
    "save_masks", "save_model", "save_ringnet_landmark_embedding",
]
