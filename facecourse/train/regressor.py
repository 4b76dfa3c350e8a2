"""Training the image-to-FLAME regressor (chapter 06) on paired 2D-3D data, as a task of the training engine.

The objective is DECA's 2D self-supervision plus the paper's 3D supervision on paired data:

.. math::
    \\mathcal L = \\underbrace{\\lambda_{lmk}\\mathcal L_{lmk} + \\lambda_{eye}\\mathcal L_{eye}
    + \\lambda_{lip}\\mathcal L_{lip} + \\lambda_{pho}\\mathcal L_{pho} + \\lambda_{id}\\mathcal L_{id}
    + \\text{priors}}_{\\text{2D, } \\texttt{image\\_loss\\_terms}}
    + \\lambda_{v} \\mathcal L_{vertices}(\\hat V_0, V_0) + \\lambda_{3D\\text{-}ID}\\, d\\big(E(\\hat V_0), E(V_0)\\big)

with :math:`\\hat V_0, V_0` the predicted and ground-truth *neutral* heads (FLAME of the shape alone: what
NoW measures and what a photo determines), :math:`\\mathcal L_{vertices}` MICA's region-weighted L1
(:class:`~facecourse.losses.vertices.VerticesLoss`) and :math:`E` a pretrained, frozen spectral mesh encoder
(:class:`~facecourse.losses.id3d.ID3DLoss`: the COMA autoencoder's or the identity-supervised one, latent
only or with weighted hierarchy levels). Every weight and the 3D-ID variant are fields of
:class:`RegressorConfig` (presets ``configs/face_regressor/``); a weight of 0 removes its term.

Batches hold ``N`` subjects x ``K`` images (:class:`~facecourse.datasets.paired.SubjectBatchSampler`, split
over ranks under torchrun). Validation: the neutral-head error (mm) on held-out subjects of the paired data
next to the mean head's, and the NoW protocol on the NoW validation split (the synthetic NoW-format set, or
real NoW when present) next to the mean face's; ``best.pt`` keeps the best NoW median.

Runs: ``data_dir()/"runs"/"face_regressor-<topology[:12]>-<config.key()>"``; :func:`train_regressor` trains or
resumes, :func:`pretrained_regressor` is train-or-load, :func:`load_regressor` rebuilds the trained
:class:`~facecourse.nn.regressor.FaceRegressor` from a checkpoint without any data.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from facecourse.data.paths import data_dir
from facecourse.datasets.mica import mica_dataset
from facecourse.datasets.paired import (CropScaleJitter, PairedBatch, PairedFaceDataset, SubjectBatchSampler,
                                        collate_paired)
from facecourse.datasets.paired_synthetic import SPECS, synthetic_paired_dataset
from facecourse.flame import FLAME, default_model_path, load_masks, vertex_mask
from facecourse.losses.fit import init_camera
from facecourse.losses.id3d import DISTANCES, ID3DLoss
from facecourse.losses.identity import FaceRecogniser, load_recogniser
from facecourse.losses.image import image_loss_terms
from facecourse.losses.vertices import VerticesLoss, mesh_error_mm
from facecourse.mesh.topology import topology_hash
from facecourse.nn.backbones import RESNET_LAYERS, load_backbone_weights, resnet
from facecourse.nn.regressor import FaceRegressor, HeadSizes, Reconstruction, Reconstructor
from facecourse.now.baselines import baseline_flame_path
from facecourse.now.evaluate import NowReport, baseline_stats, evaluate_now
from facecourse.now.export import mean_face_prediction
from facecourse.now.layout import read_image_list
from facecourse.now.paths import default_now_dir
from facecourse.now.predict import predict_now_split
from facecourse.render.head import HeadRenderer
from facecourse.train.checkpoint import Checkpoint, load_checkpoint, verify_topology
from facecourse.train.config import TrainConfig, register_config
from facecourse.train.distributed import is_main, shutdown
from facecourse.train.loop import LAST, FitResult, Task, fit
from facecourse.train.mesh_encoders import ENCODER_KINDS, mesh_encoder_config, pretrained_mesh_encoder
from facecourse.train.recogniser import RecogniserConfig, synthetic_recogniser

SYNTHETIC_DATA = tuple(f"synthetic-{size}" for size in SPECS)
"""``RegressorConfig.data`` values naming the synthetic paired sets (:mod:`facecourse.datasets.paired_synthetic`)."""


@register_config
@dataclass
class RegressorConfig(TrainConfig):
    """The regressor's training run; presets ``configs/face_regressor/{ci,full}.yaml``.

    Attributes:
        data: ``"synthetic-ci"`` / ``"synthetic-full"`` (the synthetic paired sets) or a folder in MICA's layout
            (:func:`facecourse.datasets.mica.mica_dataset`).
        model: FLAME model of the regressor (``"small"``, ``"full"`` or a path); for synthetic data it must be
            the one the data was rendered with.
        image_size: crop side, pixels. k_images: ``K``, images per subject in a batch (``batch_size`` =
            ``N K``). crop_scale, crop_shift: the training crop jitter (:class:`CropScaleJitter`).
        n_shape, n_exp: coefficients predicted.
        backbone_depth, backbone_width: the :func:`~facecourse.nn.backbones.resnet` (18/34/50; width 64 =
            torchvision). backbone_weights: optional torchvision weight file (ImageNet), loaded strictly.
        identity_hidden, identity_depth: the identity mapping (MICA: 300 x 3).
        w_landmark ... w_light: the 2D terms (:func:`~facecourse.losses.image.image_loss_terms`).
        recogniser: the identity term's network: ``"synthetic"`` (the offline recogniser of chapter 04) or a
            kind of :func:`~facecourse.losses.identity.load_recogniser` with ``recogniser_weights``.
        w_vertices: the region-weighted vertices loss (metres) on the neutral heads.
        w_id3d: the 3D-ID loss; id3d_encoder: ``"autoencoder"`` or ``"identity"``; id3d_latent_weight,
            id3d_levels (weights of the encoder's hierarchy levels, ``()`` = latent only), id3d_distance
            (``"l1"``, ``"l2"``, ``"cosine"``), id3d_fine_tune (train the encoder too).
        now_validation: run the NoW protocol at each validation (best checkpoint by its median).
    """

    TASK: ClassVar[str] = "face_regressor"
    PRESETS: ClassVar[dict[str, dict]] = {
        # CI: 84 steps (about 30 s on 2 CPU cores, 80% of a step is the renderer), so that the ablation's
        # 4 variants x 2 seeds train in minutes; 24 or 72 epochs measured no better on the held-out heads.
        # The 3D-ID term uses the identity-supervised encoder: in the CI ablation the autoencoder's latent at
        # the same weight made the NoW median worse (0.82 +- 0.10 mm vs 0.70 +- 0.00 mm with the identity one).
        # The 2D identity term stays off (w_identity 0): with the offline recogniser (which sees shape) at 0.2,
        # the CI NoW median got worse, 2D only 0.90 +- 0.15 vs 0.73 mm, with the 3D losses 0.713 vs 0.699 mm.
        "ci": {"data": "synthetic-ci", "model": "small", "image_size": 64, "backbone_depth": 18,
               "backbone_width": 16, "epochs": 12, "batch_size": 16, "lr": 2e-3, "lr_decay": 0.87,
               "val_every": 12, "w_vertices": 30.0, "w_id3d": 0.1, "id3d_encoder": "identity"},
        "full": {"data": "synthetic-full", "model": "full", "image_size": 224, "backbone_depth": 50,
                 "backbone_width": 64, "epochs": 60, "batch_size": 32, "k_images": 4, "lr": 1e-4, "amp": True,
                 "val_every": 2, "w_vertices": 30.0, "w_id3d": 0.1, "id3d_encoder": "identity"},
    }

    data: str = "synthetic-full"
    model: str = "full"
    image_size: int = 224
    k_images: int = 2
    crop_scale: tuple[float, float] = (1.4, 1.8)
    crop_shift: float = 0.08
    n_shape: int = 100
    n_exp: int = 50
    backbone_depth: int = 50
    backbone_width: int = 64
    backbone_weights: str | None = None
    identity_hidden: int = 300
    identity_depth: int = 3
    w_landmark: float = 1.0
    w_eye: float = 1.0
    w_lip: float = 0.5
    w_photometric: float = 2.0
    w_identity: float = 0.0
    w_shape: float = 1e-4
    w_expression: float = 1e-4
    w_albedo: float = 1e-4
    w_light: float = 1.0
    recogniser: str = "synthetic"
    recogniser_weights: str | None = None
    w_vertices: float = 0.0
    w_id3d: float = 0.0
    id3d_encoder: str = "autoencoder"
    id3d_latent_weight: float = 1.0
    id3d_levels: tuple[float, ...] = ()
    id3d_distance: str = "l2"
    id3d_fine_tune: bool = False
    now_validation: bool = True
    epochs: int = 60
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 1e-4
    amp: bool = False

    def __post_init__(self) -> None:
        """Check the base fields, then the regressor's (ValueError naming the field)."""
        self.crop_scale = tuple(self.crop_scale)
        self.id3d_levels = tuple(self.id3d_levels)
        super().__post_init__()
        for name, low in (("image_size", 32), ("k_images", 1), ("n_shape", 1), ("n_exp", 0), ("backbone_width", 1),
                          ("identity_hidden", 1), ("identity_depth", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.backbone_depth not in RESNET_LAYERS:
            raise ValueError(f"backbone_depth must be one of {sorted(RESNET_LAYERS)}, got {self.backbone_depth!r}")
        if self.batch_size % self.k_images:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of k_images {self.k_images} "
                             f"(N subjects x K images)")
        weights = [f.name for f in dataclasses.fields(self) if f.name.startswith("w_")]
        for name in weights + ["id3d_latent_weight", "crop_shift"]:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if any(not (isinstance(w, (int, float)) and w >= 0) for w in self.id3d_levels):
            raise ValueError(f"id3d_levels must be weights >= 0, got {self.id3d_levels!r}")
        if self.id3d_encoder not in ENCODER_KINDS:
            raise ValueError(f"id3d_encoder must be one of {ENCODER_KINDS}, got {self.id3d_encoder!r}")
        if self.id3d_distance not in DISTANCES:
            raise ValueError(f"id3d_distance must be one of {DISTANCES}, got {self.id3d_distance!r}")
        CropScaleJitter(self.crop_scale, self.crop_shift)  # its own checks
        if self.data in SYNTHETIC_DATA and SPECS[self.data.removeprefix("synthetic-")].flame_size != self.model:
            spec = SPECS[self.data.removeprefix("synthetic-")]
            raise ValueError(f"data {self.data!r} is rendered with the {spec.flame_size!r} FLAME model; model is "
                             f"{self.model!r} (set model={spec.flame_size!r})")

    @property
    def subjects_per_batch(self) -> int:
        """``N``, subjects per global batch."""
        return self.batch_size // self.k_images


# ------------------------------------------------------------------------------------------- the model

def build_regressor(config: RegressorConfig, n_albedo: int) -> FaceRegressor:
    """A fresh :class:`FaceRegressor` of ``config`` (backbone weights loaded when ``backbone_weights`` is set)."""
    backbone = resnet(config.backbone_depth, config.backbone_width)
    if config.backbone_weights:
        load_backbone_weights(backbone, config.backbone_weights)
    return FaceRegressor(backbone, config.n_shape, HeadSizes(config.n_exp, n_albedo), config.identity_hidden,
                         config.identity_depth)


@dataclass
class TrainingOutput:
    """:class:`RegressorTraining`'s output: the reconstruction and the 3D terms (None when not computed).

    Attributes:
        reconstruction: the :class:`~facecourse.nn.regressor.Reconstruction`.
        vertices: scalar vertices loss (metres) or None. id3d: scalar 3D-ID loss or None.
    """

    reconstruction: Reconstruction
    vertices: torch.Tensor | None
    id3d: torch.Tensor | None


class RegressorTraining(nn.Module):
    """What the engine trains: the :class:`Reconstructor` and the 3D losses, in one ``forward`` (so that DDP
    sees every use of the parameters, a fine-tuned 3D-ID encoder's included).

    Args:
        reconstructor: regressor + FLAME + renderer. vertices_loss: or None. id3d_loss: or None.
    """

    def __init__(self, reconstructor: Reconstructor, vertices_loss: VerticesLoss | None,
                 id3d_loss: ID3DLoss | None):
        super().__init__()
        self.reconstructor, self.vertices_loss, self.id3d_loss = reconstructor, vertices_loss, id3d_loss

    @property
    def regressor(self) -> FaceRegressor:
        """The trained image-to-FLAME network."""
        return self.reconstructor.regressor

    def forward(self, images: torch.Tensor, target_neutral: torch.Tensor | None = None) -> TrainingOutput:
        """Reconstruct ``images`` ``(B, 3, S, S)``; with ``target_neutral`` ``(B, V, 3)`` metres, the 3D terms."""
        rec = self.reconstructor(images)
        vertices = id3d = None
        if target_neutral is not None:
            if self.vertices_loss is not None:
                vertices = self.vertices_loss(rec.neutral, target_neutral)
            if self.id3d_loss is not None:
                id3d = self.id3d_loss(rec.neutral, target_neutral)
        return TrainingOutput(rec, vertices, id3d)


def load_renderer(config: RegressorConfig) -> HeadRenderer:
    """The :class:`HeadRenderer` of ``config.model`` with ``n_shape`` / ``n_exp`` components."""
    path = Path(config.model) if Path(config.model).suffix == ".pkl" else default_model_path(config.model)
    return HeadRenderer(FLAME.from_file(path, n_shape=config.n_shape, n_exp=config.n_exp),
                        load_masks(path.parent))


# ---------------------------------------------------------------------------------------------- data

def paired_data(config: RegressorConfig, split: str, flame: FLAME, progress: bool = True) -> PairedFaceDataset:
    """The paired images of ``config.data`` (``split`` ``"train"`` with the crop jitter, ``"val"`` centre
    crops; a MICA-layout folder has no validation split: ``"val"`` raises ``FileNotFoundError``)."""
    jitter = CropScaleJitter(config.crop_scale, config.crop_shift) if split == "train" else None
    if config.data in SYNTHETIC_DATA:
        return synthetic_paired_dataset(config.data.removeprefix("synthetic-"), split, config.image_size,
                                        jitter if jitter is not None else False, progress=progress)
    if split != "train":
        raise FileNotFoundError(f"{config.data} (MICA layout) has no held-out split; validation uses NoW only")
    return mica_dataset(config.data, flame, config.image_size, jitter, seed=config.seed)


def typical_camera_scale(dataset: PairedFaceDataset, flame: FLAME, n: int = 64) -> float:
    """The median weak-perspective scale that frames the mean face's landmarks on the dataset's crops
    (:func:`~facecourse.losses.fit.init_camera` on up to ``n`` evenly spaced centre-crop samples): the
    regressor's :math:`s_0`."""
    step = max(1, len(dataset) // n)
    samples = [dataset[i] for i in range(0, len(dataset), step)][:n]
    targets = torch.stack([s.landmarks for s in samples])
    visibility = torch.stack([s.visibility for s in samples])
    with torch.no_grad():
        model_landmarks = flame(batch_size=1).landmarks.expand(len(samples), -1, -1)
    return float(init_camera(model_landmarks.to(targets), targets, visibility)[:, 0].median())


# ---------------------------------------------------------------------------------------------- task

class RegressorTask(Task):
    """The regressor's training as a :class:`~facecourse.train.Task` (module docstring).

    Args:
        config: the run's :class:`RegressorConfig`.
        progress: progress bars of data builds and of the encoders' / recogniser's training when they are
            trained here (train-or-load).
        now_dir: the NoW folder of the validation (default :func:`facecourse.now.paths.default_now_dir`).
    """

    def __init__(self, config: RegressorConfig, progress: bool = True, now_dir: str | Path | None = None) -> None:
        if not isinstance(config, RegressorConfig):
            raise TypeError(f"RegressorTask needs a RegressorConfig, got {type(config).__name__}")
        self.config, self.progress = config, progress
        self.renderer = load_renderer(config)
        flame = self.renderer.flame
        self.topology = topology_hash(flame.faces.cpu().numpy(), flame.n_vertices)
        self.best_metric = "now_median_mm" if config.now_validation else "val_face_mm"
        self.now_dir = Path(now_dir) if now_dir is not None else (default_now_dir() if config.now_validation else None)
        self.recogniser = self._recogniser() if config.w_identity > 0 else None
        self._baselines: dict[str, float] | None = None

    def _recogniser(self) -> FaceRecogniser:
        c = self.config
        if c.recogniser == "synthetic":
            return synthetic_recogniser(progress=self.progress)
        if not c.recogniser_weights:
            raise ValueError(f"recogniser {c.recogniser!r} needs recogniser_weights (a local weight file)")
        return load_recogniser(c.recogniser, c.recogniser_weights)

    def _id3d_loss(self) -> ID3DLoss:
        c = self.config
        encoder = pretrained_mesh_encoder(c.id3d_encoder, progress=self.progress)
        return ID3DLoss(encoder, encoder.topology, self.topology, latent_weight=c.id3d_latent_weight,
                        level_weights=c.id3d_levels or None, distance=c.id3d_distance, fine_tune=c.id3d_fine_tune)

    def build_model(self) -> RegressorTraining:
        c = self.config
        regressor = build_regressor(c, self.renderer.albedo_model.n_components)
        vertices = (VerticesLoss.from_masks(self.renderer.masks, self.renderer.flame.n_vertices)
                    if c.w_vertices > 0 else None)
        return RegressorTraining(Reconstructor(regressor, self.renderer), vertices,
                                 self._id3d_loss() if c.w_id3d > 0 else None)

    def train_dataset(self) -> PairedFaceDataset:
        return paired_data(self.config, "train", self.renderer.flame, self.progress)

    def batch_sampler(self, dataset: PairedFaceDataset, batch_size: int, rank: int, world_size: int
                      ) -> SubjectBatchSampler:
        """``batch_size / K`` subjects x ``K`` images per rank (:class:`SubjectBatchSampler`)."""
        return SubjectBatchSampler(dataset.subjects, batch_size // self.config.k_images, self.config.k_images,
                                   seed=self.config.seed, rank=rank, world_size=world_size)

    def collate(self, samples: list) -> PairedBatch:
        return collate_paired(samples)

    def on_fresh_start(self, model: RegressorTraining, dataset: PairedFaceDataset) -> None:
        """Set the regressor's camera scale :math:`s_0` from the training crops (:func:`typical_camera_scale`)."""
        centre = PairedFaceDataset(dataset.source, dataset.image_size, None, seed=dataset.seed)
        model.regressor.set_camera_scale(typical_camera_scale(centre, self.renderer.flame))

    def loss(self, model: nn.Module, batch: PairedBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = model(batch.images, batch.neutral)
        rec = out.reconstruction
        if self.recogniser is not None:
            self.recogniser.to(batch.images.device)
        terms = image_loss_terms(self.config, rec.head, rec.params, batch.images, batch.landmarks,
                                 batch.visibility, self.recogniser, batch.mask)
        if out.vertices is not None:
            terms["vertices"] = self.config.w_vertices * out.vertices
        if out.id3d is not None:
            terms["id3d"] = self.config.w_id3d * out.id3d
        return sum(terms.values()), terms

    def validate(self, model: RegressorTraining) -> dict[str, float]:
        """Held-out neutral-head errors (``val_head_mm``, ``val_face_mm``: mean per-vertex mm after centring,
        whole head and face region) and the mean head's (``val_mean_head_*``) when the data has a held-out
        split; the NoW protocol's ``now_median_mm``, ``now_mean_mm``, ``now_std_mm`` and the mean face's
        (``now_mean_face_*``) when ``now_validation``."""
        regressor = model.regressor
        device = next(regressor.parameters()).device
        metrics = held_out_errors(regressor, self.renderer, self.config, device)
        if self.now_dir is not None:
            metrics.update(now_errors(regressor, self.now_dir, self.config.image_size, device))
            if self._baselines is None:
                stats = mean_face_stats(self.now_dir)["all"]
                self._baselines = {f"now_mean_face_{k}_mm": float(stats[k]) for k in ("median", "mean", "std")}
            metrics.update(self._baselines)
        return metrics

    def checkpoint_meta(self, model: RegressorTraining) -> dict[str, Any]:
        """What :func:`load_regressor` checks: the albedo size of the head (the config gives the rest)."""
        return {"n_albedo": int(model.regressor.sizes.n_albedo)}


@torch.no_grad()
def neutral_errors(regressor: FaceRegressor, renderer: HeadRenderer, dataset: PairedFaceDataset,
                   device: torch.device, batch_size: int = 32) -> dict[str, float]:
    """Mean per-vertex error (mm, centroids aligned) of the predicted neutral heads against the ground truth,
    whole head and ``face`` region, and the same for the mean head (the "ignore the photo" baseline)."""
    flame = renderer.flame
    predicted, target = [], []
    for start in range(0, len(dataset), batch_size):
        batch = collate_paired([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        shape = regressor(batch.images.to(device)).shape
        predicted.append(flame(shape=shape.to(next(flame.buffers()).device)).vertices.cpu())
        target.append(batch.neutral)
    predicted, target = torch.cat(predicted).float(), torch.cat(target).float()
    mean_head = flame(batch_size=1).vertices.cpu().float().expand_as(target)
    face = vertex_mask(renderer.masks, ["face"], flame.n_vertices) if "face" in renderer.masks else None
    out = {}
    for name, pred in (("val", predicted), ("val_mean", mean_head)):
        out[f"{name}_head_mm"] = mesh_error_mm(pred, target)["mean"]
        if face is not None:
            out[f"{name}_face_mm"] = mesh_error_mm(pred, target, face)["mean"]
    return out


def held_out_errors(regressor: FaceRegressor, renderer: HeadRenderer, config: RegressorConfig,
                    device: torch.device | str) -> dict[str, float]:
    """:func:`neutral_errors` on the held-out subjects of ``config``'s paired data (``val_*`` of the regressor,
    ``val_mean_*`` of the mean head), or ``{}`` when the data has no held-out split."""
    try:
        val = paired_data(config, "val", renderer.flame, progress=False)
    except FileNotFoundError:
        return {}
    return neutral_errors(regressor, renderer, val, device)


def mean_face_stats(now_dir: str | Path, split: str = "val") -> dict:
    """:func:`~facecourse.now.evaluate.baseline_stats` of the template head (the mean face, "ignore the photo")
    on ``split`` of ``now_dir``: ``"all"`` summary (mm), per-subject ``"_distances"`` and ``"_counts"``."""
    images = read_image_list(now_dir, split)
    flame = FLAME.from_file(baseline_flame_path(now_dir), n_shape=1, n_exp=0)
    template = mean_face_prediction(flame)
    return baseline_stats(now_dir, images, lambda subject: template)


@torch.no_grad()
def now_report(regressor: FaceRegressor, now_dir: str | Path, image_size: int, device: torch.device | str = "cpu",
               split: str = "val") -> NowReport:
    """The NoW protocol on ``split`` of ``now_dir`` for ``regressor``: its neutral heads predicted from the
    face-box crops (written to a temporary folder) and evaluated (:func:`facecourse.now.evaluate_now`)."""
    images = read_image_list(now_dir, split)
    flame = FLAME.from_file(baseline_flame_path(now_dir), n_shape=regressor.n_shape, n_exp=0)
    with tempfile.TemporaryDirectory(prefix="now-pred-") as pred_dir:
        predict_now_split(lambda crops: regressor(crops).shape, now_dir, images, pred_dir, flame, image_size,
                          device=device)
        return evaluate_now(now_dir, pred_dir, split=split, progress=False)


def now_errors(regressor: FaceRegressor, now_dir: str | Path, image_size: int, device: torch.device | str = "cpu",
               split: str = "val") -> dict[str, float]:
    """:func:`now_report`'s summary: ``now_median_mm``, ``now_mean_mm``, ``now_std_mm`` and ``now_failed``
    (images not evaluated)."""
    report = now_report(regressor, now_dir, image_size, device, split)
    stats = report.stats()["all"]
    return {"now_median_mm": float(stats["median"]), "now_mean_mm": float(stats["mean"]),
            "now_std_mm": float(stats["std"]), "now_failed": float(len(report.records) - stats["n_images"])}


# -------------------------------------------------------------------------------------- runs

def pretrained_inputs_key(config: RegressorConfig) -> str:
    """A short digest of the presets of the pretrained networks the training of ``config`` uses, in the current
    mode: the synthetic recogniser's when ``w_identity > 0``, the 3D-ID encoder's when ``w_id3d > 0``; ``""``
    when it uses none. A regressor trained with another encoder or recogniser is another run."""
    keys = []
    if config.w_identity > 0 and config.recogniser == "synthetic":
        keys.append(f"recogniser={RecogniserConfig.for_mode().key()}")
    if config.w_id3d > 0:
        keys.append(f"{config.id3d_encoder}={mesh_encoder_config(config.id3d_encoder).key()}")
    return hashlib.sha256(";".join(keys).encode()).hexdigest()[:8] if keys else ""


def default_run_dir(config: RegressorConfig, topology: str) -> Path:
    """``data_dir()/"runs"/"face_regressor-<topology[:12]>-<config.key()>[-<pretrained_inputs_key>]"``."""
    inputs = pretrained_inputs_key(config)
    return data_dir() / "runs" / f"{RegressorConfig.TASK}-{topology[:12]}-{config.key()}{'-' + inputs if inputs else ''}"


def train_regressor(config: RegressorConfig | None = None, run_dir: str | Path | None = None, resume: bool = True,
                    progress: bool = True, device: torch.device | str | None = None,
                    num_workers: int = 0) -> FitResult:
    """Train (or resume) the regressor of ``config`` (default the preset of the current mode) with
    :func:`facecourse.train.fit`; returns its :class:`~facecourse.train.FitResult` (``model`` is the
    :class:`RegressorTraining`, ``model.regressor`` the network)."""
    config = RegressorConfig.for_mode() if config is None else config
    task = RegressorTask(config, progress=progress)
    directory = Path(run_dir) if run_dir is not None else default_run_dir(config, task.topology)
    return fit(task, directory, resume=resume, progress=progress, device=device, num_workers=num_workers)


def load_regressor(path: str | Path, map_location: Any = "cpu") -> tuple[FaceRegressor, RegressorConfig, Checkpoint]:
    """Rebuild the trained :class:`FaceRegressor` (eval mode) from a ``face_regressor`` checkpoint.

    Returns:
        ``(regressor, config, checkpoint)``; run it with the FLAME model of ``config.model``
        (:func:`load_renderer`), whose topology the checkpoint records.

    Raises:
        CheckpointError: not a regressor checkpoint (named), or unsafe/corrupt.
    """
    checkpoint = load_checkpoint(path, task=RegressorConfig.TASK, map_location=map_location)
    config = RegressorConfig.from_dict(checkpoint.config)
    regressor = build_regressor(dataclasses.replace(config, backbone_weights=None), checkpoint.meta["n_albedo"])
    prefix = "reconstructor.regressor."
    regressor.load_state_dict({k.removeprefix(prefix): v for k, v in checkpoint.model.items() if k.startswith(prefix)})
    return regressor.eval(), config, checkpoint


def pretrained_regressor(config: RegressorConfig | None = None, progress: bool = True,
                         device: torch.device | str | None = None) -> tuple[FaceRegressor, FitResult | None, Path]:
    """Train-or-load: the regressor of ``config`` after its last epoch, its run (None when loaded) and the
    checkpoint path (``last.pt`` of :func:`default_run_dir`)."""
    config = RegressorConfig.for_mode() if config is None else config
    renderer = load_renderer(config)
    topology = topology_hash(renderer.flame.faces.cpu().numpy(), renderer.flame.n_vertices)
    path = default_run_dir(config, topology) / LAST
    if path.is_file():
        regressor, _, checkpoint = load_regressor(path)
        if checkpoint.config_key == config.key() and checkpoint.epoch >= config.epochs:
            verify_topology(checkpoint, topology, str(path))
            return regressor, None, path
    result = train_regressor(config, progress=progress, device=device)
    return result.model.regressor.eval(), result, result.last_path


# -------------------------------------------------------------------------------------------- CLI

def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["lr=1e-3", "id3d_levels=[1, 0.5]"]`` -> ``{"lr": 0.001, "id3d_levels": [1, 0.5]}`` (values parsed as
    YAML; the config checks names and types)."""
    import yaml  # light, but only the CLI needs it here

    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"an override must look like name=value, got {pair!r}")
        out[name.strip()] = yaml.safe_load(value)
    return out


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and ``--set NAME=VALUE...``, the config options ``train`` and ``ablate`` share."""
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="a YAML config (configs/face_regressor/ci.yaml or full.yaml); default: the preset of "
                             "FACECOURSE_MODE")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", dest="overrides",
                        help="override config fields, e.g. --set w_id3d=0.5 id3d_encoder=identity seed=1")


def config_from_args(args: argparse.Namespace, command: str) -> RegressorConfig:
    """The :class:`RegressorConfig` of ``--config`` (default the mode's preset) with the ``--set`` overrides; a
    bad file, name or value exits with a message that starts with ``command``."""
    try:
        base = RegressorConfig.load_yaml(args.config) if args.config is not None else RegressorConfig.for_mode()
        return RegressorConfig.from_dict({**base.to_dict(), **parse_overrides(args.overrides)})
    except (FileNotFoundError, ValueError, TypeError) as error:
        raise SystemExit(f"{command}: {error}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``facecourse train``."""
    add_config_arguments(parser)
    parser.add_argument("--run-dir", type=Path, dest="run_dir",
                        help="run directory (default <data>/runs/face_regressor-<topology>-<config key>)")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                        help="continue from the run directory's last.pt (default); --no-resume starts over")
    parser.add_argument("--device", help="torch device (default: FACECOURSE_DEVICE, CUDA if available)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``facecourse train`` (also under ``torchrun --nproc_per_node N -m facecourse train ...``); rank 0
    prints the last validation metrics, the run directory and the checkpoint."""
    config = config_from_args(args, "train")
    result = train_regressor(config, args.run_dir, resume=args.resume, progress=not args.no_progress,
                             device=args.device, num_workers=args.workers)
    if is_main():
        shown = ", ".join(f"{k} {v:.3f}" for k, v in sorted(result.last_metrics.items()))
        print(f"epochs: {result.epoch}; last validation: {shown or 'none'}")
        print(f"run directory: {result.run_dir}")
        print(f"checkpoint: {result.last_path}")
    shutdown()
    return 0


__all__ = [
    "RegressorConfig", "RegressorTask", "RegressorTraining", "SYNTHETIC_DATA", "TrainingOutput", "add_config_arguments",
    "build_regressor", "config_from_args", "default_run_dir", "held_out_errors", "load_regressor", "load_renderer",
    "mean_face_stats", "neutral_errors", "now_errors", "now_report", "paired_data",
    "parse_overrides", "pretrained_inputs_key", "pretrained_regressor", "train_regressor", "typical_camera_scale",
]
