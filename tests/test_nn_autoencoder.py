"""Spectral encoder/decoder/autoencoder: shapes, features, normalisation, the sparse vertex map (training and
checkpoints: tests/test_train_encoder.py)."""

from __future__ import annotations

import pytest
import torch
from helpers import deformed_spheres

from facecourse.nn import sparse_vertex_map
from facecourse.train.encoder import build_autoencoder
from facecourse.spectral import to_torch_sparse


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECOURSE_DATA", str(tmp_path / "data"))


def test_shapes_and_features():
    template, faces, x = deformed_spheres(3)
    model = build_autoencoder(template, faces, latent_dim=5, filters=(8, 16), K=3, factors=(4, 4))
    z, feats = model.encoder(x, return_features=True)
    sizes = [len(template), -(-len(template) // 4), -(-(-(-len(template) // 4)) // 4)]
    assert z.shape == (3, 5)
    assert [tuple(f.shape) for f in feats] == [(3, sizes[0], 8), (3, sizes[1], 16)]
    assert all((f >= 0).all() for f in feats)  # post-ReLU
    torch.testing.assert_close(model.encoder(x), z)
    assert model(x).shape == x.shape


def test_encoder_batch_consistency():
    template, faces, x = deformed_spheres(4)
    model = build_autoencoder(template, faces, latent_dim=4, filters=(8, 8), K=4, factors=(4, 4))
    z = model.encoder(x)
    for b in range(4):
        torch.testing.assert_close(model.encoder(x[b:b + 1]), z[b:b + 1], atol=1e-5, rtol=1e-5)


def test_normalizer_is_applied():
    template, faces, x = deformed_spheres(6)
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


def test_normalizer_global_scale_is_one_rms_number():
    from facecourse.nn import VertexNormalizer

    _, _, x = deformed_spheres(5)
    per_vertex = VertexNormalizer(x.shape[1]).fit(x)
    one = VertexNormalizer(x.shape[1]).fit(x, scale="global")
    torch.testing.assert_close(one.mean, per_vertex.mean)
    assert one.std.unique().numel() == 1
    torch.testing.assert_close(one.std[0, 0], x.std(0, unbiased=False).square().mean().sqrt())
    with pytest.raises(ValueError, match="scale must be one of"):
        VertexNormalizer(x.shape[1]).fit(x, scale="axis")


def test_linear_shortcuts_add_exactly_their_linear_terms():
    template, faces, x = deformed_spheres(3)
    plain = build_autoencoder(template, faces, latent_dim=4, filters=(8, 8), K=3, factors=(4, 4))
    short = build_autoencoder(template, faces, latent_dim=4, filters=(8, 8), K=3, factors=(4, 4),
                              linear_shortcut=True)
    assert plain.encoder.shortcut is None and plain.config["linear_shortcut"] is False
    assert short.config["linear_shortcut"] is True
    missing = short.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["decoder.shortcut.weight", "encoder.shortcut.weight"]
    short.normalizer.fit(x)
    plain.normalizer.fit(x)
    with torch.no_grad():
        # encoder: z = COMA's code + S_E vec(H_0), H_0 the normalised input
        linear = short.encoder.shortcut(short.normalizer.normalize(x).flatten(1))
        assert linear.abs().max() > 1e-3
        torch.testing.assert_close(short.encoder(x), plain.encoder(x) + linear, atol=1e-5, rtol=1e-5)
        # decoder: S_D starts at zero (a new decoder is COMA's), then adds sigma * unvec(S_D z) in metres
        z = torch.randn(3, 4)
        torch.testing.assert_close(short.decoder(z), plain.decoder(z))
        short.decoder.shortcut.weight.normal_()
        added = (short.decoder.shortcut(z).reshape(x.shape) * short.normalizer.std)
        torch.testing.assert_close(short.decoder(z), plain.decoder(z) + added, atol=1e-5, rtol=1e-5)
