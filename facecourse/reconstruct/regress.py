"""``facecourse reconstruct``: photos -> FLAME meshes with the trained regressor (chapter 06), one forward pass.

    facecourse reconstruct IMAGE... --checkpoint CKPT --out DIR [--device D]

For every photo: the largest face and its 68 landmarks (dlib), cropped as the regressor's training crops at
its ``image_size`` (:func:`~facecourse.photo.prepare_photo`), the regressor's :class:`FaceParams`
(:func:`regress_face`), and the files of :mod:`facecourse.reconstruct.outputs` (``<name>.obj`` neutral head in
metres, ``<name>_now7.npy``, ``<name>_overlay.png``). Failures per photo and exit codes as ``facecourse fit``
(:func:`facecourse.reconstruct.cli.process_photos`). A regressor trained on synthetic heads meets a domain gap
on real photos: its overlay shows it, and ``facecourse fit`` is the path that works on photos today.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from facecourse.nn.regressor import FaceRegressor
from facecourse.photo import PhotoFace
from facecourse.reconstruct.cli import process_photos
from facecourse.render.head import FaceParams
from facecourse.train.checkpoint import CheckpointError
from facecourse.train.regressor import load_regressor, load_renderer


@torch.no_grad()
def regress_face(regressor: FaceRegressor, face: PhotoFace) -> FaceParams:
    """The regressor's :class:`FaceParams` (batch 1, camera on ``face``'s crop) for a photo prepared at the
    regressor's input side (``config.image_size`` of its checkpoint)."""
    return regressor(face.image[None].to(next(regressor.parameters()).device))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``reconstruct`` options."""
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="photos (JPEG, PNG, ...)")
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="a face_regressor checkpoint (facecourse train: <run dir>/best.pt or last.pt)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu: one photo at a time)")


def run(args: argparse.Namespace) -> int:
    """Reconstruct every photo (module docstring); exit 0 / 1 (some photo failed) / 2 (photo extra missing)."""
    try:
        regressor, config, _ = load_regressor(args.checkpoint)
    except (FileNotFoundError, CheckpointError) as error:
        raise SystemExit(f"reconstruct: {error}") from None
    regressor.to(args.device)
    renderer = load_renderer(config)
    renderer.flame.to(args.device)
    return process_photos(args.images, args.out, config.image_size, renderer,
                          lambda face: regress_face(regressor, face), "reconstruct")


__all__ = ["regress_face"]
