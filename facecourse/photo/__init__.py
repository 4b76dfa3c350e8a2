"""Real photos offline (chapter 06): load any image file upright as RGB, detect the largest face and its 68
iBUG landmarks with dlib, and crop it like the training data (:func:`prepare_photo` -> :class:`PhotoFace`).

Needs the optional extra ``pip install 'facecourse[photo]'`` (dlib-bin + face_recognition_models; the
68-point predictor was trained on iBUG 300-W: non-commercial terms). Importing this package does not import
dlib; the first detection does.
"""

from facecourse.photo.detect import Detection, FaceDetector, PhotoDependencyError, default_detector, model_file
from facecourse.photo.image import MAX_SIDE, LoadedPhoto, PhotoError, load_photo, rescale, to_file, to_working
from facecourse.photo.prepare import PhotoFace, crop_photo, example_photo, face_from_photo, prepare_photo, scale_window

__all__ = [
    "Detection", "FaceDetector", "LoadedPhoto", "MAX_SIDE", "PhotoDependencyError", "PhotoError", "PhotoFace",
    "crop_photo", "default_detector", "example_photo", "face_from_photo", "load_photo", "model_file", "prepare_photo", "rescale",
    "scale_window", "to_file", "to_working",
]
