"""Spectral graph theory on meshes: Laplacians, eigenbasis, graph Fourier transform, Chebyshev filters."""

from facecourse.spectral.laplacian import (
    combinatorial_laplacian,
    normalized_laplacian,
    random_walk_laplacian,
    scaled_laplacian,
)

__all__ = ["combinatorial_laplacian", "normalized_laplacian", "random_walk_laplacian", "scaled_laplacian"]
