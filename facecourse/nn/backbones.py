"""Image backbones (chapters 04 and 06): ArcFace's IResNet, the VGGFace2 ResNet-50, the course's small
embedder, and the strict loader of user-supplied weights.

* ArcFace **IResNet** (insightface ``arcface_torch`` layout and state-dict names; 112 x 112 RGB input,
  512-d features): :func:`iresnet`; MICA uses IResNet-100 as its input encoder.
* **VGGFace2 ResNet-50** (the Caffe-converted model DECA uses: 224 x 224, 2048-d pooled features; stride in
  the first 1x1 convolution of each bottleneck and a ceil-mode max-pool as in the Caffe original):
  :func:`vggface2_resnet50`.
* :class:`SmallFaceEmbedder`, a small CNN that trains from scratch on CPU (the offline recogniser).
* **ResNet** in torchvision's layout and state-dict names (v1.5: the stride in the 3x3 convolution), of any
  width: :func:`resnet` ``(depth, width)``; ``width=64`` is torchvision's ResNet-18/34/50, whose ImageNet
  weights load strictly with :func:`load_backbone_weights` (the classifier ``fc`` is dropped); a narrow one
  (``width=16``) trains from scratch on CPU. The image regressor of chapter 06 uses it (DECA: ResNet-50).

No weights ship (no package usable here carries any, and nothing is downloaded at run time): weights are read
from a local file with :func:`read_state_dict` and loaded with :func:`load_state_dict_strict`, which names
every missing, unexpected or wrong-shape key instead of loading half a network.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facecourse.data.safe_load import safe_load_pickle

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


# ------------------------------------------------------------------------------- torchvision ResNet
class _BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class _TorchvisionBottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
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
        return F.relu(self.bn3(self.conv3(out)) + (x if self.downsample is None else self.downsample(x)))


#: Block and blocks per stage of each :func:`resnet` depth (torchvision's).
RESNET_LAYERS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3))}


class ResNet(nn.Module):
    """ResNet feature extractor in torchvision's layout, without the classifier: ``(B, 3, S, S)`` (any ``S``
    >= 32; ImageNet normalisation is the caller's) -> ``(B, n_features)`` globally average-pooled features.

    Args:
        block: ``"basic"`` or ``"bottleneck"``. layers: blocks per stage. width: channels of the stem and the
            first stage (64 = torchvision); stage ``i`` has ``width * 2^i`` planes.

    Attributes:
        n_features: ``8 * width * expansion`` (512 for ResNet-18/34, 2048 for ResNet-50 at width 64).
    """

    def __init__(self, block: str = "basic", layers=(2, 2, 2, 2), width: int = 64):
        super().__init__()
        blocks = {"basic": _BasicBlock, "bottleneck": _TorchvisionBottleneck}
        if block not in blocks:
            raise ValueError(f"block must be one of {sorted(blocks)}, got {block!r}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        unit = blocks[block]
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = width
        for i, n in enumerate(layers):
            planes, stride = width * 2 ** i, 1 if i == 0 else 2
            stage = [unit(cin, planes, stride)] + [unit(planes * unit.expansion, planes, 1) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            cin = planes * unit.expansion
        self.n_features = cin

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


def resnet(depth: int = 18, width: int = 64) -> ResNet:
    """A :class:`ResNet` of depth 18, 34 or 50 (random weights; torchvision's at ``width=64``)."""
    if depth not in RESNET_LAYERS:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNET_LAYERS)}, got {depth}")
    block, layers = RESNET_LAYERS[depth]
    return ResNet(block, layers, width)


def load_backbone_weights(model: ResNet, path: str | Path) -> ResNet:
    """Load a torchvision ResNet weight file (e.g. ``resnet50-*.pth``) into ``model`` strictly, its
    classifier ``fc.*`` left out (the regressor has its own heads).

    Raises:
        FileNotFoundError, ValueError: as :func:`read_state_dict` and :func:`load_state_dict_strict`.
    """
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith("fc.")}
    return load_state_dict_strict(model, state, source=str(path))


def iresnet(depth: int = 100) -> IResNet:
    """An ArcFace IResNet of depth 18, 34, 50 or 100 (random weights; see :func:`load_recogniser`)."""
    if depth not in IRESNET_LAYERS:
        raise ValueError(f"IResNet depth must be one of {sorted(IRESNET_LAYERS)}, got {depth}")
    return IResNet(IRESNET_LAYERS[depth])


def vggface2_resnet50() -> VGGFace2ResNet50:
    """The VGGFace2 ResNet-50 (random weights; see :func:`load_recogniser`)."""
    return VGGFace2ResNet50()


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weight file: a ``.pkl`` of numpy arrays (read by the restricted unpickler of
    :func:`facecourse.data.safe_load.safe_load_pickle`) or a ``.pt``/``.pth`` state dict (``torch.load`` with
    ``weights_only=True``; a ``{"state_dict": ...}`` wrapper and DDP's ``module.`` prefixes are removed).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file holds no mapping of names to tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file not found: {path}")
    if path.suffix == ".pkl":
        raw = safe_load_pickle(path)
        if not isinstance(raw, dict):
            raise ValueError(f"{path} holds a {type(raw).__name__}, not a dict of arrays")
        return {k: torch.as_tensor(np.asarray(v)) for k, v in raw.items()}
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"{path} holds objects outside a plain state dict and was not loaded "
                         f"({str(error).splitlines()[0][:200]})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a state dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_state_dict_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str = "state dict") -> nn.Module:
    """Load ``state`` into ``model`` only when every name and shape matches (cast to the model's dtypes).

    Raises:
        ValueError: naming ``source`` and the missing, unexpected and wrong-shape keys (first 5 of each,
            with the shapes).
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad:
        shapes = [f"{k}: {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in bad[:5]]
        raise ValueError(f"{source} does not match {type(model).__name__}: {len(missing)} missing {missing[:5]}, "
                         f"{len(unexpected)} unexpected {unexpected[:5]}, {len(bad)} wrong shape {shapes}")
    model.load_state_dict({k: state[k].to(own[k].dtype) for k in own})
    return model
