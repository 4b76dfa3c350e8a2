"""The synthetic paired set: random FLAME identities x images, rendered once and cached as uint8 shards.

Each subject is a random identity (FLAME shape and albedo coefficients, :func:`sample_identity`); each of its
images draws an expression, jaw opening, head pose, SH lighting, background and, for a fraction of them,
occluders (flat rectangles, :func:`add_occluders`; landmarks under them are marked invisible and their
pixels leave the face mask), and is rendered with :class:`~facecourse.render.head.HeadRenderer` at a fixed
wide framing (the landmark box spans half the image), so that :class:`~facecourse.datasets.paired.CropScaleJitter`
can re-crop at DECA's 1.4-1.8 on load. Everything is a function of the seed.

Sizes (:data:`SPECS`):

========  ============================  ==========  =========  ==========  ====================================
mode      subjects (train + val)        images/sub  stored px  crop px     FLAME model
========  ============================  ==========  =========  ==========  ====================================
``ci``    56 + 8                        4           80         64          ``default_model_path("small")``
``full``  1350 + 150                    6           256        224         ``default_model_path("full")``
========  ============================  ==========  =========  ==========  ====================================

``ci`` is built by ``data_download.py synthetic`` (``make data``; seconds). ``full`` (about 2.4 GB, half an hour
on a CPU, minutes on a GPU) is built on first use by :func:`paired_synthetic_dir` / :func:`synthetic_paired_dataset`
with a progress bar, or ahead of time with
``python -c "from facecourse.datasets import paired_synthetic_dir; paired_synthetic_dir('full')"``.
The validation subjects are drawn from their own random stream: no training subject is among them.

Layout of ``data_dir()/synthetic/paired/<mode>/``::

    meta.json                    written last: version, key (spec, FLAME model path + SHA-256), shard lists
    train-00000/ ... val-00000/  one folder per shard of whole subjects, .npy files (memory-mapped on load):
        images.npy      (n, S, S, 3) uint8
        mask.npy        (n, S, ceil(S/8)) uint8, the face-region mask bit-packed along rows (np.packbits)
        landmarks.npy   (n, 68, 2) float32, normalised image coordinates
        visibility.npy  (n, 68) uint8
        subject.npy     (n,) int32, subject index within the split
        <field>.npy     (n, ...) float32 for shape, expression, global_pose, jaw_pose, camera, lighting, albedo
        neutral.npy     (m, V, 3) float32 neutral meshes of the shard's m subjects (FLAME of the shape alone)

A cached set is *current* (:func:`is_current`) when its ``meta.json`` records this module's
:data:`PAIRED_SYNTHETIC_VERSION`, the same spec and the SHA-256 of the FLAME model file it was rendered with
(a rebuilt synthetic model, or the real FLAME appearing, makes it stale).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facecourse.data.atomic import atomic_open, atomic_path, staging_dir
from facecourse.data.download import sha256_file
from facecourse.data.paths import resolve_data_dir
from facecourse.datasets.paired import CropScaleJitter, PairedFaceDataset, PairedRecord, stream_seed
from facecourse.datasets.synthetic_images import SyntheticImageConfig, add_occluders, generate, sample_identity
from facecourse.flame import default_model_path
from facecourse.render.camera import ndc_to_pixels
from facecourse.render.head import FaceParams, HeadRenderer
from facecourse.settings import mode as current_mode
from facecourse.settings import progress_bar

#: Bump when the generated content changes for the same spec and model.
PAIRED_SYNTHETIC_VERSION = 1
META_FILE = "meta.json"
SPLITS = ("train", "val")
#: Ground-truth fields stored per image (float32), in :class:`FaceParams` order.
PARAM_FIELDS = ("shape", "expression", "global_pose", "jaw_pose", "camera", "lighting", "albedo")
#: Crop scale of the stored images (the landmark box spans ``1 / STORED_SCALE`` of the image): wider than
#: :class:`CropScaleJitter`'s 1.8 plus its shift, so re-crops stay inside the rendered pixels.
STORED_SCALE = 2.0
_SPLIT_STREAM = {"train": 1, "val": 2}


@dataclass(frozen=True)
class PairedSyntheticSpec:
    """What a synthetic paired set holds (its fields are part of the cache key).

    Attributes:
        flame_size: the FLAME model, ``default_model_path(flame_size)`` (real FLAME when present).
        train_subjects, val_subjects: identities per split (disjoint random streams).
        images_per_subject: images rendered per identity.
        image_size: stored image side, pixels. crop_size: default side of the crops on load.
        n_shape, n_exp: FLAME coefficients drawn (standard-normal units, :class:`SyntheticImageConfig`).
        occluded_fraction: fraction of images with two occluders.
        subjects_per_shard: identities per shard file.
        seed: the random seed.
    """

    flame_size: str
    train_subjects: int
    val_subjects: int
    images_per_subject: int
    image_size: int
    crop_size: int
    n_shape: int = 20
    n_exp: int = 10
    occluded_fraction: float = 0.25
    subjects_per_shard: int = 16
    seed: int = 0

    def subjects(self, split: str) -> int:
        """Identities in ``split`` (``"train"`` or ``"val"``)."""
        return {"train": self.train_subjects, "val": self.val_subjects}[check_split(split)]


#: The course's two sizes, by mode.
SPECS = {
    "ci": PairedSyntheticSpec("small", 56, 8, 4, 80, 64),
    "full": PairedSyntheticSpec("full", 1350, 150, 6, 256, 224, n_shape=100, n_exp=50, subjects_per_shard=50),
}


def check_split(split: str) -> str:
    """``split`` unchanged when it is ``"train"`` or ``"val"``; else a ``ValueError`` naming it."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def resolve_spec(spec: str | PairedSyntheticSpec | None) -> PairedSyntheticSpec:
    """``SPECS[spec]`` for a mode name, the current mode's spec for None, a spec unchanged."""
    if isinstance(spec, PairedSyntheticSpec):
        return spec
    name = current_mode() if spec is None else spec
    if name not in SPECS:
        raise ValueError(f"paired synthetic size must be one of {tuple(SPECS)} or a PairedSyntheticSpec, got {spec!r}")
    return SPECS[name]


def cache_key(spec: PairedSyntheticSpec, model_path: Path) -> dict:
    """What a cached set must match to be current: version, spec, FLAME model file and its SHA-256."""
    return {"version": PAIRED_SYNTHETIC_VERSION, "spec": dataclasses.asdict(spec),
            "flame_model": str(model_path), "flame_model_sha256": sha256_file(model_path)}


def _renderer(spec: PairedSyntheticSpec) -> tuple[HeadRenderer, Path]:
    path = default_model_path(spec.flame_size)
    return HeadRenderer.default(spec.flame_size, n_shape=spec.n_shape, n_exp=spec.n_exp), path


def _config(spec: PairedSyntheticSpec) -> SyntheticImageConfig:
    return SyntheticImageConfig(n_shape=spec.n_shape, n_exp=spec.n_exp, crop_scale=(STORED_SCALE, STORED_SCALE),
                                crop_shift=0.0)


def occlusion_mask(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Pixels an occluder painted: ``(B, H, W)`` bool where any channel of ``after`` differs from ``before``
    (both ``(B, 3, H, W)``)."""
    return (before != after).any(dim=1)


def pixel_lookup(mask: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Values of ``mask`` ``(B, H, W)`` at the pixels of normalised ``points`` ``(B, L, 2)`` (False outside)."""
    b, h, w = mask.shape
    px = torch.round(ndc_to_pixels(points, (h, w))).long()
    inside = (px[..., 0] >= 0) & (px[..., 0] < w) & (px[..., 1] >= 0) & (px[..., 1] < h)
    flat = px[..., 1].clamp(0, h - 1) * w + px[..., 0].clamp(0, w - 1)
    return torch.gather(mask.reshape(b, -1), 1, flat) & inside


def render_shard(spec: PairedSyntheticSpec, renderer: HeadRenderer, split: str, shard: int,
                 first_subject: int, n_subjects: int) -> dict[str, np.ndarray]:
    """Render the images of subjects ``first_subject .. + n_subjects`` of ``split`` as the shard's arrays
    (module docstring); a pure function of ``(spec, split, shard)`` and the model."""
    k = spec.images_per_subject
    shard_seed = stream_seed(spec.seed, _SPLIT_STREAM[split], shard)
    gen = torch.Generator().manual_seed(shard_seed)
    config = _config(spec)
    people = sample_identity(n_subjects, renderer.albedo_model.n_components, config, gen)
    ident = FaceParams(shape=people.shape.repeat_interleave(k, 0), albedo=people.albedo.repeat_interleave(k, 0))
    data = generate(n_subjects * k, spec.image_size, seed=shard_seed, renderer=renderer, config=config,
                    identity=ident, batch_size=32)
    chosen = torch.rand(n_subjects * k, generator=gen) < spec.occluded_fraction
    images = data.images.clone()
    if chosen.any():
        images[chosen] = add_occluders(data.images[chosen], 2, gen)
    covered = occlusion_mask(data.images, images)
    visibility = data.visibility.bool() & ~pixel_lookup(covered, data.landmarks)
    mask = data.skin_mask[:, 0].bool() & ~covered
    with torch.no_grad():
        neutral = renderer.geometry(FaceParams(shape=people.shape)).vertices
    arrays = {
        "images": (images.permute(0, 2, 3, 1) * 255).round().clamp(0, 255).to(torch.uint8).numpy(),
        "mask": np.packbits(mask.numpy(), axis=-1),
        "landmarks": data.landmarks.float().numpy(),
        "visibility": visibility.to(torch.uint8).numpy(),
        "subject": np.repeat(np.arange(first_subject, first_subject + n_subjects, dtype=np.int32), k),
        "neutral": neutral.float().cpu().numpy(),
    }
    for name in PARAM_FIELDS:
        arrays[name] = getattr(data.params, name).float().cpu().numpy()
    return arrays


def shard_names(spec: PairedSyntheticSpec, split: str) -> list[tuple[str, int, int]]:
    """``(folder name, first subject, subjects)`` of every shard of ``split``."""
    n, per = spec.subjects(split), spec.subjects_per_shard
    return [(f"{split}-{j:05d}", first, min(per, n - first)) for j, first in enumerate(range(0, n, per))]


def build_paired_synthetic(out_dir: str | os.PathLike, size: str | PairedSyntheticSpec = "ci",
                           progress: bool = True) -> Path:
    """Render the synthetic paired set of ``size`` into the empty folder ``out_dir``; return ``out_dir``.

    Shards are written one by one (each file atomically) with a ``tqdm.auto`` bar and ``meta.json`` last, so a
    folder without it is unfinished. Callers replace a target folder atomically with it
    (``data_download.py synthetic`` builds in a staging folder; :func:`paired_synthetic_dir` does the same).
    The bytes written are a function of the spec and the FLAME model only.

    Args:
        out_dir: destination folder (created).
        size: ``"ci"``, ``"full"`` or a :class:`PairedSyntheticSpec`.
        progress: show the progress bar.
    """
    spec = resolve_spec(size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    renderer, model_path = _renderer(spec)
    meta = {**cache_key(spec, model_path), "n_vertices": int(renderer.flame.n_vertices),
            "stored_scale": STORED_SCALE, "splits": {}}
    total = sum(spec.subjects(s) for s in SPLITS) * spec.images_per_subject
    with progress_bar(total=total, desc=f"paired synthetic ({out.name})", unit="img", disable=not progress) as bar:
        for split in SPLITS:
            shards = shard_names(spec, split)
            for j, (name, first, count) in enumerate(shards):
                for field, array in render_shard(spec, renderer, split, j, first, count).items():
                    with atomic_path(out / name / f"{field}.npy") as tmp:
                        np.save(tmp, array)
                bar.update(count * spec.images_per_subject)
            meta["splits"][split] = {"subjects": spec.subjects(split), "shards": [s[0] for s in shards]}
    with atomic_open(out / META_FILE, "w") as handle:
        json.dump(meta, handle, indent=1, sort_keys=True)
    return out


def read_meta(folder: str | os.PathLike) -> dict | None:
    """The ``meta.json`` of a built set, or None when there is none (or it is not JSON)."""
    try:
        return json.loads((Path(folder) / META_FILE).read_text())
    except (OSError, ValueError):
        return None


def is_current(folder: str | os.PathLike, size: str | PairedSyntheticSpec = "ci") -> bool:
    """True when ``folder`` holds a finished set of ``size`` made by this version from the FLAME model that
    ``default_model_path`` gives now (same file, same SHA-256), with all its shard folders."""
    meta = read_meta(folder)
    spec = resolve_spec(size)
    if meta is None:
        return False
    key = cache_key(spec, default_model_path(spec.flame_size))
    if any(meta.get(name) != value for name, value in key.items()):
        return False
    return all((Path(folder) / name / "images.npy").is_file()
               for split in SPLITS for name in meta["splits"][split]["shards"])


def paired_synthetic_dir(size: str | PairedSyntheticSpec | None = None, root: str | os.PathLike | None = None,
                         progress: bool = True) -> Path:
    """``<data>/synthetic/paired/<mode>``, built first when missing or stale (train-or-build).

    A build renders into a staging folder beside the target, which replaces the old folder only once complete:
    an interrupted build leaves the previous state (nothing, or the stale set) in place.

    Args:
        size: ``"ci"``, ``"full"``, a spec (its folder is ``custom-<seed>``), or None for the current mode.
        root: the data directory (default :func:`facecourse.data.paths.data_dir`).
        progress: show the build's progress bar.
    """
    spec = resolve_spec(size)
    name = next((m for m, s in SPECS.items() if s == spec), f"custom-{spec.seed}")
    target = resolve_data_dir(root) / "synthetic" / "paired" / name
    if is_current(target, spec):
        return target
    with staging_dir(target) as staging:
        build_paired_synthetic(staging, spec, progress=progress)
        old = target.with_name(f".{target.name}.old")
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    return target


# ---------------------------------------------------------------------------------------------- reading


class ShardSource:
    """The images of one split of a built set, as a :class:`~facecourse.datasets.paired.PairedSource`.

    Shard arrays are opened memory-mapped on first use in each process (worker processes receive the file
    names, not the data), so loading reads only the pages of the images asked for.

    Args:
        folder: a built set (:func:`build_paired_synthetic`). split: ``"train"`` or ``"val"``.

    Raises:
        FileNotFoundError: ``folder`` holds no finished set. ValueError: an unknown split.
    """

    def __init__(self, folder: str | os.PathLike, split: str = "train") -> None:
        self.folder, self.split = Path(folder), check_split(split)
        meta = read_meta(self.folder)
        if meta is None:
            raise FileNotFoundError(f"{self.folder / META_FILE} not found: not a finished paired synthetic set "
                                    f"(build it with paired_synthetic_dir or data_download.py synthetic)")
        self.meta = meta
        self.shards = meta["splits"][split]["shards"]
        self.subject_names = [f"{split}-{i:05d}" for i in range(meta["splits"][split]["subjects"])]
        subject_parts = [np.load(self.folder / s / "subject.npy") for s in self.shards]
        self.subjects = np.concatenate(subject_parts).astype(np.int64)
        self._where = np.concatenate([np.stack([np.full(len(p), j), np.arange(len(p))], 1)
                                      for j, p in enumerate(subject_parts)])
        self.neutral = np.concatenate([np.load(self.folder / s / "neutral.npy") for s in self.shards])
        self._open: dict[int, dict[str, np.ndarray]] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_open": {}}  # memory maps are reopened in each worker

    def __len__(self) -> int:
        return len(self.subjects)

    def _arrays(self, shard: int) -> dict[str, np.ndarray]:
        if shard not in self._open:
            folder = self.folder / self.shards[shard]
            fields = ("images", "mask", "landmarks", "visibility") + PARAM_FIELDS
            self._open[shard] = {f: np.load(folder / f"{f}.npy", mmap_mode="r") for f in fields}
        return self._open[shard]

    def record(self, index: int) -> PairedRecord:
        """Image ``index`` of the split with its landmarks in pixels and its ground truth."""
        shard, row = self._where[index]
        arrays = self._arrays(int(shard))
        image = np.asarray(arrays["images"][row])
        size = image.shape[0]
        landmarks = ndc_to_pixels(torch.from_numpy(np.array(arrays["landmarks"][row])), (size, size)).numpy()
        mask = np.unpackbits(arrays["mask"][row], axis=-1, count=size).astype(bool)
        params = FaceParams(**{f: torch.from_numpy(np.array(arrays[f][row:row + 1])) for f in PARAM_FIELDS})
        return PairedRecord(image=image, landmarks=landmarks, visibility=np.asarray(arrays["visibility"][row], np.float32),
                            mask=mask, params=params, subject=int(self.subjects[index]))


def synthetic_paired_dataset(mode: str | PairedSyntheticSpec | None = None, split: str = "train",
                             image_size: int | None = None, jitter: CropScaleJitter | bool | None = None,
                             root: str | os.PathLike | None = None, progress: bool = True) -> PairedFaceDataset:
    """The synthetic paired set of ``mode`` (``FACECOURSE_MODE`` when None) as a
    :class:`~facecourse.datasets.paired.PairedFaceDataset`, built first if needed (:func:`paired_synthetic_dir`).

    Args:
        mode: ``"ci"``, ``"full"`` or a spec. split: ``"train"`` or ``"val"`` (held-out identities).
        image_size: crop side (default the spec's ``crop_size``: 64 in CI, 224 in full).
        jitter: the crop jitter; None: :class:`CropScaleJitter` () for ``"train"`` and the fixed centre crop for
            ``"val"``; False: the centre crop; True: :class:`CropScaleJitter` ().
        root: the data directory. progress: progress bar of a build.
    """
    spec = resolve_spec(mode)
    check_split(split)
    folder = paired_synthetic_dir(spec, root=root, progress=progress)
    if jitter is None:
        jitter = split == "train"
    if isinstance(jitter, bool):
        jitter = CropScaleJitter() if jitter else None
    return PairedFaceDataset(ShardSource(folder, split), image_size or spec.crop_size, jitter, seed=spec.seed)


__all__ = [
    "META_FILE", "PAIRED_SYNTHETIC_VERSION", "PARAM_FIELDS", "SPECS", "SPLITS", "STORED_SCALE",
    "PairedSyntheticSpec", "ShardSource", "build_paired_synthetic", "cache_key", "check_split", "is_current",
    "occlusion_mask", "paired_synthetic_dir", "pixel_lookup", "read_meta", "render_shard", "resolve_spec",
    "shard_names", "synthetic_paired_dataset",
]
