"""Spectral graph theory on meshes: Laplacians, eigenbasis, graph Fourier transform, Chebyshev filters.

* :mod:`~facecourse.spectral.laplacian`: graph Laplacians (combinatorial, normalised, random walk), the
  cotangent Laplacian, lumped mass matrix and :math:`M^{-1}L` (the one mass check), torch sparse conversion.
* :mod:`~facecourse.spectral.eigen`: smallest eigenpairs (shift-invert), cached per topology.
* :mod:`~facecourse.spectral.fourier`: graph Fourier transform, compression by truncation (errors in mm).
* :mod:`~facecourse.spectral.filters`: low-pass and heat-kernel filters, exact filtering.
* :mod:`~facecourse.spectral.chebyshev`: the Chebyshev recursion, coefficients and approximate filtering.
"""

from facecourse.spectral.chebyshev import (
    chebyshev_basis,
    chebyshev_coefficients,
    chebyshev_filter,
    chebyshev_operator,
    chebyshev_polynomial,
    chebyshev_response_error,
    relative_error,
)
from facecourse.spectral.eigen import (
    Eigenbasis,
    cache_dir,
    eigenbasis,
    full_eigenpairs,
    largest_eigenvalue,
    laplacian_of,
    smallest_eigenpairs,
)
from facecourse.spectral.filters import heat_diffusion, heat_kernel, ideal_lowpass, spectral_filter
from facecourse.spectral.fourier import (
    M_TO_MM,
    graph_fourier,
    inverse_graph_fourier,
    reconstruction_error_mm,
    truncate,
)
from facecourse.spectral.laplacian import (
    combinatorial_laplacian,
    cotangent_laplacian,
    graph_laplacian,
    mass_matrix,
    mass_normalized,
    mass_vector,
    normalized_laplacian,
    random_walk_laplacian,
    rescale_laplacian,
    scaled_laplacian,
    to_torch_sparse,
)

__all__ = [
    "M_TO_MM",
    "Eigenbasis",
    "cache_dir",
    "chebyshev_basis",
    "chebyshev_coefficients",
    "chebyshev_filter",
    "chebyshev_operator",
    "chebyshev_polynomial",
    "chebyshev_response_error",
    "combinatorial_laplacian",
    "cotangent_laplacian",
    "eigenbasis",
    "full_eigenpairs",
    "graph_fourier",
    "graph_laplacian",
    "heat_diffusion",
    "heat_kernel",
    "ideal_lowpass",
    "inverse_graph_fourier",
    "largest_eigenvalue",
    "laplacian_of",
    "mass_matrix",
    "mass_normalized",
    "mass_vector",
    "normalized_laplacian",
    "random_walk_laplacian",
    "reconstruction_error_mm",
    "relative_error",
    "rescale_laplacian",
    "scaled_laplacian",
    "smallest_eigenpairs",
    "spectral_filter",
    "to_torch_sparse",
    "truncate",
]
