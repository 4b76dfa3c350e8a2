"""Real paired data in MICA's layout: FLAME 2020 fits of ~2300 scanned subjects with the images of their
source datasets, as a :class:`~facecourse.datasets.paired.PairedFaceDataset`.

The layout, as read from MICA's code (github.com/Zielon/MICA: ``datasets/README.md``, ``datasets/base.py``,
``datasets/creation/generator.py``, ``datasets/creation/util.py``, ``datasets/image_paths/*.npy``)::

    <root>/<DATASET>/FLAME_parameters/<actor>/<name>.npz      one per actor (e.g. STIRLING/F1001/F1001_N.npz)
    <root>/<DATASET>/arcface_input/<actor>/<image>.jpg|.png   224 x 224 aligned crops (insightface norm_crop)
    <root>/<DATASET>/arcface_input/<actor>/<image>.npy        ArcFace input blob (3, 112, 112), not read here
    <root>/<DATASET>/images/<actor>/<image>                   the copied originals (generator.py's ``copy``)

``DATASET`` is LYHM, FRGC, FACEWAREHOUSE, STIRLING, BP4D, BU3DFE, FLORENCE or D3DFACS. Each ``.npz`` holds
``betas`` ``(400,)``: 300 FLAME shape then 100 expression coefficients (``base.py`` takes ``betas[:300]`` as
``shape_params`` and ``betas[300:]`` as ``expression_params``; ``mica.py`` views the batch as ``(-1, 300)``, so
``betas`` is one-dimensional), and ``pose`` ``(15,)``: FLAME's full pose, global ``[0:3]``, neck ``[3:6]``, jaw
``[6:9]``, eyes ``[9:15]`` (``base.py`` keeps ``pose[:3]`` and ``pose[6:9]`` as global + jaw). MICA loads them with
``allow_pickle=True``; here they are read with ``allow_pickle=False`` (plain arrays only). MICA lists each actor's
images in a pickled dict (``image_paths/<DATASET>.npy``); this adapter finds them by folder instead (no pickle).

Landmarks (not part of MICA's release): a ``<image stem>.pts`` file beside each image (iBUG 300-W format, 68
points, pixel coordinates with integer values at pixel centres), else the ``detector`` callable given
(e.g. ``facecourse.photo``'s 68-point detector): ``detector(image (H, W, 3) uint8) -> (68, 2)`` pixels or None.
Images carry no face mask and no camera: those fields are None.

:func:`write_mica_actor` writes this layout (the tests build small sets with it; the licensed data cannot be
shipped).
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facecourse.data.atomic import atomic_open, atomic_path
from facecourse.datasets.paired import N_LANDMARKS, CropScaleJitter, PairedFaceDataset, PairedRecord
from facecourse.flame import FLAME
from facecourse.render.head import FaceParams

PARAMS_FOLDER = "FLAME_parameters"
#: MICA's image folder (``BaseDataset.image_folder``); ``"images"`` holds the originals.
IMAGE_FOLDER = "arcface_input"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
N_SHAPE = 300
N_EXPRESSION = 100
POSE_SIZE = 15
#: The FLAME pose fields packed in MICA's ``pose`` (15,), in order.
POSE_SLICES = {"global_pose": slice(0, 3), "neck_pose": slice(3, 6), "jaw_pose": slice(6, 9), "eye_pose": slice(9, 15)}

Detector = Callable[[np.ndarray], "np.ndarray | None"]


class MicaLayoutError(ValueError):
    """Something in a MICA-layout folder is missing or malformed; the message names every file concerned."""


# ------------------------------------------------------------------------------------------- parameters


def read_mica_params(path: str | os.PathLike) -> FaceParams:
    """The FLAME parameters of one actor's ``.npz`` as :class:`FaceParams` of batch 1 (shape ``(1, 300)``,
    expression ``(1, 100)``, global/neck/jaw ``(1, 3)``, eyes ``(1, 6)``).

    Raises:
        MicaLayoutError: naming ``path`` when it is missing, not an ``.npz`` of plain arrays, lacks ``betas`` or
            ``pose``, has other shapes than ``betas (400,)`` / ``pose (15,)``, or holds NaN / inf.
    """
    path = Path(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise MicaLayoutError(f"{path}: file not found") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise MicaLayoutError(f"{path}: not a readable .npz ({err})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise MicaLayoutError(f"{path}: a single array, not an .npz with betas and pose")
    with npz:
        missing = [k for k in ("betas", "pose") if k not in npz.files]
        if missing:
            raise MicaLayoutError(f"{path}: no {' or '.join(missing)} array (has {npz.files}); MICA's .npz holds "
                                  f"betas (400,) and pose (15,)")
        try:
            betas, pose = npz["betas"], npz["pose"]
        except (OSError, ValueError, zipfile.BadZipFile) as err:  # object arrays are refused here
            raise MicaLayoutError(f"{path}: betas / pose are not plain arrays ({err})") from None
    for name, array, size in (("betas", betas, N_SHAPE + N_EXPRESSION), ("pose", pose, POSE_SIZE)):
        if array.shape != (size,) or not np.issubdtype(array.dtype, np.floating):
            raise MicaLayoutError(f"{path}: {name} must be a float array of shape ({size},), got {array.dtype} "
                                  f"{array.shape}")
        if not np.isfinite(array).all():
            raise MicaLayoutError(f"{path}: {name} contains NaN or inf")
    betas, pose = torch.from_numpy(betas.astype(np.float32))[None], torch.from_numpy(pose.astype(np.float32))[None]
    return FaceParams(shape=betas[:, :N_SHAPE], expression=betas[:, N_SHAPE:],
                      **{name: pose[:, part] for name, part in POSE_SLICES.items()})


def write_mica_params(path: str | os.PathLike, params: FaceParams) -> Path:
    """Write ``params`` (batch 1) as MICA's ``.npz`` (``betas`` (400,) = shape then expression, zero-padded;
    ``pose`` (15,)), atomically; return the path."""
    if params.batch_size != 1:
        raise ValueError(f"write_mica_params writes one actor: params must have batch 1, got {params.batch_size}")

    def padded(value, size):
        out = np.zeros(size, dtype=np.float32)
        if value is not None:
            out[:value.shape[1]] = value[0].detach().cpu().numpy()
        return out

    betas = np.concatenate([padded(params.shape, N_SHAPE), padded(params.expression, N_EXPRESSION)])
    pose = np.concatenate([padded(getattr(params, name), part.stop - part.start) for name, part in POSE_SLICES.items()])
    with atomic_open(path, "wb") as handle:
        np.savez(handle, betas=betas, pose=pose)
    return Path(path)


# -------------------------------------------------------------------------------------------- landmarks


def read_pts(path: str | os.PathLike) -> np.ndarray:
    """iBUG ``.pts`` landmarks ``(68, 2)`` float (pixel ``x, y``).

    Raises:
        MicaLayoutError: naming ``path`` when the header, the braces or the 68 finite point rows are wrong.
    """
    path = Path(path)
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        header = dict(line.split(":", 1) for line in lines[:2])
        count = int(header["n_points"])
        opening, closing = lines.index("{"), lines.index("}")
        points = np.array([[float(v) for v in line.split()] for line in lines[opening + 1:closing]])
    except (OSError, KeyError, ValueError) as err:
        raise MicaLayoutError(f"{path}: not an iBUG .pts file (version / n_points header, then points in "
                              f"braces): {err}") from None
    if count != N_LANDMARKS or points.shape != (N_LANDMARKS, 2):
        raise MicaLayoutError(f"{path}: expected {N_LANDMARKS} points of (x, y), got n_points={count} and "
                              f"{points.shape}")
    if not np.isfinite(points).all():
        raise MicaLayoutError(f"{path}: landmarks contain NaN or inf")
    return points


def write_pts(path: str | os.PathLike, points: np.ndarray) -> Path:
    """Write ``(68, 2)`` pixel landmarks as an iBUG ``.pts`` file, atomically; return the path."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (N_LANDMARKS, 2):
        raise ValueError(f"write_pts needs ({N_LANDMARKS}, 2) points, got {points.shape}")
    rows = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
    with atomic_open(path, "w") as handle:
        handle.write(f"version: 1\nn_points: {N_LANDMARKS}\n{{\n{rows}\n}}\n")
    return Path(path)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB; :class:`MicaLayoutError` naming it when it cannot be decoded."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as err:
        raise MicaLayoutError(f"{path}: not a readable image ({err})") from None


# -------------------------------------------------------------------------------------------- the layout


def write_mica_actor(root: str | os.PathLike, dataset: str, actor: str, params: FaceParams,
                     images: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None,
                     image_folder: str = IMAGE_FOLDER) -> list[Path]:
    """Write one actor in MICA's layout: ``<root>/<dataset>/FLAME_parameters/<actor>/<actor>.npz``, the images
    as ``<root>/<dataset>/<image_folder>/<actor>/<actor>_<i>.png`` and, where given, their ``.pts`` landmarks.

    Args:
        params: the actor's FLAME parameters (batch 1). images: ``(H, W, 3)`` uint8 each.
        landmarks: per image ``(68, 2)`` pixels or None (no file).

    Returns:
        The image paths.
    """
    base = Path(root) / dataset
    write_mica_params(base / PARAMS_FOLDER / actor / f"{actor}.npz", params)
    paths = []
    for i, image in enumerate(images):
        path = base / image_folder / actor / f"{actor}_{i:03d}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="PNG")
        if landmarks is not None and landmarks[i] is not None:
            write_pts(path.with_suffix(".pts"), landmarks[i])
        paths.append(path)
    return paths


@dataclass
class MicaImage:
    """One usable image: its path, landmarks ``(68, 2)`` pixels and its actor's index."""

    path: Path
    landmarks: np.ndarray
    subject: int


def _images_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def _landmarks_for(path: Path, detector: Detector | None) -> np.ndarray:
    pts = path.with_suffix(".pts")
    if pts.is_file():
        return read_pts(pts)
    if detector is None:
        raise MicaLayoutError(f"{path}: no landmarks ({pts.name} not beside it) and no detector given; pass "
                              f"detector= (a 68-point landmark detector) or write .pts files")
    points = detector(read_image(path))
    if points is None:
        raise MicaLayoutError(f"{path}: the detector found no face")
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (N_LANDMARKS, 2) or not np.isfinite(points).all():
        raise MicaLayoutError(f"{path}: the detector returned {points.shape} (finite (68, 2) pixels expected)")
    return points


class MicaSource:
    """The actors of MICA-layout dataset folders as a :class:`~facecourse.datasets.paired.PairedSource`.

    Every actor needs exactly one ``.npz`` and at least one image with landmarks. Problems are collected over
    the whole folder, each naming its file: ``on_error="raise"`` raises one :class:`MicaLayoutError` listing all
    of them; ``"skip"`` warns for each, leaves the actor or image out and goes on.

    Args:
        root: the folder holding the dataset folders (``<root>/<DATASET>/FLAME_parameters``).
        flame: FLAME with ``n_shape >= 300`` for the neutral meshes (real FLAME 2020 for real data).
        datasets: dataset folder names (default: every folder of ``root`` with a ``FLAME_parameters`` folder).
        image_folder: ``"arcface_input"`` (MICA's aligned crops) or ``"images"`` (the originals).
        detector: landmark detector for images without a ``.pts`` file.
        on_error: ``"raise"`` or ``"skip"``.

    Raises:
        MicaLayoutError: no dataset folder, a problem with ``on_error="raise"``, or no usable actor at all.
    """

    def __init__(self, root: str | os.PathLike, flame: FLAME, datasets: Sequence[str] | None = None,
                 image_folder: str = IMAGE_FOLDER, detector: Detector | None = None, on_error: str = "raise") -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if flame.n_shape < N_SHAPE:
            raise ValueError(f"MICA's betas have {N_SHAPE} shape coefficients: build the FLAME with "
                             f"n_shape={N_SHAPE} (got {flame.n_shape})")
        root = Path(root)
        names = sorted(p.parent.name for p in root.glob(f"*/{PARAMS_FOLDER}")) if datasets is None else list(datasets)
        if not names:
            raise MicaLayoutError(f"{root}: no MICA dataset folder (expected {root}/<DATASET>/{PARAMS_FOLDER}/"
                                  f"<actor>/<name>.npz)")
        problems: list[str] = []
        self.subject_names: list[str] = []
        self.params: list[FaceParams] = []
        self.images: list[MicaImage] = []
        for name in names:
            self._scan(root / name, image_folder, detector, problems)
        if problems and on_error == "raise":
            raise MicaLayoutError(f"{len(problems)} problem(s) in {root}:\n  " + "\n  ".join(problems))
        for problem in problems:
            warnings.warn(f"MICA layout: {problem} (skipped)", stacklevel=2)
        if not self.images:
            raise MicaLayoutError(f"{root}: no usable subject in {names} (an actor needs one .npz and an image with "
                                  f"landmarks)" + ("".join(f"\n  {p}" for p in problems)))
        self.subjects = np.array([im.subject for im in self.images], dtype=np.int64)
        with torch.no_grad():
            shapes = torch.cat([p.shape for p in self.params]).to(flame.v_template)
            self.neutral = flame(shape=shapes).vertices.float().cpu().numpy()

    def _scan(self, folder: Path, image_folder: str, detector: Detector | None, problems: list[str]) -> None:
        params_root, images_root = folder / PARAMS_FOLDER, folder / image_folder
        if not params_root.is_dir():
            problems.append(f"{params_root}: no such folder (a MICA dataset holds {PARAMS_FOLDER}/<actor>/*.npz)")
            return
        actors = sorted(p.name for p in params_root.iterdir() if p.is_dir())
        if images_root.is_dir():
            for orphan in sorted(p for p in images_root.iterdir() if p.is_dir() and p.name not in actors):
                if _images_of(orphan):
                    problems.append(f"{orphan}: images without a subject (no {params_root / orphan.name}/*.npz)")
        for actor in actors:
            npz = sorted((params_root / actor).glob("*.npz"))
            if len(npz) != 1:
                problems.append(f"{params_root / actor}: {len(npz)} .npz files, expected one"
                                + (f" ({', '.join(p.name for p in npz)})" if npz else ""))
                continue
            try:
                params = read_mica_params(npz[0])
            except MicaLayoutError as err:
                problems.append(str(err))
                continue
            usable = []
            for path in _images_of(images_root / actor):
                try:
                    usable.append(MicaImage(path, _landmarks_for(path, detector), len(self.subject_names)))
                except MicaLayoutError as err:
                    problems.append(str(err))
            if not usable:
                problems.append(f"{images_root / actor}: no usable image for actor {actor} of {npz[0]}")
                continue
            self.subject_names.append(f"{folder.name}/{actor}")
            self.params.append(params)
            self.images += usable

    def __len__(self) -> int:
        return len(self.images)

    def record(self, index: int) -> PairedRecord:
        """Image ``index``: pixels, its landmarks (all visible), no mask, the actor's FLAME parameters."""
        item = self.images[index]
        return PairedRecord(image=read_image(item.path), landmarks=item.landmarks,
                            visibility=np.ones(N_LANDMARKS, dtype=np.float32), mask=None,
                            params=self.params[item.subject], subject=item.subject)


def mica_dataset(root: str | os.PathLike, flame: FLAME, image_size: int = 224, jitter: CropScaleJitter | None = None,
                 datasets: Sequence[str] | None = None, image_folder: str = IMAGE_FOLDER,
                 detector: Detector | None = None, on_error: str = "raise", seed: int = 0) -> PairedFaceDataset:
    """MICA-layout data (:class:`MicaSource`) cropped around the landmarks to ``image_size``
    (:class:`~facecourse.datasets.paired.PairedFaceDataset`; ``jitter`` None = the centre crop)."""
    source = MicaSource(root, flame, datasets, image_folder, detector, on_error)
    return PairedFaceDataset(source, image_size, jitter, seed=seed)


__all__ = [
    "IMAGE_FOLDER", "N_EXPRESSION", "N_SHAPE", "PARAMS_FOLDER", "POSE_SIZE", "POSE_SLICES", "MicaImage",
    "MicaLayoutError", "MicaSource", "mica_dataset", "read_image", "read_mica_params", "read_pts",
    "write_mica_actor", "write_mica_params", "write_pts",
]
