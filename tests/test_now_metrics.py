"""facecourse.now.metrics: error statistics and the cumulative error curve."""

from __future__ import annotations

import numpy as np
import pytest

from facecourse.now import cumulative_error_curve, error_stats


def test_error_stats_and_weights_match_repetition():
    rng = np.random.default_rng(6)
    chunks = [rng.gamma(2.0, 0.6, size=n) for n in (5, 8, 3)]
    w = np.array([2, 1, 3])
    repeated = np.concatenate([np.tile(c, k) for c, k in zip(chunks, w)])
    got = error_stats(chunks, w)
    assert got["median"] == pytest.approx(np.median(repeated))
    assert got["mean"] == pytest.approx(repeated.mean())
    assert got["std"] == pytest.approx(repeated.std())
    assert got["n_points"] == len(repeated)
    plain = error_stats(chunks)
    assert plain["median"] == np.median(np.concatenate(chunks))
    tau, pct = cumulative_error_curve(chunks, w)
    _, pct_ref = cumulative_error_curve(repeated)
    np.testing.assert_allclose(pct, pct_ref)
    assert pct[0] == 0.0 and pct[-1] == pytest.approx(100.0 * np.mean(repeated <= 8.0))
    assert np.all(np.diff(pct) >= 0) and tau[-1] == 8.0
