"""Units, written once.

FLAME and all model space in facecourse are in metres; NoW scans, landmarks and every reported error are in
millimetres. Code converts by name with :data:`M_TO_MM`, never with a bare ``1000``.
"""

#: Metres to millimetres.
M_TO_MM = 1000.0

__all__ = ["M_TO_MM"]
