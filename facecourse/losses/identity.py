"""Identity loss: :math:`1 - \\cos` between face-recognition embeddings of the rendered and the input face.

.. math::
    \\mathcal L_{id} = 1 - \\frac{\\langle f(\\tilde I), f(I) \\rangle}{\\lVert f(\\tilde I) \\rVert\\,
    \\lVert f(I) \\rVert}, \\qquad \\tilde I = m \\odot I_{render} + (1 - m) \\odot I

where the render is composited over the input image (so hair and background match and the recogniser
sees a whole picture) and :math:`f` is a frozen face recogniser.

Recognisers (all :class:`FaceRecogniser`: images ``(B, 3, H, W)`` in [0, 1] -> unit embeddings):

* ArcFace **IResNet** (insightface ``arcface_torch`` layout and state-dict names; 112 x 112 RGB,
  normalised as :math:`(x - 0.5)/0.5`, 512-d): :func:`iresnet`; MICA uses IResNet-100.
* **VGGFace2 ResNet-50** (the Caffe-converted model DECA uses: 224 x 224, BGR in 0..255 minus the mean
  ``(91.4953, 103.8827, 131.0912)``, 2048-d pooled features; stride in the first 1x1 convolution of each
  bottleneck and a ceil-mode max-pool as in the Caffe original): :func:`vggface2_resnet50`.
* the course's offline default, a small CNN trained on synthetic identities
  (:func:`synthetic_recogniser`, train-or-load with a cached checkpoint), so the loss means something in
  CI without licensed weights.

:func:`load_recogniser` builds one of the first two from a weight file the user provides (``.pth``/``.pt``
state dicts with ``torch.load(weights_only=True)``, or the VGGFace2 ``.pkl`` of numpy arrays through the
restricted unpickler).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facecourse.data.atomic import atomic_path
from facecourse.data.paths import data_dir

VGGFACE2_MEAN_BGR = (91.4953, 103.8827, 131.0912)
IRESNET_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}


# ---------------------------------------------------------------------------------------------- IResNet
class _IBasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-5))

    def forward(self, x):
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """ArcFace IResNet backbone: 112 x 112 input -> ``(B, 512)`` features (not normalised)."""

    def __init__(self, layers=(3, 4, 14, 3), n_features: int = 512):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        chans, cin = (64, 128, 256, 512), 64
        for i, (c, n) in enumerate(zip(chans, layers)):
            blocks = [_IBasicBlock(cin, c, 2)] + [_IBasicBlock(c, c, 1) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = c
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(512 * 7 * 7, n_features)
        self.features = nn.BatchNorm1d(n_features, eps=1e-5)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


# ------------------------------------------------------------------------------- VGGFace2 ResNet-50
class _Bottleneck(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class VGGFace2ResNet50(nn.Module):
    """Caffe-style ResNet-50 of VGGFace2: 224 x 224 input -> ``(B, 2048)`` pooled features (``fc`` kept so
    that the released state dicts load strictly; it is not used for the embedding)."""

    def __init__(self, n_classes: int = 8631):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 0, ceil_mode=True)
        cin = 64
        for i, (planes, n, stride) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), (1, 2, 2, 2))):
            blocks = [_Bottleneck(cin, planes, stride)] + [_Bottleneck(planes * 4, planes, 1) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = planes * 4
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, n_classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


# ------------------------------------------------------------------------------ synthetic embedder
class SmallFaceEmbedder(nn.Module):
    """A small CNN for the offline default recogniser: ``(B, 3, S, S)`` -> ``(B, dim)`` features."""

    def __init__(self, dim: int = 64, width: int = 32):
        super().__init__()
        chans = (3, width, 2 * width, 4 * width, 4 * width)
        layers = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(a, b, 3, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True),
                       nn.Conv2d(b, b, 3, 1, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], dim)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


# ------------------------------------------------------------------------------------- recogniser
def _unit_preprocess(x):
    """[0, 1] -> [-1, 1]: ArcFace's ``(x - 0.5) / 0.5``, also the synthetic embedder's input."""
    return (x - 0.5) / 0.5


def _vggface2_preprocess(x):
    mean = x.new_tensor(VGGFACE2_MEAN_BGR).view(1, 3, 1, 1)
    return x[:, [2, 1, 0]] * 255.0 - mean


_PREPROCESS = {"arcface": _unit_preprocess, "vggface2": _vggface2_preprocess, "unit": _unit_preprocess}


class FaceRecogniser(nn.Module):
    """A frozen face recogniser: images ``(B, 3, H, W)`` in [0, 1] -> unit embeddings ``(B, D)``.

    Images are resized (bilinear) to ``input_size`` and normalised as the backbone expects (``preprocess``:
    ``"arcface"``, ``"vggface2"`` or ``"unit"``). Parameters are frozen and the module stays in eval mode;
    gradients still flow to the input image.
    """

    def __init__(self, backbone: nn.Module, input_size: int, preprocess: str, name: str = ""):
        super().__init__()
        if preprocess not in _PREPROCESS:
            raise ValueError(f"preprocess must be one of {sorted(_PREPROCESS)}, got {preprocess!r}")
        self.backbone = backbone
        self.input_size = int(input_size)
        self.preprocess = preprocess
        self.name = name
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        """Stay in eval mode whatever ``mode`` is: the frozen batch-norm statistics must not move."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Unit embeddings ``(B, D)`` of images ``(B, 3, H, W)`` in [0, 1]."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        x = images
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.input_size)
        return F.normalize(self.backbone(_PREPROCESS[self.preprocess](x)), dim=-1)


def iresnet(depth: int = 100) -> IResNet:
    """An ArcFace IResNet of depth 18, 34, 50 or 100 (random weights; see :func:`load_recogniser`)."""
    if depth not in IRESNET_LAYERS:
        raise ValueError(f"IResNet depth must be one of {sorted(IRESNET_LAYERS)}, got {depth}")
    return IResNet(IRESNET_LAYERS[depth])


def vggface2_resnet50() -> VGGFace2ResNet50:
    """The VGGFace2 ResNet-50 (random weights; see :func:`load_recogniser`)."""
    return VGGFace2ResNet50()


def _read_state_dict(path: Path) -> dict:
    if path.suffix == ".pkl":
        from facecourse.flame.io import safe_load_pickle  # restricted unpickler: numpy arrays only

        raw = safe_load_pickle(path)
        return {k: torch.as_tensor(np.asarray(v)) for k, v in raw.items()}
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_recogniser(kind: str, path: str | Path) -> FaceRecogniser:
    """Build a pretrained recogniser from a local weight file the user provides.

    Args:
        kind: ``"arcface-r18" | "arcface-r34" | "arcface-r50" | "arcface-r100"`` (insightface
            ``arcface_torch`` ``backbone.pth``) or ``"vggface2"`` (``resnet50_ft_weight.pkl`` or a
            ``.pth`` state dict with the same names).
        path: the weight file.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: unknown ``kind``, or the file's tensors do not match the architecture (names the keys).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recogniser weights not found: {path}")
    if kind.startswith("arcface-r"):
        model, size, prep = iresnet(int(kind.removeprefix("arcface-r"))), 112, "arcface"
    elif kind == "vggface2":
        model, size, prep = vggface2_resnet50(), 224, "vggface2"
    else:
        raise ValueError(f"kind must be 'arcface-r18|34|50|100' or 'vggface2', got {kind!r}")
    state = _read_state_dict(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad:
        raise ValueError(f"{path} does not match {kind}: missing {missing[:5]}, unexpected {unexpected[:5]}, "
                         f"wrong shape {bad[:5]}")
    model.load_state_dict({k: state[k].to(own[k].dtype) for k in own})
    return FaceRecogniser(model, size, prep, name=kind)


def composite(rendered: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """:math:`m \\odot I_{render} + (1 - m) \\odot I`; ``mask`` ``(B, 1, H, W)``, images ``(B, 3, H, W)``."""
    return mask * rendered + (1 - mask) * image


def identity_loss(recogniser: nn.Module, rendered: torch.Tensor, target: torch.Tensor,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """:math:`1 - \\cos` of the recogniser embeddings, averaged over the batch.

    Args:
        recogniser: images ``(B, 3, H, W)`` -> embeddings ``(B, D)`` (e.g. :class:`FaceRecogniser`).
        rendered: ``(B, 3, H, W)`` rendered face in [0, 1].
        target: ``(B, 3, H, W)`` input image.
        mask: optional ``(B, 1, H, W)`` render silhouette; the render is composited over ``target``.

    Returns:
        scalar in [0, 2]; 0 when the embeddings agree.
    """
    if rendered.shape != target.shape:
        raise ValueError(f"rendered and target shapes differ: {tuple(rendered.shape)} vs {tuple(target.shape)}")
    x = composite(rendered, target, mask.to(rendered)) if mask is not None else rendered
    with torch.no_grad():
        e_target = recogniser(target)
    e = recogniser(x)
    return (1 - F.cosine_similarity(e, e_target, dim=-1)).mean()


# ----------------------------------------------------------------------- train-or-load the default
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
    (:func:`facecourse.data.synthetic_images.render_identity_views`), :math:`\\min \\lVert f(I) - z \\rVert^2`,
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
    from tqdm.auto import tqdm

    from facecourse.data.synthetic_images import render_identity_views
    from facecourse.settings import device as default_device

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
        loss = F.mse_loss(net(_unit_preprocess(x.clamp(0, 1).to(dev))), z_train[idx].to(dev))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    net = net.cpu().eval()
    rec = FaceRecogniser(net, config["size"], "unit", name="synthetic")
    metrics = {"train_loss": loss.item(), "heldout_verification_accuracy": verification_accuracy(rec, x_held, y_held)}
    return net, metrics


@torch.no_grad()
def verification_accuracy(recogniser: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Best-threshold accuracy of "same identity?" decisions by cosine similarity over all image pairs.

    Args:
        images: ``(N, 3, H, W)``; labels: ``(N,)`` identity ids.

    Returns:
        accuracy in [0.5, 1] (0.5 = chance on balanced pairs; pairs are reweighted to balance).
    """
    e = recogniser(images)
    sim = e @ e.T
    iu = torch.triu_indices(len(e), len(e), 1)
    s = sim[iu[0], iu[1]]
    same = labels[iu[0]] == labels[iu[1]]
    best = 0.5
    for t in torch.unique(s):
        tpr = (s[same] >= t).float().mean()
        tnr = (s[~same] < t).float().mean()
        best = max(best, float((tpr + tnr) / 2))
    return best


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
    from facecourse.data.download import sha256_file
    from facecourse.flame import default_model_path
    from facecourse.settings import mode as current_mode

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
