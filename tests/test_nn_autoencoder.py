"""Spectral encoder/decoder/autoencoder: shapes, features, normalisation, checkpoints, overfitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from facecourse.nn import sparse_vertex_map
from facecourse.train.encoder import (
    PretrainConfig, build_autoencoder, load_autoencoder, reconstruction_errors, save_autoencoder, train_autoencoder,
)
from facecourse.spectral import to_torch_sparse


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECOURSE_DATA", str(tmp_path / "data"))


def small_meshes(n: int, seed: int = 0, subdivisions: int = 3):
    """A 10 cm sphere (head-sized, metres) and ``n`` smooth random deformations of it (~1 cm)."""
    m = trimesh.creation.icosphere(subdivisions, radius=0.1)
    v = torch.as_tensor(m.vertices, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    coeff = torch.randn(n, 3, 3, generator=g) * 0.05
    # smooth deformations: random linear maps of the position plus a random bump along the normal
    bump = torch.randn(n, 1, 3, generator=g)
    normals = v / v.norm(dim=1, keepdim=True)
    x = v + v @ coeff + 0.01 * torch.tanh((normals * bump).sum(-1, keepdim=True) * 2) * normals
    return m.vertices, m.faces, x


def test_shapes_and_features():
    template, faces, x = small_meshes(3)
    model = build_autoencoder(template, faces, latent_dim=5, filters=(8, 16), K=3, factors=(4, 4))
    z, feats = model.encoder(x, return_features=True)
    sizes = [len(template), -(-len(template) // 4), -(-(-(-len(template) // 4)) // 4)]
    assert z.shape == (3, 5)
    assert [tuple(f.shape) for f in feats] == [(3, sizes[0], 8), (3, sizes[1], 16)]
    assert all((f >= 0).all() for f in feats)  # post-ReLU
    torch.testing.assert_close(model.encoder(x), z)
    assert model(x).shape == x.shape


def test_encoder_batch_consistency():
    template, faces, x = small_meshes(4)
    model = build_autoencoder(template, faces, latent_dim=4, filters=(8, 8), K=4, factors=(4, 4))
    z = model.encoder(x)
    for b in range(4):
        torch.testing.assert_close(model.encoder(x[b:b + 1]), z[b:b + 1], atol=1e-5, rtol=1e-5)


def test_normalizer_is_applied():
    template, faces, x = small_meshes(6)
    model = build_autoencoder(template, faces, latent_dim=4, filters=(4, 4), K=2, factors=(4, 4))
    model.normalizer.fit(x)
    torch.testing.assert_close(model.normalizer.normalize(x).mean(0), torch.zeros_like(x[0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(model.normalizer.denormalize(model.normalizer.normalize(x)), x)
    # the encoder sees normalised input: shifting the data and the mean together changes nothing
    z = model.encoder(x)
    model.normalizer.mean += 0.5
    torch.testing.assert_close(model.encoder(x + 0.5), z, atol=1e-5, rtol=1e-5)


def test_sparse_vertex_map_matches_dense():
    m = torch.rand(7, 5).where(torch.rand(7, 5) > 0.5, torch.zeros(()))
    x = torch.randn(3, 5, 4)
    import scipy.sparse as sp

    out = sparse_vertex_map(to_torch_sparse(sp.csr_matrix(m.numpy())), x)
    torch.testing.assert_close(out, torch.einsum("ij,bjc->bic", m, x))
    for bad in (x[0], x[:, :4]):  # unbatched, wrong vertex count
        with pytest.raises(ValueError, match="x must be"):
            sparse_vertex_map(to_torch_sparse(sp.csr_matrix(m.numpy())), bad)


def test_checkpoint_round_trip(tmp_path):
    template, faces, x = small_meshes(5)
    model = build_autoencoder(template, faces, latent_dim=6, filters=(8, 8), K=3, factors=(4, 4))
    model.normalizer.fit(x)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    path = save_autoencoder(tmp_path / "ae.pt", model, epoch=7)
    loaded, ckpt = load_autoencoder(path)
    assert ckpt["epoch"] == 7 and loaded.config == model.config
    torch.testing.assert_close(loaded.normalizer.std, model.normalizer.std)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    z1, f1 = loaded.encoder(x, return_features=True)
    z0, f0 = model.encoder(x, return_features=True)
    torch.testing.assert_close(z1, z0)
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a facecourse mesh autoencoder"):
        load_autoencoder(tmp_path / "other.pt")


def test_overfits_a_handful_of_meshes_below_a_millimetre():
    torch.manual_seed(0)
    template, faces, x = small_meshes(4, subdivisions=2)
    config = PretrainConfig(n_train=4, n_test=4, latent_dim=8, filters=(16, 16), K=4, factors=(4, 4),
                            epochs=400, batch_size=4, optimizer="adam", lr=3e-3, lr_decay=0.995, weight_decay=0.0)
    model = build_autoencoder(template, faces, config.latent_dim, config.filters, config.K, config.factors)
    before = reconstruction_errors(model, x).mean()
    report = train_autoencoder(model, x, x, config, progress=False, device="cpu")
    err = reconstruction_errors(model, x)
    assert before > 5.0  # an untrained network is centimetres off (errors in mm)
    assert report["test"]["mean_mm"] == pytest.approx(float(err.mean()), rel=1e-5)
    assert float(err.mean()) < 1.0, report["test"]


def test_resume_equals_uninterrupted(tmp_path):
    template, faces, x = small_meshes(8, subdivisions=2)
    kw = dict(latent_dim=4, filters=(8, 8), K=3, factors=(4, 4), batch_size=4)

    def run(epochs, path, resume=True):
        torch.manual_seed(0)
        model = build_autoencoder(template, faces, 4, (8, 8), 3, (4, 4))
        config = PretrainConfig(epochs=epochs, **kw)
        return model, train_autoencoder(model, x[:6], x[6:], config, path, resume=resume, progress=False,
                                        device="cpu")

    straight, rep = run(3, tmp_path / "a.pt")
    run(2, tmp_path / "b.pt")
    resumed, rep_b = run(3, tmp_path / "b.pt")
    assert [h["epoch"] for h in rep_b["history"]] == [1, 2, 3]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)
    ckpt = torch.load(tmp_path / "b.pt", weights_only=True)
    assert ckpt["epoch"] == 3 and ckpt["metrics"]["mean_mm"] == pytest.approx(rep_b["test"]["mean_mm"])
    assert rep_b["test"]["mean_mm"] == pytest.approx(rep_b["history"][-1]["test_mean_mm"])
    finished, rep_c = run(3, tmp_path / "b.pt")  # nothing left to train: evaluated and recorded again
    assert rep_c["history"] == rep_b["history"] and rep_c["test"] == pytest.approx(rep_b["test"])
    assert torch.load(tmp_path / "b.pt", weights_only=True)["metrics"] == pytest.approx(rep_b["test"])
    with pytest.raises(ValueError, match="another configuration"):
        model = build_autoencoder(template, faces, 4, (8, 8), 3, (4, 4))
        train_autoencoder(model, x[:6], x[6:], PretrainConfig(epochs=4, lr=0.1, **kw), tmp_path / "b.pt",
                          progress=False, device="cpu")
