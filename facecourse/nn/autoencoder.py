"""COMA-style spectral mesh autoencoder: Chebyshev convolutions on a down-sampling hierarchy.

Encoder, for levels :math:`l = 0 \\dots L-1` (COMA: :math:`L = 4`, :math:`K = 6`, filters 16, 16, 16, 32):

.. math:: H_{l+1} = D_l\\, \\mathrm{ReLU}\\big(\\mathrm{ChebConv}_l(H_l)\\big), \\qquad
          z = W_z \\operatorname{vec}(H_L) + b_z,

with :math:`H_0 = (X - \\mu) / \\sigma` the per-vertex normalised input. The decoder mirrors it with the
barycentric up-sampling :math:`U_l` and ends with a ChebConv to 3 coordinates, de-normalised back to metres.

Linear shortcuts (``linear_shortcut=True``, the course's presets; off = COMA): the code gets a linear term of the
whole input and the output a linear term of the code,

.. math:: z = W_z \\operatorname{vec}(H_L) + b_z + S_E \\operatorname{vec}(H_0), \\qquad
          \\hat H_0 = \\mathrm{ChebConv}_{out}(\\dots) + \\operatorname{unvec}(S_D z),

so the network contains a linear autoencoder (whose optimum spans PCA's subspace) and the convolutions learn what
is not linear. COMA's decoder builds every vertex from the 7 coarsest vertices through filters shared by all
vertices: a displacement pattern particular to some vertices (what a PCA component is) is slow to learn that way.
Measured (``benchmarks/bench_encoder.py``, CI preset, 450 steps): 1.26 mm with the shortcuts, 3.33 mm without, PCA
1.15 mm.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from facecourse.nn.chebconv import ChebConv
from facecourse.nn.hierarchy import MeshHierarchy
from facecourse.spectral import to_torch_sparse

COMA_FILTERS = (16, 16, 16, 32)
INPUT_SCALES = ("vertex", "global")
"""How :meth:`VertexNormalizer.fit` scales the input: per vertex and coordinate (COMA) or by one number."""


def sparse_vertex_map(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply a sparse ``(V_out, V_in)`` vertex operator to every signal of a batch.

    Args:
        matrix: torch sparse ``(V_out, V_in)`` (e.g. the up-sampling :math:`U`).
        x: ``(B, V_in, C)``.

    Returns:
        ``(B, V_out, C)`` with ``out[b] = matrix @ x[b]``, computed as one ``(V_in, B*C)`` product.
    """
    if x.ndim != 3 or x.shape[1] != matrix.shape[1]:
        raise ValueError(f"x must be (B, V_in={matrix.shape[1]}, C) for this operator, got {tuple(x.shape)}")
    b, v, c = x.shape
    out = matrix.to(x.dtype) @ x.permute(1, 0, 2).reshape(v, b * c)
    return out.reshape(-1, b, c).permute(1, 0, 2)


class VertexNormalizer(nn.Module):
    """Per-vertex standardisation :math:`(X - \\mu) / \\sigma` with ``mean``, ``std`` ``(V, 3)`` buffers (metres).

    The buffers are saved in checkpoints so a loaded encoder sees inputs exactly as during training.
    """

    def __init__(self, n_vertices: int, channels: int = 3):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_vertices, channels))
        self.register_buffer("std", torch.ones(n_vertices, channels))

    @torch.no_grad()
    def fit(self, vertices: torch.Tensor, min_std: float = 1e-4, scale: str = "vertex") -> "VertexNormalizer":
        """Set ``mean``/``std`` from training meshes ``(N, V, 3)``.

        Args:
            min_std: floor of ``std`` (metres).
            scale: ``"vertex"`` (COMA): each coordinate's own standard deviation :math:`\\sigma_{vc}`;
                ``"global"``: one number everywhere, the root mean square :math:`\\sqrt{\\mathrm{mean}\\,
                \\sigma_{vc}^2}`. Per-vertex scaling magnifies a displacement of a vertex that barely varies
                between training heads (0.1 mm spread next to 8 mm elsewhere on the synthetic model) by up to
                80x: an encoder fed that way reacts to vertex noise far more than to another identity.
        """
        if vertices.ndim != 3 or vertices.shape[1:] != self.mean.shape:
            raise ValueError(f"vertices must be (N, {tuple(self.mean.shape)}), got {tuple(vertices.shape)}")
        if scale not in INPUT_SCALES:
            raise ValueError(f"scale must be one of {INPUT_SCALES}, got {scale!r}")
        self.mean.copy_(vertices.mean(0))
        std = vertices.std(0, unbiased=False)
        if scale == "global":
            std = std.square().mean().sqrt().expand_as(std)
        self.std.copy_(std.clamp_min(min_std))
        return self

    def normalize(self, vertices: torch.Tensor) -> torch.Tensor:
        """``(B, V, 3)`` metres -> standardised."""
        return (vertices - self.mean) / self.std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised ``(B, V, 3)`` -> metres."""
        return x * self.std + self.mean


def _check_config(hierarchy: MeshHierarchy, filters, K: int, latent_dim: int) -> tuple[int, ...]:
    filters = tuple(int(f) for f in filters)
    if len(filters) != hierarchy.n_levels:
        raise ValueError(f"need one filter count per hierarchy level ({hierarchy.n_levels}), got {filters}")
    if K < 1 or latent_dim < 1 or min(filters) < 1:
        raise ValueError(f"K, latent_dim and filters must be positive, got K={K}, latent_dim={latent_dim}")
    return filters


class SpectralEncoder(nn.Module):
    """Mesh ``(B, V_0, 3)`` in metres -> latent ``(B, latent_dim)`` (COMA encoder).

    Args:
        hierarchy: :class:`~facecourse.nn.hierarchy.MeshHierarchy` with ``L`` levels.
        latent_dim: size of :math:`z` (COMA: 8).
        filters: output channels of the ``L`` ChebConvs (COMA: 16, 16, 16, 32).
        K: Chebyshev order (COMA: 6).
        normalizer: shared :class:`VertexNormalizer` (a new identity one if ``None``).
        linear_shortcut: add :math:`S_E \\operatorname{vec}(H_0)` to the code (module docstring).

    Attributes:
        topology: :func:`facecourse.mesh.topology_hash` of the level-0 faces: a caller with meshes of another
            topology (e.g. another FLAME version) can refuse them before any vertex count happens to match.
    """

    def __init__(self, hierarchy: MeshHierarchy, latent_dim: int = 8, filters=COMA_FILTERS, K: int = 6,
                 normalizer: VertexNormalizer | None = None, linear_shortcut: bool = False):
        super().__init__()
        filters = _check_config(hierarchy, filters, K, latent_dim)
        sizes = hierarchy.sizes
        self.topology: str = hierarchy.topology
        self.shortcut = nn.Linear(3 * sizes[0], latent_dim, bias=False) if linear_shortcut else None
        self.normalizer = normalizer if normalizer is not None else VertexNormalizer(sizes[0])
        channels = (3,) + filters
        self.convs = nn.ModuleList(
            ChebConv.from_faces(channels[i], channels[i + 1], K, hierarchy.faces[i], sizes[i])
            for i in range(len(filters)))
        for i, d in enumerate(hierarchy.down):
            self.register_buffer(f"kept_{i}", torch.from_numpy(np.asarray(d.indices, dtype=np.int64)),
                                 persistent=False)
        self.fc = nn.Linear(sizes[-1] * filters[-1], latent_dim)

    def forward(self, vertices: torch.Tensor, return_features: bool = False):
        """Encode meshes.

        Args:
            vertices: ``(B, V_0, 3)`` in metres (normalised inside with the stored mean/std).
            return_features: also return the activations of every level.

        Returns:
            ``z (B, latent_dim)``, or ``(z, features)`` with ``features[l]`` the post-ReLU ChebConv output
            ``(B, V_l, filters[l])`` at level ``l`` (before down-sampling).
        """
        n = self.normalizer.mean.shape[0]
        if vertices.ndim != 3 or vertices.shape[1:] != (n, 3):
            raise ValueError(f"vertices must be (B, {n}, 3), got {tuple(vertices.shape)}")
        h = self.normalizer.normalize(vertices)
        features = []
        for i, conv in enumerate(self.convs):
            h = torch.relu(conv(h))
            features.append(h)
            h = h.index_select(1, getattr(self, f"kept_{i}"))  # D_l h: keep the surviving vertices
        z = self.fc(h.flatten(1))
        if self.shortcut is not None:
            z = z + self.shortcut(self.normalizer.normalize(vertices).flatten(1))
        return (z, features) if return_features else z


class SpectralDecoder(nn.Module):
    """Latent ``(B, latent_dim)`` -> mesh ``(B, V_0, 3)`` in metres (COMA decoder, mirror of the encoder).

    ``linear_shortcut``: add :math:`\\operatorname{unvec}(S_D z)` to the output (module docstring); :math:`S_D`
    starts at zero, so a new decoder is COMA's.
    """

    def __init__(self, hierarchy: MeshHierarchy, latent_dim: int = 8, filters=COMA_FILTERS, K: int = 6,
                 normalizer: VertexNormalizer | None = None, linear_shortcut: bool = False):
        super().__init__()
        filters = _check_config(hierarchy, filters, K, latent_dim)
        sizes = hierarchy.sizes
        n = len(filters)
        self.normalizer = normalizer if normalizer is not None else VertexNormalizer(sizes[0])
        self.coarse_shape = (sizes[-1], filters[-1])
        self.fc = nn.Linear(latent_dim, sizes[-1] * filters[-1])
        for i, u in enumerate(hierarchy.up):
            self.register_buffer(f"up_{i}", to_torch_sparse(u), persistent=False)
        # after up-sampling to level l (l = L-1 ... 0): conv to filters[l-1] (filters[0] at level 0)
        out_channels = [filters[max(level - 1, 0)] for level in range(n - 1, -1, -1)]
        in_channels = [filters[-1]] + out_channels[:-1]
        levels = list(range(n - 1, -1, -1))
        self.convs = nn.ModuleList(
            ChebConv.from_faces(ci, co, K, hierarchy.faces[lv], sizes[lv])
            for ci, co, lv in zip(in_channels, out_channels, levels))
        self.out = ChebConv.from_faces(out_channels[-1], 3, K, hierarchy.faces[0], sizes[0])
        self._levels = levels
        self.shortcut = nn.Linear(latent_dim, 3 * sizes[0], bias=False) if linear_shortcut else None
        if self.shortcut is not None:
            nn.init.zeros_(self.shortcut.weight)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, latent_dim) -> (B, V_0, 3)`` metres."""
        if z.ndim != 2 or z.shape[1] != self.fc.in_features:
            raise ValueError(f"z must be (B, {self.fc.in_features}), got {tuple(z.shape)}")
        h = self.fc(z).reshape(z.shape[0], *self.coarse_shape)
        for level, conv in zip(self._levels, self.convs):
            h = torch.relu(conv(sparse_vertex_map(getattr(self, f"up_{level}"), h)))  # U_l h, then filter
        out = self.out(h)
        if self.shortcut is not None:
            out = out + self.shortcut(z).reshape(out.shape)
        return self.normalizer.denormalize(out)


class MeshAutoencoder(nn.Module):
    """COMA autoencoder: :class:`SpectralEncoder` + :class:`SpectralDecoder` sharing one normaliser.

    ``linear_shortcut``: both linear shortcuts (module docstring). ``config`` (a plain dict: latent_dim, filters,
    K, factors, n_vertices, topology, linear_shortcut) with ``template``
    ``(V, 3)`` and ``faces`` ``(F, 3)`` (plain tensors, not buffers) is what a checkpoint needs to rebuild the
    network (stored by :meth:`facecourse.train.encoder.AutoencoderTask.checkpoint_meta`).
    """

    def __init__(self, hierarchy: MeshHierarchy, latent_dim: int = 8, filters=COMA_FILTERS, K: int = 6,
                 linear_shortcut: bool = False):
        super().__init__()
        self.normalizer = VertexNormalizer(hierarchy.sizes[0])
        self.encoder = SpectralEncoder(hierarchy, latent_dim, filters, K, self.normalizer, linear_shortcut)
        self.decoder = SpectralDecoder(hierarchy, latent_dim, filters, K, self.normalizer, linear_shortcut)
        self.config = {"latent_dim": int(latent_dim), "filters": [int(f) for f in filters], "K": int(K),
                       "factors": list(hierarchy.factors), "n_vertices": hierarchy.sizes[0],
                       "topology": hierarchy.topology, "linear_shortcut": bool(linear_shortcut)}
        # the level-0 mesh the hierarchy was built from: a checkpoint stores it to rebuild the same hierarchy
        self.template = torch.as_tensor(np.asarray(hierarchy.vertices[0]), dtype=torch.float64)
        self.faces = torch.as_tensor(np.asarray(hierarchy.faces[0]), dtype=torch.long)

    def forward(self, vertices: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``(B, V, 3)`` meshes (metres in, metres out)."""
        return self.decoder(self.encoder(vertices))
