"""The synthetic NoW-format set: FLAME identities scanned like the real NoW scans, in the official layout.

Each subject is a random identity of the synthetic FLAME model (``synthetic_model_path("full")``; shape
coefficients :math:`\\beta \\sim \\mathcal N(0, I)`, neutral expression). Its "scan" imitates a 3dMD
capture: the neutral head in millimetres, without eyeballs (a scanner sees the eyelids' opening, not a
sphere behind it), densified (midpoint subdivision, so the new vertices stay on the surface), cut at the
neck, missing the back of the head and a few random patches, with noise along the normal, and placed in a
random "scanner" frame. The cranium is hair-free by construction. The 7 landmarks are FLAME's NoW-7 points
with annotation noise, written as MeshLab ``.pp`` files.

Layout written (see :mod:`facecourse.now.layout`)::

    <out_dir>/final_release_version/
        imagepathsvalidation.txt, imagepathstest.txt    4 validation and 2 test subjects x the 4 challenges
        scans/<subject>/<subject>.obj                    mm
        scans_lmks_onlypp/<subject>/<subject>_picked_points.pp
        iphone_pictures/                                 empty: the photos are rendered later
        synthetic_ground_truth/<subject>.obj, .npy       the clean FLAME head + NoW-7 landmarks, metres
                                                         (a perfect prediction, for the sanity baseline)
        synthetic_now.json                               seed, model, subjects, shape coefficients

The image lists name photos that do not exist yet: :func:`render_now_images` adds them under
``iphone_pictures/`` from the shape coefficients in ``synthetic_now.json``, with the head renderer of chapter
04 in the style of each challenge. The evaluation never reads the photos, only the predictions made from them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import torch
import trimesh
from scipy.spatial.transform import Rotation

from facecourse.data.atomic import atomic_open, atomic_path, staging_dir
from facecourse.data.download import sha256_file
from facecourse.data.paths import synthetic_dir
from facecourse.datasets.synthetic_images import SyntheticImageConfig, add_occluders, generate
from facecourse.flame import FLAME, load_masks, synthetic_model_path
from facecourse.mesh import load_mesh, save_mesh
from facecourse.now.crop import NOW7_NAMES
from facecourse.now.export import flame_now_prediction
from facecourse.now.layout import (
    CHALLENGES, DATASET_SUBDIR, IMAGES_SUBDIR, FaceBox, NowImage, face_box_path, image_path, load_landmarks_file,
    read_image_list, write_face_box,
    write_image_list, write_mesh_and_landmarks,
)
from facecourse.now.pp import write_pp
from facecourse.now.units import M_TO_MM
from facecourse.render.camera import ndc_to_pixels
from facecourse.render.head import FaceParams, HeadRenderer
from facecourse.settings import progress_bar

#: Bump when the generated set changes (2: photo seeds from SHA-256 of the image line, the one hash of the package).
SYNTHETIC_NOW_VERSION = 3
META_FILE = "synthetic_now.json"
GROUND_TRUTH_SUBDIR = "synthetic_ground_truth"
#: Images per subject and challenge in the synthetic lists.
IMAGES_PER_CHALLENGE = {"multiview_neutral": 2, "multiview_expressions": 2, "multiview_occlusions": 2, "selfie": 1}
SPLIT_SUBJECTS = {"val": 4, "test": 2}


def _tri_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    return np.asarray(trimesh.Trimesh(v, f, process=False).vertex_normals)


def scan_from_head(vertices_mm, faces, landmarks_mm, rng: np.random.Generator, drop_vertices=None,
                   subdivisions: int = 1, noise_mm: float = 0.2, landmark_noise_mm: float = 0.5,
                   n_holes: int = 3, back_fraction: float = 0.3, max_tilt_deg: float = 10.0):
    """Turn a clean head mesh into a NoW-like scan.

    Args:
        vertices_mm: ``(V, 3)`` head in the FLAME frame (+y up, +z forward), millimetres.
        faces: ``(F, 3)``.
        landmarks_mm: ``(7, 3)`` NoW-7 landmarks on that head (mm).
        rng: random generator.
        drop_vertices: optional vertex indices removed first (eyeballs).
        subdivisions: midpoint subdivisions (each multiplies the triangle count by 4).
        noise_mm: std of the noise along the normal.
        landmark_noise_mm: std of the isotropic annotation noise of the landmarks.
        n_holes: random missing patches (radius 4-8 mm), kept away from the landmarks.
        back_fraction: the back part of the head's depth that the scanner misses.
        max_tilt_deg: largest rotation of the random scanner frame.

    Returns:
        ``(vertices (N, 3), faces (M, 3), landmarks (7, 3), scanner transform (4, 4))``, all mm; the
        transform maps the FLAME frame (mm) to the scan frame.
    """
    v = np.asarray(vertices_mm, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    lm = np.asarray(landmarks_mm, dtype=np.float64)
    keep = np.ones(len(v), dtype=bool)
    if drop_vertices is not None:
        keep[np.asarray(drop_vertices, dtype=np.int64)] = False
    f = f[keep[f].all(axis=1)]
    for _ in range(subdivisions):
        v, f = trimesh.remesh.subdivide(v, f)
    eyes_y, mouth_y = lm[:4, 1].mean(), lm[5:, 1].mean()
    neck_y = mouth_y - 1.3 * (eyes_y - mouth_y)
    z_lo, z_hi = v[:, 2].min(), v[:, 2].max()
    keep = (v[:, 1] > neck_y) & (v[:, 2] > z_lo + back_fraction * (z_hi - z_lo))
    surface_ids = np.flatnonzero(keep)
    far = np.linalg.norm(v[surface_ids, None] - lm[None], axis=2).min(axis=1) > 15.0
    for centre in v[rng.choice(surface_ids[far], size=min(n_holes, far.sum()), replace=False)]:
        keep &= np.linalg.norm(v - centre, axis=1) > rng.uniform(4.0, 8.0)
    f = f[keep[f].all(axis=1)]
    used = np.unique(f)
    remap = np.full(len(v), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    v, f = v[used], remap[f]
    v = v + rng.normal(scale=noise_mm, size=(len(v), 1)) * _tri_normals(v, f)
    lm = lm + rng.normal(scale=landmark_noise_mm, size=lm.shape)
    rot = Rotation.from_rotvec(rng.normal(size=3) * np.deg2rad(max_tilt_deg) / np.sqrt(3)).as_matrix()
    t = rng.normal(scale=30.0, size=3)
    scanner = np.eye(4)
    scanner[:3, :3], scanner[:3, 3] = rot, t
    return v @ rot.T + t, f, lm @ rot.T + t, scanner


def _subjects() -> list[tuple[str, str]]:
    names = []
    for split, n in SPLIT_SUBJECTS.items():
        names += [(split, f"SYN_{len(names) + i + 1:04d}") for i in range(n)]
    return names


def _images(subject: str) -> list[NowImage]:
    images, k = [], 0
    for challenge in CHALLENGES:
        for _ in range(IMAGES_PER_CHALLENGE[challenge]):
            k += 1
            images.append(NowImage(subject, challenge, f"IMG_{k:04d}.jpg"))
    return images


def write_synthetic_now(root: str | os.PathLike, flame, eyeball_vertices=None, seed: int = 0) -> Path:
    """Write the synthetic NoW-format set into the dataset folder ``root`` from a FLAME module.

    Args:
        root: the dataset folder (``.../NoW_Dataset/final_release_version``).
        flame: a :class:`facecourse.flame.FLAME`; identities draw :math:`\\beta \\sim \\mathcal N(0, I)` on
            its ``n_shape`` components.
        eyeball_vertices: vertex indices removed from the scans (the eyeballs).
        seed: random seed.

    Returns:
        ``root``.
    """
    root = Path(root)
    subjects = _subjects()
    rng = np.random.default_rng(seed)
    betas = rng.standard_normal((len(subjects), flame.n_shape))
    vertices, landmarks = flame_now_prediction(flame, torch.as_tensor(betas))
    vertices, landmarks = vertices.cpu().double().numpy(), landmarks.cpu().double().numpy()
    faces = flame.faces.cpu().numpy()
    lists = {split: [] for split in SPLIT_SUBJECTS}
    for (split, subject), v_m, lm_m in zip(subjects, vertices, landmarks):
        sv, sf, slm, _ = scan_from_head(v_m * M_TO_MM, faces, lm_m * M_TO_MM, rng, drop_vertices=eyeball_vertices)
        save_mesh(root / "scans" / subject / f"{subject}.obj", sv, sf)
        write_pp(root / "scans_lmks_onlypp" / subject / f"{subject}_picked_points.pp", slm, names=NOW7_NAMES,
                 data_file_name=f"{subject}.obj")
        write_mesh_and_landmarks(root / GROUND_TRUTH_SUBDIR / subject, v_m, faces, lm_m)
        lists[split] += _images(subject)
    write_image_list(root / "imagepathsvalidation.txt", lists["val"])
    write_image_list(root / "imagepathstest.txt", lists["test"])
    (root / IMAGES_SUBDIR).mkdir(parents=True, exist_ok=True)
    meta = {
        "version": SYNTHETIC_NOW_VERSION, "seed": seed, "flame_model": str(getattr(flame, "source", "")),
        "flame_model_sha256": _model_digest(getattr(flame, "source", None)),
        "n_shape": flame.n_shape, "units": {"scans": "mm", "synthetic_ground_truth": "m"},
        "subjects": {s: {"split": sp, "shape": b.round(6).tolist()} for (sp, s), b in zip(subjects, betas)},
        "note": "photos under iphone_pictures/ are rendered by "
                "facecourse.now.synthetic.render_now_images; the evaluation only reads predictions",
    }
    with atomic_open(root / META_FILE, "w") as handle:  # written last: its presence means complete
        json.dump(meta, handle, indent=1)
    return root


def _model_digest(path) -> str | None:
    return sha256_file(path) if path and Path(path).is_file() else None


def is_complete(dataset_dir: str | os.PathLike) -> bool:
    """True when ``dataset_dir`` holds a finished synthetic set of the current version, made from the FLAME
    model file that is there now (a rebuilt synthetic model makes the set stale)."""
    meta_path = Path(dataset_dir) / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return False
    digest = meta.get("flame_model_sha256")
    return meta.get("version") == SYNTHETIC_NOW_VERSION and (
        digest is None or digest == _model_digest(meta.get("flame_model")))


def missing_images(dataset_dir: str | os.PathLike) -> list:
    """The :class:`facecourse.now.NowImage` entries of the validation and test lists of ``dataset_dir``
    (in list order) whose photo or face-box file does not exist yet."""
    root = Path(dataset_dir)
    return [im for split in ("val", "test") for im in read_image_list(root, split)
            if not (image_path(root, im).is_file() and face_box_path(root, im).is_file())]


def has_images(dataset_dir: str | os.PathLike) -> bool:
    """True when every photo named by the image lists of ``dataset_dir`` exists."""
    return not missing_images(dataset_dir)


def is_current(out_dir: str | os.PathLike) -> bool:
    """True when the ``NoW_Dataset`` folder ``out_dir`` holds a complete, current set with its photos."""
    root = Path(out_dir) / DATASET_SUBDIR.name
    return is_complete(root) and has_images(root)


def build_synthetic_now(out_dir: str | os.PathLike, seed: int = 0, n_shape: int = 100) -> Path:
    """Build the synthetic NoW-format set under ``out_dir`` (the ``NoW_Dataset`` folder); idempotent.

    Every file is written atomically and the metadata file last, so a finished set is recognised and kept
    and an interrupted one is completed. Then the photos of the image lists are rendered
    (:func:`render_now_images`, resumable: only missing photos are drawn).
    Takes about half a minute on a laptop CPU.

    Args:
        out_dir: the ``NoW_Dataset`` folder to fill (``data_dir()/"synthetic"/"NoW_Dataset"`` by default
            through ``data_download.py synthetic``).
        seed: random seed (identities, scan noise, holes, scanner frames).
        n_shape: FLAME shape components drawn.

    Returns:
        The dataset folder ``out_dir/final_release_version`` (pass it to ``now-eval --dataset``).
    """
    root = Path(out_dir) / DATASET_SUBDIR.name
    if not is_complete(root):
        if (root / META_FILE).exists():  # a finished set of another version or FLAME model: start afresh
            shutil.rmtree(root)
        model_path = synthetic_model_path("full")
        flame = FLAME.from_file(model_path, n_shape=n_shape, n_exp=0, dtype=torch.float64)
        masks = load_masks(model_path.parent / "FLAME_masks.pkl")
        eyes = np.concatenate([np.asarray(masks[k], dtype=np.int64) for k in ("left_eyeball", "right_eyeball")])
        root.mkdir(parents=True, exist_ok=True)
        write_synthetic_now(root, flame, eyes, seed)
    render_now_images(root, seed=seed, progress=False)
    return root


def synthetic_now_dir() -> Path:
    """``data_dir()/"synthetic"/"NoW_Dataset"/"final_release_version"``, built if missing.

    A missing set is built in a staging folder and renamed into place, so readers never see half of it.
    """
    target = synthetic_dir() / DATASET_SUBDIR
    if is_current(target.parent):
        return target
    if target.parent.exists():
        return build_synthetic_now(target.parent)
    with staging_dir(target.parent) as staging:  # removed on error, or if someone else finished first
        build_synthetic_now(staging)
        try:
            os.rename(staging, target.parent)
        except OSError:
            pass
    if not is_complete(target):
        raise RuntimeError(f"building the synthetic NoW set did not complete {target}")
    return target


def ground_truth_prediction(dataset_dir: str | os.PathLike, subject: str):
    """The stored clean FLAME head of a synthetic subject as a prediction
    ``(vertices (V, 3) m, faces (F, 3), landmarks (7, 3) m)``, or None when the dataset has none (real NoW)."""
    base = Path(dataset_dir) / GROUND_TRUTH_SUBDIR / subject
    if not base.with_suffix(".obj").is_file():
        return None
    v, f = load_mesh(base.with_suffix(".obj"))
    return v, f, load_landmarks_file(base.with_suffix(".npy"))


def synthetic_meta(dataset_dir: str | os.PathLike) -> dict | None:
    """The ``synthetic_now.json`` of a synthetic set (None for real data)."""
    path = Path(dataset_dir) / META_FILE
    return json.loads(path.read_text()) if path.is_file() else None


#: How each NoW challenge is imitated: expression scale, yaw range (degrees), occluders, crop scale.
NOW_CHALLENGE_STYLE = {
    "multiview_neutral": {"exp_std": 0.0, "jaw_max_deg": 0.0, "yaw_max_deg": 45.0, "occluders": 0},
    "multiview_expressions": {"exp_std": 1.2, "jaw_max_deg": 18.0, "yaw_max_deg": 45.0, "occluders": 0},
    "multiview_occlusions": {"exp_std": 0.3, "jaw_max_deg": 5.0, "yaw_max_deg": 30.0, "occluders": 2},
    "selfie": {"exp_std": 0.5, "jaw_max_deg": 8.0, "yaw_max_deg": 15.0, "occluders": 0},
}


def landmark_box(landmarks: torch.Tensor, image_size: int) -> FaceBox:
    """The synthetic "detection": the pixel bounding box of the 68 projected landmarks ``(68, 2)`` (normalised
    image coordinates of a square ``image_size`` photo), the box the training crops are framed on
    (:func:`facecourse.datasets.paired.landmark_window`); real NoW boxes come from a face detector."""
    pixels = ndc_to_pixels(landmarks[None, :, :2].double(), (image_size, image_size))[0]
    lo, hi = pixels.amin(0).tolist(), pixels.amax(0).tolist()
    return FaceBox(left=lo[0], top=lo[1], right=hi[0], bottom=hi[1])


def render_now_images(dataset_dir, image_size: int = 512, seed: int = 0, progress: bool = True) -> int:
    """Render the photos of a synthetic NoW set in the official layout.

    For every line ``subject/challenge/IMG.jpg`` of ``imagepathsvalidation.txt`` and ``imagepathstest.txt``
    a head with the subject's shape coefficients (from ``synthetic_now.json``) and a per-subject albedo is
    rendered with the style of
    its challenge (:data:`NOW_CHALLENGE_STYLE`: neutral or expressive faces, yaw range, occluders, selfie
    close-ups) and written to ``iphone_pictures/<subject>/<challenge>/IMG.jpg`` (atomically; existing
    files are kept, so the function is resumable).

    Args:
        dataset_dir: the ``final_release_version`` folder.
        image_size: side of the square photos in pixels.
        seed: random seed.

    Returns:
        number of images written.
    """
    root = Path(dataset_dir)
    meta = synthetic_meta(root)
    if meta is None:
        raise FileNotFoundError(f"{root / META_FILE} not found: render_now_images needs a synthetic NoW set")
    todo = missing_images(root)
    if not todo:
        return 0
    model = Path(meta.get("flame_model") or synthetic_model_path("full"))
    if not model.is_file():
        model = synthetic_model_path("full")
    renderer = HeadRenderer(FLAME.from_file(model, n_shape=meta["n_shape"], n_exp=50), load_masks(model.parent))
    gen = torch.Generator().manual_seed(seed)  # per-subject albedos, drawn in a fixed (sorted) order
    n_alb = renderer.albedo_model.n_components
    albedos = {s: torch.randn(1, n_alb, generator=gen).clamp(-2, 2) for s in sorted(meta["subjects"])}
    written = 0
    for im in progress_bar(todo, desc="NoW images", disable=not progress):
        # every random draw of an image depends on its own seed only, so a resumed run writes the same files
        image_seed = seed * 100003 + int(hashlib.sha256(im.line.encode()).hexdigest()[:8], 16)
        style = NOW_CHALLENGE_STYLE[im.challenge]
        config = SyntheticImageConfig(n_shape=meta["n_shape"], exp_std=style["exp_std"],
                                      jaw_max_deg=style["jaw_max_deg"], yaw_max_deg=style["yaw_max_deg"],
                                      crop_scale=(1.3, 1.5) if im.challenge == "selfie" else (1.6, 2.2))
        shape = torch.tensor(meta["subjects"][im.subject]["shape"], dtype=torch.float32)[None]
        data = generate(1, image_size, seed=image_seed, renderer=renderer, config=config,
                        identity=FaceParams(shape=shape, albedo=albedos[im.subject]))
        occluder_gen = torch.Generator().manual_seed(image_seed + 1)  # own stream: resuming draws the same
        img = add_occluders(data.images, style["occluders"], occluder_gen) if style["occluders"] else data.images
        path = image_path(root, im)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            mpimg.imsave(tmp, img[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy(), format="jpg")
        write_face_box(face_box_path(root, im), landmark_box(data.landmarks[0], image_size))
        written += 1
    return written


__all__ = [
    "GROUND_TRUTH_SUBDIR", "META_FILE", "NOW_CHALLENGE_STYLE", "landmark_box", "SYNTHETIC_NOW_VERSION", "build_synthetic_now", "ground_truth_prediction",
    "is_complete", "missing_images", "render_now_images", "scan_from_head", "synthetic_meta", "synthetic_now_dir", "write_synthetic_now",
]
