"""A photo -> the face crop the regressor and the fit take: :func:`prepare_photo` -> :class:`PhotoFace`.

The crop is the training data's validation crop (:class:`facecourse.datasets.paired.CropScaleJitter`
``.centre()``: a square 1.6 times the landmark box's larger side, centred on it), made with the same
functions (:func:`~facecourse.datasets.paired.landmark_window`, :func:`~facecourse.datasets.paired.crop_image`,
:func:`~facecourse.datasets.paired.crop_points`), so a regressor trained on those crops sees the same framing.
The one addition: when the window spans more than :data:`MAX_SOURCE_PER_OUTPUT` source pixels per output pixel,
the photo is first downscaled by an exact factor (Lanczos), since ``crop_image``'s bilinear sampling would alias.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from facecourse.datasets.paired import CropScaleJitter, CropWindow, crop_image, crop_points, landmark_window
from facecourse.photo.detect import Detection, FaceDetector, PhotoDependencyError, default_detector
from facecourse.photo.image import MAX_SIDE, LoadedPhoto, PhotoError, load_photo, rescale, to_file

#: Source pixels per crop pixel above which the photo is downscaled before bilinear cropping.
MAX_SOURCE_PER_OUTPUT = 1.5


@dataclass
class PhotoFace:
    """One face of a photo, ready for the regressor or the fit (``S`` = crop side).

    Attributes:
        source: the photo's path (or ``"<array>"``).
        rgb: ``(H, W, 3)`` uint8, the photo upright, downscaled by ``scale`` when larger than ``max_side``.
        scale: ``rgb`` pixels per pixel of the (oriented) file; :func:`facecourse.photo.image.to_working` maps
            the file pixel coordinates below to ``rgb``.
        landmarks_px: ``(68, 2)`` float64 iBUG-68 ``(x, y)`` in pixels of the oriented file.
        box: the detection, in pixels of the oriented file.
        window: the crop (:class:`~facecourse.datasets.paired.CropWindow`) in pixels of the oriented file.
        image: ``(3, S, S)`` float32 crop in [0, 1].
        landmarks: ``(68, 2)`` float32 landmarks in normalised crop coordinates (:mod:`facecourse.render.camera`).
        n_faces: faces the detector found (the largest was taken).
        notes: what the user should know (several faces, orientation, conversions, downscaling).
    """

    source: str
    rgb: np.ndarray
    scale: float
    landmarks_px: np.ndarray
    box: Detection
    window: CropWindow
    image: torch.Tensor
    landmarks: torch.Tensor
    n_faces: int
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        """``S``, the crop side in pixels."""
        return self.image.shape[-1]

    def crop(self, size: int) -> torch.Tensor:
        """The same crop window at another side: ``(3, size, size)`` float in [0, 1] (e.g. a larger overlay)."""
        return crop_photo(self.rgb, scale_window(self.window, self.scale), size)


def scale_window(window: CropWindow, factor: float) -> CropWindow:
    """``window`` in pixels of the image scaled by ``factor`` (pixel-centre map of :func:`~facecourse.photo.image.to_working`)."""
    return CropWindow((window.cx + 0.5) * factor - 0.5, (window.cy + 0.5) * factor - 0.5, window.half * factor)


def crop_photo(rgb: np.ndarray, window: CropWindow, size: int) -> torch.Tensor:
    """The ``(3, size, size)`` float crop in [0, 1] of ``window`` (pixels of ``rgb`` ``(H, W, 3)`` uint8),
    zeros outside the photo, downscaling ``rgb`` first when the window is more than
    :data:`MAX_SOURCE_PER_OUTPUT` times the crop."""
    factor = size / (2 * window.half)
    if factor * MAX_SOURCE_PER_OUTPUT < 1:
        rgb, window = rescale(rgb, factor), scale_window(window, factor)
    image = torch.tensor(rgb).permute(2, 0, 1).float() / 255  # a copy: rgb may be read-only
    return crop_image(image, window, size).clamp(0, 1)


def face_from_photo(photo: LoadedPhoto, size: int, detector: FaceDetector | None = None) -> PhotoFace:
    """Detect the largest face of a loaded photo, its 68 landmarks, and crop it to ``size`` pixels.

    Raises:
        PhotoError: no face found (the message names the photo).
    """
    detector = detector or default_detector()
    faces = detector.detect(photo.rgb)
    if not faces:
        raise PhotoError(f"no face found in {photo.source}")
    notes = list(photo.notes)
    if len(faces) > 1:
        notes.append(f"{len(faces)} faces found in {photo.source}; using the largest "
                     f"({faces[0].area ** 0.5:.0f} px wide vs {faces[1].area ** 0.5:.0f} px for the next)")
    if faces[0].detector != "hog":
        notes.append(f"face found by the {faces[0].detector} detector (HOG found none): a hard face; the landmarks "
                     "are unreliable if it is tilted by more than about 30 degrees")
    landmarks_px = to_file(detector.landmarks(photo.rgb, faces[0]), photo.scale)
    window = landmark_window(landmarks_px, *CropScaleJitter().centre())
    return PhotoFace(source=photo.source, rgb=photo.rgb, scale=photo.scale, landmarks_px=landmarks_px,
                     box=faces[0].scaled(1 / photo.scale), window=window,
                     image=crop_photo(photo.rgb, scale_window(window, photo.scale), size),
                     landmarks=crop_points(torch.from_numpy(landmarks_px.astype(np.float32)), window),
                     n_faces=len(faces), notes=notes)


def prepare_photo(source: str | os.PathLike | np.ndarray, size: int = 224, detector: FaceDetector | None = None,
                  max_side: int = MAX_SIDE) -> PhotoFace:
    """A photo file or array -> :class:`PhotoFace` (load, detect the largest face, 68 landmarks, crop).

    Args:
        source: image file or ``(H, W[, 3|4])`` uint8/uint16 array (:func:`facecourse.photo.image.load_photo`).
        size: crop side ``S``, pixels.
        detector: a :class:`~facecourse.photo.detect.FaceDetector` (default: one shared per process).
        max_side: photos with a longer side are downscaled first.

    Raises:
        PhotoError: not an image, unreadable, or no face (the message names the file).
        PhotoDependencyError: dlib or its model files are missing (the message says what to install).
    """
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an integer >= 8 pixels, got {size!r}")
    return face_from_photo(load_photo(source, max_side), size, detector)


def example_photo() -> np.ndarray:
    """A real photo that ships offline: scikit-image's ``astronaut`` (Eileen Collins, NASA, public domain),
    ``(512, 512, 3)`` uint8, one upright face; the course's and the tests' real-photo example.

    Raises:
        PhotoDependencyError: scikit-image is missing (the message says what to install).
    """
    try:
        from skimage import data  # optional: only this example needs scikit-image
    except ImportError:
        raise PhotoDependencyError("the example photo comes with scikit-image: pip install scikit-image "
                                   "(part of facecourse's dev extra)") from None
    return np.ascontiguousarray(data.astronaut())

