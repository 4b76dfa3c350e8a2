"""Units at the NoW boundary.

FLAME and all model space in facecourse are in metres; NoW scans, landmarks and every reported error are
in millimetres. The conversion happens here, by name, and nowhere else.
"""

from __future__ import annotations

#: Metres to millimetres.
M_TO_MM = 1000.0

#: Factor turning a prediction's unit into the scans' millimetres (used by the metrical protocol only; the
#: non-metrical protocol estimates the scale and is unit-free).
UNIT_TO_MM = {"mm": 1.0, "cm": 10.0, "m": M_TO_MM}


def unit_to_mm(unit: str) -> float:
    """Millimetres per ``unit`` (``"mm"``, ``"cm"`` or ``"m"``)."""
    try:
        return UNIT_TO_MM[unit]
    except KeyError:
        raise ValueError(f"prediction unit must be one of {sorted(UNIT_TO_MM)}, got {unit!r}") from None


__all__ = ["M_TO_MM", "UNIT_TO_MM", "unit_to_mm"]
