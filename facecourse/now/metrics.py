r"""NoW statistics: median, mean and standard deviation of all scan-to-mesh distances concatenated, and
the cumulative error distribution (CED).

The official evaluation concatenates the distances of every evaluated image and reports
:math:`\operatorname{median}`, :math:`\mu = \tfrac1N\sum_i d_i` and the population standard deviation
:math:`\sigma = \sqrt{\tfrac1N\sum_i (d_i-\mu)^2}` (``numpy.std``), in millimetres. The CED is
:math:`C(\tau) = 100\,\%\cdot \tfrac1N\,\#\{i : d_i \le \tau\}` for :math:`\tau \in [0, 8]` mm.

A chunk of distances can carry an integer weight (how many images share it): a baseline whose prediction
does not depend on the photo is evaluated once per subject and counted once per image, exactly as if its
distances had been repeated.

Published NoW numbers (:data:`PUBLISHED_NOW`) are measured on the *real* NoW test set by the organisers;
nothing measured on synthetic scans is comparable with them.
"""

from __future__ import annotations

import numpy as np

#: Published non-metrical NoW *test-set* results (median, mean, std in mm), as commonly cited.
PUBLISHED_NOW = {
    "DECA": {"median": 1.09, "mean": 1.38, "std": 1.18},
    "MICA": {"median": 0.90, "mean": 1.11, "std": 0.92},
}

#: Upper end of the CED plots (mm), as in the official figures.
CED_MAX_MM = 8.0


def _flatten(chunks, weights=None) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(chunks, np.ndarray):
        chunks = [chunks]
    arrays = [np.asarray(c, dtype=np.float64).ravel() for c in chunks]
    values = np.concatenate(arrays) if arrays else np.zeros(0)
    if weights is None:
        return values, None
    weights = np.asarray(weights)
    if len(weights) != len(arrays) or (weights < 0).any() or not np.issubdtype(weights.dtype, np.integer):
        raise ValueError(f"weights must be {len(arrays)} non-negative integers, one per chunk")
    return values, np.repeat(weights, [len(a) for a in arrays]).astype(np.int64)


def error_stats(chunks, weights=None) -> dict:
    """Median, mean and std (mm) of distances concatenated over chunks.

    Args:
        chunks: one array ``(N,)`` or a list of per-image arrays.
        weights: optional integer count per chunk (the chunk stands for that many images).

    Returns:
        ``{"median", "mean", "std", "n_points"}``; NaN statistics when there is no distance.
    """
    v, w = _flatten(chunks, weights)
    if w is not None:
        keep = w > 0
        v, w = v[keep], w[keep]
    if len(v) == 0:
        return {"median": float("nan"), "mean": float("nan"), "std": float("nan"), "n_points": 0}
    if w is None:
        return {"median": float(np.median(v)), "mean": float(v.mean()), "std": float(v.std()), "n_points": len(v)}
    total = int(w.sum())
    order = np.argsort(v, kind="stable")
    vs, cum = v[order], np.cumsum(w[order])

    def at(k):  # k-th value (0-based) of the repeated, sorted sequence
        return vs[np.searchsorted(cum, k, side="right")]

    median = at((total - 1) // 2) if total % 2 else 0.5 * (at(total // 2 - 1) + at(total // 2))
    mean = float((w * v).sum() / total)
    std = float(np.sqrt((w * (v - mean) ** 2).sum() / total))
    return {"median": float(median), "mean": mean, "std": std, "n_points": total}


def cumulative_error_curve(chunks, weights=None, max_error: float = CED_MAX_MM,
                           n_thresholds: int = 401) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution.

    Args:
        chunks, weights: as :func:`error_stats`.
        max_error: last threshold (mm).
        n_thresholds: number of thresholds from 0 to ``max_error``.

    Returns:
        ``(thresholds (T,) mm, percent (T,))``: percentage of distances :math:`\\le` each threshold.
    """
    v, w = _flatten(chunks, weights)
    tau = np.linspace(0.0, max_error, n_thresholds)
    if len(v) == 0:
        return tau, np.full_like(tau, np.nan)
    if w is None:
        w = np.ones(len(v), dtype=np.int64)
    order = np.argsort(v, kind="stable")
    cum = np.concatenate([[0], np.cumsum(w[order])])
    return tau, 100.0 * cum[np.searchsorted(v[order], tau, side="right")] / cum[-1]


__all__ = ["CED_MAX_MM", "PUBLISHED_NOW", "cumulative_error_curve", "error_stats"]
