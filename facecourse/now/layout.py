"""The NoW dataset and prediction layouts (official file names), with readers and writers.

Dataset folder (``NoW_Dataset/final_release_version/``, real data under the data directory, the synthetic
set under ``synthetic/``; see :func:`facecourse.now.paths.default_now_dir`)::

    imagepathsvalidation.txt      lines "subject/challenge/IMG.jpg" (validation split)
    imagepathstest.txt            the same for the test split (scans withheld for the real test set)
    iphone_pictures/<subject>/<challenge>/<IMG>.jpg     the photos
    detected_face/<subject>/<challenge>/<IMG>.npy       the face box of each photo: a pickled dict with
                                                        ``left, top, right, bottom`` in pixels (read safely
                                                        by :func:`read_face_box`; used to crop, not to score)
    scans/<subject>/*.obj                     the ground-truth scan, millimetres (first .obj in sorted order)
    scans_lmks_onlypp/<subject>/*.pp          its 7 landmarks, MeshLab picked points (facecourse.now.pp)

Predictions (``<pred>/``), one per image line::

    <pred>/<subject>/<challenge>/<IMG>.obj   (or .ply)       the predicted mesh, any unit
    <pred>/<subject>/<challenge>/<IMG>.npy   (or .txt)       its NoW-7 landmarks, (7, 3) or (1, 7, 3);
                                                             .txt: 7 lines "x y z"

Challenges: :data:`CHALLENGES`. A missing file raises :class:`PredictionMissing`, an unreadable or
inconsistent one :class:`PredictionMalformed`; both carry the path.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from facecourse.arrays import to_numpy
from facecourse.data.atomic import atomic_open, atomic_path
from facecourse.data.paths import data_dir
from facecourse.data.safe_load import RestrictedUnpickler, UnsafePickleError
from facecourse.mesh import load_mesh, save_mesh
from facecourse.now.crop import check_landmarks7
from facecourse.now.pp import read_pp

CHALLENGES = ("multiview_neutral", "multiview_expressions", "multiview_occlusions", "selfie")
SPLIT_FILES = {"val": "imagepathsvalidation.txt", "test": "imagepathstest.txt"}
IMAGES_SUBDIR = Path("iphone_pictures")
FACE_BOXES_SUBDIR = Path("detected_face")
#: Where the dataset folder sits below the data directory (real) or ``data_dir()/"synthetic"`` (synthetic).
DATASET_SUBDIR = Path("NoW_Dataset") / "final_release_version"
MESH_SUFFIXES = (".obj", ".ply")
LANDMARK_SUFFIXES = (".npy", ".txt")


@dataclass(frozen=True, order=True)
class NowImage:
    """One line of a NoW image list: ``subject``, ``challenge`` and the image file ``name`` (with suffix)."""

    subject: str
    challenge: str
    name: str

    @property
    def line(self) -> str:
        """The image-list line ``subject/challenge/name``."""
        return f"{self.subject}/{self.challenge}/{self.name}"

    @property
    def stem(self) -> str:
        """The image name without its suffix (prediction files are named after it)."""
        return Path(self.name).stem

    @classmethod
    def parse(cls, line: str) -> "NowImage":
        """Parse ``[.../]subject/challenge/IMG.jpg`` (the last three path components, as the official tool)."""
        parts = [p for p in line.strip().replace("\\", "/").split("/") if p]
        if len(parts) < 3:
            raise ValueError(f"image-list line must look like 'subject/challenge/IMG.jpg', got {line!r}")
        subject, challenge, name = parts[-3:]
        if challenge not in CHALLENGES:
            raise ValueError(f"image-list line {line!r}: challenge must be one of {CHALLENGES}, got {challenge!r}")
        return cls(subject, challenge, name)


def split_file(dataset_dir: str | os.PathLike, split: str) -> Path:
    """Path of the image list of ``split`` (``"val"`` or ``"test"``) in ``dataset_dir``."""
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(SPLIT_FILES)}, got {split!r}")
    return Path(dataset_dir) / SPLIT_FILES[split]


def read_image_list(dataset_dir: str | os.PathLike, split: str = "val") -> list[NowImage]:
    """The images of a split, in file order (blank lines skipped)."""
    path = split_file(dataset_dir, split)
    if not path.is_file():
        raise FileNotFoundError(f"NoW image list not found: {path} (is {dataset_dir} a NoW_Dataset folder?)")
    return [NowImage.parse(line) for line in path.read_text().splitlines() if line.strip()]


def write_image_list(path: str | os.PathLike, images) -> Path:
    """Write image-list lines (atomically)."""
    with atomic_open(path, "w") as handle:
        handle.write("".join(f"{im.line}\n" for im in images))
    return Path(path)


def image_path(dataset_dir: str | os.PathLike, image: NowImage) -> Path:
    """Where the photo of ``image`` lives in the dataset."""
    return Path(dataset_dir) / IMAGES_SUBDIR / image.subject / image.challenge / image.name


@dataclass(frozen=True)
class FaceBox:
    """A face's bounding box in a photo, pixels (``left < right``, ``top < bottom``; x right, y down)."""

    left: float
    top: float
    right: float
    bottom: float

    def __post_init__(self):
        values = (self.left, self.top, self.right, self.bottom)
        if not all(math.isfinite(v) for v in values) or self.right <= self.left or self.bottom <= self.top:
            raise ValueError(f"a face box needs finite left < right and top < bottom, got {values}")


def face_box_path(dataset_dir: str | os.PathLike, image: NowImage) -> Path:
    """Where the face box of ``image`` lives: ``detected_face/<subject>/<challenge>/<IMG>.npy``."""
    return Path(dataset_dir) / FACE_BOXES_SUBDIR / image.subject / image.challenge / Path(image.name).with_suffix(".npy")


def read_face_box(path: str | os.PathLike) -> FaceBox:
    """Read an official NoW face-box file: an ``.npy`` holding a pickled dict with ``left``, ``top``,
    ``right``, ``bottom`` (what ``np.save`` writes for a dict), unpickled by the restricted unpickler (nothing
    outside numpy and plain builtins is executed; ``np.load(allow_pickle=True)`` would run any pickle).
    A plain ``(4,)`` number array ``[left, top, right, bottom]`` is accepted too.

    Raises:
        FileNotFoundError: no file. UnsafePickleError: the pickle names a global outside the allow-list.
        ValueError: naming the file, when it is not such a box.
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        handle = io.BytesIO(raw)
        version = np.lib.format.read_magic(handle)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        _, _, dtype = read_header(handle)
        if dtype.hasobject:
            value = RestrictedUnpickler(handle, source=str(path)).load()
            value = value.item() if isinstance(value, np.ndarray) and value.shape == () else value
        else:
            value = np.load(io.BytesIO(raw), allow_pickle=False)
    except UnsafePickleError:
        raise
    except (ValueError, EOFError, OSError, pickle.UnpicklingError) as error:
        raise ValueError(f"{path} is not a NoW face-box .npy file ({error})") from None
    if isinstance(value, dict):
        missing = [k for k in ("left", "top", "right", "bottom") if k not in value]
        if missing:
            raise ValueError(f"{path}: the face box lacks {missing} (has {sorted(map(str, value))})")
        coords = [value[k] for k in ("left", "top", "right", "bottom")]
    else:
        coords = np.asarray(value).reshape(-1).tolist()
        if len(coords) != 4:
            raise ValueError(f"{path}: a face box needs 4 numbers [left, top, right, bottom], got {len(coords)}")
    try:
        return FaceBox(*(float(c) for c in coords))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None


def write_face_box(path: str | os.PathLike, box: FaceBox) -> Path:
    """Write ``box`` in the official layout (a dict of Python floats saved with ``np.save``), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    value = {"left": box.left, "top": box.top, "right": box.right, "bottom": box.bottom}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, np.array(value, dtype=object), allow_pickle=True)
    return path


def scan_files(dataset_dir: str | os.PathLike, subject: str) -> tuple[Path, Path]:
    """``(scan .obj, landmarks .pp)`` of a subject (the first of each in sorted order, as the official tool)."""
    root = Path(dataset_dir)
    found = []
    for sub, pattern in (("scans", "*.obj"), ("scans_lmks_onlypp", "*.pp")):
        files = sorted((root / sub / subject).glob(pattern))
        if not files:
            raise FileNotFoundError(f"no {pattern} for subject {subject!r} in {root / sub / subject}")
        found.append(files[0])
    return found[0], found[1]


@lru_cache(maxsize=4)
def _load_scan_cached(obj: str, pp: str, mtimes: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    v, f = load_mesh(obj)
    return v, f, read_pp(pp, expected=7)


def load_scan(dataset_dir: str | os.PathLike, subject: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A subject's scan ``(vertices (V, 3) mm, faces (F, 3), landmarks (7, 3) mm)`` (cached per process)."""
    obj, pp = scan_files(dataset_dir, subject)
    return _load_scan_cached(str(obj), str(pp), (obj.stat().st_mtime_ns, pp.stat().st_mtime_ns))


class PredictionMissing(FileNotFoundError):
    """A prediction file is absent; ``paths`` lists the candidates that were looked for."""

    def __init__(self, message: str, paths: list[Path]):
        super().__init__(message)
        self.paths = paths


class PredictionMalformed(ValueError):
    """A prediction file exists but cannot be used; ``path`` names it."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


def prediction_base(pred_dir: str | os.PathLike, image: NowImage) -> Path:
    """``<pred_dir>/<subject>/<challenge>/<IMG stem>``: where the prediction files of ``image`` live, without
    their suffix."""
    return Path(pred_dir) / image.subject / image.challenge / image.stem


def prediction_files(pred_dir: str | os.PathLike, image: NowImage) -> tuple[Path, Path]:
    """``(mesh, landmarks)`` files of ``image``; the first existing suffix wins (.obj before .ply, .npy
    before .txt).

    Raises:
        PredictionMissing: naming every candidate of whichever file is absent.
    """
    base = prediction_base(pred_dir, image)
    chosen = []
    for kind, suffixes in (("mesh", MESH_SUFFIXES), ("landmarks", LANDMARK_SUFFIXES)):
        candidates = [base.with_suffix(s) for s in suffixes]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            raise PredictionMissing(f"{image.line}: predicted {kind} not found ("
                                    + " or ".join(str(c) for c in candidates) + ")", candidates)
        chosen.append(hit)
    return chosen[0], chosen[1]


def load_landmarks_file(path: str | os.PathLike) -> np.ndarray:
    """Predicted NoW-7 landmarks from ``.npy`` (``(7, 3)`` or ``(1, 7, 3)``) or ``.txt`` (7 lines ``x y z``,
    spaces or commas) -> ``(7, 3)`` float64.

    Raises:
        PredictionMalformed: unreadable file, wrong count/shape, or non-finite values.
    """
    path = Path(path)
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            rows = [re.split(r"[\s,]+", ln.strip()) for ln in path.read_text().splitlines() if ln.strip()]
            arr = np.asarray(rows, dtype=np.float64)
        return check_landmarks7(arr, name=f"landmarks in {path}")
    except (ValueError, OSError, EOFError) as exc:  # an empty .npy raises EOFError
        raise PredictionMalformed(f"{path}: {exc or type(exc).__name__}", path) from exc


def load_prediction(pred_dir: str | os.PathLike, image: NowImage) -> tuple:
    """The prediction of ``image``: ``(vertices (V, 3), faces (F, 3), landmarks (7, 3), (mesh, lmk paths))``.

    Raises:
        PredictionMissing: a file is absent.
        PredictionMalformed: a file is empty, unreadable, has no faces, or holds non-finite numbers.
    """
    mesh_path, lmk_path = prediction_files(pred_dir, image)
    try:
        v, f = load_mesh(mesh_path)
    except (ValueError, OSError) as exc:
        raise PredictionMalformed(f"{mesh_path}: {exc}", mesh_path) from exc
    if len(f) == 0:
        raise PredictionMalformed(f"{mesh_path}: the predicted mesh has no triangles", mesh_path)
    return v, f, load_landmarks_file(lmk_path), (mesh_path, lmk_path)


def write_mesh_and_landmarks(base: str | os.PathLike, vertices, faces, landmarks,
                             mesh_suffix: str = ".obj") -> tuple[Path, Path]:
    """Write ``base + mesh_suffix`` and ``base.npy`` (the ``(7, 3)`` landmarks), atomically.

    Args:
        base: path without suffix.
        vertices: ``(V, 3)``; faces: ``(F, 3)``; landmarks: ``(7, 3)``, all in the same unit.
        mesh_suffix: ``".obj"`` or ``".ply"``.
    """
    if mesh_suffix not in MESH_SUFFIXES:
        raise ValueError(f"mesh_suffix must be one of {MESH_SUFFIXES}, got {mesh_suffix!r}")
    base = Path(base)
    lm = check_landmarks7(to_numpy(landmarks))
    mesh_path = save_mesh(base.with_name(base.name + mesh_suffix), vertices, faces)
    lmk_path = base.with_name(base.name + ".npy")
    with atomic_path(lmk_path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, lm)
    return mesh_path, lmk_path


def write_prediction(pred_dir: str | os.PathLike, image: NowImage, vertices, faces, landmarks,
                     mesh_suffix: str = ".obj") -> tuple[Path, Path]:
    """Write one prediction in the NoW layout (``<pred>/<subject>/<challenge>/<IMG>.obj`` + ``.npy``).

    Args:
        pred_dir: the predictions root.
        image: which image it answers.
        vertices: ``(V, 3)``; faces: ``(F, 3)``; landmarks: ``(7, 3)``, all in the same unit.
        mesh_suffix: ``".obj"`` or ``".ply"``.

    Returns:
        ``(mesh path, landmarks path)``.
    """
    return write_mesh_and_landmarks(prediction_base(pred_dir, image), vertices, faces, landmarks, mesh_suffix)


__all__ = [
    "CHALLENGES", "DATASET_SUBDIR", "FACE_BOXES_SUBDIR", "FaceBox", "IMAGES_SUBDIR", "NowImage", "PredictionMalformed", "PredictionMissing",
    "SPLIT_FILES", "default_now_dir", "face_box_path", "image_path", "load_landmarks_file", "load_prediction", "load_scan",
    "prediction_base", "prediction_files", "read_image_list", "real_now_dir", "scan_files", "read_face_box", "split_file", "write_face_box", "write_image_list",
    "write_mesh_and_landmarks", "write_prediction",
]
