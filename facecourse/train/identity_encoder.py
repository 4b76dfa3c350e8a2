"""An identity-supervised spectral mesh encoder for the 3D-ID loss, as a task of the training engine.

The COMA autoencoder's code :math:`z` holds whatever reconstructs the mesh best, identity and expression mixed.
This encoder (the same :class:`~facecourse.nn.SpectralEncoder`) is instead trained so that its code *is* the
identity: :math:`z = \\hat\\beta \\in \\mathbb R^d`, an estimate of the first :math:`d` = ``latent_dim`` FLAME
shape coefficients, whatever the expression and jaw of the input.

Data: synthetic people :math:`\\beta_i \\sim \\mathcal N(0, \\sigma_\\beta^2 I)`, each seen with
``n_expressions`` random expressions :math:`\\psi \\sim \\mathcal N(0, \\sigma_\\psi^2 I)` and jaw openings
(:func:`facecourse.train.encoder.sample_flame_meshes`' distribution); held-out people use another seed.

Objective: the squared error of the *neutral head* the code implies, in mm², with the shape blend shapes
:math:`S_{1..d} \\in \\mathbb R^{3V \\times d}`:

.. math:: \\mathcal L = \\frac{1}{BV} \\sum_b \\big\\| S_{1..d} (\\hat\\beta_b - \\beta_{b,1..d}) \\big\\|^2
          = \\frac{1}{BV} \\sum_b \\delta_b^\\top G\\, \\delta_b, \\qquad G = S_{1..d}^\\top S_{1..d},

so each coefficient counts by how much it moves the surface (a coefficient of sub-millimetre effect is not worth
the capacity of a large one).

Held-out metrics (:class:`IdentityMetrics`): the neutral head's per-vertex error in mm (against the *full* true
identity, so truncation to :math:`d` coefficients counts), :math:`R^2` of the :math:`d` coefficients, and
identity recognition across expressions from the code alone (retrieval top-1 and pair verification).

Runs: ``data_dir()/"runs"/"mesh_identity_encoder-<topology[:12]>-<config.key()>"``; :func:`load_identity_encoder`
rebuilds the encoder from ``last.pt`` without data; :func:`pretrained_identity_encoder` is train-or-load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from facecourse.data.paths import data_dir
from facecourse.losses.identity import verification_accuracy
from facecourse.mesh.topology import topology_hash
from facecourse.nn.autoencoder import COMA_FILTERS, INPUT_SCALES, SpectralEncoder
from facecourse.nn.baselines import vertex_errors
from facecourse.nn.hierarchy import build_hierarchy
from facecourse.train.checkpoint import Checkpoint, load_checkpoint
from facecourse.train.config import TrainConfig, register_config
from facecourse.train.encoder import flame_vertices, jaw_opening, load_flame, mesh_network_meta
from facecourse.train.loop import LAST, Task, fit
from facecourse.units import M_TO_MM

REBUILD_HINT = "facecourse.train.identity_encoder.pretrained_identity_encoder()"
"""What (re)builds an identity-encoder checkpoint, quoted in checkpoint errors."""


@register_config
@dataclass
class IdentityEncoderConfig(TrainConfig):
    """The identity encoder's training run; presets ``configs/mesh_identity_encoder/``.

    Attributes:
        model: FLAME model (``"small"``, ``"full"`` or a path), as :class:`~facecourse.train.encoder.PretrainConfig`.
        n_identities, n_test_identities: training / held-out people.
        n_expressions: meshes of each person (random expression and jaw each).
        shape_std, expression_std, jaw_std: standard deviations of :math:`\\beta`, :math:`\\psi` and the jaw
            opening angle (radians).
        latent_dim: :math:`d`, the number of leading shape coefficients the code estimates.
        filters, K, factors: the COMA encoder (as the autoencoder's).
        input_scale, input_noise: input standardisation and training noise (metres), as
            :class:`~facecourse.train.encoder.PretrainConfig`'s: with noise the code learns that vertex noise is
            not identity.

    ``seed`` seeds the training people (``2 * seed``), the held-out ones (``2 * seed + 1``), the initialisation
    and the data order. Presets: ``"ci"`` = the small synthetic model, 1024 people x 2 meshes, 3 epochs of Adam
    (384 steps, lr halved per epoch), input scaled globally with 2 mm of training noise (see
    :class:`~facecourse.train.encoder.PretrainConfig`); ``"full"`` = the FLAME-size model, 5000 people x 2 meshes (0.6 GB of float32 vertices), 40 epochs
    with the learning rate decayed x0.93 per epoch.
    """

    TASK: ClassVar[str] = "mesh_identity_encoder"
    PRESETS: ClassVar[dict[str, dict]] = {
        "ci": {"model": "small", "n_identities": 1024, "n_expressions": 2, "epochs": 3, "lr": 2e-3, "lr_decay": 0.5,
               "input_scale": "global", "input_noise": 0.002},
        "full": {"model": "full", "n_identities": 5000, "n_expressions": 2, "epochs": 40, "lr_decay": 0.93,
                 "input_scale": "global", "input_noise": 0.002},
    }

    model: str = "small"
    n_identities: int = 5000
    n_expressions: int = 2
    n_test_identities: int = 64
    shape_std: float = 1.0
    expression_std: float = 1.0
    jaw_std: float = 0.1
    latent_dim: int = 16
    filters: tuple[int, ...] = COMA_FILTERS
    K: int = 6
    factors: tuple[int, ...] = (4, 4, 4, 4)
    input_scale: str = "vertex"
    input_noise: float = 0.0
    epochs: int = 30
    batch_size: int = 16
    optimizer: str = "adam"
    lr: float = 1e-3
    lr_decay: float = 1.0
    amp: bool = False

    def __post_init__(self) -> None:
        """Check the base fields, then the identity encoder's (ValueError naming the field)."""
        self.filters = tuple(self.filters)
        self.factors = tuple(self.factors)
        super().__post_init__()
        for name, low in (("n_identities", 1), ("n_test_identities", 2), ("n_expressions", 1), ("latent_dim", 1),
                          ("K", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        for name in ("filters", "factors"):
            values = getattr(self, name)
            if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
                raise ValueError(f"{name} must be a non-empty tuple of integers >= 1, got {values!r}")
        for name in ("shape_std", "expression_std", "jaw_std", "input_noise"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.input_scale not in INPUT_SCALES:
            raise ValueError(f"input_scale must be one of {INPUT_SCALES}, got {self.input_scale!r}")


# ----------------------------------------------------------------------------------------------- data

@dataclass(frozen=True)
class People:
    """Synthetic people, each seen several times.

    Attributes:
        vertices: ``(N, E, V, 3)`` float32 metres: person ``i``'s ``E`` meshes (expression and jaw vary).
        shape: ``(N, n_shape)`` float32, every person's true shape coefficients :math:`\\beta_i`.
    """

    vertices: torch.Tensor
    shape: torch.Tensor

    def meshes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All meshes ``(N*E, V, 3)`` and each one's person index ``(N*E,)`` (person-major order)."""
        n, e = self.vertices.shape[:2]
        return self.vertices.flatten(0, 1), torch.arange(n).repeat_interleave(e)


@torch.no_grad()
def sample_people(flame, n_identities: int, n_expressions: int, seed: int = 0, shape_std: float = 1.0,
                  expression_std: float = 1.0, jaw_std: float = 0.0) -> People:
    """``n_identities`` random people (:math:`\\beta \\sim \\mathcal N(0, \\sigma_\\beta^2 I)`), each with
    ``n_expressions`` meshes of random expression :math:`\\psi \\sim \\mathcal N(0, \\sigma_\\psi^2 I)` and jaw
    opening :math:`|a|`, :math:`a \\sim \\mathcal N(0, \\sigma_{jaw}^2)` radians; deterministic in ``seed``."""
    g = torch.Generator().manual_seed(int(seed))
    n, e = n_identities, n_expressions
    shape = torch.randn(n, flame.n_shape, generator=g) * shape_std
    expression = torch.randn(n * e, flame.n_exp, generator=g) * expression_std
    jaw = jaw_opening(torch.randn(n * e, generator=g).abs() * jaw_std)
    vertices = flame_vertices(flame, shape.repeat_interleave(e, dim=0), expression, jaw)
    return People(vertices=vertices.reshape(n, e, *vertices.shape[1:]), shape=shape)


@dataclass(frozen=True)
class IdentityData:
    """What an identity-encoder run trains and is measured on.

    Attributes:
        train, test: :class:`People` (different seeds).
        template: ``(V, 3)`` float64 metres; faces: ``(F, 3)`` int64.
        shape_basis: the shape blend shapes :math:`S` ``(V, 3, n_shape)`` float64 (metres per unit coefficient).
    """

    train: People
    test: People
    template: torch.Tensor
    faces: torch.Tensor
    shape_basis: torch.Tensor


def identity_data(config: IdentityEncoderConfig) -> IdentityData:
    """The training and held-out people of ``config`` (synthetic FLAME meshes, see :func:`sample_people`)."""
    flame = load_flame(config.model)
    kw = dict(shape_std=config.shape_std, expression_std=config.expression_std, jaw_std=config.jaw_std)
    return IdentityData(
        train=sample_people(flame, config.n_identities, config.n_expressions, seed=2 * config.seed, **kw),
        test=sample_people(flame, config.n_test_identities, 2, seed=2 * config.seed + 1, **kw),
        template=flame.v_template.double().cpu(), faces=flame.faces.long().cpu(),
        shape_basis=flame.shapedirs[:, :, :flame.n_shape].double().cpu())


class LabelledMeshes(Dataset):
    """Meshes ``(N, V, 3)`` with their target shape coefficients ``(N, d)``, gathered a batch at a time."""

    def __init__(self, vertices: torch.Tensor, shape: torch.Tensor) -> None:
        if len(vertices) != len(shape):
            raise ValueError(f"need one coefficient row per mesh, got {len(vertices)} meshes, {len(shape)} rows")
        self.vertices, self.shape = vertices, shape

    def __len__(self) -> int:
        return len(self.vertices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.vertices[index], self.shape[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices)
        return self.vertices[index], self.shape[index]


# -------------------------------------------------------------------------------------------- metrics

def retrieval_accuracy(query: torch.Tensor, gallery: torch.Tensor) -> float:
    """Fraction of rows ``i`` of ``query`` ``(N, d)`` whose nearest row of ``gallery`` ``(N, d)`` (Euclidean) is
    row ``i`` (same person, other meshes); chance is ``1 / N``."""
    if query.ndim != 2 or query.shape != gallery.shape:
        raise ValueError(f"query and gallery must both be (N, d), got {tuple(query.shape)} and {tuple(gallery.shape)}")
    nearest = torch.cdist(query.double(), gallery.double()).argmin(1)
    return float((nearest == torch.arange(len(query), device=nearest.device)).double().mean())


@dataclass(frozen=True)
class IdentityMetrics:
    """Identity measured from a mesh encoder's code on held-out people, two meshes each.

    Attributes:
        neutral_mm: mean per-vertex error (mm) of the neutral head :math:`T + S_{1..d}\\hat\\beta` against the
            true :math:`T + S\\beta` (None for an encoder whose code is not :math:`\\hat\\beta`).
        r2: :math:`1 - \\sum (\\hat\\beta - \\beta_{1..d})^2 / \\sum \\beta_{1..d}^2` (None likewise).
        retrieval_top1: :func:`retrieval_accuracy` of the codes of each person's first mesh among the second ones.
        verification: best-threshold accuracy of same-person decisions by cosine similarity of the codes over
            all pairs (:func:`facecourse.losses.identity.verification_accuracy`; 0.5 = chance).
    """

    neutral_mm: float | None
    r2: float | None
    retrieval_top1: float
    verification: float

    def as_dict(self) -> dict[str, float]:
        """The metrics that are defined, by field name (the engine's validation metrics)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def neutral_head_errors(template: torch.Tensor, shape_basis: torch.Tensor, shape: torch.Tensor,
                        estimate: torch.Tensor) -> torch.Tensor:
    """Per-vertex errors ``(N, V)`` in mm of the neutral heads :math:`T + S_{1..d}\\hat\\beta` against the true
    :math:`T + S\\beta`.

    Args:
        template: :math:`T` ``(V, 3)``; shape_basis: :math:`S` ``(V, 3, n_shape)`` (metres).
        shape: true :math:`\\beta` ``(N, n_shape)``; estimate: :math:`\\hat\\beta` ``(N, d)``, ``d <= n_shape``
            (``d = 0``: every answer is the template, the baseline).
    """
    template, basis = template.double(), shape_basis.double()
    truth = template + torch.einsum("vck,nk->nvc", basis, shape.double())
    guess = template + torch.einsum("vck,nk->nvc", basis[:, :, :estimate.shape[1]], estimate.double())
    return vertex_errors(guess, truth)


@torch.no_grad()
def encode(encoder: nn.Module, vertices: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Codes ``(N, d)`` (CPU) of meshes ``(N, V, 3)`` metres by ``encoder`` (any ``(B, V, 3) -> (B, d)``
    module), in eval mode, ``batch_size`` at a time on the encoder's device."""
    was_training = encoder.training
    encoder.eval()
    dev = next(encoder.parameters()).device
    z = torch.cat([encoder(vertices[i:i + batch_size].to(dev)).cpu() for i in range(0, len(vertices), batch_size)])
    encoder.train(was_training)
    return z


def identity_metrics(encoder: nn.Module, people: People, template: torch.Tensor | None = None,
                     shape_basis: torch.Tensor | None = None) -> IdentityMetrics:
    """:class:`IdentityMetrics` of ``encoder`` on ``people`` (two or more meshes each; the first two are used).

    Args:
        encoder: ``(B, V, 3)`` metres -> ``(B, d)``.
        template, shape_basis: ``(V, 3)`` and ``(V, 3, n_shape)`` (metres): give both when the code estimates
            the first ``d`` shape coefficients, to get ``neutral_mm`` and ``r2``.
    """
    if people.vertices.shape[1] < 2:
        raise ValueError(f"identity metrics need two meshes per person, got {people.vertices.shape[1]}")
    first, second = encode(encoder, people.vertices[:, 0]), encode(encoder, people.vertices[:, 1])
    z, labels = torch.cat([first, second]), torch.arange(len(first)).repeat(2)
    verification = verification_accuracy(lambda x: F.normalize(x.double(), dim=-1), z, labels)
    neutral = r2 = None
    if shape_basis is not None:
        d, beta = z.shape[1], people.shape.double().repeat(2, 1)
        neutral = float(neutral_head_errors(template, shape_basis, beta, z).mean())
        r2 = float(1 - ((z.double() - beta[:, :d]) ** 2).sum() / (beta[:, :d] ** 2).sum())
    return IdentityMetrics(neutral_mm=neutral, r2=r2, retrieval_top1=retrieval_accuracy(first, second),
                           verification=verification)


# ------------------------------------------------------------------------------------------- task

def build_identity_encoder(template, faces, latent_dim: int = 16, filters=COMA_FILTERS, K: int = 6,
                           factors=(4, 4, 4, 4)) -> SpectralEncoder:
    """Hierarchy (cached) + :class:`SpectralEncoder` for a template ``(V, 3)`` metres and faces ``(F, 3)``."""
    template = torch.as_tensor(template).double().numpy()
    faces = torch.as_tensor(faces).long().numpy()
    return SpectralEncoder(build_hierarchy(template, faces, factors), latent_dim, filters, K)


class IdentityEncoderTask(Task):
    """Training of the identity encoder as a :class:`~facecourse.train.Task` (see the module docstring).

    Args:
        config: the run's :class:`IdentityEncoderConfig`.
        data: :func:`identity_data` of ``config`` (default: made here).

    ``best.pt`` tracks the held-out ``neutral_mm``.
    """

    best_metric = "neutral_mm"

    def __init__(self, config: IdentityEncoderConfig, data: IdentityData | None = None) -> None:
        if not isinstance(config, IdentityEncoderConfig):
            raise TypeError(f"IdentityEncoderTask needs an IdentityEncoderConfig, got {type(config).__name__}")
        self.config = config
        self.data = identity_data(config) if data is None else data
        n_shape = self.data.shape_basis.shape[-1]
        if config.latent_dim > n_shape:
            raise ValueError(f"latent_dim {config.latent_dim} exceeds the model's {n_shape} shape coefficients")
        self.topology = topology_hash(self.data.faces.numpy(), len(self.data.template))
        basis = self.data.shape_basis[:, :, :config.latent_dim].flatten(0, 1)
        self._gram = (basis.T @ basis / len(self.data.template) * M_TO_MM ** 2).float()  # G / V in mm^2
        self._gram_on: dict[torch.device, torch.Tensor] = {}

    def build_model(self) -> SpectralEncoder:
        c = self.config
        return build_identity_encoder(self.data.template, self.data.faces, c.latent_dim, c.filters, c.K, c.factors)

    def train_dataset(self) -> LabelledMeshes:
        vertices, person = self.data.train.meshes()
        return LabelledMeshes(vertices, self.data.train.shape[person, :self.config.latent_dim])

    def collate(self, samples: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch ``(meshes (B, V, 3), coefficients (B, d))`` as :meth:`LabelledMeshes.__getitems__` made it."""
        return samples

    def on_fresh_start(self, model: SpectralEncoder, dataset: LabelledMeshes) -> None:
        """Fit the input normaliser (mean, std with ``config.input_scale``) on the training meshes."""
        model.normalizer.fit(dataset.vertices.to(model.normalizer.mean.device), scale=self.config.input_scale)

    def gram(self, device: torch.device) -> torch.Tensor:
        """:math:`G / V` in mm² ``(d, d)`` on ``device`` (copied there once)."""
        if device not in self._gram_on:
            self._gram_on[device] = self._gram.to(device)
        return self._gram_on[device]

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean squared neutral-head error in mm², :math:`\\frac{1}{BV}\\sum_b \\delta_b^\\top G \\delta_b`."""
        vertices, beta = batch
        if self.config.input_noise:
            vertices = vertices + self.config.input_noise * torch.randn_like(vertices)
        delta = model(vertices) - beta
        return ((delta @ self.gram(delta.device)) * delta).sum(1).mean(), {}

    def validate(self, model: SpectralEncoder) -> dict[str, float]:
        d = self.data
        return identity_metrics(model, d.test, d.template, d.shape_basis).as_dict()

    def checkpoint_meta(self, model: SpectralEncoder) -> dict[str, Any]:
        """What :func:`load_identity_encoder` rebuilds the encoder from: ``template`` ``(V, 3)`` float64,
        ``faces`` ``(F, 3)`` int64 and the network settings ``encoder``."""
        c = self.config
        return {"template": self.data.template, "faces": self.data.faces,
                "encoder": {"latent_dim": c.latent_dim, "filters": list(c.filters), "K": c.K,
                            "factors": list(c.factors)}}


# ---------------------------------------------------------------------------------- runs, loading

def default_run_dir(config: IdentityEncoderConfig, topology: str) -> Path:
    """``data_dir()/"runs"/"mesh_identity_encoder-<topology[:12]>-<config.key()>"``."""
    return data_dir() / "runs" / f"{IdentityEncoderConfig.TASK}-{topology[:12]}-{config.key()}"


def identity_encoder_from_checkpoint(checkpoint: Checkpoint, where: str = "checkpoint") -> SpectralEncoder:
    """The :class:`SpectralEncoder` (eval mode) of an identity-encoder checkpoint; ``where`` names it in errors.

    Raises:
        CheckpointError: its meta lacks what rebuilds the network, or its faces are not of its topology.
    """
    template, faces, net = mesh_network_meta(checkpoint, "encoder", where, REBUILD_HINT)
    encoder = build_identity_encoder(template, faces, net["latent_dim"], net["filters"], net["K"], net["factors"])
    encoder.load_state_dict(checkpoint.model)
    return encoder.eval()


def load_identity_encoder(path: str | Path, map_location: Any = "cpu") -> tuple[SpectralEncoder, Checkpoint]:
    """``(encoder in eval mode, checkpoint)`` from an identity-encoder run's ``last.pt`` / ``best.pt``.

    Raises:
        CheckpointError: missing, unsafe, another format or task, or a topology mismatch (rebuild hint named).
    """
    checkpoint = load_checkpoint(path, task=IdentityEncoderConfig.TASK, map_location=map_location,
                                 rebuild_hint=REBUILD_HINT)
    return identity_encoder_from_checkpoint(checkpoint, str(path)), checkpoint


def train_identity_encoder(config: IdentityEncoderConfig | None = None, resume: bool = True, progress: bool = True,
                           device: torch.device | str | None = None, run_dir: str | Path | None = None
                           ) -> tuple[SpectralEncoder, IdentityMetrics]:
    """Train (or resume) the identity encoder of ``config`` (default ``IdentityEncoderConfig.for_mode()``).

    Returns:
        ``(encoder in eval mode on the training device, its held-out IdentityMetrics)``; the run is in
        ``run_dir`` (default :func:`default_run_dir`).
    """
    config = IdentityEncoderConfig.for_mode() if config is None else config
    task = IdentityEncoderTask(config)
    directory = Path(run_dir) if run_dir is not None else default_run_dir(config, task.topology)
    result = fit(task, directory, resume=resume, progress=progress, device=device)
    return result.model, identity_metrics(result.model, task.data.test, task.data.template, task.data.shape_basis)


def pretrained_identity_encoder(config: IdentityEncoderConfig | None = None, train_if_missing: bool = True,
                                progress: bool = True, device: torch.device | str | None = None
                                ) -> SpectralEncoder:
    """Train-or-load: the identity encoder of ``config`` (default ``IdentityEncoderConfig.for_mode()``), eval mode.

    Loads ``last.pt`` of :func:`default_run_dir` when its run finished ``config.epochs`` epochs (no data is
    sampled then); otherwise trains/resumes (unless ``train_if_missing`` is false: ``FileNotFoundError``).
    ``device``: where the encoder is (default CPU when loaded, the training device when trained).
    """
    config = IdentityEncoderConfig.for_mode() if config is None else config
    flame = load_flame(config.model)
    path = default_run_dir(config, topology_hash(flame.faces.cpu().numpy(), flame.n_vertices)) / LAST
    if path.is_file():
        encoder, checkpoint = load_identity_encoder(path)
        if checkpoint.config_key == config.key() and checkpoint.epoch >= config.epochs:
            return encoder.to(device) if device is not None else encoder
    if not train_if_missing:
        raise FileNotFoundError(f"no finished run at {path} ({config.epochs} epochs of config {config.key()}); "
                                f"call {REBUILD_HINT}")
    return train_identity_encoder(config, progress=progress, device=device)[0]
