"""Data: asset registry and paths, synthetic generators, real-dataset adapters."""

from facecourse.data.paths import data_dir, synthetic_dir

__all__ = ["data_dir", "synthetic_dir"]
