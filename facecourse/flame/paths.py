"""Where the FLAME model comes from: real data when present, else the synthetic FLAME-format default.

Layout (official names, :func:`facecourse.data.paths.data_dir`):

* real: ``data/FLAME2020/generic_model.pkl`` (+ landmark embedding and ``FLAME_masks.pkl`` beside it),
* synthetic: ``data/synthetic/flame/<size>/generic_model.pkl`` with the same files beside it, built on
  demand by :func:`facecourse.flame.synthetic.build_synthetic_flame`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from facecourse.data.paths import resolve_data_dir, synthetic_dir
from facecourse.flame.io import DECA_EMBEDDING, MODEL_FILE, has_landmark_embedding
from facecourse.flame.synthetic import SIZES, build_synthetic_flame, check_size, is_current


def real_model_path(root=None) -> Path:
    """``<data>/FLAME2020/generic_model.pkl`` (may not exist); ``root`` defaults to ``data_dir()``."""
    return resolve_data_dir(root) / "FLAME2020" / MODEL_FILE


def usable_real_model(root=None) -> Path | None:
    """The real FLAME 2020 pickle when it is present *with* a landmark embedding beside it, else None."""
    real = real_model_path(root)
    return real if real.is_file() and has_landmark_embedding(real.parent) else None


def synthetic_model_file(size: str = "small", root=None) -> Path:
    """Where the synthetic ``generic_model.pkl`` of ``size`` lives (nothing is built; may not exist)."""
    return resolve_data_dir(root) / "synthetic" / "flame" / check_size(size) / MODEL_FILE


def synthetic_model_path(size: str = "small") -> Path:
    """Path of the synthetic FLAME-format ``generic_model.pkl``; builds it (and the files beside it) if missing
    or made by another version of the generator (:func:`facecourse.flame.synthetic.is_current`).

    Args:
        size: ``"small"`` (about 1-2k vertices, for CI and notebooks) or ``"full"`` (FLAME-size, ~5k).
    """
    path = synthetic_model_file(size)
    if not is_current(path.parent, size):
        build_synthetic_flame(path.parent, size)
        if not path.is_file():
            raise FileNotFoundError(f"building the synthetic FLAME model did not produce {path}")
    return path


def default_model_path(size: str = "small") -> Path:
    """The model the course uses: the real FLAME 2020 pickle when present (real data wins), else synthetic.

    The real model counts as present when ``generic_model.pkl`` and a landmark embedding (DECA's
    ``landmark_embedding.npy`` or RingNet's pair) are beside each other; a pickle without an embedding is
    reported with a warning saying what to fetch, and the synthetic model is used meanwhile.
    """
    check_size(size)
    real = usable_real_model()
    if real is not None:
        return real
    if real_model_path().is_file():
        warnings.warn(f"{real_model_path()} is present but no landmark embedding beside it ({DECA_EMBEDDING}); run "
                      "`python data_download.py landmark-embedding`. Using the synthetic model meanwhile.",
                      stacklevel=2)
    return synthetic_model_path(size)


def is_synthetic(path) -> bool:
    """True when ``path`` lies in the synthetic data folder."""
    return synthetic_dir() in Path(path).resolve().parents


__all__ = [
    "SIZES", "check_size", "default_model_path", "is_synthetic", "real_model_path", "synthetic_model_file",
    "synthetic_model_path", "usable_real_model",
]
