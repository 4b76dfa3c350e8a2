"""Pre-training on synthetic FLAME samples: sampling, train-or-load, checkpoint location, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import trimesh

from facecourse.cli import main
from facecourse.flame import FLAME
from facecourse.flame.io import save_deca_landmark_embedding, save_model
from facecourse.train.encoder import (
    PretrainConfig, checkpoint_path, load_autoencoder, load_pretrained_autoencoder, pretrain_encoder,
    sample_flame_meshes,
)


@pytest.fixture()
def tiny_flame(tmp_path, monkeypatch):
    """A FLAME-format model (official keys, DECA landmark file) on a 642-vertex sphere with smooth blend shapes."""
    monkeypatch.setenv("FACECOURSE_DATA", str(tmp_path / "data"))
    m = trimesh.creation.icosphere(3, radius=0.1)
    v, n = m.vertices, len(m.vertices)
    rng = np.random.default_rng(0)
    poly = np.stack([v[:, 0], v[:, 1], v[:, 2], 10 * v[:, 0] * v[:, 1], 10 * v[:, 1] ** 2], axis=1)
    shapedirs = np.einsum("vb,bck->vck", poly, rng.standard_normal((5, 3, 400)) * 0.01 / np.arange(1, 401) ** 0.5)
    weights = np.zeros((n, 5))
    weights[:, 0] = 1
    folder = tmp_path / "model"
    save_model(folder / "generic_model.pkl", dict(
        v_template=v, f=m.faces, shapedirs=shapedirs, posedirs=np.zeros((n, 3, 36)),
        J_regressor=sp.csc_matrix(np.full((5, n), 1.0 / n)), weights=weights,
        kintree_table=np.array([[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]]), J=np.zeros((5, 3))))
    bary = np.full(3, 1 / 3)
    save_deca_landmark_embedding(folder / "landmark_embedding.npy", np.arange(51), np.tile(bary, (51, 1)),
                                 np.zeros((79, 17), dtype=int), np.tile(bary, (79, 17, 1)), np.arange(68),
                                 np.tile(bary, (68, 1)))
    return folder / "generic_model.pkl"


def small_config(model, **kw):
    base = dict(model=str(model), data="synthetic", n_train=32, n_test=8, factors=(4, 4), filters=(8, 8),
                epochs=2, optimizer="adam", lr=1e-3)
    return PretrainConfig(**{**base, **kw})


def test_sample_flame_meshes(tiny_flame):
    flame = FLAME.from_file(tiny_flame, n_shape=10, n_exp=5)
    a = sample_flame_meshes(flame, 5, seed=3, batch_size=2)
    b = sample_flame_meshes(flame, 5, seed=3)
    assert a.shape == (5, flame.n_vertices, 3) and a.dtype == torch.float32
    torch.testing.assert_close(a, b)  # same seed, same heads, whatever the batching
    assert not torch.allclose(a, sample_flame_meshes(flame, 5, seed=4))
    still = sample_flame_meshes(flame, 2, shape_std=0.0, expression_std=0.0)
    torch.testing.assert_close(still, flame.v_template.expand(2, -1, -1))


def test_pretrain_then_load_without_training(tiny_flame):
    config = small_config(tiny_flame)
    model, report = pretrain_encoder(config, progress=False, device="cpu")
    path = checkpoint_path(config, model.config["topology"])
    assert report["checkpoint"] == str(path) and path.parent.name == "checkpoints" and report["source"] == "synthetic"
    assert report["epoch"] == 2 and report["test"]["mean_mm"] > 0
    loaded = load_pretrained_autoencoder(config, train_if_missing=False)
    x = sample_flame_meshes(FLAME.from_file(tiny_flame), 3, seed=99)
    torch.testing.assert_close(loaded.encoder(x), model.encoder(x))
    # the checkpoint stores the training set's normalisation
    flame = FLAME.from_file(tiny_flame)
    train = sample_flame_meshes(flame, config.n_train, seed=0)
    torch.testing.assert_close(loaded.normalizer.mean, train.mean(0))


def test_cli_synthetic(tiny_flame, capsys):
    args = ["pretrain-encoder", "--mode", "ci", "--model", str(tiny_flame), "--epochs", "1", "--n-train", "16",
            "--n-test", "4", "--latent-dim", "4", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "data: synthetic; epochs: 1" in out
    model, ckpt = load_autoencoder(out.split("checkpoint: ")[1].split()[0])
    assert model.config["latent_dim"] == 4 and model.config["filters"] == [16, 16, 16, 32]
    assert ckpt["pretrain"]["model"] == str(tiny_flame) and ckpt["pretrain"]["n_train"] == 16
    assert ckpt["pretrain_key"] == PretrainConfig.for_mode("ci", model=str(tiny_flame), epochs=1, n_train=16,
                                                           n_test=4, latent_dim=4).key()
