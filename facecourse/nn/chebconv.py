"""Fixed-topology Chebyshev graph convolution (Defferrard et al. 2016; COMA, Ranjan et al. 2018).

For signals :math:`X \\in \\mathbb R^{V\\times C_{in}}` on a mesh with rescaled Laplacian
:math:`\\tilde L = \\frac{2}{\\lambda_{max}} L_{sym} - I` (:math:`\\lambda_{max} = 2`, as COMA and PyG):

.. math:: Y = \\sum_{k=0}^{K-1} T_k(\\tilde L)\\, X\\, W_k + b, \\qquad W_k \\in \\mathbb R^{C_{in}\\times C_{out}},

where :math:`T_k(\\tilde L)X` comes from the three-term recursion of :func:`facecourse.spectral.chebyshev_basis`.
:math:`T_k(\\tilde L)` is a polynomial of degree :math:`k` in a 1-hop operator, so the filter is
:math:`(K-1)`-hop localised and costs :math:`K-1` sparse products.

Every mesh of a batch has the same topology (FLAME, or a level of its hierarchy), so one sparse
:math:`\\tilde L` serves the whole batch: the batch is laid out as one :math:`V\\times (B\\,C)` matrix and each
order is a single sparse-dense product, instead of PyG's message passing over a block-diagonal graph of
:math:`B` copies (with its normalisation recomputed on every call).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.sparse.csgraph import shortest_path
from torch import nn

from facecourse.mesh import adjacency_matrix, edges_from_faces
from facecourse.spectral import chebyshev_basis, scaled_laplacian, to_torch_sparse


def mesh_laplacian(faces, n_vertices: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Rescaled Laplacian :math:`\\tilde L = L_{sym} - I` (:math:`\\lambda_{max}=2`) of a mesh, ``(V, V)`` sparse COO.

    (COO measured as fast as CSR for the forward+backward sparse products on CPU, and it is not beta.)
    """
    return to_torch_sparse(scaled_laplacian(np.asarray(faces), n_vertices), dtype=dtype)


class ChebConv(nn.Module):
    """Chebyshev convolution on ``(B, V, C_in)`` signals of one fixed mesh topology.

    Args:
        in_channels: :math:`C_{in}`.
        out_channels: :math:`C_{out}`.
        K: number of Chebyshev polynomials (filter reaches ``K - 1`` hops; COMA: 6).
        laplacian: ``(V, V)`` rescaled Laplacian :math:`\\tilde L`, torch sparse (see :func:`mesh_laplacian`);
            kept as a non-persistent buffer (rebuilt from the topology, not stored in checkpoints).
        bias: add a learnable :math:`b \\in \\mathbb R^{C_{out}}`.

    Parameters ``weight`` ``(K, C_in, C_out)`` and ``bias`` ``(C_out,)``; ``weight[k]`` is the transpose of
    ``torch_geometric.nn.ChebConv(...).lins[k].weight``. Initialisation as PyG: Glorot per order, zero bias.
    """

    def __init__(self, in_channels: int, out_channels: int, K: int, laplacian: torch.Tensor, bias: bool = True):
        super().__init__()
        if K < 1:
            raise ValueError(f"K must be >= 1, got {K}")
        if laplacian.ndim != 2 or laplacian.shape[0] != laplacian.shape[1]:
            raise ValueError(f"laplacian must be a square (V, V) matrix, got {tuple(laplacian.shape)}")
        self.in_channels, self.out_channels, self.K = int(in_channels), int(out_channels), int(K)
        self.register_buffer("laplacian", laplacian, persistent=False)
        self.weight = nn.Parameter(torch.empty(K, in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    @classmethod
    def from_faces(cls, in_channels: int, out_channels: int, K: int, faces, n_vertices: int,
                   bias: bool = True) -> "ChebConv":
        """Build the layer for the mesh ``faces (F, 3)`` with ``n_vertices`` vertices."""
        return cls(in_channels, out_channels, K, mesh_laplacian(faces, n_vertices), bias)

    @property
    def n_vertices(self) -> int:
        """Number of vertices ``V`` of the topology."""
        return int(self.laplacian.shape[0])

    def reset_parameters(self) -> None:
        """Glorot-uniform weights (per order, as PyG) and zero bias."""
        bound = math.sqrt(6.0 / (self.in_channels + self.out_channels))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, V, C_in) -> (B, V, C_out)``: :math:`\\sum_k T_k(\\tilde L) X W_k + b`."""
        if x.ndim != 3 or x.shape[1] != self.n_vertices or x.shape[2] != self.in_channels:
            raise ValueError(f"x must be (B, {self.n_vertices}, {self.in_channels}), got {tuple(x.shape)}")
        if x.dtype != self.weight.dtype:
            raise ValueError(f"x is {x.dtype} but the layer's weights are {self.weight.dtype}: convert one of them "
                             f"(x.to({self.weight.dtype}) or layer.to({x.dtype}))")
        # (K, B, V, C_in), a view of a contiguous (K, V, B, C_in); .to is a no-op when the dtypes agree
        tx = chebyshev_basis(self.laplacian.to(x.dtype), x, self.K)
        b, v = x.shape[:2]
        # Work in the (V, B) row layout the recursion produced: no permutation copies, one small matmul per
        # order. The result is returned as a (B, V, C_out) view, which the next layer reads without copying.
        rows = tx.permute(0, 2, 1, 3).reshape(self.K, v * b, self.in_channels).unbind(0)
        weights = self.weight.unbind(0)
        out = rows[0] @ weights[0]
        for k in range(1, self.K):
            out = torch.addmm(out, rows[k], weights[k])
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(v, b, self.out_channels).permute(1, 0, 2)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, K={self.K}, V={self.n_vertices}"


def impulse_responses(laplacian: torch.Tensor, vertex: int, K: int) -> torch.Tensor:
    """:math:`T_k(\\tilde L)\\,\\delta_v` for :math:`k = 0 \\dots K-1`: what each Chebyshev order sees of vertex ``v``.

    Args:
        laplacian: ``(V, V)`` rescaled Laplacian (torch sparse, e.g. :func:`mesh_laplacian`).
        vertex: index ``v`` of the impulse.
        K: number of orders.

    Returns:
        ``(K, V)``; row ``k`` is zero beyond ``k`` hops of ``v``, so a ChebConv with ``K`` orders has a
        receptive field of ``K - 1`` rings.
    """
    n = laplacian.shape[0]
    if not 0 <= vertex < n:
        raise ValueError(f"vertex must be in [0, {n}), got {vertex}")
    delta = torch.zeros(n, 1, dtype=laplacian.dtype)
    delta[vertex] = 1.0
    return chebyshev_basis(laplacian, delta, K)[..., 0]


def hop_distances(faces, n_vertices: int, vertex: int) -> np.ndarray:
    """Graph distance (number of mesh edges) from ``vertex`` to every vertex, ``(V,)`` float (inf if unreachable)."""
    if not 0 <= vertex < n_vertices:
        raise ValueError(f"vertex must be in [0, {n_vertices}), got {vertex}")
    return shortest_path(adjacency_matrix(np.asarray(faces), n_vertices), unweighted=True, indices=int(vertex))


def batched_edge_index(faces, n_vertices: int, batch: int) -> torch.Tensor:
    """PyG ``edge_index`` ``(2, 2 E B)`` of ``batch`` disjoint copies of the mesh (how PyG batches graphs)."""
    e = torch.from_numpy(edges_from_faces(np.asarray(faces))).T
    one = torch.cat([e, e.flip(0)], dim=1)
    return torch.cat([one + i * n_vertices for i in range(batch)], dim=1)


def to_pyg_chebconv(conv: ChebConv):
    """A ``torch_geometric.nn.ChebConv`` (normalisation "sym", :math:`\\lambda_{max}=2`) with ``conv``'s weights.

    PyG stores one ``Linear`` per order with weight ``(C_out, C_in)``: ``lins[k].weight = conv.weight[k].T``.
    """
    from torch_geometric.nn import ChebConv as PygChebConv

    ref = PygChebConv(conv.in_channels, conv.out_channels, conv.K, bias=conv.bias is not None)
    ref = ref.to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        for k in range(conv.K):
            ref.lins[k].weight.copy_(conv.weight[k].T)
        if conv.bias is not None:
            ref.bias.copy_(conv.bias)
    return ref


def compare_with_pyg(conv: ChebConv, faces, x: torch.Tensor, repeats: int = 3) -> dict[str, float]:
    """Run ``conv`` and its PyG twin on ``x (B, V, C_in)``, forward + backward of :math:`\\sum y^2`.

    Returns:
        ``{"max_abs_diff", "max_grad_diff", "ours_s", "pyg_s", "ratio"}``: largest output and input-gradient
        differences, median wall times (seconds, after one warm-up) and ``pyg_s / ours_s``.
    """
    import statistics
    import time

    b, v, c = x.shape
    pyg = to_pyg_chebconv(conv)
    edges = batched_edge_index(faces, v, b)

    def ours():
        xi = x.detach().clone().requires_grad_()
        y = conv(xi)
        y.square().sum().backward()
        return y.detach(), xi.grad

    def theirs():
        xi = x.detach().reshape(b * v, c).clone().requires_grad_()
        y = pyg(xi, edges)
        y.square().sum().backward()
        return y.detach().reshape(b, v, -1), xi.grad.reshape(b, v, c)

    def median_time(step):
        step()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    (y0, g0), (y1, g1) = ours(), theirs()
    t_ours, t_pyg = median_time(ours), median_time(theirs)
    conv.zero_grad(set_to_none=True)
    return {"max_abs_diff": float((y0 - y1).abs().max()), "max_grad_diff": float((g0 - g1).abs().max()),
            "ours_s": t_ours, "pyg_s": t_pyg, "ratio": t_pyg / t_ours}
