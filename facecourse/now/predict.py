"""Predictions for a NoW split from any image-to-shape function: crop each photo on its face box, predict
FLAME shape coefficients, write the neutral heads in the NoW layout (what ``now-eval`` reads).

Crops follow the training data's framing (:func:`facecourse.datasets.paired.box_window`, the centre scale of
:class:`~facecourse.datasets.paired.CropScaleJitter`, 1.6 times the box's larger side; DECA and MICA crop NoW
the same way, with the box of ``detected_face``). The heads are FLAME of the predicted shape with expression,
pose and jaw zeroed (:func:`facecourse.now.export.export_flame_predictions`), built with the NoW set's own
FLAME model (:func:`facecourse.now.baselines.baseline_flame_path`): a regressor trained on another resolution
of the synthetic model transfers, as the coefficients mean the same surface at every resolution (0.2 mm
median apart).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from facecourse.datasets.paired import CropScaleJitter, box_window, crop_image
from facecourse.now.export import export_flame_predictions
from facecourse.now.layout import NowImage, face_box_path, image_path, read_face_box
from facecourse.settings import progress_bar


def crop_now_image(dataset_dir: str | os.PathLike, image: NowImage, size: int,
                   scale: float | None = None) -> torch.Tensor:
    """The photo of ``image`` cropped on its face box to ``(3, size, size)`` in [0, 1].

    Args:
        dataset_dir: the ``final_release_version`` folder. image: the listed image.
        size: crop side, pixels. scale: crop side over the box's larger side (default the training centre
            crop's, 1.6).

    Raises:
        FileNotFoundError: the photo or its box is missing. ValueError: unreadable photo or box (named).
    """
    scale = CropScaleJitter().centre()[0] if scale is None else scale
    box = read_face_box(face_box_path(dataset_dir, image))
    path = image_path(dataset_dir, image)
    try:
        with Image.open(path) as photo:
            pixels = np.asarray(photo.convert("RGB"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None
    window = box_window(np.array([box.left, box.top]), np.array([box.right, box.bottom]), scale)
    tensor = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255
    return crop_image(tensor, window, size).clamp(0, 1)


@torch.no_grad()
def predict_now_split(predict_shape: Callable[[torch.Tensor], torch.Tensor], dataset_dir: str | os.PathLike,
                      images: Sequence[NowImage], pred_dir: str | os.PathLike, flame, image_size: int,
                      batch_size: int = 16, device: torch.device | str = "cpu", progress: bool = False) -> list:
    """Predict and write one neutral FLAME head per image (NoW layout, metres).

    Args:
        predict_shape: ``(B, 3, S, S)`` crops in [0, 1] on ``device`` -> ``(B, k)`` shape coefficients.
        dataset_dir: the NoW folder (photos + ``detected_face`` boxes). images: the images to predict.
        pred_dir: where the predictions go. flame: the FLAME model of the exported heads (``k <= n_shape``).
        image_size: crop side ``S``. batch_size: crops per call. device: where the crops go.
        progress: a progress bar.

    Returns:
        ``(mesh path, landmarks path)`` per image, in order.
    """
    written = []
    starts = range(0, len(images), batch_size)
    for start in progress_bar(starts, desc="NoW predictions", disable=not progress):
        chunk = list(images[start:start + batch_size])
        crops = torch.stack([crop_now_image(dataset_dir, im, image_size) for im in chunk]).to(device)
        shape = predict_shape(crops).float().cpu()
        written += export_flame_predictions(pred_dir, chunk, flame, shape)
    return written


__all__ = ["crop_now_image", "predict_now_split"]
