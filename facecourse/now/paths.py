"""Where the NoW dataset comes from: the real validation data when present, else the synthetic NoW-format set.

Layout (official names, :func:`facecourse.data.paths.data_dir`), like :mod:`facecourse.flame.paths`:

* real: ``data/NoW_Dataset/final_release_version/`` (``imagepathsvalidation.txt``, ``scans/``, ...),
* synthetic: ``data/synthetic/NoW_Dataset/final_release_version/`` in the same layout, built on demand by
  :func:`facecourse.now.synthetic.synthetic_now_dir`.
"""

from __future__ import annotations

from pathlib import Path

from facecourse.data.paths import data_dir
from facecourse.now.layout import DATASET_SUBDIR, SPLIT_FILES
from facecourse.now.synthetic import synthetic_now_dir


def real_now_dir() -> Path:
    """``data_dir()/NoW_Dataset/final_release_version`` (the real NoW validation data; may not exist)."""
    return data_dir() / DATASET_SUBDIR


def has_real_now() -> bool:
    """True when the real NoW validation list and scans are present."""
    real = real_now_dir()
    return (real / SPLIT_FILES["val"]).is_file() and (real / "scans").is_dir()


def default_now_dir() -> Path:
    """The NoW dataset folder the course uses: the real one when its validation list and scans are present
    (real data wins), else the synthetic NoW-format set (built on demand, :func:`synthetic_now_dir`)."""
    return real_now_dir() if has_real_now() else synthetic_now_dir()


__all__ = ["default_now_dir", "has_real_now", "real_now_dir"]
