"""facecourse: monocular 3D face reconstruction with FLAME, spectral graph convolutions and NoW.

Subpackages, one per chapter (see DESIGN.md): :mod:`facecourse.flame`, :mod:`facecourse.mesh`,
:mod:`facecourse.spectral`, :mod:`facecourse.nn`, :mod:`facecourse.render`, :mod:`facecourse.losses`,
:mod:`facecourse.data`, :mod:`facecourse.train`, :mod:`facecourse.now`, :mod:`facecourse.viz`.
"""

__version__ = "0.1.0"
