"""facecourse.losses.regularizers: shape, expression, albedo and lighting regularisers."""

from __future__ import annotations

import pytest
import torch

from facecourse.losses import albedo_regularizer, expression_regularizer, light_regularizer, shape_regularizer


def test_regularizers():
    c = torch.tensor([[1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    assert shape_regularizer(c) == 2.5 and expression_regularizer(c) == 2.5 and albedo_regularizer(c) == 2.5
    shape_regularizer(c).backward()
    assert torch.equal(c.grad, c.detach())  # d/dc (|c|^2 / B) = 2c / B with B = 2
    white = torch.ones(1, 9, 3)
    assert light_regularizer(white) == 0
    coloured = white.clone()
    coloured[:, :, 0] = 2
    assert light_regularizer(coloured) > 0
    with pytest.raises(ValueError, match="lighting"):
        light_regularizer(torch.ones(1, 27))
