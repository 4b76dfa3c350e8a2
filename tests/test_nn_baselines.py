"""Mean-head and PCA baselines of mesh reconstruction, against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facecourse.nn.baselines import MeshPCA, error_summary, mean_head_errors, pca_errors, vertex_errors


def subspace_meshes(n: int, k: int, n_vertices: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` meshes ``(n, V, 3)`` lying exactly in a ``k``-dimensional affine subspace through ``mean`` ``(V, 3)``."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(n_vertices, 3, generator=g, dtype=torch.float64)
    basis = torch.randn(k, n_vertices * 3, generator=g, dtype=torch.float64) * 0.01
    codes = torch.randn(n, k, generator=g, dtype=torch.float64) * torch.arange(k, 0, -1, dtype=torch.float64)
    return mean + (codes @ basis).reshape(n, n_vertices, 3), mean


def test_vertex_errors_are_euclidean_millimetres():
    target = torch.zeros(2, 4, 3)
    predicted = target.clone()
    predicted[1, 2] = torch.tensor([0.003, 0.004, 0.0])  # 3-4-5 triangle in metres
    errors = vertex_errors(predicted, target)
    assert errors.shape == (2, 4)
    assert float(errors[1, 2]) == pytest.approx(5.0) and float(errors.sum()) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="predicted and target"):
        vertex_errors(predicted[:, :3], target)


def test_data_in_a_k_dimensional_subspace_is_reconstructed_exactly_with_k_components():
    meshes, _ = subspace_meshes(50, 3)
    train, test = meshes[:40], meshes[40:]  # one subspace, held-out codes
    assert float(pca_errors(train, test, 3).max()) < 1e-9
    assert float(pca_errors(train, test, 2).mean()) > 1e-3  # one component short: visibly off


def test_pca_matches_numpy_svd_and_is_best_among_rank_k_projections():
    g = torch.Generator().manual_seed(1)
    train = torch.randn(50, 20, 3, generator=g, dtype=torch.float64) * torch.linspace(0.1, 1, 20)[:, None]
    test = torch.randn(7, 20, 3, generator=g, dtype=torch.float64) * torch.linspace(0.1, 1, 20)[:, None]
    pca = MeshPCA.fit(train, 5)
    x = train.numpy().reshape(50, -1)
    mu = x.mean(0)
    _, s, wt = np.linalg.svd(x - mu, full_matrices=False)
    np.testing.assert_allclose(pca.singular_values.numpy(), s[:5], rtol=1e-10)
    y = test.numpy().reshape(7, -1) - mu
    reference = mu + (y @ wt[:5].T) @ wt[:5]
    np.testing.assert_allclose(pca.reconstruct(test).numpy().reshape(7, -1), reference, atol=1e-12)
    assert pca.encode(test).shape == (7, 5) and pca.decode(pca.encode(test)).shape == test.shape
    # on the training meshes no other rank-5 projection has a smaller squared error
    random_basis = torch.linalg.qr(torch.randn(60, 5, generator=g, dtype=torch.float64))[0].T
    centred = (train - pca.mean).flatten(1)
    err_pca = ((centred - centred @ pca.components.T @ pca.components) ** 2).sum()
    err_random = ((centred - centred @ random_basis.T @ random_basis) ** 2).sum()
    assert err_pca < err_random


def test_mean_head_errors_and_summary():
    train = torch.zeros(4, 5, 3, dtype=torch.float64)
    train[:2, :, 0] = 0.002  # mean: x = 1 mm everywhere
    test = torch.zeros(3, 5, 3, dtype=torch.float64)
    errors = mean_head_errors(train, test)
    assert errors.shape == (3, 5)
    torch.testing.assert_close(errors, torch.ones(3, 5, dtype=torch.float64))
    summary = error_summary(torch.tensor([1.0, 2.0, 6.0]))
    assert summary == pytest.approx({"mean_mm": 3.0, "median_mm": 2.0, "std_mm": float(np.std([1, 2, 6], ddof=1))})


def test_bad_inputs_are_named():
    train = torch.zeros(4, 5, 3)
    with pytest.raises(ValueError, match="n_components"):
        MeshPCA.fit(train, 5)  # more components than meshes
    with pytest.raises(ValueError, match="test must have 5 vertices"):
        mean_head_errors(train, torch.zeros(2, 6, 3))
    with pytest.raises(ValueError, match=r"must be a \(N>0, V, 3\) tensor"):
        pca_errors(torch.zeros(5, 3), train, 1)
    with pytest.raises(ValueError, match="z must be"):
        MeshPCA.fit(train, 2).decode(torch.zeros(3, 4))
