"""Vertex regions as boolean masks and per-vertex weights (MICA's region weighting)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facecourse.flame.masks import MICA_REGION_WEIGHTS, region_weights, vertex_mask

MASKS = {"face": np.arange(0, 6), "left_eyeball": np.array([4, 5]), "right_eyeball": np.array([6]),
         "left_ear": np.array([8]), "right_ear": np.array([9])}


def test_vertex_mask_is_the_union():
    m = vertex_mask(MASKS, ["left_eyeball", "right_eyeball"], 10)
    assert m.tolist() == [False] * 4 + [True, True, True] + [False] * 3
    assert vertex_mask(MASKS, "face", 10).sum() == 6
    with pytest.raises(KeyError, match="nose"):
        vertex_mask(MASKS, "nose", 10)
    with pytest.raises(ValueError, match="outside"):
        vertex_mask(MASKS, "right_ear", 9)


def test_region_weights_later_regions_override():
    w = region_weights(MASKS, MICA_REGION_WEIGHTS, 11)
    expect = torch.tensor([150.0] * 4 + [0.01] * 3 + [1.0, 0.01, 0.01, 1.0])
    torch.testing.assert_close(w, expect)
