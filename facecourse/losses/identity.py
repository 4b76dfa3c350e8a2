"""Identity loss: :math:`1 - \\cos` between face-recognition embeddings of the rendered and the input face.

.. math::
    \\mathcal L_{id} = 1 - \\frac{\\langle f(\\tilde I), f(I) \\rangle}{\\lVert f(\\tilde I) \\rVert\\,
    \\lVert f(I) \\rVert}, \\qquad \\tilde I = m \\odot I_{render} + (1 - m) \\odot I

where the render is composited over the input image (so hair and background match and the recogniser
sees a whole picture) and :math:`f` is a frozen face recogniser.

Recognisers (all :class:`FaceRecogniser`: a frozen backbone of :mod:`facecourse.nn.backbones` with its input
normalisation; images ``(B, 3, H, W)`` in [0, 1] -> unit embeddings):

* ArcFace IResNet (112 x 112 RGB normalised as :math:`(x - 0.5)/0.5`, 512-d) or the VGGFace2 ResNet-50 (224 x
  224, BGR in 0..255 minus the mean ``(91.4953, 103.8827, 131.0912)``, 2048-d), built by
  :func:`load_recogniser` from a weight file the user provides (``.pth``/``.pt`` state dicts with
  ``torch.load(weights_only=True)``, or the VGGFace2 ``.pkl`` of numpy arrays through the restricted
  unpickler) and loaded strictly;
* the course's offline default, a small CNN trained on synthetic identities
  (:func:`facecourse.train.recogniser.synthetic_recogniser`, train-or-load with a cached checkpoint), so the
  loss means something in CI without licensed weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from facecourse.nn.backbones import iresnet, load_state_dict_strict, read_state_dict, vggface2_resnet50

VGGFACE2_MEAN_BGR = (91.4953, 103.8827, 131.0912)


def unit_preprocess(x):
    """[0, 1] -> [-1, 1]: ArcFace's ``(x - 0.5) / 0.5``, also the synthetic embedder's input."""
    return (x - 0.5) / 0.5


def vggface2_preprocess(x):
    """[0, 1] RGB -> the Caffe VGGFace2 input: BGR in 0..255 minus :data:`VGGFACE2_MEAN_BGR`."""
    mean = x.new_tensor(VGGFACE2_MEAN_BGR).view(1, 3, 1, 1)
    return x[:, [2, 1, 0]] * 255.0 - mean


_PREPROCESS = {"arcface": unit_preprocess, "vggface2": vggface2_preprocess, "unit": unit_preprocess}


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
    if kind.startswith("arcface-r") and kind.removeprefix("arcface-r").isdigit():
        model, size, prep = iresnet(int(kind.removeprefix("arcface-r"))), 112, "arcface"
    elif kind == "vggface2":
        model, size, prep = vggface2_resnet50(), 224, "vggface2"
    else:
        raise ValueError(f"kind must be 'arcface-r18|34|50|100' or 'vggface2', got {kind!r}")
    load_state_dict_strict(model, read_state_dict(path), source=f"{path} ({kind})")
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
