"""The one numpy-or-torch conversion."""

import numpy as np
import torch

from facecourse.arrays import to_numpy


def test_tensor_with_grad_becomes_numpy_of_the_asked_dtype():
    x = torch.arange(6, dtype=torch.float32).reshape(2, 3).requires_grad_()
    out = to_numpy(x * 2, np.float64)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_array_equal(out, np.arange(6).reshape(2, 3) * 2)


def test_array_likes_pass_through():
    assert to_numpy([[0, 1, 2]]).dtype.kind == "i"
    a = np.ones(3)
    assert to_numpy(a) is a  # no copy when nothing changes
