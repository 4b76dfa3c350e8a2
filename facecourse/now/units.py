"""Units at the NoW boundary.

FLAME and all model space in facecourse are in metres; NoW scans, landmarks and every reported error are
in millimetres (:data:`facecourse.units.M_TO_MM`). The NoW side converts here, by name.
"""

from __future__ import annotations

from facecourse.units import M_TO_MM

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
