"""Photo -> FLAME by analysis-by-synthesis: chapter 04's fit (:func:`facecourse.losses.fit.fit_to_image`) on
the face crop of :func:`facecourse.photo.prepare_photo`, with the detected 68 landmarks as targets.

Settings for photos (:func:`photo_fit_config`), measured on ``skimage.data.astronaut`` with the synthetic
FLAME model (mean landmark distance over the outer-eye-corner distance, :func:`landmark_nme`; the mean face
with its least-squares camera starts at 0.067, 64 px crop, 30 rigid + 60 full steps):

* photometric weight 0.5 instead of chapter 04's 2: the per-vertex albedo and 9 SH bands cannot explain a
  real photo's skin, and at weight 2 the photometric term outweighs the landmarks (0.060-0.12 after the fit);
* no eye-closure / lip-distance terms: with them the fit ends at 0.059-0.062 (it moves the shape to match
  lid and lip openings the model's expressions do not produce), without them at 0.044 -- about the
  detector's own accuracy on real photos (~0.04 of the eye-corner distance);
* learning rate 0.05 (0.02 needs twice the steps for the same result).

A fit takes about 2 s per photo in CI mode (64 px, 90 steps, one CPU core) and is meant as the baseline and
the teaching tool; ``facecourse reconstruct`` (the trained regressor) is the fast path.
"""

from __future__ import annotations

import dataclasses

import torch

from facecourse.losses.fit import FitConfig, FitResult, fit_to_image
from facecourse.photo.prepare import PhotoFace
from facecourse.render.head import HeadRenderer
from facecourse.settings import is_ci

#: iBUG-68 outer eye corners (right, left): the normaliser of :func:`landmark_nme` (300-W's inter-ocular).
OUTER_EYE_CORNERS = (36, 45)


def photo_fit_config(steps: int | None = None) -> FitConfig:
    """The fit's settings for photos (module docstring) for the current mode (``FACECOURSE_MODE``):
    CI 30 rigid + 60 full steps, full 60 + 200; ``steps`` overrides the full-stage steps."""
    ci = is_ci()
    config = FitConfig(rigid_steps=30 if ci else 60, steps=60 if ci else 200, lr=0.05, w_photometric=0.5,
                       w_eye=0.0, w_lip=0.0)
    return config if steps is None else dataclasses.replace(config, steps=steps)


def fit_crop_size() -> int:
    """Default crop side for the fit, pixels: 64 in CI mode, 224 (the regressor's input) in full mode."""
    return 64 if is_ci() else 224


def photo_renderer(config: FitConfig) -> HeadRenderer:
    """The course's :class:`~facecourse.render.head.HeadRenderer` (real FLAME when present, else the synthetic
    model: ``small`` in CI mode, ``full`` otherwise) with the fit's numbers of shape and expression components."""
    return HeadRenderer.default("small" if is_ci() else "full", n_shape=config.n_shape, n_exp=config.n_exp)


def landmark_nme(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Normalised mean error: mean distance over the 68 landmarks divided by the target's outer-eye-corner
    distance (iBUG 36-45; 300-W's inter-ocular normalisation), unit-free.

    Args:
        predicted, target: ``(B, 68, 2)`` in the same coordinates (pixels or normalised).

    Returns:
        ``(B,)``.
    """
    if predicted.shape != target.shape or target.shape[-2:] != (68, 2):
        raise ValueError(f"landmarks must both be (B, 68, 2), got {tuple(predicted.shape)} and {tuple(target.shape)}")
    right, left = OUTER_EYE_CORNERS
    scale = (target[:, left] - target[:, right]).norm(dim=-1)
    return (predicted - target).norm(dim=-1).mean(-1) / scale


def fit_photo(face: PhotoFace, renderer: HeadRenderer, config: FitConfig | None = None,
              progress: bool = False) -> FitResult:
    """Fit FLAME, albedo, lighting and a weak-perspective camera to ``face``'s crop and landmarks.

    Args:
        face: from :func:`facecourse.photo.prepare_photo` (crop ``(3, S, S)``, landmarks ``(68, 2)`` normalised).
        renderer: :func:`photo_renderer` (or any :class:`~facecourse.render.head.HeadRenderer`).
        config: default :func:`photo_fit_config`.
        progress: show the fit's progress bars.

    Returns:
        :class:`~facecourse.losses.fit.FitResult` of batch 1 (its camera projects onto the crop).
    """
    return fit_to_image(renderer, face.image[None], face.landmarks[None], config=config or photo_fit_config(),
                        progress=progress)
