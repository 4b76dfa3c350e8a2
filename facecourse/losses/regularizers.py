"""Regularisers on the codes of a 3DMM fit (shape, expression, albedo, lighting), as DECA uses them.

Shape, expression and albedo coefficients are in units of the model's standard deviations, so the prior
is :math:`\\lVert \\beta \\rVert^2` (a Gaussian negative log-likelihood up to constants).
"""

from __future__ import annotations

import torch


def l2_regularizer(coefficients: torch.Tensor) -> torch.Tensor:
    """:math:`\\frac1B \\sum_b \\lVert c_b \\rVert_2^2` for codes ``(B, K)`` (shape, expression, albedo)."""
    if coefficients.ndim != 2:
        raise ValueError(f"coefficients must have shape (B, K), got {tuple(coefficients.shape)}")
    return (coefficients * coefficients).sum(-1).mean()


def shape_regularizer(shape: torch.Tensor) -> torch.Tensor:
    """Squared norm of FLAME shape coefficients ``(B, n_shape)`` (:func:`l2_regularizer`)."""
    return l2_regularizer(shape)


def expression_regularizer(expression: torch.Tensor) -> torch.Tensor:
    """Squared norm of FLAME expression coefficients ``(B, n_exp)`` (:func:`l2_regularizer`)."""
    return l2_regularizer(expression)


def albedo_regularizer(albedo: torch.Tensor) -> torch.Tensor:
    """Squared norm of albedo coefficients ``(B, n_albedo)`` (:func:`l2_regularizer`)."""
    return l2_regularizer(albedo)


def light_regularizer(lighting: torch.Tensor) -> torch.Tensor:
    """DECA's lighting prior: light should be close to white, i.e. equal across RGB.

    .. math::
        \\mathcal L = \\operatorname{mean}_{b,k,c} \\bigl(L_{bkc} - \\tfrac13 \\textstyle\\sum_{c'} L_{bkc'}\\bigr)^2

    Args:
        lighting: ``(B, 9, 3)`` SH coefficients.
    """
    if lighting.ndim != 3 or lighting.shape[1:] != (9, 3):
        raise ValueError(f"lighting must have shape (B, 9, 3), got {tuple(lighting.shape)}")
    return ((lighting - lighting.mean(-1, keepdim=True)) ** 2).mean()
