"""Pre-training of the COMA mesh autoencoder whose encoder the 3D-ID loss uses.

Data: synthetic FLAME meshes (random identity :math:`\\beta \\sim \\mathcal N(0, \\sigma_\\beta^2 I)` and
expression :math:`\\psi \\sim \\mathcal N(0, \\sigma_\\psi^2 I)` through :class:`facecourse.flame.FLAME`) by
default, or CoMA's registered meshes when ``data_dir()/"COMA_data"`` exists (:mod:`facecourse.datasets.coma`).

Objective (COMA): the L1 distance in per-vertex normalised coordinates,
:math:`\\frac{1}{3BV}\\sum |(\\hat X - X) / \\sigma|`, with SGD (momentum 0.9, learning rate
:math:`8\\cdot10^{-3}` decayed by 0.99 per epoch, weight decay :math:`5\\cdot10^{-4}`, batch 16).
Reported error: the Euclidean distance :math:`\\|\\hat x_v - x_v\\|` in millimetres over every vertex of every
held-out mesh (mean, median, std), as COMA reports it.

Checkpoints (``data_dir()/"checkpoints"/"mesh_autoencoder-<topology>-<config>.pt"``, written atomically every
epoch) hold the weights with the normalisation buffers, the template and faces the hierarchy is rebuilt
from, the configuration, optimiser/scheduler state and history, so training resumes where it stopped and
:func:`load_autoencoder` needs nothing else.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from facecourse.data.atomic import atomic_path
from facecourse.data.paths import data_dir
from facecourse.nn.autoencoder import COMA_FILTERS, MeshAutoencoder
from facecourse.nn.hierarchy import build_hierarchy
from facecourse.mesh.topology import topology_hash
from facecourse.units import M_TO_MM

CHECKPOINT_FORMAT = "facecourse-mesh-autoencoder-v1"
DATA_SOURCES = ("auto", "synthetic", "coma")


@dataclass
class PretrainConfig:
    """Everything that defines a pre-training run (COMA's settings by default).

    Attributes:
        model: FLAME model of the synthetic data and template: ``"small"``, ``"full"`` (synthetic sizes, or
            real FLAME 2020 when present, see ``facecourse.flame.default_model_path``) or a path.
        data: ``"synthetic"``, ``"coma"`` or ``"auto"`` (CoMA when its folder holds meshes).
        n_train, n_test: synthetic meshes for training / the held-out split.
        shape_std, expression_std: standard deviation of the sampled FLAME coefficients.
        coma_split, coma_held_out: CoMA split (see :func:`facecourse.datasets.coma.coma_split`).
        latent_dim, filters, K, factors: network (COMA: 8, (16, 16, 16, 32), 6, (4, 4, 4, 4)).
        epochs, batch_size, optimizer ("sgd" | "adam"), lr, lr_decay (per epoch), momentum, weight_decay.
        seed: seeds data sampling, initialisation and shuffling (epoch ``e`` shuffles with ``seed + e``).
    """

    model: str = "small"
    data: str = "auto"
    n_train: int = 10000
    n_test: int = 1000
    shape_std: float = 1.0
    expression_std: float = 1.0
    coma_split: str = "sliced"
    coma_held_out: str | None = None
    latent_dim: int = 8
    filters: tuple[int, ...] = COMA_FILTERS
    K: int = 6
    factors: tuple[int, ...] = (4, 4, 4, 4)
    epochs: int = 300
    batch_size: int = 16
    optimizer: str = "sgd"
    lr: float = 8e-3
    lr_decay: float = 0.99
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0

    @classmethod
    def for_mode(cls, mode: str | None = None, **overrides) -> "PretrainConfig":
        """Preset of the course mode (``facecourse.settings.mode()`` when ``None``).

        ``"full"``: COMA's settings on 10k meshes of the FLAME-size model (real FLAME 2020 when present) or
        CoMA. ``"ci"``: the small synthetic model, 192 meshes, 10 epochs of Adam (lr 3e-3) -- COMA's SGD
        needs hundreds of epochs, CI has seconds.
        """
        from facecourse.settings import mode as current_mode

        mode = current_mode() if mode is None else mode
        if mode == "ci":
            base = dict(model="small", data="synthetic", n_train=192, n_test=64, epochs=10, optimizer="adam",
                        lr=3e-3, lr_decay=0.97, weight_decay=0.0)
        elif mode == "full":
            base = dict(model="full")
        else:
            raise ValueError(f"mode must be 'ci' or 'full', got {mode!r}")
        return cls(**{**base, **overrides})

    def __post_init__(self):
        self.filters = tuple(int(f) for f in self.filters)
        self.factors = tuple(int(f) for f in self.factors)
        if self.data not in DATA_SOURCES:
            raise ValueError(f"data must be one of {DATA_SOURCES}, got {self.data!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if min(self.n_train, self.n_test, self.epochs, self.batch_size) < 1:
            raise ValueError("n_train, n_test, epochs and batch_size must be >= 1")

    def to_dict(self) -> dict:
        """JSON/checkpoint friendly dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def key(self) -> str:
        """Short hash of every field except ``epochs`` (so a run can be resumed to more epochs)."""
        d = self.to_dict()
        d.pop("epochs")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


# ----------------------------------------------------------------------------------------------- data

def load_flame(model: str = "small"):
    """The FLAME module of ``model`` (``"small"``/``"full"`` via ``default_model_path``, or a file path)."""
    from facecourse.flame import FLAME, default_model_path
    from facecourse.flame.paths import SIZES

    path = default_model_path(model) if model in SIZES else Path(model)
    return FLAME.from_file(path)


@torch.no_grad()
def sample_flame_meshes(flame, n: int, seed: int = 0, shape_std: float = 1.0, expression_std: float = 1.0,
                        batch_size: int = 256) -> torch.Tensor:
    """Random FLAME heads: :math:`\\beta \\sim \\mathcal N(0,\\sigma_\\beta^2)`, :math:`\\psi \\sim \\mathcal N(0,\\sigma_\\psi^2)`.

    Args:
        flame: a :class:`facecourse.flame.FLAME` (uses ``n_shape`` / ``n_exp`` components, zero pose).
        n: number of meshes. seed: generator seed (same seed, same meshes).

    Returns:
        ``(n, V, 3)`` float32 vertices in metres (CPU).
    """
    g = torch.Generator().manual_seed(int(seed))
    shape = torch.randn(n, flame.n_shape, generator=g) * shape_std
    expression = torch.randn(n, flame.n_exp, generator=g) * expression_std
    dev = flame.v_template.device
    out = [flame(shape=shape[i:i + batch_size].to(dev), expression=expression[i:i + batch_size].to(dev)
                 ).vertices.float().cpu() for i in range(0, n, batch_size)]
    return torch.cat(out)


def _template(config: PretrainConfig) -> tuple[np.ndarray, np.ndarray, str, object]:
    """Template ``(V, 3)``, faces, data source name and FLAME module (``None`` for CoMA) of a config.

    Cheap: no meshes are sampled.
    """
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
        kw = dict(shape_std=config.shape_std, expression_std=config.expression_std)
        train = sample_flame_meshes(flame, config.n_train, seed=2 * config.seed, **kw)
        test = sample_flame_meshes(flame, config.n_test, seed=2 * config.seed + 1, **kw)
    return {"train": train, "test": test, "template": template, "faces": faces, "source": source}


# ------------------------------------------------------------------------------------ checkpoints

def checkpoint_path(config: PretrainConfig, topology: str) -> Path:
    """``data_dir()/"checkpoints"/"mesh_autoencoder-<topology[:12]>-<config.key()>.pt"``."""
    return data_dir() / "checkpoints" / f"mesh_autoencoder-{topology[:12]}-{config.key()}.pt"


def build_autoencoder(template, faces, latent_dim: int = 8, filters=COMA_FILTERS, K: int = 6,
                      factors=(4, 4, 4, 4)) -> MeshAutoencoder:
    """Hierarchy (cached) + :class:`MeshAutoencoder` for a template ``(V, 3)`` and faces ``(F, 3)``."""
    return MeshAutoencoder(build_hierarchy(template, faces, factors), latent_dim, filters, K)


def save_autoencoder(path, model: MeshAutoencoder, **extra) -> Path:
    """Write a self-contained checkpoint atomically (weights incl. normalisation, template, faces, config).

    ``extra`` entries (epoch, optimizer state, history, metrics, pretrain config, ...) are stored beside.
    """
    state = {"format": CHECKPOINT_FORMAT, "config": model.config, "template": model.template.cpu(),
             "faces": model.faces.cpu(), "model": {k: v.cpu() for k, v in model.state_dict().items()}, **extra}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_autoencoder(path, map_location="cpu") -> tuple[MeshAutoencoder, dict]:
    """Rebuild a :class:`MeshAutoencoder` from a checkpoint (``torch.load(weights_only=True)``).

    Returns:
        ``(model in eval mode, checkpoint dict)``.

    Raises:
        ValueError: not an autoencoder checkpoint, or its template's topology differs from the stored hash.
    """
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a facecourse mesh autoencoder checkpoint ({CHECKPOINT_FORMAT})")
    cfg = ckpt["config"]
    faces = ckpt["faces"].numpy()
    if topology_hash(faces, cfg["n_vertices"]) != cfg["topology"]:
        raise ValueError(f"{path}: stored faces do not match the stored topology hash")
    model = build_autoencoder(ckpt["template"].numpy(), faces, cfg["latent_dim"], cfg["filters"], cfg["K"],
                              cfg["factors"])
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


# ---------------------------------------------------------------------------------------- metrics

@torch.no_grad()
def reconstruction_errors(model: MeshAutoencoder, vertices: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Per-vertex Euclidean reconstruction errors ``(N, V)`` in millimetres of meshes ``(N, V, 3)`` (metres)."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for i in range(0, len(vertices), batch_size):
        x = vertices[i:i + batch_size].to(dev)
        out.append(((model(x) - x).norm(dim=-1) * M_TO_MM).cpu())
    model.train(was_training)
    return torch.cat(out)


def error_summary(errors: torch.Tensor) -> dict[str, float]:
    """``{"mean_mm", "median_mm", "std_mm"}`` over all entries of an error tensor in mm (COMA's report)."""
    e = errors.flatten().double()
    return {"mean_mm": float(e.mean()), "median_mm": float(e.median()), "std_mm": float(e.std())}


# --------------------------------------------------------------------------------------- training

def _optimizer(model, config: PretrainConfig):
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                              weight_decay=config.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return opt, torch.optim.lr_scheduler.ExponentialLR(opt, gamma=config.lr_decay)


def train_autoencoder(model: MeshAutoencoder, train: torch.Tensor, test: torch.Tensor, config: PretrainConfig,
                      checkpoint: str | Path | None = None, resume: bool = True, progress: bool = True,
                      device: torch.device | str | None = None) -> dict:
    """Train ``model`` on ``train (N, V, 3)`` (metres) up to ``config.epochs`` epochs.

    A fresh run fits the normaliser on ``train``; with ``checkpoint`` the state is saved atomically after
    every epoch and, when ``resume`` and the file exists for the same ``config.key()``, training continues
    from it (already finished: nothing is trained).

    Returns:
        ``{"epoch", "history": [{"epoch", "loss", "test_mean_mm"}, ...], "test": error_summary(...)}``.
    """
    from facecourse.settings import device as default_device

    dev = torch.device(device) if device is not None else default_device()
    n_vertices = model.normalizer.mean.shape[0]
    for name, x in (("train", train), ("test", test)):
        if x.ndim != 3 or x.shape[1:] != (n_vertices, 3) or len(x) == 0:
            raise ValueError(f"{name} meshes must be (N>0, {n_vertices}, 3), got {tuple(x.shape)}")
    torch.manual_seed(config.seed)
    model.to(dev)
    opt, sched = _optimizer(model, config)
    start, history = 0, []
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        ckpt = torch.load(checkpoint, map_location=dev, weights_only=True)
        if ckpt.get("pretrain_key") != config.key():
            raise ValueError(f"checkpoint {checkpoint} was trained with another configuration; "
                             "pass resume=False or another path")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        start, history = int(ckpt["epoch"]), list(ckpt["history"])
    else:
        model.normalizer.fit(train.to(dev))
    std = model.normalizer.std
    summary = None  # held-out errors of the latest epoch
    bar = tqdm(range(start, config.epochs), desc="pretrain autoencoder", disable=not progress,
               initial=start, total=config.epochs)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.seed + epoch))
        total, count = 0.0, 0
        for i in range(0, len(train), config.batch_size):
            x = train[order[i:i + config.batch_size]].to(dev)
            loss = ((model(x) - x) / std).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, count = total + loss.item() * len(x), count + len(x)
        sched.step()
        summary = error_summary(reconstruction_errors(model, test))
        history.append({"epoch": epoch + 1, "loss": total / count, "test_mean_mm": summary["mean_mm"]})
        bar.set_postfix(loss=f"{total / count:.4f}", test_mm=f"{summary['mean_mm']:.3f}")
        if checkpoint is not None:  # the last epoch's checkpoint also carries the final metrics
            last = {"metrics": summary} if epoch + 1 == config.epochs else {}
            save_autoencoder(checkpoint, model, epoch=epoch + 1, pretrain=config.to_dict(),
                             pretrain_key=config.key(), optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                             history=history, **last)
    if summary is None:  # nothing left to train: evaluate the resumed model and record it
        summary = error_summary(reconstruction_errors(model, test))
        if checkpoint is not None:
            ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
            ckpt["metrics"] = summary
            with atomic_path(checkpoint) as tmp:
                torch.save(ckpt, tmp)
    model.eval()
    return {"epoch": max(start, config.epochs), "history": history, "test": summary}


def pretrain_encoder(config: PretrainConfig | None = None, resume: bool = True, progress: bool = True,
                     device: torch.device | str | None = None, checkpoint: str | Path | None = None
                     ) -> tuple[MeshAutoencoder, dict]:
    """Train (or resume) the mesh autoencoder of ``config`` (default: the preset of the current mode).

    Args:
        config: :class:`PretrainConfig`; ``None`` -> ``PretrainConfig.for_mode()``.
        resume: continue from the checkpoint when it exists.
        checkpoint: where to save; default :func:`checkpoint_path` under ``data_dir()/"checkpoints"``.

    Returns:
        ``(model in eval mode, report)``; ``report`` = :func:`train_autoencoder`'s dict plus ``"checkpoint"``
        and ``"source"``.
    """
    config = PretrainConfig.for_mode() if config is None else config
    data = pretraining_data(config, progress)
    torch.manual_seed(config.seed)
    model = build_autoencoder(data["template"], data["faces"], config.latent_dim, config.filters, config.K,
                              config.factors)
    path = Path(checkpoint) if checkpoint is not None else checkpoint_path(config, model.config["topology"])
    report = train_autoencoder(model, data["train"], data["test"], config, path, resume, progress, device)
    return model, {**report, "checkpoint": str(path), "source": data["source"]}


def load_pretrained_autoencoder(config: PretrainConfig | None = None, train_if_missing: bool = True,
                                progress: bool = True, device: torch.device | str | None = None
                                ) -> MeshAutoencoder:
    """Train-or-load: the autoencoder of ``config`` (default ``PretrainConfig.for_mode()``) from its checkpoint.

    Loads ``checkpoint_path(config, topology)`` when it holds ``config.epochs`` finished epochs (no data is
    generated then); otherwise trains/resumes with :func:`pretrain_encoder` (unless ``train_if_missing`` is
    false: ``FileNotFoundError``). The 3D-ID loss uses ``model.encoder`` (frozen or not) on FLAME vertices.
    """
    config = PretrainConfig.for_mode() if config is None else config
    template, faces, _, _ = _template(config)
    path = checkpoint_path(config, topology_hash(faces, len(template)))
    if path.is_file():
        model, ckpt = load_autoencoder(path)
        if ckpt.get("pretrain_key") == config.key() and int(ckpt.get("epoch", 0)) >= config.epochs:
            return model.to(device) if device is not None else model
    if not train_if_missing:
        raise FileNotFoundError(f"no finished checkpoint at {path}; run `facecourse pretrain-encoder`")
    return pretrain_encoder(config, resume=True, progress=progress, device=device)[0]


# -------------------------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``facecourse pretrain-encoder`` (defaults: the preset of ``--mode``)."""
    parser.add_argument("--mode", choices=("ci", "full"), default=None,
                        help="preset (default: FACECOURSE_MODE, else full = COMA's settings)")
    parser.add_argument("--model", help="FLAME model: small | full | path to generic_model.pkl")
    parser.add_argument("--data", choices=DATA_SOURCES, help="training meshes (auto: CoMA when present)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--n-train", type=int, dest="n_train")
    parser.add_argument("--n-test", type=int, dest="n_test")
    parser.add_argument("--batch-size", type=int, dest="batch_size")
    parser.add_argument("--latent-dim", type=int, dest="latent_dim")
    parser.add_argument("--optimizer", choices=("sgd", "adam"))
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", help="torch device (default: FACECOURSE_DEVICE, CUDA if available)")
    parser.add_argument("--checkpoint", help="checkpoint file (default under <data>/checkpoints)")
    parser.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``facecourse pretrain-encoder``; prints the held-out error in mm and the checkpoint path."""
    fields = ("model", "data", "epochs", "n_train", "n_test", "batch_size", "latent_dim", "optimizer", "lr", "seed")
    overrides = {k: getattr(args, k) for k in fields if getattr(args, k, None) is not None}
    config = PretrainConfig.for_mode(args.mode, **overrides)
    _, report = pretrain_encoder(config, resume=not args.no_resume, progress=not args.no_progress,
                                 device=args.device, checkpoint=args.checkpoint)
    t = report["test"]
    print(f"data: {report['source']}; epochs: {report['epoch']}; held-out error: mean {t['mean_mm']:.3f} mm, "
          f"median {t['median_mm']:.3f} mm, std {t['std_mm']:.3f} mm")
    print(f"checkpoint: {report['checkpoint']}")
    print("load it with: facecourse.nn.load_autoencoder(path) or facecourse.nn.load_pretrained_autoencoder(config)")
    return 0
