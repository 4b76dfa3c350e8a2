"""FLAME files: safe readers and writers in the official formats.

Every FLAME asset is a pickle (or an ``.npy`` holding a pickled dict), and a pickle can run arbitrary code
when loaded. This module never calls :func:`pickle.load` or ``np.load(allow_pickle=True)`` on a file: it
reads through :class:`RestrictedUnpickler`, whose allow-list admits only what plain data needs (numpy array
and dtype reconstruction, ``scipy.sparse`` matrix classes, plain containers) and rebuilds *chumpy* objects —
which FLAME 2020 pickles contain — from their pickled state as plain numpy arrays, without importing chumpy.
Any other global (``os.system``, ``builtins.eval``, ...) is refused with :class:`UnsafePickleError` before
anything is called.

Official layouts written and read here:

* ``generic_model.pkl`` (pickle protocol 2, Python-2 readable): ``v_template`` (V, 3), ``f`` (F, 3),
  ``shapedirs`` (V, 3, 400) = 300 shape + 100 expression, ``posedirs`` (V, 3, 36), ``J_regressor``
  (5, V) ``scipy.sparse.csc_matrix``, ``weights`` (V, 5), ``kintree_table`` (2, 5) with row 0 the parents
  and the root's parent stored as ``4294967295`` (uint32 -1), ``J`` (5, 3), plus ``bs_style`` / ``bs_type``.
* DECA ``landmark_embedding.npy``: ``np.save`` of a dict with ``static_lmk_faces_idx`` (51,),
  ``static_lmk_bary_coords`` (51, 3), ``dynamic_lmk_faces_idx`` (79, 17), ``dynamic_lmk_bary_coords``
  (79, 17, 3), ``full_lmk_faces_idx`` (1, 68), ``full_lmk_bary_coords`` (1, 68, 3).
* RingNet ``flame_static_embedding.pkl`` {``lmk_face_idx`` (51,) uint32, ``lmk_b_coords`` (51, 3)} and
  ``flame_dynamic_embedding.npy`` {``lmk_face_idx`` (79, 17), ``lmk_b_coords`` (79, 17, 3)}.
* ``FLAME_masks.pkl``: dict region name -> vertex indices.

All writers are atomic (:mod:`facecourse.data.atomic`).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import scipy.sparse

from facecourse.data.atomic import atomic_open
from facecourse.data.safe_load import (
    ChumpyState, RestrictedUnpickler, UnsafePickleError, safe_load_npy, safe_load_pickle,
)

#: Joint order of FLAME: 0 global (root), 1 neck, 2 jaw, 3 left eye, 4 right eye.
JOINT_NAMES = ("global", "neck", "jaw", "left_eye", "right_eye")
#: Number of shape / expression slots in an official ``shapedirs`` (300 + 100).
SHAPE_SPACE_DIM = 300
EXPRESSION_SPACE_DIM = 100
#: Keys every FLAME model pickle holds (official names).
MODEL_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "J")
#: Parent of the root joint as stored in official ``kintree_table`` (uint32 of -1).
ROOT_PARENT_UINT32 = 4294967295
#: Official region names of ``FLAME_masks.pkl``.
MASK_NAMES = ("eye_region", "neck", "left_eyeball", "right_eyeball", "right_ear", "right_eye_region",
              "forehead", "lips", "nose", "scalp", "boundary", "face", "left_ear", "left_eye_region")
#: Official file names: the model pickle, the landmark embeddings (DECA; RingNet's pair) and the vertex masks.
MODEL_FILE = "generic_model.pkl"
DECA_EMBEDDING = "landmark_embedding.npy"
RINGNET_STATIC = "flame_static_embedding.pkl"
RINGNET_DYNAMIC = "flame_dynamic_embedding.npy"
MASKS_FILE = "FLAME_masks.pkl"


def _load_pickled_dict(path, file_name: str, expected: str) -> tuple[Path, dict]:
    """Safely read a pickled dict from ``path`` (or ``path / file_name`` when ``path`` is a folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / file_name
    data = safe_load_pickle(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: {expected}, got {type(data).__name__}")
    return path, data


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------


def _check_model_arrays(arrays: dict, source: str) -> None:
    missing = [k for k in MODEL_KEYS if k not in arrays]
    if missing:
        raise KeyError(f"{source}: FLAME model lacks keys {missing}; expected {list(MODEL_KEYS)}")
    v = np.shape(arrays["v_template"])
    j = np.shape(arrays["J"])
    if len(v) != 2 or v[1] != 3:
        raise ValueError(f"{source}: v_template must be (V, 3), got {v}")
    n_v, n_j = v[0], j[0]
    expected = {"f": (None, 3), "shapedirs": (n_v, 3, None), "posedirs": (n_v, 3, 9 * (n_j - 1)),
                "J_regressor": (n_j, n_v), "weights": (n_v, n_j), "kintree_table": (2, n_j), "J": (n_j, 3)}
    for key, shape in expected.items():
        got = np.shape(arrays[key]) if not scipy.sparse.issparse(arrays[key]) else arrays[key].shape
        if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
            raise ValueError(f"{source}: '{key}' must have shape {shape} (None = any), got {tuple(got)}")


def save_model(path: str | os.PathLike, arrays: dict) -> Path:
    """Write a FLAME model in the official ``generic_model.pkl`` layout (pickle protocol 2, atomic).

    Args:
        path: destination file.
        arrays: the :data:`MODEL_KEYS` (numpy arrays; ``J_regressor`` dense or sparse; ``kintree_table``
            parents in row 0 with the root's parent -1 or 4294967295) plus optional extra keys
            (e.g. ``bs_style``; defaults ``"lbs"`` / ``"lrotmin"`` are added as in the official file).

    Stored: floats as float64, ``f`` as uint32, ``J_regressor`` as ``scipy.sparse.csc_matrix``,
    ``kintree_table`` int64 with root parent ``4294967295``.

    Returns:
        ``Path(path)``.
    """
    _check_model_arrays(arrays, str(path))
    out = {}
    for key, value in arrays.items():
        if key == "J_regressor":
            out[key] = scipy.sparse.csc_matrix(value, dtype=np.float64)
        elif key == "kintree_table":
            table = np.asarray(value).astype(np.int64)
            table[table < 0] = ROOT_PARENT_UINT32
            out[key] = table
        elif key == "f":
            out[key] = np.ascontiguousarray(value, dtype=np.uint32)
        elif key in MODEL_KEYS:
            out[key] = np.ascontiguousarray(value, dtype=np.float64)
        else:
            out[key] = value
    out.setdefault("bs_style", "lbs")
    out.setdefault("bs_type", "lrotmin")
    with atomic_open(path) as fh:
        pickle.dump(out, fh, protocol=2)
    return Path(path)


def load_model(path: str | os.PathLike) -> dict:
    """Read a FLAME model pickle (FLAME 2020 / 2023 / 2023 Open or synthetic) safely as numpy arrays.

    Args:
        path: ``generic_model.pkl`` (or ``flame2023.pkl`` ...), or a folder holding ``generic_model.pkl``.

    Returns:
        dict with the official keys: ``v_template`` (V, 3) float64 metres, ``f`` (F, 3) int64,
        ``shapedirs`` (V, 3, K) float64, ``posedirs`` (V, 3, 36) float64, ``J_regressor`` (5, V) dense
        float64, ``weights`` (V, 5) float64, ``kintree_table`` (2, 5) int64 with the root's parent as -1,
        ``J`` (5, 3) float64; other entries of the file are passed through (chumpy values as arrays).

    Raises:
        UnsafePickleError: the file carries a global outside the allow-list (nothing executed).
        KeyError / ValueError: a key is missing or an array has the wrong shape.
    """
    path, data = _load_pickled_dict(path, MODEL_FILE, "a FLAME model pickle holds a dict")
    _check_model_arrays(data, str(path))
    out = dict(data)
    for key in MODEL_KEYS:
        value = data[key]
        if key == "J_regressor":
            out[key] = value.toarray() if scipy.sparse.issparse(value) else np.asarray(value, dtype=np.float64)
            out[key] = out[key].astype(np.float64)
        elif key == "kintree_table":
            table = np.asarray(value).astype(np.int64)
            table[table == ROOT_PARENT_UINT32] = -1
            out[key] = table
        elif key == "f":
            out[key] = np.asarray(value).astype(np.int64)
        else:
            out[key] = np.asarray(value, dtype=np.float64)
    return out


# --------------------------------------------------------------------------------------------------
# Landmark embeddings
# --------------------------------------------------------------------------------------------------


def _int_array(x, shape, name):
    a = np.asarray(x)
    if a.shape != shape or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be an integer array of shape {shape}, got {a.dtype} {a.shape}")
    return a.astype(np.int64)


def _bary_array(x, shape, name):
    a = np.asarray(x, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    return a


def save_deca_landmark_embedding(path, static_faces, static_bary, dynamic_faces, dynamic_bary,
                                 full_faces, full_bary) -> Path:
    """Write DECA's ``landmark_embedding.npy`` (``np.save`` of a dict, atomic).

    Args:
        static_faces ``(51,)``, static_bary ``(51, 3)``: the inner iBUG landmarks 17..67.
        dynamic_faces ``(79, 17)``, dynamic_bary ``(79, 17, 3)``: contour rows (see
            :mod:`facecourse.flame.landmarks` for the row convention).
        full_faces ``(68,)`` or ``(1, 68)``, full_bary ``(68, 3)`` or ``(1, 68, 3)``: the frontal iBUG-68.
    """
    data = {
        "static_lmk_faces_idx": _int_array(static_faces, (51,), "static_faces"),
        "static_lmk_bary_coords": _bary_array(static_bary, (51, 3), "static_bary"),
        "dynamic_lmk_faces_idx": _int_array(dynamic_faces, (79, 17), "dynamic_faces"),
        "dynamic_lmk_bary_coords": _bary_array(dynamic_bary, (79, 17, 3), "dynamic_bary"),
        "full_lmk_faces_idx": _int_array(np.reshape(full_faces, (1, 68)), (1, 68), "full_faces"),
        "full_lmk_bary_coords": _bary_array(np.reshape(full_bary, (1, 68, 3)), (1, 68, 3), "full_bary"),
    }
    with atomic_open(path) as fh:
        np.save(fh, data, allow_pickle=True)
    return Path(path)


def save_ringnet_landmark_embedding(folder, static_faces, static_bary, dynamic_faces, dynamic_bary) -> Path:
    """Write RingNet's ``flame_static_embedding.pkl`` + ``flame_dynamic_embedding.npy`` into ``folder``.

    Args:
        static_faces ``(51,)`` (stored uint32), static_bary ``(51, 3)``, dynamic_faces ``(79, 17)``,
        dynamic_bary ``(79, 17, 3)``.

    Returns:
        ``Path(folder)``.
    """
    folder = Path(folder)
    static = {"lmk_face_idx": _int_array(static_faces, (51,), "static_faces").astype(np.uint32),
              "lmk_b_coords": _bary_array(static_bary, (51, 3), "static_bary")}
    dynamic = {"lmk_face_idx": _int_array(dynamic_faces, (79, 17), "dynamic_faces"),
               "lmk_b_coords": _bary_array(dynamic_bary, (79, 17, 3), "dynamic_bary")}
    with atomic_open(folder / RINGNET_STATIC) as fh:
        pickle.dump(static, fh, protocol=2)
    with atomic_open(folder / RINGNET_DYNAMIC) as fh:
        np.save(fh, dynamic, allow_pickle=True)
    return folder


def load_deca_landmark_embedding(path) -> dict:
    """Read DECA's ``landmark_embedding.npy`` safely.

    Returns:
        dict ``static_faces`` (51,) int64, ``static_bary`` (51, 3), ``dynamic_faces`` (79, 17) int64,
        ``dynamic_bary`` (79, 17, 3), ``full_faces`` (68,) int64, ``full_bary`` (68, 3) (float64).
    """
    d = safe_load_npy(path)
    keys = ("static_lmk_faces_idx", "static_lmk_bary_coords", "dynamic_lmk_faces_idx",
            "dynamic_lmk_bary_coords", "full_lmk_faces_idx", "full_lmk_bary_coords")
    if not isinstance(d, dict) or any(k not in d for k in keys):
        raise ValueError(f"{path}: not a DECA landmark embedding (expected a dict with keys {list(keys)})")
    return {
        "static_faces": _int_array(d["static_lmk_faces_idx"], (51,), f"{path}: static_lmk_faces_idx"),
        "static_bary": _bary_array(d["static_lmk_bary_coords"], (51, 3), f"{path}: static_lmk_bary_coords"),
        "dynamic_faces": _int_array(d["dynamic_lmk_faces_idx"], (79, 17), f"{path}: dynamic_lmk_faces_idx"),
        "dynamic_bary": _bary_array(d["dynamic_lmk_bary_coords"], (79, 17, 3),
                                    f"{path}: dynamic_lmk_bary_coords"),
        "full_faces": _int_array(np.reshape(d["full_lmk_faces_idx"], (68,)), (68,), f"{path}: full_lmk_faces_idx"),
        "full_bary": _bary_array(np.reshape(d["full_lmk_bary_coords"], (68, 3)), (68, 3),
                                 f"{path}: full_lmk_bary_coords"),
    }


def _rows(x) -> np.ndarray:
    """Stack a per-row table stored as a list or an object array of rows (older RingNet files) into one array."""
    if isinstance(x, (list, tuple)) or (isinstance(x, np.ndarray) and x.dtype == object):
        return np.stack([np.asarray(r) for r in x])
    return np.asarray(x)


def load_ringnet_landmark_embedding(folder) -> dict:
    """Read RingNet's static + dynamic embedding files from ``folder`` safely.

    Returns:
        dict ``static_faces`` (51,) int64, ``static_bary`` (51, 3), ``dynamic_faces`` (79, 17) int64,
        ``dynamic_bary`` (79, 17, 3).
    """
    folder = Path(folder)
    static = safe_load_pickle(folder / RINGNET_STATIC)
    dynamic = safe_load_npy(folder / RINGNET_DYNAMIC)
    for name, d in ((RINGNET_STATIC, static), (RINGNET_DYNAMIC, dynamic)):
        if not isinstance(d, dict) or not {"lmk_face_idx", "lmk_b_coords"} <= set(d):
            raise ValueError(f"{folder / name}: expected a dict with 'lmk_face_idx' and 'lmk_b_coords'")
    dyn_faces, dyn_bary = _rows(dynamic["lmk_face_idx"]), _rows(dynamic["lmk_b_coords"])
    return {
        "static_faces": _int_array(static["lmk_face_idx"], (51,), f"{folder / RINGNET_STATIC}: lmk_face_idx"),
        "static_bary": _bary_array(static["lmk_b_coords"], (51, 3), f"{folder / RINGNET_STATIC}: lmk_b_coords"),
        "dynamic_faces": _int_array(dyn_faces, (79, 17), f"{folder / RINGNET_DYNAMIC}: lmk_face_idx"),
        "dynamic_bary": _bary_array(dyn_bary, (79, 17, 3), f"{folder / RINGNET_DYNAMIC}: lmk_b_coords"),
    }


def has_landmark_embedding(folder: str | os.PathLike) -> bool:
    """True when a landmark embedding the FLAME loader accepts lies in ``folder``: DECA's
    ``landmark_embedding.npy`` or RingNet's static + dynamic pair."""
    folder = Path(folder)
    return (folder / DECA_EMBEDDING).is_file() or _has_ringnet_pair(folder)


def _has_ringnet_pair(folder: Path) -> bool:
    return (folder / RINGNET_STATIC).is_file() and (folder / RINGNET_DYNAMIC).is_file()


def find_landmark_embedding(folder) -> dict:
    """The landmark embedding beside a model: DECA ``landmark_embedding.npy`` first, else RingNet's pair.

    Returns:
        the dict of :func:`load_ringnet_landmark_embedding` (DECA adds ``full_faces`` / ``full_bary``) and
        ``source`` (the file name read).

    Raises:
        FileNotFoundError: neither format is present in ``folder``.
    """
    folder = Path(folder)
    if (folder / DECA_EMBEDDING).is_file():
        return {**load_deca_landmark_embedding(folder / DECA_EMBEDDING), "source": DECA_EMBEDDING}
    if _has_ringnet_pair(folder):
        return {**load_ringnet_landmark_embedding(folder), "source": RINGNET_STATIC}
    raise FileNotFoundError(
        f"no landmark embedding in {folder}: expected {DECA_EMBEDDING} (DECA) or {RINGNET_STATIC} + "
        f"{RINGNET_DYNAMIC} (RingNet) beside the model; `python data_download.py landmark-embedding` fetches one")


# --------------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------------


def save_masks(path, masks: dict) -> Path:
    """Write ``FLAME_masks.pkl``: dict region name -> int64 vertex indices (pickle protocol 2, atomic)."""
    out = {}
    for name, idx in masks.items():
        a = np.asarray(idx)
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"mask '{name}' must be a 1-D integer array of vertex indices, got {a.dtype} {a.shape}")
        out[str(name)] = a.astype(np.int64)
    with atomic_open(path) as fh:
        pickle.dump(out, fh, protocol=2)
    return Path(path)


def load_masks(path) -> dict:
    """Read ``FLAME_masks.pkl`` (a file or the folder holding it) safely.

    Returns:
        dict region name -> ``(n,)`` int64 vertex indices (official names: :data:`MASK_NAMES`).
    """
    _, data = _load_pickled_dict(path, MASKS_FILE, "FLAME_masks.pkl holds a dict of vertex index arrays")
    return {str(k): np.asarray(v).astype(np.int64).ravel() for k, v in data.items()}


__all__ = [
    "ChumpyState", "DECA_EMBEDDING", "EXPRESSION_SPACE_DIM", "JOINT_NAMES", "MASKS_FILE", "MASK_NAMES", "MODEL_FILE",
    "MODEL_KEYS", "RINGNET_DYNAMIC", "RINGNET_STATIC", "ROOT_PARENT_UINT32", "RestrictedUnpickler", "SHAPE_SPACE_DIM",
    "UnsafePickleError", "find_landmark_embedding", "has_landmark_embedding", "load_deca_landmark_embedding",
    "load_masks", "load_model", "load_ringnet_landmark_embedding", "safe_load_npy", "safe_load_pickle",
    "save_deca_landmark_embedding", "save_masks", "save_model", "save_ringnet_landmark_embedding",
]
