"""Faces and their 68 iBUG landmarks with dlib: the HOG detector (built into dlib), the CNN detector as a
fallback, and the 68-point shape predictor, all shipped by pip packages (``pip install 'facecourse[photo]'``).

* ``dlib-bin`` -- prebuilt dlib (Boost licence).
* ``face_recognition_models`` -- the model files. ``shape_predictor_68_face_landmarks.dat`` was trained on
  iBUG 300-W, whose terms exclude commercial use. The package's ``__init__`` imports ``pkg_resources`` (gone
  from current setuptools), so its folder is found with ``importlib.util.find_spec`` and never imported.

Boxes and points are in pixels of the image passed in (integer values at pixel centres,
:mod:`facecourse.render.camera`). dlib imports lazily: it is an optional dependency, and loading the models
costs about 2 s, paid once per process (:func:`default_detector`).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecourse.photo.image import rescale

INSTALL_HINT = "pip install 'facecourse[photo]'"
#: The model-file package and the files used from it.
MODELS_PACKAGE = "face_recognition_models"
LANDMARKS_FILE = "shape_predictor_68_face_landmarks.dat"
CNN_FILE = "mmod_human_face_detector.dat"


class PhotoDependencyError(ImportError):
    """dlib or the model files are missing; the message says how to install them."""


@dataclass(frozen=True)
class Detection:
    """One face box: ``(x0, y0, x1, y1)`` pixels (inclusive corners, dlib's rectangle), the detector's score
    and which detector found it (``"hog"`` or ``"cnn"``)."""

    box: tuple[float, float, float, float]
    score: float
    detector: str

    @property
    def area(self) -> float:
        """Box area, square pixels."""
        x0, y0, x1, y1 = self.box
        return max(x1 - x0 + 1, 0.0) * max(y1 - y0 + 1, 0.0)

    def scaled(self, factor: float) -> "Detection":
        """The box in pixels of the image scaled by ``factor`` (pixel-centre map of :func:`~facecourse.photo.image.to_working`)."""
        return Detection(tuple(float((c + 0.5) * factor - 0.5) for c in self.box), self.score, self.detector)


def _dlib():
    """The dlib module, or PhotoDependencyError with the install command."""
    try:
        import dlib
    except ImportError as exc:
        raise PhotoDependencyError(f"dlib is not installed (needed for face detection): {INSTALL_HINT}") from exc
    return dlib


def model_file(name: str) -> Path:
    """Path of the model file ``name`` of :data:`MODELS_PACKAGE` (found without importing the package).

    Raises:
        PhotoDependencyError: the package or the file is missing.
    """
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "models" / name
        if path.is_file():
            return path
    where = f"in {folders}" if folders else f"({MODELS_PACKAGE} is not installed)"
    raise PhotoDependencyError(f"dlib model file {name} not found {where}: {INSTALL_HINT}")


class FaceDetector:
    """dlib's HOG face detector (CNN fallback) and 68-point landmark predictor.

    :meth:`detect` runs HOG on a copy of at most ``detect_side`` pixels with ``upsample`` (1: faces down to about
    40 px of that copy), keeps the boxes scoring at least ``min_score`` (HOG's weak hits, score ~0.1, are
    mostly false positives: a shoulder patch on ``skimage.data.astronaut``; real faces score ~1), and, when none
    is left and ``cnn_fallback`` is set, runs the CNN (MMOD) detector on a copy of at most ``cnn_side`` pixels
    (about 3.5 s at 512 px on one CPU core, robust to pose and lighting).

    The 68-point predictor assumes an upright face: on ``astronaut`` turned in the image plane its landmarks
    are off by 0.01 / 0.03 of the outer-eye-corner distance at 10 / 30 degrees (HOG still finds the face), but
    by 0.11 / 0.8 at 45 / 60 degrees, where only the CNN finds it: a CNN detection is noted in the result.
    """

    def __init__(self, upsample: int = 1, min_score: float = 0.3, detect_side: int = 800,
                 cnn_fallback: bool = True, cnn_side: int = 640):
        dlib = _dlib()
        self.upsample, self.min_score, self.detect_side = upsample, min_score, detect_side
        self.cnn_side = cnn_side
        self._hog = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(model_file(LANDMARKS_FILE)))
        self._cnn = dlib.cnn_face_detection_model_v1(str(model_file(CNN_FILE))) if cnn_fallback else None
        self._rectangle = dlib.rectangle

    @staticmethod
    def _copy(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
        """``rgb`` downscaled to at most ``side`` pixels, and the factor used (1 when already small)."""
        factor = min(1.0, side / max(rgb.shape[:2]))
        return (rgb if factor == 1.0 else rescale(rgb, factor)), factor

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Face boxes in ``rgb`` ``(H, W, 3)`` uint8, pixels of ``rgb``, largest first (empty: no face)."""
        small, factor = self._copy(rgb, self.detect_side)
        rects, scores, _ = self._hog.run(small, self.upsample, 0.0)
        found = [Detection((r.left(), r.top(), r.right(), r.bottom()), float(s), "hog")
                 for r, s in zip(rects, scores) if s >= self.min_score]
        if not found and self._cnn is not None:
            small, factor = self._copy(rgb, self.cnn_side)
            found = [Detection((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), float(d.confidence), "cnn")
                     for d in self._cnn(small, 0)]
        return sorted((d.scaled(1 / factor) for d in found), key=lambda d: -d.area)

    def landmarks(self, rgb: np.ndarray, detection: Detection) -> np.ndarray:
        """The 68 iBUG landmarks ``(68, 2)`` float64 ``(x, y)`` pixels of ``rgb`` ``(H, W, 3)`` uint8 in ``detection``."""
        x0, y0, x1, y1 = (int(round(c)) for c in detection.box)
        shape = self._predictor(rgb, self._rectangle(x0, y0, x1, y1))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


@functools.lru_cache(maxsize=1)
def default_detector() -> FaceDetector:
    """One :class:`FaceDetector` with the default settings per process (its models load once, ~2 s)."""
    return FaceDetector()
