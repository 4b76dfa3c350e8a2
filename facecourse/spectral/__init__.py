"""Spectral graph theory on meshes: Laplacians, eigenbasis, graph Fourier transform, Chebyshev filters."""

from facecourse.spectral.chebyshev import chebyshev_basis
from facecourse.spectral.laplacian import (
    combinatorial_laplacian,
    normalized_laplacian,
    random_walk_laplacian,
    scaled_laplacian,
    to_torch_sparse,
)

__all__ = [
    "chebyshev_basis",
    "combinatorial_laplacian",
    "normalized_laplacian",
    "random_walk_laplacian",
    "scaled_laplacian",
    "to_torch_sparse",
]
