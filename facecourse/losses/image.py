"""The 2D (self-supervised) loss terms of a rendered head against a photo, written once for the
analysis-by-synthesis fit (chapter 04) and the regressor's training (chapter 06).

.. math::
    \\mathcal L_{2D} = \\lambda_{lmk} \\mathcal L_{lmk} + \\lambda_{eye} \\mathcal L_{eye}
    + \\lambda_{lip} \\mathcal L_{lip} + \\lambda_{pho} \\mathcal L_{pho} + \\lambda_{id} \\mathcal L_{id}
    + \\lambda_\\beta \\lVert\\beta\\rVert^2 + \\lambda_\\psi \\lVert\\psi\\rVert^2
    + \\lambda_\\alpha \\lVert\\alpha\\rVert^2 + \\lambda_L \\mathcal R(L)

(DECA's coarse-stage objective: weighted L1 landmarks, eye-closure and lip distances, masked L1 photometric,
``1 - cos`` of recogniser features, and the code priors).
"""

from __future__ import annotations

from typing import Protocol

import torch

from facecourse.losses.identity import identity_loss
from facecourse.losses.landmarks import eye_closure_loss, landmark_loss, lip_distance_loss
from facecourse.losses.photometric import photometric_loss
from facecourse.losses.regularizers import l2_regularizer, light_regularizer
from facecourse.render.head import FaceParams, HeadRender

#: The weight attributes :func:`image_loss_terms` reads, and the term each one scales.
IMAGE_TERMS = {"w_landmark": "landmark", "w_eye": "eye", "w_lip": "lip", "w_photometric": "photometric",
               "w_identity": "identity", "w_shape": "shape_reg", "w_expression": "expression_reg",
               "w_albedo": "albedo_reg", "w_light": "light_reg"}


class ImageLossWeights(Protocol):
    """Anything with the weights of :data:`IMAGE_TERMS` as float attributes (``FitConfig``, ``RegressorConfig``)."""

    w_landmark: float
    w_eye: float
    w_lip: float
    w_photometric: float
    w_identity: float
    w_shape: float
    w_expression: float
    w_albedo: float
    w_light: float


def image_loss_terms(weights: ImageLossWeights, head: HeadRender, params: FaceParams, image: torch.Tensor,
                     landmarks: torch.Tensor, visibility: torch.Tensor | None = None, recogniser=None,
                     image_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The weighted 2D loss terms of a rendered head (a term of weight 0, identity without a recogniser, or the
    prior of a code that is not set, is left out, so it costs nothing).

    Args:
        weights: the term weights (:class:`ImageLossWeights`).
        head: the render of ``params`` (:class:`~facecourse.render.head.HeadRenderer`), ``B x S x S``.
        params: the :class:`FaceParams` that were rendered (its codes are regularised).
        image: ``(B, 3, S, S)`` target photos in [0, 1].
        landmarks: ``(B, 68, 2)`` target landmarks, normalised image coordinates.
        visibility: ``(B, 68)`` 0/1 (default all visible).
        recogniser: face recogniser of the identity term (None: no identity term).
        image_mask: ``(B, 1, S, S)`` face pixels of the photo (e.g. not occluded); the photometric loss
            compares the pixels in both it and the render's skin mask (None: the skin mask alone).

    Returns:
        ``{term: weighted scalar}`` with the names of :data:`IMAGE_TERMS`.
    """
    lmk = head.landmarks[..., :2]
    mask = head.skin_mask if image_mask is None else head.skin_mask * image_mask
    compute = {
        "w_landmark": lambda: landmark_loss(lmk, landmarks, visibility=visibility),
        "w_eye": lambda: eye_closure_loss(lmk, landmarks, visibility=visibility),
        "w_lip": lambda: lip_distance_loss(lmk, landmarks, visibility=visibility),
        "w_photometric": lambda: photometric_loss(head.render.image, image, mask),
        "w_identity": lambda: identity_loss(recogniser, head.render.image, image, head.render.mask),
        "w_shape": lambda: l2_regularizer(params.shape),
        "w_expression": lambda: l2_regularizer(params.expression),
        "w_albedo": lambda: l2_regularizer(params.albedo),
        "w_light": lambda: light_regularizer(params.lighting),
    }
    regularised = {"w_shape": params.shape, "w_expression": params.expression, "w_albedo": params.albedo,
                   "w_light": params.lighting}
    terms = {}
    for weight_name, term in IMAGE_TERMS.items():
        weight = float(getattr(weights, weight_name))
        if weight == 0 or (term == "identity" and recogniser is None):
            continue
        if weight_name in regularised and regularised[weight_name] is None:  # an unset code is zero: no prior
            continue
        terms[term] = weight * compute[weight_name]()
    return terms


__all__ = ["IMAGE_TERMS", "ImageLossWeights", "image_loss_terms"]
