"""Neural networks on meshes: fixed-topology ChebConv, COMA hierarchy, spectral autoencoder, pre-training.

Pretrained encoder for the 3D-ID loss::

    from facecourse.nn import load_pretrained_autoencoder
    model = load_pretrained_autoencoder()            # train-or-load, preset of facecourse.settings.mode()
    z, feats = model.encoder(vertices, return_features=True)   # vertices (B, V, 3) metres
"""

from facecourse.nn.autoencoder import (
    COMA_FILTERS, MeshAutoencoder, SpectralDecoder, SpectralEncoder, VertexNormalizer, sparse_vertex_map,
)
from facecourse.nn.chebconv import (
    ChebConv, batched_edge_index, compare_with_pyg, hop_distances, impulse_responses, mesh_laplacian, to_pyg_chebconv,
)
from facecourse.nn.hierarchy import (
    MeshHierarchy, build_hierarchy, decimate, downsample_matrix, hierarchy_cache_path,
    upsample_matrix,
)
from facecourse.nn.pretrain import (
    PretrainConfig, build_autoencoder, checkpoint_path, error_summary, load_autoencoder,
    load_pretrained_autoencoder, pretrain_encoder, pretraining_data, reconstruction_errors, sample_flame_meshes,
    save_autoencoder, train_autoencoder,
)

__all__ = [
    "COMA_FILTERS", "ChebConv", "MeshAutoencoder", "MeshHierarchy", "PretrainConfig", "SpectralDecoder",
    "SpectralEncoder", "VertexNormalizer", "batched_edge_index", "build_autoencoder", "build_hierarchy",
    "checkpoint_path", "compare_with_pyg", "decimate", "hop_distances", "impulse_responses", "to_pyg_chebconv",
    "downsample_matrix", "error_summary", "hierarchy_cache_path", "load_autoencoder", "load_pretrained_autoencoder",
    "mesh_laplacian", "pretrain_encoder", "pretraining_data", "reconstruction_errors", "sample_flame_meshes",
    "save_autoencoder", "sparse_vertex_map", "train_autoencoder", "upsample_matrix",
]
