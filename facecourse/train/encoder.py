"""Pre-training of the COMA mesh autoencoder whose encoder the 3D-ID loss uses, as a task of the training engine.

Data: synthetic FLAME meshes (random identity :math:`\\beta \\sim \\mathcal N(0, \\sigma_\\beta^2 I)` and
expression :math:`\\psi \\sim \\mathcal N(0, \\sigma_\\psi^2 I)` through :class:`facecourse.flame.FLAME`) by
default, or CoMA's registered meshes when ``data_dir()/"COMA_data"`` exists (:mod:`facecourse.datasets.coma`).

Objective (COMA): the L1 distance in per-vertex normalised coordinates,
:math:`\\frac{1}{3BV}\\sum |(\\hat X - X) / \\sigma|`, with SGD (momentum 0.9, learning rate
:math:`8\\cdot10^{-3}` decayed by 0.99 per epoch, weight decay :math:`5\\cdot10^{-4}`, batch 16).
Reported error: the Euclidean distance :math:`\\|\\hat x_v - x_v\\|` in millimetres over every vertex of every
held-out mesh (mean, median, std), as COMA reports it, measured after every epoch (the engine's validation).

Training runs through :func:`facecourse.train.fit` (:class:`AutoencoderTask`) in the run directory
:func:`default_run_dir` = ``data_dir()/"runs"/"mesh_autoencoder-<topology[:12]>-<config.key()>"``. Its ``last.pt``
(the engine's :class:`~facecourse.train.Checkpoint`) holds the weights with the normalisation buffers and, in
``meta``, the template, faces and network settings the hierarchy is rebuilt from, so :func:`load_autoencoder`
needs no data. :func:`load_pretrained_autoencoder` is train-or-load.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from facecourse.data.paths import data_dir
from facecourse.mesh.topology import topology_hash
from facecourse.nn.autoencoder import COMA_FILTERS, INPUT_SCALES, MeshAutoencoder
from facecourse.nn.baselines import error_summary, vertex_errors
from facecourse.nn.hierarchy import build_hierarchy
from facecourse.train.checkpoint import Checkpoint, CheckpointError, load_checkpoint, verify_topology
from facecourse.train.config import OPTIMIZERS, TrainConfig, register_config
from facecourse.train.distributed import is_main, shutdown, unwrap_model
from facecourse.train.loop import FIT_META_KEY, LAST, Task, fit

DATA_SOURCES = ("auto", "synthetic", "coma")
LOSS_SCALES = ("vertex", "global")
REBUILD_HINT = "facecourse pretrain-encoder"
"""The command that (re)builds a pre-training checkpoint, quoted in checkpoint errors."""


@register_config
@dataclass
class PretrainConfig(TrainConfig):
    """Everything that defines a pre-training run (COMA's settings by default); presets ``configs/mesh_autoencoder/``.

    Attributes:
        model: FLAME model of the synthetic data and template: ``"small"``, ``"full"`` (synthetic sizes, or
            real FLAME 2020 when present, see ``facecourse.flame.default_model_path``) or a path.
        data: ``"synthetic"``, ``"coma"`` or ``"auto"`` (CoMA when its folder holds meshes).
        n_train, n_test: synthetic meshes for training / the held-out split.
        shape_std, expression_std: standard deviation of the sampled FLAME coefficients.
        jaw_std: standard deviation of the sampled jaw opening (radians; 0 = closed, as before; see
            :func:`sample_flame_meshes`).
        coma_split, coma_held_out: CoMA split (see :func:`facecourse.datasets.coma.coma_split`).
        latent_dim, filters, K, factors: network (COMA: 8, (16, 16, 16, 32), 6, (4, 4, 4, 4)).
        loss_scale: what the L1 residual is divided by: ``"vertex"`` = each vertex's standard deviation
            :math:`\\sigma_v` (COMA: a vertex that barely moves weighs as much as the chin), ``"global"`` = one
            number, :math:`\\mathrm{mean}_v\\, \\sigma_v` (every millimetre counts alike, as in the reported
            error).
        input_scale: how the encoder's input is standardised (:meth:`~facecourse.nn.autoencoder.VertexNormalizer.fit`):
            ``"vertex"`` (COMA) or ``"global"`` (one scale: the encoder does not magnify the vertices that barely
            vary, which makes its features react to noise more than to identity; measured in notebook 05).
        input_noise: standard deviation (metres) of Gaussian noise added to the input meshes in training, the
            target staying clean (a denoising autoencoder: its code learns to ignore vertex noise); 0 = off.
        linear_shortcut: the network's linear shortcuts input -> code and code -> output
            (:mod:`facecourse.nn.autoencoder`); False = COMA's network.

    The optimiser fields are :class:`~facecourse.train.TrainConfig`'s, with COMA's values as defaults (SGD,
    lr 8e-3 decayed x0.99 per epoch, momentum 0.9, weight decay 5e-4, batch 16, 300 epochs). ``seed`` seeds
    the synthetic meshes (training ``2 * seed``, held-out ``2 * seed + 1``), the initialisation and the data
    order. ``amp`` defaults to False: the network's sparse Laplacian products run in float32, as they always
    have (bf16 sparse products are not tested here).

    Presets (COMA's network plus both linear shortcuts, ``linear_shortcut``; measured in
    ``benchmarks/bench_encoder.py``): ``"ci"`` = the small synthetic model, 2400 heads, 3 epochs of Adam at
    batch 16 (450 steps, about a minute of CPU): lr 6e-3 with a 30-step linear warm-up and a cosine decay, L1
    in one global scale, the input scaled globally and 2 mm of training noise on it (the 3D-ID loss needs
    features that tell another person from vertex noise); held-out error 1.26 mm next to PCA's 1.15 mm at the
    same latent size (COMA's network alone, same recipe: 3.33 mm; the mean head 4.2 mm). ``"full"`` = the
    FLAME-size model (real FLAME 2020 when present) or CoMA, 20k heads, 60 epochs of the same recipe (warm-up
    500 steps; not measured on this CPU-only project).
    COMA's own schedule (SGD, lr 8e-3 x0.99 per epoch, 300 epochs, per-vertex L1, no shortcuts) is the fields'
    defaults.
    """

    TASK: ClassVar[str] = "mesh_autoencoder"
    PRESETS: ClassVar[dict[str, dict]] = {
        "ci": {"model": "small", "data": "synthetic", "n_train": 2400, "n_test": 64, "epochs": 3, "batch_size": 16,
               "optimizer": "adam", "lr": 6e-3, "schedule": "cosine", "warmup_steps": 30, "weight_decay": 0.0,
               "loss_scale": "global", "input_scale": "global", "input_noise": 0.002, "linear_shortcut": True},
        "full": {"model": "full", "n_train": 20000, "epochs": 60, "batch_size": 16, "optimizer": "adam", "lr": 6e-3,
                 "schedule": "cosine", "warmup_steps": 500, "weight_decay": 0.0, "loss_scale": "global",
                 "input_scale": "global", "input_noise": 0.002, "linear_shortcut": True},
    }

    model: str = "small"
    data: str = "auto"
    n_train: int = 10000
    n_test: int = 1000
    shape_std: float = 1.0
    expression_std: float = 1.0
    jaw_std: float = 0.0
    coma_split: str = "sliced"
    coma_held_out: str | None = None
    latent_dim: int = 8
    filters: tuple[int, ...] = COMA_FILTERS
    K: int = 6
    factors: tuple[int, ...] = (4, 4, 4, 4)
    loss_scale: str = "vertex"
    input_scale: str = "vertex"
    input_noise: float = 0.0
    linear_shortcut: bool = False
    epochs: int = 300
    batch_size: int = 16
    optimizer: str = "sgd"
    lr: float = 8e-3
    lr_decay: float = 0.99
    momentum: float = 0.9
    weight_decay: float = 5e-4
    amp: bool = False

    def __post_init__(self) -> None:
        """Check the base fields, then the autoencoder's (ValueError naming the field)."""
        self.filters = tuple(self.filters)
        self.factors = tuple(self.factors)
        super().__post_init__()
        if self.data not in DATA_SOURCES:
            raise ValueError(f"data must be one of {DATA_SOURCES}, got {self.data!r}")
        for name in ("n_train", "n_test", "latent_dim", "K"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("filters", "factors"):
            values = getattr(self, name)
            if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
                raise ValueError(f"{name} must be a non-empty tuple of integers >= 1, got {values!r}")
        if self.loss_scale not in LOSS_SCALES:
            raise ValueError(f"loss_scale must be one of {LOSS_SCALES}, got {self.loss_scale!r}")
        if self.input_scale not in INPUT_SCALES:
            raise ValueError(f"input_scale must be one of {INPUT_SCALES}, got {self.input_scale!r}")
        if not isinstance(self.linear_shortcut, bool):
            raise ValueError(f"linear_shortcut must be true or false, got {self.linear_shortcut!r}")
        if not self.input_noise >= 0:
            raise ValueError(f"input_noise must be >= 0 (metres), got {self.input_noise}")
        for name in ("shape_std", "expression_std", "jaw_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


# ----------------------------------------------------------------------------------------------- data

def load_flame(model: str = "small"):
    """The FLAME module of ``model`` (``"small"``/``"full"`` via ``default_model_path``, or a file path)."""
    from facecourse.flame import FLAME, default_model_path
    from facecourse.flame.paths import SIZES

    path = default_model_path(model) if model in SIZES else Path(model)
    return FLAME.from_file(path)


@torch.no_grad()
def flame_vertices(flame, shape: torch.Tensor, expression: torch.Tensor, jaw_pose: torch.Tensor | None = None,
                   batch_size: int = 256) -> torch.Tensor:
    """FLAME heads of given coefficients, computed ``batch_size`` at a time on the model's device.

    Args:
        flame: a :class:`facecourse.flame.FLAME`.
        shape: ``(n, <= n_shape)``; expression: ``(n, <= n_exp)``; jaw_pose: ``(n, 3)`` axis-angle radians or
            ``None`` (closed); every other pose is zero.

    Returns:
        ``(n, V, 3)`` float32 vertices in metres (CPU).
    """
    dev = flame.v_template.device
    jaw = torch.zeros(len(shape), 3) if jaw_pose is None else jaw_pose
    return torch.cat([flame(shape=shape[i:i + batch_size].to(dev), expression=expression[i:i + batch_size].to(dev),
                            jaw_pose=jaw[i:i + batch_size].to(dev)).vertices.float().cpu()
                      for i in range(0, len(shape), batch_size)])


def jaw_opening(angles: torch.Tensor) -> torch.Tensor:
    """Jaw poses ``(n, 3)`` (axis-angle) that open the mouth by ``angles`` ``(n,)`` radians about the x axis."""
    return torch.stack([angles, torch.zeros_like(angles), torch.zeros_like(angles)], dim=1)


@torch.no_grad()
def sample_flame_meshes(flame, n: int, seed: int = 0, shape_std: float = 1.0, expression_std: float = 1.0,
                        jaw_std: float = 0.0, batch_size: int = 256) -> torch.Tensor:
    """Random FLAME heads: :math:`\\beta \\sim \\mathcal N(0,\\sigma_\\beta^2)`,
    :math:`\\psi \\sim \\mathcal N(0,\\sigma_\\psi^2)` and a jaw opened by :math:`|a|` radians,
    :math:`a \\sim \\mathcal N(0, \\sigma_{jaw}^2)` (:func:`jaw_opening`).

    Args:
        flame: a :class:`facecourse.flame.FLAME` (uses ``n_shape`` / ``n_exp`` components; pose zero but the jaw).
        n: number of meshes. seed: generator seed (same seed, same meshes, whatever ``batch_size``; the
            coefficients are drawn shape, expression, jaw in that order, so ``jaw_std = 0`` gives the heads of
            earlier versions).

    Returns:
        ``(n, V, 3)`` float32 vertices in metres (CPU).
    """
    g = torch.Generator().manual_seed(int(seed))
    shape = torch.randn(n, flame.n_shape, generator=g) * shape_std
    expression = torch.randn(n, flame.n_exp, generator=g) * expression_std
    jaw = jaw_opening(torch.randn(n, generator=g).abs() * jaw_std)
    return flame_vertices(flame, shape, expression, jaw, batch_size)


def _template(config: PretrainConfig) -> tuple[np.ndarray, np.ndarray, str, object]:
    """Template ``(V, 3)`` float64 metres, faces ``(F, 3)``, data source name and FLAME module (``None`` for
    CoMA) of a config. Cheap: no meshes are sampled."""
    from facecourse.datasets.coma import coma_available, coma_root, list_coma_files
    from facecourse.mesh import load_mesh

    source = config.data
    if source == "auto":
        source = "coma" if coma_available() else "synthetic"
    if source == "coma":
        v, f = load_mesh(list_coma_files(coma_root())[0].path)
        return v, f, "coma", None
    flame = load_flame(config.model)
    return flame.v_template.double().cpu().numpy(), flame.faces.cpu().numpy(), "synthetic", flame


def pretraining_data(config: PretrainConfig, progress: bool = True) -> dict:
    """Training and held-out meshes of a config.

    Returns:
        ``{"train": (N, V, 3), "test": (M, V, 3)`` float32 tensors in metres, ``"template": (V, 3)``,
        ``"faces": (F, 3)`` numpy, ``"source": "synthetic" | "coma"}``. Synthetic test meshes use a
        different seed from the training ones.
    """
    template, faces, source, flame = _template(config)
    if source == "coma":
        from facecourse.datasets.coma import load_coma_split

        d = load_coma_split(split=config.coma_split, held_out=config.coma_held_out, progress=progress)
        train, test = torch.from_numpy(d["train"]), torch.from_numpy(d["test"])
    else:
        kw = dict(shape_std=config.shape_std, expression_std=config.expression_std, jaw_std=config.jaw_std)
        train = sample_flame_meshes(flame, config.n_train, seed=2 * config.seed, **kw)
        test = sample_flame_meshes(flame, config.n_test, seed=2 * config.seed + 1, **kw)
    return {"train": train, "test": test, "template": template, "faces": faces, "source": source}


class MeshBatches(Dataset):
    """Meshes ``(N, V, 3)`` as a map-style dataset that the ``DataLoader`` indexes a whole batch at a time.

    ``dataset[i]`` is mesh ``i`` ``(V, 3)``; ``__getitems__(indices)`` (what the loader calls with a batch's
    indices) returns the batch ``(B, V, 3)`` by one gather instead of ``B`` items to stack, which
    :meth:`AutoencoderTask.collate` passes through.
    """

    def __init__(self, vertices: torch.Tensor) -> None:
        self.vertices = vertices

    def __len__(self) -> int:
        return len(self.vertices)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.vertices[index]

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        return self.vertices[torch.as_tensor(indices)]


# ------------------------------------------------------------------------------------------ model

def build_autoencoder(template, faces, latent_dim: int = 8, filters=COMA_FILTERS, K: int = 6,
                      factors=(4, 4, 4, 4), linear_shortcut: bool = False) -> MeshAutoencoder:
    """Hierarchy (cached) + :class:`MeshAutoencoder` for a template ``(V, 3)`` (metres) and faces ``(F, 3)``."""
    return MeshAutoencoder(build_hierarchy(template, faces, factors), latent_dim, filters, K, linear_shortcut)


@torch.no_grad()
def reconstruction_errors(model: MeshAutoencoder, vertices: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Per-vertex Euclidean reconstruction errors ``(N, V)`` in millimetres of meshes ``(N, V, 3)`` (metres)."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for i in range(0, len(vertices), batch_size):
        x = vertices[i:i + batch_size].to(dev)
        out.append(vertex_errors(model(x), x).cpu())
    model.train(was_training)
    return torch.cat(out)


# ------------------------------------------------------------------------------------------- task

class AutoencoderTask(Task):
    """The pre-training as a :class:`~facecourse.train.Task`.

    Args:
        config: the run's :class:`PretrainConfig`.
        data: :func:`pretraining_data` of ``config`` (default: made here).
        progress: progress bar while reading CoMA (when ``data`` is made here).

    Validation is :func:`error_summary` of the held-out meshes (``mean_mm``, ``median_mm``, ``std_mm``);
    ``best.pt`` tracks ``mean_mm``. ``topology`` is the template's :func:`~facecourse.mesh.topology_hash`.
    """

    best_metric = "mean_mm"

    def __init__(self, config: PretrainConfig, data: dict | None = None, progress: bool = True) -> None:
        if not isinstance(config, PretrainConfig):
            raise TypeError(f"AutoencoderTask needs a PretrainConfig, got {type(config).__name__}")
        self.config = config
        self.data = pretraining_data(config, progress) if data is None else data
        n_vertices = len(self.data["template"])
        for name in ("train", "test"):
            x = self.data[name]
            if x.ndim != 3 or x.shape[1:] != (n_vertices, 3) or len(x) == 0:
                raise ValueError(f"{name} meshes must be (N>0, {n_vertices}, 3) like the template, got "
                                 f"{tuple(x.shape)}")
        self.topology = topology_hash(self.data["faces"], n_vertices)

    def build_model(self) -> MeshAutoencoder:
        c = self.config
        return build_autoencoder(self.data["template"], self.data["faces"], c.latent_dim, c.filters, c.K, c.factors,
                                 c.linear_shortcut)

    def train_dataset(self) -> MeshBatches:
        return MeshBatches(self.data["train"])

    def collate(self, samples: torch.Tensor) -> torch.Tensor:
        """The batch ``(B, V, 3)`` as :meth:`MeshBatches.__getitems__` gathered it."""
        return samples

    def on_fresh_start(self, model: MeshAutoencoder, dataset: MeshBatches) -> None:
        """Fit the input normaliser (mean, std with ``config.input_scale``) on the training meshes."""
        model.normalizer.fit(dataset.vertices.to(model.normalizer.mean.device), scale=self.config.input_scale)

    def loss(self, model: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The L1 residual of ``(B, V, 3)`` meshes in units of the training spread,
        :math:`\\mathrm{mean}|(\\hat X - X) / s|`: COMA's per-vertex :math:`s = \\sigma_v` (``loss_scale`` =
        ``"vertex"``) or one :math:`s = \\mathrm{mean}_v\\, \\sigma_v` (``"global"``)."""
        std = unwrap_model(model).normalizer.std
        scale = std if self.config.loss_scale == "vertex" else std.mean()
        inputs = batch + self.config.input_noise * torch.randn_like(batch) if self.config.input_noise else batch
        return ((model(inputs) - batch) / scale).abs().mean(), {}

    def validate(self, model: MeshAutoencoder) -> dict[str, float]:
        return error_summary(reconstruction_errors(model, self.data["test"]))

    def checkpoint_meta(self, model: MeshAutoencoder) -> dict[str, Any]:
        """What :func:`load_autoencoder` rebuilds the network from: ``template`` ``(V, 3)`` float64, ``faces``
        ``(F, 3)`` int64, the network ``config`` (``MeshAutoencoder.config``) and the data ``source``."""
        return {"template": model.template.cpu(), "faces": model.faces.cpu(), "autoencoder": dict(model.config),
                "source": self.data["source"]}


# ---------------------------------------------------------------------------------- run directory

def default_run_dir(config: PretrainConfig, topology: str) -> Path:
    """``data_dir()/"runs"/"mesh_autoencoder-<topology[:12]>-<config.key()>"``: the run directory of ``config``
    on the mesh topology ``topology`` (:func:`facecourse.mesh.topology_hash`)."""
    return data_dir() / "runs" / f"{PretrainConfig.TASK}-{topology[:12]}-{config.key()}"


def checkpoint_path(config: PretrainConfig, topology: str) -> Path:
    """``default_run_dir(config, topology)/"last.pt"``: the checkpoint :func:`load_pretrained_autoencoder` loads."""
    return default_run_dir(config, topology) / LAST


def load_autoencoder(path: str | Path, map_location: Any = "cpu") -> tuple[MeshAutoencoder, Checkpoint]:
    """Rebuild a :class:`MeshAutoencoder` from a pre-training checkpoint (``last.pt`` or ``best.pt`` of a run).

    :func:`load_pretrained_autoencoder` uses ``last.pt``, the model after the last epoch: ``best.pt`` is
    selected on the held-out split the errors are reported on.

    Returns:
        ``(model in eval mode, the checkpoint)``; :func:`training_report` summarises the checkpoint.

    Raises:
        CheckpointError: missing, unsafe, of another format (e.g. the old ``facecourse-mesh-autoencoder-v1``
            files) or task -- rebuild it with ``facecourse pretrain-encoder`` -- or its faces do not have the
            topology it was trained on.
    """
    checkpoint = load_checkpoint(path, task=PretrainConfig.TASK, map_location=map_location, rebuild_hint=REBUILD_HINT)
    return autoencoder_from_checkpoint(checkpoint, str(path)), checkpoint


def mesh_network_meta(checkpoint: Checkpoint, network_key: str, where: str, rebuild_hint: str
                      ) -> tuple[np.ndarray, np.ndarray, dict]:
    """What a mesh-network checkpoint's ``meta`` rebuilds the network from, checked.

    Args:
        checkpoint: of a mesh autoencoder or encoder run. network_key: the meta entry with the network settings
            (``"autoencoder"``, ``"encoder"``). where, rebuild_hint: name the file and the command in errors.

    Returns:
        ``(template (V, 3) float64 metres, faces (F, 3) int64, network settings)``.

    Raises:
        CheckpointError: an entry is missing, or the faces are not of the checkpoint's recorded topology.
    """
    meta = checkpoint.meta
    missing = [k for k in ("template", "faces", network_key) if k not in meta]
    if missing:
        raise CheckpointError(f"{where} lacks {missing} in its meta; rebuild it with {rebuild_hint}")
    template, faces = meta["template"].numpy(), meta["faces"].numpy()
    verify_topology(checkpoint, topology_hash(faces, len(template)), where)
    return template, faces, meta[network_key]


def autoencoder_from_checkpoint(checkpoint: Checkpoint, where: str = "checkpoint") -> MeshAutoencoder:
    """The :class:`MeshAutoencoder` (eval mode) of a pre-training checkpoint; ``where`` names it in errors.

    Raises:
        CheckpointError: its meta lacks what rebuilds the network, or its faces are not of its topology.
    """
    template, faces, net = mesh_network_meta(checkpoint, "autoencoder", where, REBUILD_HINT)
    model = build_autoencoder(template, faces, net["latent_dim"], net["filters"], net["K"], net["factors"],
                              bool(net.get("linear_shortcut", False)))
    model.load_state_dict(checkpoint.model)
    return model.eval()


def _report(epoch: int, history: list[dict], last_metrics: dict, source: str | None) -> dict[str, Any]:
    """:func:`training_report`'s dict from the engine's epoch ``history`` and latest validation metrics."""
    return {"epoch": epoch, "test": dict(last_metrics), "source": source,
            "history": [{"epoch": h["epoch"], "loss": h["train"]["loss"], "test_mean_mm": h["val"].get("mean_mm")}
                        for h in history]}


def training_report(checkpoint: Checkpoint) -> dict[str, Any]:
    """A pre-training checkpoint's summary (what ``facecourse.viz.nn.plot_training_history`` plots).

    Returns:
        ``{"epoch": finished epochs, "history": [{"epoch", "loss" (mean normalised L1 of the epoch),
        "test_mean_mm" (held-out mean error, mm; None when not validated)}, ...], "test": the latest held-out
        error_summary (mm), "source": "synthetic" | "coma"}``.
    """
    own = checkpoint.meta[FIT_META_KEY]
    return _report(checkpoint.epoch, own["history"], own["last_metrics"], checkpoint.meta.get("source"))


# -------------------------------------------------------------------------------------- training

def pretrain_encoder(config: PretrainConfig | None = None, resume: bool = True, progress: bool = True,
                     device: torch.device | str | None = None, run_dir: str | Path | None = None
                     ) -> tuple[MeshAutoencoder, dict[str, Any]]:
    """Train (or resume) the mesh autoencoder of ``config`` with :func:`facecourse.train.fit`.

    Args:
        config: :class:`PretrainConfig`; ``None`` -> ``PretrainConfig.for_mode()``.
        resume: continue from ``last.pt`` of the run directory when it exists (a finished run trains nothing).
        progress: progress bar.
        device: where to train (default :func:`facecourse.settings.device`).
        run_dir: the run directory; default :func:`default_run_dir` under ``data_dir()/"runs"``.

    Returns:
        ``(model in eval mode on the training device, report)``; ``report`` = :func:`training_report` plus
        ``"run_dir"`` and ``"checkpoint"`` (its ``last.pt``), as strings.

    Raises:
        CheckpointError: ``last.pt`` there is not a usable checkpoint of this run (rebuild hint in the message).
    """
    config = PretrainConfig.for_mode() if config is None else config
    task = AutoencoderTask(config, progress=progress)
    directory = Path(run_dir) if run_dir is not None else default_run_dir(config, task.topology)
    if resume and (directory / LAST).is_file():  # refuse an old-format file with the command that rebuilds it
        load_checkpoint(directory / LAST, task=PretrainConfig.TASK, rebuild_hint=REBUILD_HINT)
    result = fit(task, directory, resume=resume, progress=progress, device=device)
    report = _report(result.epoch, result.history, result.last_metrics, task.data["source"])
    if not (result.history and result.history[-1]["val"]):  # the last epoch was not validated (val_every > 1)
        report["test"] = error_summary(reconstruction_errors(result.model, task.data["test"]))
    return result.model, {**report, "run_dir": str(directory), "checkpoint": str(result.last_path)}


def load_pretrained_autoencoder(config: PretrainConfig | None = None, train_if_missing: bool = True,
                                progress: bool = True, device: torch.device | str | None = None
                                ) -> MeshAutoencoder:
    """Train-or-load: the autoencoder of ``config`` (default ``PretrainConfig.for_mode()``), in eval mode.

    Loads :func:`checkpoint_path` when its run finished ``config.epochs`` epochs (no data is generated then);
    otherwise trains/resumes with :func:`pretrain_encoder` (unless ``train_if_missing`` is false:
    ``FileNotFoundError``). The 3D-ID loss uses ``model.encoder`` (frozen or not) on FLAME vertices.

    Args:
        device: where the returned model is (and trains); default: CPU when loaded, the training device
            (:func:`facecourse.settings.device`) when trained.

    Raises:
        CheckpointError: a file at :func:`checkpoint_path` that is not a usable checkpoint (e.g. the old
            format): rebuild it with ``facecourse pretrain-encoder``.
        FileNotFoundError: no finished run and ``train_if_missing`` is false.
    """
    config = PretrainConfig.for_mode() if config is None else config
    template, faces, _, _ = _template(config)
    path = checkpoint_path(config, topology_hash(faces, len(template)))
    if path.is_file():
        model, checkpoint = load_autoencoder(path)
        if checkpoint.config_key == config.key() and checkpoint.epoch >= config.epochs:
            return model.to(device) if device is not None else model
    if not train_if_missing:
        raise FileNotFoundError(f"no finished run at {path} ({config.epochs} epochs of config {config.key()}); "
                                f"run `{REBUILD_HINT}`")
    return pretrain_encoder(config, resume=True, progress=progress, device=device)[0]


# -------------------------------------------------------------------------------------------- CLI

_CLI_FIELDS = ("model", "data", "epochs", "n_train", "n_test", "batch_size", "latent_dim", "optimizer", "lr", "seed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``facecourse pretrain-encoder`` (defaults: the preset of ``--mode``, or ``--config``)."""
    parser.add_argument("--mode", choices=("ci", "full"), default=None,
                        help="preset (default: FACECOURSE_MODE, else full = COMA's settings)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="a YAML config (e.g. configs/mesh_autoencoder/full.yaml) instead of the --mode preset")
    parser.add_argument("--model", help="FLAME model: small | full | path to generic_model.pkl")
    parser.add_argument("--data", choices=DATA_SOURCES, help="training meshes (auto: CoMA when present)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--n-train", type=int, dest="n_train")
    parser.add_argument("--n-test", type=int, dest="n_test")
    parser.add_argument("--batch-size", type=int, dest="batch_size", help="global batch (summed over GPUs)")
    parser.add_argument("--latent-dim", type=int, dest="latent_dim")
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", help="torch device (default: FACECOURSE_DEVICE, CUDA if available)")
    parser.add_argument("--run-dir", type=Path, dest="run_dir",
                        help="run directory (default <data>/runs/mesh_autoencoder-<topology>-<config key>)")
    parser.add_argument("--no-resume", action="store_true", help="start over even if the run has a checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``facecourse pretrain-encoder`` (also under torchrun); rank 0 prints the held-out error in mm and
    the run directory."""
    if args.config is not None and args.mode is not None:
        raise SystemExit("pretrain-encoder: give --config or --mode, not both")
    overrides = {k: getattr(args, k) for k in _CLI_FIELDS if getattr(args, k, None) is not None}
    try:
        base = PretrainConfig.load_yaml(args.config) if args.config is not None else PretrainConfig.for_mode(args.mode)
        config = dataclasses.replace(base, **overrides)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"pretrain-encoder: {error}") from None
    _, report = pretrain_encoder(config, resume=not args.no_resume, progress=not args.no_progress,
                                 device=args.device, run_dir=args.run_dir)
    if is_main():
        t = report["test"]
        print(f"data: {report['source']}; epochs: {report['epoch']}; held-out error: mean {t['mean_mm']:.3f} mm, "
              f"median {t['median_mm']:.3f} mm, std {t['std_mm']:.3f} mm")
        print(f"run directory: {report['run_dir']}")
        print(f"checkpoint: {report['checkpoint']}")
        print("load it with: facecourse.train.encoder.load_autoencoder(path) or "
              "facecourse.train.encoder.load_pretrained_autoencoder(config)")
    shutdown()
    return 0
