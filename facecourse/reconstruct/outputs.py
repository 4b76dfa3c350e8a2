"""The files of one reconstruction, shared by ``facecourse fit`` and ``facecourse reconstruct``.

For a photo named ``<name>`` in the output folder:

* ``<name>.obj`` -- the neutral head (FLAME topology, metres): the fitted shape with expression, jaw and every
  pose zeroed, as NoW compares (:func:`facecourse.now.export.flame_now_prediction`);
* ``<name>_now7.npy`` -- its 7 NoW landmarks ``(7, 3)``, metres (iBUG 36, 39, 42, 45, 33, 48, 54);
* ``<name>_overlay.png`` -- the photo crop and, beside it, the fitted head (with its expression and pose)
  rendered over the crop.

Every file is written atomically (:mod:`facecourse.data.atomic`): an interrupted run leaves whole files only.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facecourse.data.atomic import atomic_path
from facecourse.mesh.io import save_mesh
from facecourse.now.crop import check_landmarks7
from facecourse.now.export import flame_now_prediction
from facecourse.photo.prepare import PhotoFace
from facecourse.render.head import FaceParams, HeadRenderer


@dataclass(frozen=True)
class ReconstructionFiles:
    """Paths of one reconstruction's files (module docstring)."""

    mesh: Path
    now7: Path
    overlay: Path

    def all(self) -> tuple[Path, Path, Path]:
        """The three paths."""
        return self.mesh, self.now7, self.overlay


def reconstruction_files(out_dir: str | os.PathLike, name: str) -> ReconstructionFiles:
    """Where the reconstruction of the photo ``name`` goes in ``out_dir``."""
    out = Path(out_dir)
    return ReconstructionFiles(out / f"{name}.obj", out / f"{name}_now7.npy", out / f"{name}_overlay.png")


def output_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """One output name per photo: its file stem, with ``_<i>`` (its position) added where stems repeat
    (``a/face.jpg`` and ``b/face.png`` -> ``face_0``, ``face_1``)."""
    stems = [Path(p).stem for p in paths]
    counts = Counter(stems)
    return [s if counts[s] == 1 else f"{s}_{i}" for i, s in enumerate(stems)]


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` float in [0, 1] -> ``(H, W, 3)`` uint8 (clamped, rounded)."""
    return (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


#: Side of each panel of the overlay PNG, pixels (the fit may run on a smaller crop).
OVERLAY_SIZE = 256


@torch.no_grad()
def overlay_image(renderer: HeadRenderer, params: FaceParams, face: PhotoFace, size: int = OVERLAY_SIZE) -> np.ndarray:
    """The photo crop and the head of ``params`` (batch 1, camera projecting onto ``face``'s crop) rendered over
    it, side by side at ``size`` pixels each (the normalised camera fits any crop side): ``(size, 2 size, 3)`` uint8."""
    crop = face.crop(size)[None].to(params.camera)
    head = renderer(params, size, background=crop)
    return np.concatenate([to_uint8(crop[0]), to_uint8(head.render.image[0])], axis=1)


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Write ``rgb`` ``(H, W, 3)`` uint8 as a PNG, atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")
    return path


def write_reconstruction(out_dir: str | os.PathLike, name: str, renderer: HeadRenderer, params: FaceParams,
                         face: PhotoFace) -> ReconstructionFiles:
    """Write the files of one reconstruction (module docstring), each atomically.

    Args:
        out_dir: output folder (created).
        name: file-name stem (:func:`output_names`).
        renderer: the :class:`~facecourse.render.head.HeadRenderer` whose FLAME ``params`` belong to.
        params: :class:`FaceParams` of batch 1; ``shape`` gives the mesh, ``camera`` (on ``face``'s crop),
            ``expression``, poses, ``albedo`` and ``lighting`` the overlay.
        face: the :class:`~facecourse.photo.prepare.PhotoFace` the parameters were estimated from.

    Returns:
        :class:`ReconstructionFiles`.
    """
    if params.batch_size != 1:
        raise ValueError(f"write_reconstruction writes one face; got FaceParams of batch {params.batch_size}")
    files = reconstruction_files(out_dir, name)
    shape = params.shape if params.shape is not None else torch.zeros(1, 1)
    vertices, now7 = flame_now_prediction(renderer.flame, shape)
    save_mesh(files.mesh, vertices[0], renderer.flame.faces)
    with atomic_path(files.now7) as tmp:
        np.save(tmp, check_landmarks7(now7.cpu().double().numpy(), f"NoW-7 landmarks of {name}"))
    write_png(files.overlay, overlay_image(renderer, params, face))
    return files
