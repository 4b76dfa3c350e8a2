"""FLAME refuses NaN / inf parameters by name (a NaN pose used to index the contour table at -2^63)."""

from __future__ import annotations

import pytest
import torch

from facecourse.flame import FLAME


@pytest.mark.parametrize("name, width", [("global_pose", 3), ("neck_pose", 3), ("jaw_pose", 3), ("eye_pose", 6),
                                         ("shape", 3), ("expression", 2), ("translation", 3)])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_parameters_are_named(tiny_flame_path, name, width, bad):
    flame = FLAME.from_file(tiny_flame_path, n_shape=6, n_exp=4)
    x = torch.zeros(2, width)
    x[1, 0] = bad
    with pytest.raises(ValueError, match=rf"{name} contains NaN or inf \(batch element\(s\) \[1\]\)"):
        flame(**{name: x})
    assert torch.isfinite(flame(**{name: torch.zeros(2, width)}).vertices).all()
