"""Paired 2D-3D face data: images of subjects with their 68 landmarks, a face mask and the ground-truth FLAME
parameters and neutral mesh, batched as ``N`` subjects x ``K`` images (chapter 05's shape consistency).

Pieces, each usable alone:

* :class:`PairedRecord` -- one stored image as a *source* gives it (uint8 pixels, landmarks in pixels);
  :class:`PairedSource` -- what a source provides (the synthetic shards of
  :mod:`~facecourse.datasets.paired_synthetic`, the MICA layout of :mod:`~facecourse.datasets.mica`).
* :class:`PairedFaceDataset` -- a map-style dataset over a source that crops each image around its landmarks
  (:class:`CropScaleJitter`, DECA's scale 1.4-1.8 and shift) to ``image_size`` and returns a
  :class:`PairedSample` with landmarks, mask and camera moved consistently with the pixels.
* :class:`SubjectBatchSampler` -- a batch sampler yielding ``N`` distinct subjects x ``K`` of their images
  per batch, deterministic from ``(seed, epoch)``, split over ranks, resumable mid-epoch.
* :func:`collate_paired` -- ``list[PairedSample]`` -> :class:`PairedBatch` (images ``(B, 3, S, S)`` + a
  :class:`~facecourse.render.head.FaceParams`).

Use with a plain ``DataLoader``::

    sampler = SubjectBatchSampler(dataset.subjects, n_subjects=8, k=2, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_paired, num_workers=2)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in loader:  # batch.images (16, 3, S, S); rows 2i, 2i+1 show the same subject
            ...

Crop geometry. Pixel coordinates follow :mod:`facecourse.render.camera` (integer values at pixel centres).
A crop is a square window of centre :math:`(c_x, c_y)` and half-side :math:`h` pixels of the source; a source
point :math:`(x, y)` lands at normalised output coordinates :math:`u = (x - c_x)/h`, :math:`v = (y - c_y)/h`.
On a square source of side :math:`S_0` this is the affine map :math:`u' = a u + b_u`, :math:`v' = a v + b_v` of
normalised coordinates with :math:`a = S_0 / 2h`, :math:`b_u = (S_0 - 1 - 2 c_x) / 2h` (same for
:math:`v`), and the weak-perspective camera that projects the mesh onto the crop is
:math:`s' = a s`, :math:`t_x' = t_x + b_u / (a s)`, :math:`t_y' = t_y - b_v / (a s)` (the image :math:`v`
axis is flipped against model :math:`y`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from facecourse.render.head import FaceParams

#: Landmarks per image (iBUG-68 order).
N_LANDMARKS = 68


def stream_seed(*parts: int) -> int:
    """A seed in ``[0, 2^{63})`` for the random stream named by the integers ``parts`` (numpy's
    ``SeedSequence`` mixing: distinct tuples give unrelated streams, unlike ``seed + epoch``)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> np.uint64(1))


# ------------------------------------------------------------------------------------------- containers


@dataclass
class PairedRecord:
    """One stored image of a subject as a :class:`PairedSource` returns it (before cropping).

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        landmarks: ``(68, 2)`` float pixel coordinates ``(x, y)`` of the iBUG-68 points (integer values at pixel
            centres, :mod:`facecourse.render.camera`).
        visibility: ``(68,)`` float 0/1 (1 = visible in the image).
        mask: ``(H, W)`` bool face-region pixels (the photometric loss's mask), or None when the source has none.
        params: ground truth :class:`FaceParams` with batch 1; its ``camera`` (if set) projects onto this image
            (square images only).
        subject: the subject's index in the source (``0 .. n_subjects - 1``).
    """

    image: np.ndarray
    landmarks: np.ndarray
    visibility: np.ndarray
    mask: np.ndarray | None
    params: FaceParams
    subject: int


class PairedSource(Protocol):
    """What :class:`PairedFaceDataset` reads: images grouped by subject, with a neutral mesh per subject.

    Attributes:
        subjects: ``(n_images,)`` int64, the subject index of every image.
        subject_names: one name per subject (folder or generated id).
        neutral: ``(n_subjects, V, 3)`` float32 neutral meshes (FLAME of the shape alone), metres.
    """

    subjects: np.ndarray
    subject_names: list[str]
    neutral: np.ndarray

    def __len__(self) -> int: ...

    def record(self, index: int) -> PairedRecord: ...


@dataclass
class PairedSample:
    """One cropped training image with its ground truth (``S`` = the dataset's ``image_size``).

    Attributes:
        image: ``(3, S, S)`` float in [0, 1].
        landmarks: ``(68, 2)`` iBUG-68 points in normalised image coordinates (:mod:`facecourse.render.camera`).
        visibility: ``(68,)`` float 0/1: visible in the source and inside the crop.
        mask: ``(1, S, S)`` float 0/1 face-region pixels, or None when the source has no masks.
        params: ground truth :class:`FaceParams`, batch 1 (camera, when known, projects onto this crop).
        neutral: ``(V, 3)`` the subject's neutral mesh (FLAME of the shape alone), metres.
        subject: the subject's index in the source.
    """

    image: torch.Tensor
    landmarks: torch.Tensor
    visibility: torch.Tensor
    mask: torch.Tensor | None
    params: FaceParams
    neutral: torch.Tensor
    subject: int


@dataclass
class PairedBatch:
    """A batch of :class:`PairedSample` (``B`` images; from :class:`SubjectBatchSampler`, ``B = N K`` with the
    ``K`` images of each subject consecutive, so ``images.view(N, K, 3, S, S)`` groups them).

    Attributes:
        images: ``(B, 3, S, S)`` float in [0, 1].
        landmarks: ``(B, 68, 2)`` normalised image coordinates.
        visibility: ``(B, 68)`` float 0/1.
        mask: ``(B, 1, S, S)`` float 0/1 face-region pixels, or None.
        params: ground truth :class:`FaceParams` of batch ``B``.
        neutral: ``(B, V, 3)`` neutral meshes, metres.
        subject: ``(B,)`` int64 subject indices.
    """

    images: torch.Tensor
    landmarks: torch.Tensor
    visibility: torch.Tensor
    mask: torch.Tensor | None
    params: FaceParams
    neutral: torch.Tensor
    subject: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "PairedBatch":
        """Every tensor (the :class:`FaceParams` too) moved to ``device``."""
        return PairedBatch(**{f.name: None if getattr(self, f.name) is None else
                              getattr(self, f.name).to(device, non_blocking=non_blocking)
                              for f in dataclasses.fields(self)})


def collate_paired(samples: list[PairedSample]) -> PairedBatch:
    """Stack samples into a :class:`PairedBatch` (order kept); masks must be given for all samples or none."""
    if not samples:
        raise ValueError("collate_paired needs at least one sample")
    masks = [s.mask for s in samples]
    if any(m is None for m in masks) and not all(m is None for m in masks):
        raise ValueError("collate_paired: some samples have a mask and others none")
    return PairedBatch(
        images=torch.stack([s.image for s in samples]),
        landmarks=torch.stack([s.landmarks for s in samples]),
        visibility=torch.stack([s.visibility for s in samples]),
        mask=None if masks[0] is None else torch.stack(masks),
        params=FaceParams.cat([s.params for s in samples]),
        neutral=torch.stack([s.neutral for s in samples]),
        subject=torch.tensor([s.subject for s in samples], dtype=torch.long),
    )


# ------------------------------------------------------------------------------------------------- crops


@dataclass(frozen=True)
class CropWindow:
    """A square crop of a source image: centre ``(cx, cy)`` and half-side ``half``, pixels (module docstring)."""

    cx: float
    cy: float
    half: float


@dataclass(frozen=True)
class CropScaleJitter:
    """How crops are drawn around the landmarks (DECA): the crop's side is ``scale`` times the landmark box's
    larger side :math:`d`, its centre the box centre plus ``shift`` :math:`\\cdot d` per axis.

    Attributes:
        scale: ``(low, high)`` range of the scale, drawn uniformly.
        shift: largest shift per axis, in fractions of :math:`d` (drawn uniformly in ``[-shift, shift]``).
    """

    scale: tuple[float, float] = (1.4, 1.8)
    shift: float = 0.08

    def __post_init__(self):
        lo, hi = self.scale
        if not (np.isfinite([lo, hi, self.shift]).all() and 0 < lo <= hi and self.shift >= 0):
            raise ValueError(f"CropScaleJitter needs 0 < scale low <= high and shift >= 0 (finite), "
                             f"got scale={self.scale}, shift={self.shift}")

    def draw(self, generator: torch.Generator) -> tuple[float, tuple[float, float]]:
        """One random ``(scale, (shift_x, shift_y))``."""
        r = torch.rand(3, generator=generator, dtype=torch.float64).tolist()
        lo, hi = self.scale
        return lo + (hi - lo) * r[0], (self.shift * (2 * r[1] - 1), self.shift * (2 * r[2] - 1))

    def centre(self) -> tuple[float, tuple[float, float]]:
        """The deterministic crop: mid-range scale, no shift (validation)."""
        return (self.scale[0] + self.scale[1]) / 2, (0.0, 0.0)


def box_window(lo: np.ndarray, hi: np.ndarray, scale: float, shift: tuple[float, float] = (0.0, 0.0)) -> CropWindow:
    """The crop around the box from corner ``lo`` = (left, top) to ``hi`` = (right, bottom), pixels:
    half-side :math:`k d / 2` and centre :math:`c + \\delta d` for the box's centre :math:`c` and larger side
    :math:`d` (a face detector's box, e.g. NoW's ``detected_face``, or the landmarks' box)."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    size = float((hi - lo).max())
    if not np.isfinite(size) or size <= 0:
        raise ValueError(f"the box from {lo.tolist()} to {hi.tolist()} has no size; cannot crop around it")
    centre = (lo + hi) / 2 + np.asarray(shift) * size
    return CropWindow(float(centre[0]), float(centre[1]), scale * size / 2)


def landmark_window(landmarks: np.ndarray, scale: float, shift: tuple[float, float]) -> CropWindow:
    """The crop around ``landmarks`` ``(68, 2)`` pixels: :func:`box_window` of their bounding box."""
    if not np.isfinite(landmarks).all():
        raise ValueError("landmarks hold NaN or inf; cannot crop around them")
    return box_window(landmarks.min(0), landmarks.max(0), scale, shift)


def crop_image(image: torch.Tensor, window: CropWindow, size: int, mode: str = "bilinear") -> torch.Tensor:
    """Resample ``window`` of ``image`` ``(C, H, W)`` to ``(C, size, size)`` (zeros outside the source).

    Output pixel centre :math:`u` samples the source at pixel :math:`c + h u` (``grid_sample``,
    ``align_corners=False``, the normalised convention of :mod:`facecourse.render.camera`). The grid is
    separable, built per axis (``affine_grid`` costs ~10 ms at 224 px on a CPU).
    """
    _, h, w = image.shape
    u = (2 * torch.arange(size, dtype=image.dtype) + 1) / size - 1
    gx = (2 * window.half / w) * u + (2 * window.cx + 1) / w - 1
    gy = (2 * window.half / h) * u + (2 * window.cy + 1) / h - 1
    grid = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), dim=-1)
    return F.grid_sample(image[None], grid[None], mode=mode, padding_mode="zeros", align_corners=False)[0]


def crop_points(points: torch.Tensor, window: CropWindow) -> torch.Tensor:
    """Source pixel points ``(..., 2)`` -> normalised coordinates of the crop, :math:`(x - c) / h`."""
    centre = torch.tensor([window.cx, window.cy], dtype=points.dtype)
    return (points - centre) / window.half


def crop_camera(camera: torch.Tensor, window: CropWindow, source_size: int) -> torch.Tensor:
    """The weak-perspective camera ``(B, 3)`` that projects onto the crop what ``camera`` projected onto the
    square ``source_size`` image (module docstring: :math:`s' = a s`, :math:`t' = t + (b_u, -b_v)/(a s)`)."""
    a = source_size / (2 * window.half)
    b = torch.tensor([source_size - 1 - 2 * window.cx, -(source_size - 1 - 2 * window.cy)],
                     dtype=camera.dtype) / (2 * window.half)
    s = camera[:, :1] * a
    return torch.cat([s, camera[:, 1:] + b / s], dim=1)


# ---------------------------------------------------------------------------------------------- dataset


class SampleKey(NamedTuple):
    """What :class:`SubjectBatchSampler` yields per image: the image ``index`` and the seed of its crop draw."""

    index: int
    draw: int


class PairedFaceDataset(Dataset):
    """Images of a :class:`PairedSource`, cropped around their landmarks to ``image_size`` pixels.

    ``dataset[i]`` (an int) crops with a draw seeded from ``(seed, i)`` (the same every time);
    ``dataset[SampleKey(i, draw)]`` with ``draw`` (what :class:`SubjectBatchSampler` passes, a new draw per
    epoch). Without ``jitter`` every crop is :meth:`CropScaleJitter.centre` of the default jitter (scale 1.6,
    no shift): the validation crop. No global random state is used, so worker processes and resumed runs read
    the same samples.

    Args:
        source: a :class:`PairedSource`.
        image_size: side ``S`` of the crops, pixels.
        jitter: the random crop (None: the fixed centre crop).
        seed: seeds the crops of int indices.

    Attributes:
        subjects: ``(n_images,)`` int64 subject of each image (pass it to :class:`SubjectBatchSampler`).
        subject_names: name of each subject.
    """

    def __init__(self, source: PairedSource, image_size: int, jitter: CropScaleJitter | None = None,
                 seed: int = 0) -> None:
        if not isinstance(image_size, int) or image_size < 8:
            raise ValueError(f"image_size must be an integer >= 8 pixels, got {image_size!r}")
        if len(source) == 0:
            raise ValueError("the paired source has no images")
        self.source, self.image_size, self.jitter, self.seed = source, image_size, jitter, seed
        self.subjects = np.asarray(source.subjects, dtype=np.int64)
        self.subject_names = list(source.subject_names)

    def __len__(self) -> int:
        return len(self.source)

    @property
    def n_subjects(self) -> int:
        """Number of subjects."""
        return len(self.subject_names)

    def window(self, record: PairedRecord, draw: int) -> CropWindow:
        """The crop of ``record`` for the draw seed ``draw`` (the centre crop without jitter)."""
        if self.jitter is None:
            scale, shift = CropScaleJitter().centre()
        else:
            scale, shift = self.jitter.draw(torch.Generator().manual_seed(draw))
        return landmark_window(record.landmarks, scale, shift)

    def __getitem__(self, key: int | SampleKey) -> PairedSample:
        """The cropped sample of image ``key`` (an int or a :class:`SampleKey`)."""
        index, draw = (key.index, key.draw) if isinstance(key, tuple) else (int(key), stream_seed(self.seed, int(key)))
        record = self.source.record(index)
        window = self.window(record, draw)
        pixels = torch.from_numpy(np.array(record.image))  # a copy: sources may hand out read-only memory maps
        image = pixels.permute(2, 0, 1).float() / 255
        landmarks = crop_points(torch.from_numpy(np.asarray(record.landmarks, dtype=np.float32)), window)
        inside = (landmarks.abs() <= 1).all(-1)
        visibility = torch.as_tensor(record.visibility, dtype=torch.float32) * inside
        mask = None
        if record.mask is not None:
            mask = crop_image(torch.from_numpy(np.asarray(record.mask, dtype=np.float32))[None], window,
                              self.image_size, mode="nearest")
        params = record.params
        if params.camera is not None:
            h, w = record.image.shape[:2]
            if h != w:
                raise ValueError(f"image {index} is {h}x{w}: a weak-perspective camera is only moved with crops "
                                 f"of square images")
            params = params.replace(camera=crop_camera(params.camera, window, w))
        return PairedSample(image=crop_image(image, window, self.image_size).clamp(0, 1), landmarks=landmarks,
                            visibility=visibility, mask=mask, params=params,
                            neutral=torch.from_numpy(np.asarray(self.source.neutral[record.subject])),
                            subject=record.subject)


# ---------------------------------------------------------------------------------------------- sampler


class SubjectBatchSampler(Sampler[list[SampleKey]]):
    """Batches of ``n_subjects`` distinct subjects x ``k`` of their images (the images of a subject consecutive).

    Epoch ``e`` is a pure function of ``(seed, e)``: the subjects in a random order (or in index order without
    ``shuffle``), cut into global batches of ``n_subjects * world_size`` subjects (the rest of the epoch's
    subjects is dropped, so every batch is full); rank ``r`` takes the ``r``-th ``n_subjects`` of each global
    batch. Each subject contributes ``k`` of its images drawn without replacement, each with a crop draw seed
    (:class:`SampleKey`). An epoch therefore sees every subject once (MICA counts its epochs per actor).
    Subjects with fewer than ``k`` images are left out (``excluded`` names them).

    Resumable: :meth:`set_epoch` ``(epoch, start)`` skips the first ``start`` batches of this rank, and
    :meth:`state_dict` / :meth:`load_state_dict` save and restore the position.

    Args:
        subjects: ``(n_images,)`` subject index of every image (:attr:`PairedFaceDataset.subjects`).
        n_subjects: ``N``, subjects per batch on this rank. k: ``K``, images per subject.
        seed: the sampler's seed. shuffle: random subject order per epoch.
        rank, world_size: this process's place among the training processes.
    """

    def __init__(self, subjects: Sequence[int] | np.ndarray, n_subjects: int, k: int, *, seed: int = 0,
                 shuffle: bool = True, rank: int = 0, world_size: int = 1) -> None:
        subjects = np.asarray(subjects)
        if subjects.ndim != 1 or not np.issubdtype(subjects.dtype, np.integer):
            raise ValueError(f"subjects must be a 1-D integer array (one subject per image), got "
                             f"{subjects.dtype} {subjects.shape}")
        if n_subjects < 1 or k < 1:
            raise ValueError(f"n_subjects and k must be >= 1, got n_subjects={n_subjects}, k={k}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        images = {s: np.flatnonzero(subjects == s) for s in np.unique(subjects).tolist()}
        #: subject -> number of images, for the subjects with fewer than ``k`` images (not sampled).
        self.excluded = {s: len(ix) for s, ix in images.items() if len(ix) < k}
        self.images = [ix for s, ix in images.items() if s not in self.excluded]
        self.subject_ids = [s for s in images if s not in self.excluded]
        self.n_subjects, self.k, self.seed, self.shuffle = n_subjects, k, seed, shuffle
        self.rank, self.world_size = rank, world_size
        if self.batches_per_epoch < 1:
            raise ValueError(f"{len(self.images)} subjects have >= {k} images ({len(self.excluded)} have fewer): not "
                             f"enough for one batch of {n_subjects} subjects x {world_size} rank(s)")
        self.epoch, self.start = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        """Batches each rank yields in a whole epoch."""
        return len(self.images) // (self.n_subjects * self.world_size)

    def epoch_batches(self, epoch: int) -> list[list[SampleKey]]:
        """This rank's batches of epoch ``epoch``, all of them (a pure function of ``seed`` and ``epoch``)."""
        gen = torch.Generator().manual_seed(stream_seed(self.seed, epoch))
        n = len(self.images)
        order = torch.randperm(n, generator=gen).tolist() if self.shuffle else list(range(n))
        picks = [self.images[i][torch.randperm(len(self.images[i]), generator=gen)[:self.k].numpy()] for i in range(n)]
        per_global = self.n_subjects * self.world_size
        batches = []
        for b in range(self.batches_per_epoch):
            first = b * per_global + self.rank * self.n_subjects
            batches.append([SampleKey(int(i), stream_seed(self.seed, epoch, int(i)))
                            for s in order[first:first + self.n_subjects] for i in picks[s]])
        return batches

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Yield epoch ``epoch`` from this rank's batch ``start`` on (0 = the whole epoch) on the next iteration."""
        if not 0 <= start <= self.batches_per_epoch:
            raise ValueError(f"start must be in [0, {self.batches_per_epoch}] (batches per epoch), got {start}")
        self.epoch, self.start = epoch, start

    def advance(self, n: int = 1) -> None:
        """Record that ``n`` more batches of this epoch were consumed; saturates at the epoch's end."""
        self.start = min(self.start + n, self.batches_per_epoch)

    def __iter__(self) -> Iterator[list[SampleKey]]:
        return iter(self.epoch_batches(self.epoch)[self.start:])

    def __len__(self) -> int:
        """Batches left in this epoch for this rank."""
        return self.batches_per_epoch - self.start

    def state_dict(self) -> dict[str, Any]:
        """The position (``epoch``, ``start``) and what it is a position in, as plain values."""
        return {"subjects": len(self.images), "n_subjects": self.n_subjects, "k": self.k, "seed": self.seed,
                "shuffle": self.shuffle, "world_size": self.world_size, "epoch": self.epoch, "start": self.start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict` of a sampler over the same data and settings.

        Raises:
            ValueError: naming the setting that differs (the data or the sampler changed since it was saved).
        """
        for name, mine in self.state_dict().items():
            if name not in ("epoch", "start") and state.get(name) != mine:
                raise ValueError(f"sampler state has {name}={state.get(name)!r} but this sampler has {mine!r}")
        self.set_epoch(state["epoch"], state["start"])


__all__ = [
    "N_LANDMARKS", "CropScaleJitter", "CropWindow", "PairedBatch", "PairedFaceDataset", "PairedRecord",
    "PairedSample", "PairedSource", "SampleKey", "SubjectBatchSampler", "collate_paired",
    "box_window", "crop_camera", "crop_image", "crop_points", "landmark_window", "stream_seed",
]
