"""Data foundation: the data directory and its paths, atomic writes, downloads and the asset registry.

Concrete data sets (synthetic images, CoMA, paired data) are :mod:`facecourse.datasets`, a higher layer.
"""

from facecourse.data.paths import data_dir, synthetic_dir

__all__ = ["data_dir", "synthetic_dir"]
