"""``facecourse fit``: photos -> FLAME meshes by analysis-by-synthesis (chapter 04's fit on real photos).

    facecourse fit IMAGE... --out DIR [--size S] [--steps N]

For every photo: the largest face and its 68 landmarks (dlib), the training data's crop, the fit
(:mod:`facecourse.reconstruct.fit`), and its files in ``DIR`` (:mod:`facecourse.reconstruct.outputs`:
``<name>.obj``, ``<name>_now7.npy``, ``<name>_overlay.png``). A photo that cannot be used (not an image, no
face) is reported with its path and the reason and the others go on; the exit code is 1 when any photo
failed, 0 otherwise (2 when dlib or its models are missing).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import torch

from facecourse.photo import PhotoDependencyError, PhotoError, PhotoFace, default_detector, prepare_photo
from facecourse.reconstruct.fit import fit_crop_size, fit_photo, landmark_nme, photo_fit_config, photo_renderer
from facecourse.reconstruct.outputs import output_names, write_reconstruction
from facecourse.render.head import FaceParams, HeadRenderer
from facecourse.settings import progress_bar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``fit`` options."""
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="photos (JPEG, PNG, ...)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--size", type=int, default=None,
                        help="crop side in pixels the fit renders at (default: 64 in CI mode, 224 in full mode)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps of the full fit stage (default: 60 in CI mode, 200 in full mode)")


def process_photos(images: list[Path], out_dir: Path, size: int, renderer: HeadRenderer,
                   estimate: Callable[[PhotoFace], FaceParams], verb: str) -> int:
    """The loop ``fit`` and ``reconstruct`` share: for each photo the largest face at ``size`` pixels
    (:func:`~facecourse.photo.prepare_photo`), ``estimate(face)`` -> :class:`FaceParams` of batch 1 on that crop,
    its files (:func:`~facecourse.reconstruct.outputs.write_reconstruction`) and its landmark error; a photo that
    fails (unreadable, no face, any error of its own) is reported with its path and reason and the others go on.

    Returns:
        the exit code: 0 when every photo was done, 1 when any failed, 2 when dlib or its models are missing.
    """
    try:
        detector = default_detector()
    except PhotoDependencyError as exc:
        print(f"facecourse {verb}: {exc}")
        return 2
    failed: list[tuple[Path, str]] = []
    start = time.perf_counter()
    bar = progress_bar(list(zip(images, output_names(images))), desc=verb, unit="photo")
    for path, name in bar:
        try:
            face = prepare_photo(path, size, detector)
            for note in face.notes:
                bar.write(f"note: {path}: {note}")
            params = estimate(face)
            files = write_reconstruction(out_dir, name, renderer, params, face)
            with torch.no_grad():
                landmarks = renderer.camera_landmarks(params)
            nme = landmark_nme(landmarks, face.landmarks[None].to(landmarks)).item()
        except Exception as exc:  # one photo's failure is reported, the others go on  # noqa: BLE001
            reason = str(exc) if isinstance(exc, PhotoError) else f"{type(exc).__name__}: {exc}"
            failed.append((path, reason))
            bar.write(f"FAILED {path}: {reason}")
            continue
        bar.write(f"{path}: landmark error {nme:.3f} of the eye-corner distance -> "
                  f"{', '.join(p.name for p in files.all())}")
    bar.close()
    done = len(images) - len(failed)
    seconds = time.perf_counter() - start
    summary = f"{verb}: {done} of {len(images)} photo(s) in {seconds:.1f} s into {out_dir}"
    if failed:
        summary += f"; {len(failed)} failed: " + "; ".join(f"{p} ({reason})" for p, reason in failed)
    print(summary)
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    """Fit every photo, write its files, print notes, failures and a summary; exit code (module docstring)."""
    if args.size is not None and args.size < 8:
        raise SystemExit(f"--size must be at least 8 pixels, got {args.size}")
    if args.steps is not None and args.steps < 0:
        raise SystemExit(f"--steps must be >= 0, got {args.steps}")
    config = photo_fit_config(args.steps)
    renderer = photo_renderer(config)
    return process_photos(args.images, args.out, args.size or fit_crop_size(), renderer,
                          lambda face: fit_photo(face, renderer, config).params, "fit")
