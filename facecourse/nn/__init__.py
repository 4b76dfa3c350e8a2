"""Neural networks: fixed-topology ChebConv, COMA hierarchy, spectral encoder/decoder/autoencoder, the
image backbones (:mod:`facecourse.nn.backbones`) and the image-to-FLAME regressor (:mod:`facecourse.nn.regressor`).
Training them is :mod:`facecourse.train`.

Pretrained encoder for the 3D-ID loss::

    from facecourse.train.encoder import load_pretrained_autoencoder
    model = load_pretrained_autoencoder()            # train-or-load, preset of facecourse.settings.mode()
    z, feats = model.encoder(vertices, return_features=True)   # vertices (B, V, 3) metres
"""

from facecourse.nn.autoencoder import (
    COMA_FILTERS, MeshAutoencoder, SpectralDecoder, SpectralEncoder, VertexNormalizer, sparse_vertex_map,
)
from facecourse.nn.chebconv import (
    ChebConv, batched_edge_index, compare_with_pyg, hop_distances, impulse_responses, mesh_laplacian, to_pyg_chebconv,
)
from facecourse.nn.hierarchy import MeshHierarchy, build_hierarchy, hierarchy_cache_path
from facecourse.nn.regressor import FaceRegressor, HeadSizes, Reconstruction, Reconstructor

__all__ = [
    "COMA_FILTERS", "ChebConv", "FaceRegressor", "HeadSizes", "Reconstruction", "Reconstructor", "MeshAutoencoder", "MeshHierarchy", "SpectralDecoder",
    "SpectralEncoder", "VertexNormalizer", "batched_edge_index", "build_hierarchy",
    "compare_with_pyg", "hop_distances", "impulse_responses", "to_pyg_chebconv",
    "hierarchy_cache_path",
    "mesh_laplacian",
    "sparse_vertex_map",
]
