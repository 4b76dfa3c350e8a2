"""Array conversion, written once: every function that accepts "numpy or torch" goes through here."""

from __future__ import annotations

import numpy as np


def to_numpy(x, dtype=None) -> np.ndarray:
    """``x`` (array-like, or a torch tensor on any device, with or without grad) as a numpy array.

    Args:
        x: anything ``np.asarray`` accepts, or a ``torch.Tensor`` (detached and moved to the CPU first).
        dtype: optional numpy dtype of the result.
    """
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=dtype)


__all__ = ["to_numpy"]
