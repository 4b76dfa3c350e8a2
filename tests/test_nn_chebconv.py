"""Fixed-topology ChebConv: equal to PyG's ChebConv, equivariant, batch-consistent, correct gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from facecourse.mesh import edges_from_faces
from facecourse.nn import ChebConv
from facecourse.nn.chebconv import (
    batched_edge_index, compare_with_pyg, hop_distances, impulse_responses, mesh_laplacian, to_pyg_chebconv,
)


def open_mesh(subdivisions: int = 2):
    """A sphere cap with a boundary: irregular degrees (5, 6 and boundary vertices)."""
    m = trimesh.creation.icosphere(subdivisions)
    f = m.faces[m.vertices[m.faces].mean(1)[:, 2] > -0.4]
    used, inverse = np.unique(f, return_inverse=True)
    return m.vertices[used], inverse.reshape(-1, 3).astype(np.int64)


@pytest.mark.parametrize("K", [1, 2, 6])
def test_matches_pyg(K):
    torch.manual_seed(0)
    v, f = open_mesh(2)
    n = len(v)
    conv = ChebConv.from_faces(4, 5, K, f, n)
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(3, n, 4)
    ours = conv(x)
    ref = to_pyg_chebconv(conv)(x.reshape(-1, 4), batched_edge_index(f, n, 3)).reshape(3, n, 5)
    assert ours.shape == (3, n, 5)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_gradients_match_pyg():
    torch.manual_seed(1)
    v, f = open_mesh(1)
    n = len(v)
    conv = ChebConv.from_faces(3, 4, 6, f, n)
    ref = to_pyg_chebconv(conv)
    x = torch.randn(2, n, 3, requires_grad=True)
    xr = x.detach().clone().reshape(-1, 3).requires_grad_()
    conv(x).square().sum().backward()
    ref(xr, batched_edge_index(f, n, 2)).square().sum().backward()
    torch.testing.assert_close(x.grad.reshape(-1, 3), xr.grad, atol=1e-4, rtol=1e-5)
    for k in range(6):
        torch.testing.assert_close(conv.weight.grad[k].T, ref.lins[k].weight.grad, atol=1e-4, rtol=1e-5)


def test_batch_of_n_equals_n_singles():
    torch.manual_seed(2)
    v, f = open_mesh(2)
    conv = ChebConv.from_faces(3, 8, 6, f, len(v))
    x = torch.randn(5, len(v), 3)
    together = conv(x)
    for b in range(5):
        torch.testing.assert_close(together[b:b + 1], conv(x[b:b + 1]), atol=1e-6, rtol=1e-5)


def test_vertex_permutation_equivariance():
    torch.manual_seed(3)
    v, f = open_mesh(2)
    n = len(v)
    perm = torch.randperm(n)  # new vertex i is old vertex perm[i]
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(n)
    conv = ChebConv.from_faces(3, 4, 6, f, n)
    conv_p = ChebConv.from_faces(3, 4, 6, inverse.numpy()[f], n)
    conv_p.load_state_dict(conv.state_dict())
    x = torch.randn(2, n, 3)
    torch.testing.assert_close(conv_p(x[:, perm]), conv(x)[:, perm], atol=1e-5, rtol=1e-5)


def test_pyg_twin_holds_transposed_weights():
    v, f = open_mesh(0)
    conv = ChebConv.from_faces(2, 3, 4, f, len(v))
    twin = to_pyg_chebconv(conv)
    assert twin.normalization == "sym" and len(twin.lins) == 4
    for k in range(4):
        torch.testing.assert_close(twin.lins[k].weight, conv.weight[k].T)
    assert batched_edge_index(f, len(v), 3).shape[1] == 3 * 2 * len(edges_from_faces(f))
    r = compare_with_pyg(conv, f, torch.randn(2, len(v), 2), repeats=1)
    assert r["max_abs_diff"] < 1e-5 and r["max_grad_diff"] < 1e-4 and r["ratio"] > 0


def test_impulse_responses_live_within_k_hops():
    v, f = open_mesh(2)
    n, K = len(v), 5
    resp = impulse_responses(mesh_laplacian(f, n), 7, K).numpy()
    hops = hop_distances(f, n, 7)
    assert resp.shape == (K, n) and hops[7] == 0
    with pytest.raises(ValueError, match="vertex must be"):
        hop_distances(f, n, n)
    for k in range(K):
        assert np.all(resp[k][hops > k] == 0) and np.any(np.abs(resp[k][hops == k]) > 1e-6)


def test_filter_is_k_minus_1_hop_local():
    """An impulse spreads exactly K-1 rings: zero beyond, non-zero at graph distance K-1."""
    import scipy.sparse.csgraph as csgraph

    from facecourse.mesh import adjacency_matrix

    v, f = open_mesh(2)
    n, K = len(v), 4
    conv = ChebConv.from_faces(1, 1, K, f, n, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.zeros(1, n, 1)
    x[0, 0, 0] = 1.0
    y = conv(x)[0, :, 0].detach().numpy()
    hops = csgraph.shortest_path(adjacency_matrix(f, n), unweighted=True, indices=0)
    assert np.all(np.abs(y[hops > K - 1]) < 1e-7)
    assert np.any(np.abs(y[hops == K - 1]) > 1e-4)


def test_gradcheck_float64():
    torch.manual_seed(4)
    v, f = open_mesh(0)
    conv = ChebConv.from_faces(2, 3, 4, f, len(v)).double()
    x = torch.randn(2, len(v), 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: torch.func.functional_call(
        conv, {"weight": w, "bias": b}, (x,)), (x, conv.weight, conv.bias))


def test_bad_input_names_the_shape():
    v, f = open_mesh(0)
    conv = ChebConv.from_faces(3, 4, 2, f, len(v))
    with pytest.raises(ValueError, match="x must be"):
        conv(torch.zeros(1, len(v) + 1, 3))
    with pytest.raises(ValueError, match="K must be"):
        ChebConv.from_faces(3, 4, 0, f, len(v))
