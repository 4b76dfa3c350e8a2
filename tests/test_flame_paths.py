"""Model paths: real FLAME 2020 wins over the synthetic default; the synthetic one is built when missing."""

from __future__ import annotations

import pytest
from helpers import write_tiny_model_dir

import facecourse.flame.paths as paths
from facecourse.flame import default_model_path, is_synthetic, synthetic_model_path


def test_synthetic_is_built_when_missing_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECOURSE_DATA", str(tmp_path))
    calls = []

    def build(out_dir, size):
        calls.append((out_dir, size))
        out_dir.mkdir(parents=True, exist_ok=True)
        write_tiny_model_dir(out_dir)

    def is_current(out_dir, size):
        return (out_dir / "generic_model.pkl").is_file()

    monkeypatch.setattr(paths, "build_synthetic_flame", build)
    monkeypatch.setattr(paths, "is_current", is_current)
    path = synthetic_model_path("small")
    assert path == tmp_path / "synthetic" / "flame" / "small" / "generic_model.pkl" and path.is_file()
    assert calls == [(path.parent, "small")]
    assert synthetic_model_path("small") == path and len(calls) == 1  # not rebuilt
    assert default_model_path("small") == path and is_synthetic(path)
    real = tmp_path / "FLAME2020"
    real.mkdir()
    write_tiny_model_dir(real)
    (real / "landmark_embedding.npy").rename(tmp_path / "aside.npy")
    with pytest.warns(UserWarning, match="landmark-embedding"):
        assert default_model_path("small") == path  # incomplete real data: synthetic, with a warning
    (tmp_path / "aside.npy").rename(real / "landmark_embedding.npy")
    assert default_model_path("small") == real / "generic_model.pkl"  # real data wins
    assert not is_synthetic(default_model_path("small"))
    with pytest.raises(ValueError, match="size"):
        synthetic_model_path("huge")


def test_landmark_embedding_is_deca_file_or_ringnet_pair(tmp_path):
    from facecourse.flame.io import DECA_EMBEDDING, RINGNET_DYNAMIC, RINGNET_STATIC, has_landmark_embedding

    assert not has_landmark_embedding(tmp_path)
    (tmp_path / RINGNET_STATIC).write_bytes(b"")
    assert not has_landmark_embedding(tmp_path)  # half of RingNet's pair
    (tmp_path / RINGNET_DYNAMIC).write_bytes(b"")
    assert has_landmark_embedding(tmp_path)
    deca = tmp_path / "deca"
    deca.mkdir()
    (deca / DECA_EMBEDDING).write_bytes(b"")
    assert has_landmark_embedding(deca)
