"""The offline default face recogniser: a :class:`~facecourse.nn.backbones.SmallFaceEmbedder` trained on
synthetic identities, train-or-load with a cached checkpoint (what the identity loss uses without licensed
weights)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from facecourse.data.atomic import atomic_path
from facecourse.data.download import sha256_file
from facecourse.data.paths import data_dir
from facecourse.datasets.synthetic_images import render_identity_views
from facecourse.flame import default_model_path
from facecourse.losses.identity import FaceRecogniser, unit_preprocess, verification_accuracy
from facecourse.nn.backbones import SmallFaceEmbedder
from facecourse.settings import device as default_device
from facecourse.settings import mode as current_mode


def _config(mode: str) -> dict:
    """Training configuration of the offline recogniser (bump ``data_version`` when the renderer changes)."""
    if mode == "ci":
        return dict(data_version=2, n_identities=2000, views=1, size=48, steps=400, batch=64, width=16,
                    code_shape=0, code_albedo=6, seed=0, lr=3e-3)
    return dict(data_version=2, n_identities=6000, views=1, size=64, steps=1500, batch=64, width=24,
                code_shape=0, code_albedo=6, seed=0, lr=3e-3)


def synthetic_checkpoint_path(config: dict) -> Path:
    """``data_dir()/"checkpoints"/"identity_synthetic_<hash>.pt"`` for a training configuration."""
    digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    return data_dir() / "checkpoints" / f"identity_synthetic_{digest}.pt"


def train_synthetic_embedder(config: dict, progress: bool = True, device=None) -> tuple[SmallFaceEmbedder, dict]:
    """Train :class:`SmallFaceEmbedder` to recognise synthetic identities (FLAME shape + albedo).

    The synthetic world knows who is in each picture: its identity code :math:`z` (FLAME shape and
    albedo coefficients, standard-normal units). The network regresses it from images rendered with random
    pose, expression, lighting, background and crop
    (:func:`facecourse.datasets.synthetic_images.render_identity_views`), :math:`\\min \\lVert f(I) - z \\rVert^2`,
    so that the embedding varies with identity and is invariant to everything else; being a regression
    it generalises to people it has never seen (two random people have nearly orthogonal codes, cosine
    :math:`\\approx 0`). Accuracy is measured on held-out identities (several views each).

    The code keeps ``config["code_shape"]`` leading shape coefficients and the last ``config["code_albedo"]``
    albedo coefficients. In CI (48 px) the shape differences between synthetic people are below a pixel
    and cannot be regressed (negative held-out R^2), so the CI recogniser encodes the appearance part of
    identity only (``code_shape = 0``; regressing unpredictable shape coefficients as well drops the held-out
    accuracy from about 0.8 to 0.6); real recognisers (ArcFace, VGGFace2) on real photos see both. Full mode
    uses the same recipe with more people, a larger image and more steps.

    Returns:
        the trained network (eval mode) and a metrics dict (final training loss, held-out verification
        accuracy on unseen identities).
    """
    dev = torch.device(device) if device is not None else default_device()
    gen = torch.Generator().manual_seed(config["seed"])
    x_train, _, z_train = render_identity_views(config["n_identities"], config["views"], config["size"],
                                                seed=config["seed"])
    x_train = (x_train * 255).round().to(torch.uint8)  # 4x less memory; decoded per batch
    x_held, y_held, _ = render_identity_views(24, 4, config["size"], seed=config["seed"] + 1)
    z_train = z_train[:, list(range(config["code_shape"])) + list(range(z_train.shape[1] - config["code_albedo"],
                                                                          z_train.shape[1]))]
    net = SmallFaceEmbedder(z_train.shape[1], config["width"]).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=config["lr"])
    n = len(x_train)
    steps = config["steps"]
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config["lr"], total_steps=steps)
    net.train()
    bar = tqdm(range(steps), desc="identity embedder", disable=not progress)
    loss = torch.tensor(0.0)
    for _ in bar:
        idx = torch.randint(n, (config["batch"],), generator=gen)
        x = x_train[idx].float() / 255 * (0.85 + 0.3 * torch.rand(len(idx), 1, 1, 1, generator=gen))  # brightness
        loss = F.mse_loss(net(unit_preprocess(x.clamp(0, 1).to(dev))), z_train[idx].to(dev))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    net = net.cpu().eval()
    rec = FaceRecogniser(net, config["size"], "unit", name="synthetic")
    metrics = {"train_loss": loss.item(), "heldout_verification_accuracy": verification_accuracy(rec, x_held, y_held)}
    return net, metrics


def synthetic_recogniser(mode: str | None = None, train_if_missing: bool = True, progress: bool = True,
                         ) -> FaceRecogniser:
    """The offline default recogniser: train-or-load the synthetic-identity embedder.

    The checkpoint (``torch.save`` of ``{"state_dict", "config", "metrics"}``, loaded with
    ``weights_only=True``) lives at :func:`synthetic_checkpoint_path`; training takes well under a
    minute on a CPU in CI mode.

    Args:
        mode: ``"ci"`` or ``"full"`` (default :func:`facecourse.settings.mode`).
        train_if_missing: train when no checkpoint exists (else raise ``FileNotFoundError``).
    """
    config = _config(mode or current_mode())
    model = default_model_path("small")  # the heads it learns from: part of the cache key
    path = synthetic_checkpoint_path({**config, "model": str(model), "model_sha256": sha256_file(model)})
    if path.is_file():
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        net = SmallFaceEmbedder(ckpt["state_dict"]["head.weight"].shape[0], config["width"])
        net.load_state_dict(ckpt["state_dict"])
        metrics = ckpt.get("metrics", {})
    elif train_if_missing:
        net, metrics = train_synthetic_embedder(config, progress=progress)
        with atomic_path(path) as tmp:
            torch.save({"state_dict": net.state_dict(), "config": config, "metrics": metrics}, tmp)
    else:
        raise FileNotFoundError(f"no synthetic recogniser checkpoint at {path}")
    rec = FaceRecogniser(net, config["size"], "unit", name="synthetic")
    rec.metrics = metrics
    return rec
