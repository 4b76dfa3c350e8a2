"""Bad input gets a message that names it (issue "every bad input named"): devices, dtypes, degenerate
triangles, point clouds, batch sizes, refused checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from facecourse import settings
from facecourse.mesh import load_mesh
from facecourse.nn import ChebConv
from facecourse.spectral import cotangent_laplacian
from facecourse.train import CheckpointError, TrainConfig, load_checkpoint


def test_cuda_without_cuda_is_refused_at_start(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setenv("FACECOURSE_DEVICE", "cuda")
    with pytest.raises(ValueError, match=r"FACECOURSE_DEVICE='cuda'.*not available.*\['cpu'\]"):
        settings.device()
    monkeypatch.setenv("FACECOURSE_DEVICE", "banana")
    with pytest.raises(ValueError, match="not a torch device"):
        settings.device()
    monkeypatch.setenv("FACECOURSE_DEVICE", "cpu")
    assert settings.device() == torch.device("cpu")


def test_chebconv_names_a_dtype_mismatch():
    m = trimesh.creation.icosphere(1)
    conv = ChebConv.from_faces(3, 4, 3, m.faces, len(m.vertices))
    with pytest.raises(ValueError, match="x is torch.float64 but the layer's weights are torch.float32"):
        conv(torch.zeros(2, len(m.vertices), 3, dtype=torch.float64))
    assert conv.double()(torch.zeros(2, len(m.vertices), 3, dtype=torch.float64)).dtype == torch.float64


def test_degenerate_triangle_is_refused_by_name():
    v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0]])
    f = np.array([[0, 1, 2], [0, 1, 3]])  # face 1 is collinear
    with pytest.raises(ValueError, match=r"1 degenerate triangle.*face 1 = vertices \[0, 1, 3\]"):
        cotangent_laplacian(v, f)
    assert np.isfinite(cotangent_laplacian(v, f[:1]).toarray()).all()


def test_obj_with_points_but_no_faces_is_named(tmp_path):
    path = tmp_path / "points.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    with pytest.raises(ValueError, match="holds 3 points but no faces"):
        load_mesh(path)
    (tmp_path / "empty.obj").write_text("# nothing\n")
    with pytest.raises(ValueError, match="holds no vertices"):
        load_mesh(tmp_path / "empty.obj")


def test_batch_size_zero_says_so():
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        TrainConfig(batch_size=0)


def test_a_refused_checkpoint_never_advises_weights_only_false(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("never",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "x", "model": Payload()}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "weights_only=False" not in str(info.value)
