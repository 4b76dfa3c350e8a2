"""The offline default face recogniser: a :class:`~facecourse.nn.backbones.SmallFaceEmbedder` trained on
synthetic identities with the training engine, train-or-load (what the identity loss uses without licensed
weights).

The synthetic world knows who is in each picture: its identity code :math:`z` (FLAME shape and albedo
coefficients, standard-normal units). The network regresses it from images rendered with random pose,
expression, lighting, background and crop (:func:`facecourse.datasets.synthetic_images.render_identity_views`),
:math:`\\min \\lVert f(I) - z \\rVert^2`, so that the embedding varies with identity and is invariant to
everything else; being a regression it generalises to people it has never seen (two random people have nearly
orthogonal codes, cosine :math:`\\approx 0`). Accuracy is measured on held-out identities (several views each).

The code keeps ``code_shape`` leading shape coefficients and the last ``code_albedo`` albedo coefficients, so
the embedding changes with the face's shape as well as its colour. Not every shape coefficient can be seen: the
crop frames the landmarks, which cancels absolute size, and the synthetic model's first shape component is
mostly a uniform scale (two thirds of its displacement), so its held-out R^2 stays about 0 -- the recogniser,
like any 2D method, cannot tell a large head from a small one (the 3D losses of chapter 05 can). Components 1-3
(face proportions; 0.4-1.5 mm on average over the head, up to 5 mm) are regressed with R^2 ~ 0.3-0.4 at 64 px,
components 4-7 (0.6 mm and less on average) not at all, so the presets keep four; with 2000 people, at 48 or
64 px, shape was not regressed (R^2 < 0.1) and the embedding saw skin colour only.
:func:`identity_change_losses` measures what the embedding responds to. Real recognisers (ArcFace,
VGGFace2) on real photos see both. Full mode uses the same recipe with more people and steps and a wider net.

Runs go to :func:`default_run_dir` = ``data_dir()/"runs"/"face_recogniser-<model sha256[:12]>-<config.key()>"``:
the FLAME model file the identities are rendered from is part of the cache key through its SHA-256.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from facecourse.data.download import sha256_file
from facecourse.data.paths import data_dir
from facecourse.datasets.synthetic_images import (
    SyntheticImageConfig, generate, render_identity_views, sample_identity,
)
from facecourse.flame import default_model_path
from facecourse.losses.identity import FaceRecogniser, identity_loss, unit_preprocess, verification_accuracy
from facecourse.nn.backbones import SmallFaceEmbedder
from facecourse.render import FaceParams, HeadRenderer
from facecourse.train.checkpoint import CheckpointError, load_checkpoint
from facecourse.train.config import TrainConfig, register_config
from facecourse.train.loop import FIT_META_KEY, LAST, Task, fit

HELD_OUT_IDENTITIES, HELD_OUT_VIEWS = 24, 4
"""The held-out verification set: this many unseen people, this many views each (seed ``seed + 1``)."""

BRIGHTNESS = (0.85, 1.15)
"""Range of the per-image brightness factor drawn in every training step (augmentation)."""


def _rebuild_hint(path: Path) -> str:
    return f"facecourse.train.recogniser.synthetic_recogniser() after deleting {path}"


@register_config
@dataclass
class RecogniserConfig(TrainConfig):
    """The synthetic-identity recogniser's training run; presets ``configs/face_recogniser/``.

    Attributes:
        data_version: bump when the renderer changes (the rendered training set is part of the result).
        n_identities, views: rendered training people and images of each (``n_identities * views`` images).
        size: image side in pixels (the recogniser's input size).
        width: :class:`SmallFaceEmbedder` width.
        code_shape, code_albedo: leading FLAME shape / trailing albedo coefficients the embedding regresses.

    Training: Adam (lr 3e-3, decayed per epoch by ``lr_decay``), batch 64; the CI preset's 13 epochs over
    4000 images are 819 steps (about 90 s on 2 CPU cores), full mode's 16 epochs over 6000 images 1504. Both
    render at 64 px, the CI regressor's crop size, so the identity loss compares images at the size the
    recogniser learnt from.
    """

    TASK: ClassVar[str] = "face_recogniser"
    PRESETS: ClassVar[dict[str, dict]] = {
        "ci": {"n_identities": 4000, "size": 64, "width": 16, "epochs": 13, "lr_decay": 0.8},
        "full": {"n_identities": 6000, "size": 64, "width": 24, "epochs": 16, "lr_decay": 0.82},
    }

    data_version: int = 2
    n_identities: int = 6000
    views: int = 1
    size: int = 64
    width: int = 24
    code_shape: int = 4
    code_albedo: int = 6
    epochs: int = 16
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 3e-3
    lr_decay: float = 0.82

    def __post_init__(self) -> None:
        """Check the base fields, then the recogniser's (ValueError naming the field)."""
        super().__post_init__()
        for name, low in (("data_version", 1), ("n_identities", 2), ("views", 1), ("size", 16), ("width", 1),
                          ("code_shape", 0), ("code_albedo", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.code_shape + self.code_albedo < 1:
            raise ValueError(f"code_shape + code_albedo must be >= 1, got {self.code_shape} + {self.code_albedo}")

    def regressed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """The columns of ``codes`` the embedding regresses: the leading ``code_shape`` shape coefficients and the
        trailing ``code_albedo`` albedo coefficients of :func:`render_identity_views`' codes ``(N, C)``, as
        ``(N, code_shape + code_albedo)``."""
        n = codes.shape[1]
        if self.code_shape + self.code_albedo > n:
            raise ValueError(f"codes has {n} columns, fewer than code_shape + code_albedo = "
                             f"{self.code_shape} + {self.code_albedo}")
        keep = list(range(self.code_shape)) + list(range(n - self.code_albedo, n))
        return codes[:, keep]


class IdentityImages(Dataset):
    """The rendered training set held in memory: images ``(N, 3, S, S)`` uint8 (4x less memory than float) and
    identity codes ``(N, D)`` float32; the loader gathers a batch at a time (``__getitems__``)."""

    def __init__(self, images: torch.Tensor, codes: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(codes):
            raise ValueError(f"images must be (N, 3, S, S) uint8 with one code each, got {images.dtype} "
                             f"{tuple(images.shape)} and codes {tuple(codes.shape)}")
        self.images, self.codes = images, codes

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.codes[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices)
        return self.images[index], self.codes[index]


class RecogniserTask(Task):
    """Training of :class:`SmallFaceEmbedder` on rendered synthetic identities (:func:`fit`'s task).

    The training set is rendered once (on the first :meth:`train_dataset`) and kept as uint8; the held-out set
    (:data:`HELD_OUT_IDENTITIES` people x :data:`HELD_OUT_VIEWS` views) once on the first :meth:`validate`.
    ``best.pt`` tracks ``verification_error`` = 1 - held-out verification accuracy (lower is better).
    """

    best_metric = "verification_error"

    def __init__(self, config: RecogniserConfig) -> None:
        if not isinstance(config, RecogniserConfig):
            raise TypeError(f"RecogniserTask needs a RecogniserConfig, got {type(config).__name__}")
        self.config = config
        self._train: IdentityImages | None = None
        self._held: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def code_dim(self) -> int:
        return self.config.code_shape + self.config.code_albedo

    def build_model(self) -> SmallFaceEmbedder:
        return SmallFaceEmbedder(self.code_dim, self.config.width)

    def train_dataset(self) -> IdentityImages:
        if self._train is None:
            c = self.config
            images, _, codes = render_identity_views(c.n_identities, c.views, c.size, seed=c.seed)
            self._train = IdentityImages((images * 255).round().to(torch.uint8), c.regressed_codes(codes).float())
        return self._train

    def collate(self, samples: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch ``(images (B, 3, S, S) uint8, codes (B, D))`` as :meth:`IdentityImages.__getitems__` made it."""
        return samples

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """MSE between the embedding of brightness-jittered images and their identity codes.

        The brightness factor per image is uniform in :data:`BRIGHTNESS`, drawn from the global torch RNG
        (which the engine checkpoints, so a resumed run draws the same factors)."""
        images, codes = batch
        low, high = BRIGHTNESS
        factor = low + (high - low) * torch.rand(len(images), 1, 1, 1, device=images.device)
        x = (images.float() / 255 * factor).clamp(0, 1)
        return F.mse_loss(model(unit_preprocess(x)), codes), {}

    def held_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The held-out verification set: images ``(N, 3, S, S)`` in [0, 1] and identity labels ``(N,)``."""
        if self._held is None:
            images, labels, _ = render_identity_views(HELD_OUT_IDENTITIES, HELD_OUT_VIEWS, self.config.size,
                                                      seed=self.config.seed + 1)
            self._held = images, labels
        return self._held

    def validate(self, model: SmallFaceEmbedder) -> dict[str, float]:
        """``verification_accuracy`` (best-threshold accuracy of same-person decisions, 0.5 = chance) on the
        held-out people, and ``verification_error`` = 1 - accuracy."""
        images, labels = self.held_out()
        device = next(model.parameters()).device

        def embed(x: torch.Tensor) -> torch.Tensor:  # FaceRecogniser's forward, without freezing the network
            return F.normalize(model(unit_preprocess(x)), dim=-1)

        accuracy = verification_accuracy(embed, images.to(device), labels.to(device))
        return {"verification_accuracy": accuracy, "verification_error": 1.0 - accuracy}

    def checkpoint_meta(self, model: nn.Module) -> dict[str, Any]:
        """The embedding size (``code_dim``), which the loader rebuilds the network with."""
        return {"code_dim": self.code_dim}


def recogniser(net: SmallFaceEmbedder, config: RecogniserConfig) -> FaceRecogniser:
    """``net`` as the frozen :class:`FaceRecogniser` (input ``config.size``, ``"unit"`` preprocessing)."""
    return FaceRecogniser(net, config.size, "unit", name="synthetic")


def default_run_dir(config: RecogniserConfig, model_sha256: str) -> Path:
    """``data_dir()/"runs"/"face_recogniser-<model_sha256[:12]>-<config.key()>"``, ``model_sha256`` being the
    SHA-256 of the FLAME model file the identities are rendered from."""
    return data_dir() / "runs" / f"{RecogniserConfig.TASK}-{model_sha256[:12]}-{config.key()}"


def synthetic_recogniser(mode: str | None = None, train_if_missing: bool = True, progress: bool = True,
                         ) -> FaceRecogniser:
    """The offline default recogniser: train-or-load the synthetic-identity embedder of ``mode``'s preset.

    Loads ``last.pt`` of :func:`default_run_dir` (the model after the last epoch) when its run finished;
    otherwise trains or resumes it with :func:`facecourse.train.fit` on :func:`facecourse.settings.device`
    (about 90 s on 2 CPU cores in CI mode).

    Args:
        mode: ``"ci"`` or ``"full"`` (default :func:`facecourse.settings.mode`).
        train_if_missing: train when no finished run exists (else raise ``FileNotFoundError``).
        progress: progress bar while training.

    Returns:
        the frozen :class:`FaceRecogniser` (CPU) with ``.metrics``: ``heldout_verification_accuracy`` (of the
        returned network, on unseen people; 0.5 = chance) and ``train_loss`` (mean MSE of the last epoch).

    Raises:
        CheckpointError: a file at the run's ``last.pt`` that is not a usable checkpoint (e.g. the old format).
        FileNotFoundError: no finished run and ``train_if_missing`` is false.
    """
    config = RecogniserConfig.for_mode(mode)
    run_dir = default_run_dir(config, sha256_file(default_model_path("small")))  # the heads it learns from
    path = run_dir / LAST
    finished = False
    if path.is_file():
        checkpoint = load_checkpoint(path, task=RecogniserConfig.TASK, rebuild_hint=_rebuild_hint(path))
        if checkpoint.meta.get("code_dim") != config.code_shape + config.code_albedo:
            raise CheckpointError(f"{path} holds a {checkpoint.meta.get('code_dim')}-dimensional embedding, "
                                  f"config {config.key()} needs {config.code_shape + config.code_albedo}; "
                                  f"rebuild it with {_rebuild_hint(path)}")
        finished = checkpoint.config_key == config.key() and checkpoint.epoch >= config.epochs
    if finished:
        net = SmallFaceEmbedder(checkpoint.meta["code_dim"], config.width)
        net.load_state_dict(checkpoint.model)
        own = checkpoint.meta[FIT_META_KEY]
        history, last_metrics = own["history"], own["last_metrics"]
    elif train_if_missing:
        result = fit(RecogniserTask(config), run_dir, progress=progress)
        net, history, last_metrics = result.model, result.history, result.last_metrics
    else:
        raise FileNotFoundError(f"no finished synthetic recogniser run at {run_dir} (config {config.key()})")
    rec = recogniser(net.cpu().eval(), config)
    rec.metrics = {"heldout_verification_accuracy": last_metrics["verification_accuracy"],
                   "train_loss": history[-1]["train"]["loss"]}
    return rec


@dataclass(frozen=True)
class IdentityChangeLosses:
    """Mean identity loss :math:`1 - \\cos` between ``n`` people in one view and, in another view (pose,
    expression, lighting, background and crop all redrawn), the same person (``same_person``), the person with
    someone else's shape and their own albedo (``shape_only``), with their own shape and someone else's albedo
    (``albedo_only``), or someone else (``other_person``); ``shape_only_same_view``: the shape change alone, in
    the same view (what the identity loss sees when a render's pose matches the photo). 0 = same embedding.

    A recogniser that sees shape scores ``shape_only`` clearly above ``same_person``: the shape change must
    weigh more than everything that is not identity."""

    same_person: float
    shape_only: float
    albedo_only: float
    other_person: float
    shape_only_same_view: float


@torch.no_grad()
def identity_change_losses(recogniser: nn.Module, n_people: int = 48, image_size: int = 64, seed: int = 500,
                           renderer: HeadRenderer | None = None) -> IdentityChangeLosses:
    """What a recogniser responds to: :class:`IdentityChangeLosses` of ``n_people`` random synthetic people
    (drawn as the training people are, :func:`~facecourse.datasets.synthetic_images.sample_identity`).

    Args:
        recogniser: images ``(B, 3, S, S)`` in [0, 1] -> embeddings (e.g. :func:`synthetic_recogniser`).
        n_people: people (pairs) averaged over.
        image_size: ``S``, pixels.
        seed: the people are drawn with ``seed``; the first view is rendered with ``seed``, the other with
            ``seed + 1`` (same seed, same pose, light, background and crop jitter).
        renderer: default :meth:`HeadRenderer.default`.
    """
    if isinstance(n_people, bool) or not isinstance(n_people, int) or n_people < 1:
        raise ValueError(f"n_people must be an integer >= 1, got {n_people!r}")
    renderer = renderer or HeadRenderer.default()
    config = SyntheticImageConfig()
    generator = torch.Generator().manual_seed(seed)
    person = sample_identity(n_people, renderer.albedo_model.n_components, config, generator)
    other = sample_identity(n_people, renderer.albedo_model.n_components, config, generator)

    def render(identity: FaceParams, view_seed: int) -> torch.Tensor:
        return generate(n_people, image_size, seed=view_seed, renderer=renderer, config=config,
                        identity=identity, batch_size=64).images

    first = render(person, seed)

    def loss(identity: FaceParams, view_seed: int) -> float:
        return float(identity_loss(recogniser, render(identity, view_seed), first))

    shape_swapped = FaceParams(shape=other.shape, albedo=person.albedo)
    return IdentityChangeLosses(
        same_person=loss(person, seed + 1), shape_only=loss(shape_swapped, seed + 1),
        albedo_only=loss(FaceParams(shape=person.shape, albedo=other.albedo), seed + 1),
        other_person=loss(other, seed + 1), shape_only_same_view=loss(shape_swapped, seed))
