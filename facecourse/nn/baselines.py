"""The baselines a mesh autoencoder is measured against, with the error it is measured by.

Error (COMA's): the Euclidean distance between corresponding vertices, in millimetres,
:math:`e_{nv} = \\|\\hat x_{nv} - x_{nv}\\|`, summarised over every vertex of every held-out mesh by its mean,
median and standard deviation (:func:`error_summary`).

Baselines, fitted on the training meshes :math:`X_1 \\dots X_N` (``(V, 3)`` each, flattened to
:math:`x_i \\in \\mathbb R^{3V}`) and measured on held-out ones:

- the **mean head** :math:`\\bar x = \\frac1N \\sum_i x_i`, the answer that ignores its input
  (:func:`mean_head_errors`);
- **PCA** with :math:`k` components, the best *linear* code of size :math:`k` in squared error: with the SVD
  :math:`[x_1 - \\bar x, \\dots, x_N - \\bar x]^\\top = U S W^\\top` and :math:`W_k` the first :math:`k` columns of
  :math:`W`, :math:`z = W_k^\\top (x - \\bar x)` and :math:`\\hat x = \\bar x + W_k z` (:class:`MeshPCA`,
  :func:`pca_errors`). An autoencoder with a latent of size :math:`k` is compared with PCA at the same
  :math:`k`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facecourse.units import M_TO_MM


def _meshes(name: str, vertices: torch.Tensor, n_vertices: int | None = None) -> torch.Tensor:
    """``vertices`` as float64, after checking it is ``(N>0, V, 3)`` (with ``V = n_vertices`` if given)."""
    if not isinstance(vertices, torch.Tensor) or vertices.ndim != 3 or vertices.shape[-1] != 3 or len(vertices) == 0:
        raise ValueError(f"{name} must be a (N>0, V, 3) tensor of meshes, got "
                         f"{tuple(getattr(vertices, 'shape', ())) or type(vertices).__name__}")
    if n_vertices is not None and vertices.shape[1] != n_vertices:
        raise ValueError(f"{name} must have {n_vertices} vertices like the training meshes, got {vertices.shape[1]}")
    return vertices.double()


def vertex_errors(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-vertex Euclidean errors :math:`\\|\\hat x_{nv} - x_{nv}\\|` in millimetres.

    Args:
        predicted, target: ``(N, V, 3)`` in metres.

    Returns:
        ``(N, V)`` float tensor in mm (on the inputs' device).
    """
    if predicted.shape != target.shape or predicted.ndim != 3 or predicted.shape[-1] != 3:
        raise ValueError(f"predicted and target must both be (N, V, 3), got {tuple(predicted.shape)} and "
                         f"{tuple(target.shape)}")
    return (predicted - target).norm(dim=-1) * M_TO_MM


def error_summary(errors: torch.Tensor) -> dict[str, float]:
    """``{"mean_mm", "median_mm", "std_mm"}`` over all entries of an error tensor in mm (COMA's report)."""
    e = errors.flatten().double()
    return {"mean_mm": float(e.mean()), "median_mm": float(e.median()), "std_mm": float(e.std())}


@dataclass(frozen=True)
class MeshPCA:
    """A PCA code of meshes: :math:`z = W_k^\\top(x - \\bar x)`, :math:`\\hat x = \\bar x + W_k z`.

    Attributes:
        mean: :math:`\\bar x`, ``(V, 3)`` float64 metres.
        components: :math:`W_k^\\top`, ``(k, 3V)`` float64, orthonormal rows, by decreasing variance.
        singular_values: the ``k`` largest singular values of the centred training matrix, ``(k,)`` (metres).
    """

    mean: torch.Tensor
    components: torch.Tensor
    singular_values: torch.Tensor

    @classmethod
    def fit(cls, vertices: torch.Tensor, n_components: int) -> "MeshPCA":
        """PCA of training meshes ``(N, V, 3)`` (metres) with ``n_components`` = :math:`k \\le \\min(N, 3V)`
        components, by a thin SVD of the centred ``(N, 3V)`` matrix in float64."""
        x = _meshes("vertices", vertices)
        if isinstance(n_components, bool) or not isinstance(n_components, int) or not (
                1 <= n_components <= min(len(x), 3 * x.shape[1])):
            raise ValueError(f"n_components must be an integer in [1, min(N, 3V)] = [1, {min(len(x), 3 * x.shape[1])}]"
                             f", got {n_components!r}")
        mean = x.mean(0)
        _, s, wt = torch.linalg.svd((x - mean).flatten(1), full_matrices=False)
        return cls(mean=mean, components=wt[:n_components], singular_values=s[:n_components])

    @property
    def n_components(self) -> int:
        """:math:`k`, the size of the code."""
        return len(self.components)

    def encode(self, vertices: torch.Tensor) -> torch.Tensor:
        """``(N, V, 3)`` metres -> codes ``(N, k)`` (float64)."""
        x = _meshes("vertices", vertices, len(self.mean))
        return (x - self.mean.to(x.device)).flatten(1) @ self.components.to(x.device).T

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes ``(N, k)`` -> meshes ``(N, V, 3)`` float64 metres."""
        if z.ndim != 2 or z.shape[1] != self.n_components:
            raise ValueError(f"z must be (N, {self.n_components}), got {tuple(z.shape)}")
        return self.mean.to(z.device) + (z.double() @ self.components.to(z.device)).reshape(len(z), *self.mean.shape)

    def reconstruct(self, vertices: torch.Tensor) -> torch.Tensor:
        """The projection :math:`\\bar x + W_k W_k^\\top (x - \\bar x)` of meshes ``(N, V, 3)``, float64 metres."""
        return self.decode(self.encode(vertices))


def mean_head_errors(train: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
    """Errors ``(M, V)`` in mm of answering every held-out mesh of ``test`` ``(M, V, 3)`` with the mean of the
    training meshes ``train`` ``(N, V, 3)`` (metres)."""
    mean = _meshes("train", train).mean(0)
    x = _meshes("test", test, len(mean))
    return vertex_errors(mean.expand_as(x), x)


def pca_errors(train: torch.Tensor, test: torch.Tensor, n_components: int) -> torch.Tensor:
    """Errors ``(M, V)`` in mm of the PCA reconstruction (:class:`MeshPCA` with ``n_components``, fitted on
    ``train`` ``(N, V, 3)``) of the held-out meshes ``test`` ``(M, V, 3)`` (metres)."""
    x = _meshes("test", test)
    return vertex_errors(MeshPCA.fit(train, n_components).reconstruct(x), x)
