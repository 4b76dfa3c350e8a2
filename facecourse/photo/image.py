"""Photo files -> RGB uint8 pixels: EXIF orientation applied, any colour mode converted, large photos
downscaled by one exact factor (recorded, so points map back to the file's pixels).

Pixel coordinates follow :mod:`facecourse.render.camera` (integer values at pixel centres). A downscale by
:math:`s` maps a point of the oriented file :math:`x` to :math:`x' = (x + \\tfrac12) s - \\tfrac12` (the
resampling keeps pixel *areas* aligned: the image's borders map to the borders), the same on both axes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

#: Photos whose longer side exceeds this many pixels are downscaled on loading (dlib and the crop need no more).
MAX_SIDE = 1600
#: Greyscale integer modes of Pillow that hold 16-bit samples (16-bit PNG/TIFF).
SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


class PhotoError(ValueError):
    """A photo that cannot be used (not an image, unreadable, no face); the message names the file."""


@dataclass
class LoadedPhoto:
    """A photo as :func:`load_photo` returns it.

    Attributes:
        rgb: ``(H, W, 3)`` uint8 RGB, upright (EXIF orientation applied), downscaled by ``scale``.
        scale: ``rgb`` pixels per pixel of the oriented file (1.0 when not downscaled, else < 1).
        source: the file's path, or ``"<array>"`` for pixels passed in memory.
        notes: what was done to the pixels (orientation, conversion, downscale), for the user.
    """

    rgb: np.ndarray
    scale: float
    source: str
    notes: list[str] = field(default_factory=list)


def to_working(points: np.ndarray, scale: float) -> np.ndarray:
    """Points ``(..., 2)`` in pixels of the oriented file -> pixels of an image downscaled by ``scale``."""
    return (np.asarray(points, dtype=np.float64) + 0.5) * scale - 0.5


def to_file(points: np.ndarray, scale: float) -> np.ndarray:
    """Inverse of :func:`to_working`: pixels of the downscaled image -> pixels of the oriented file."""
    return (np.asarray(points, dtype=np.float64) + 0.5) / scale - 0.5


def rescale(rgb: np.ndarray, scale: float) -> np.ndarray:
    """Resample ``rgb`` ``(H, W, C)`` uint8 by exactly ``scale`` on both axes (Lanczos, antialiased).

    The output is ``floor(W s) x floor(H s)`` and resamples the source box ``(W', H') / s`` (the last
    fraction of a source pixel at the right and bottom is dropped), so the map is :func:`to_working` on both
    axes, not one factor per axis.
    """
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    h, w = rgb.shape[:2]
    size = (max(1, int(w * scale + 1e-9)), max(1, int(h * scale + 1e-9)))
    box = (0.0, 0.0, size[0] / scale, size[1] / scale)
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS, box=box))


def to_rgb8(image: Image.Image) -> tuple[np.ndarray, str | None]:
    """Any Pillow image -> ``(H, W, 3)`` uint8 RGB and a note on the conversion (None when it was RGB).

    16-bit greyscale (modes ``I``, ``I;16*``) is scaled from 0..65535; transparency (RGBA, LA, palette with
    transparency) is composited over white; every other mode goes through Pillow's ``convert("RGB")``.
    """
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image), None
    if mode in SIXTEEN_BIT_MODES:
        grey = np.asarray(image, dtype=np.float64) / 65535.0 * 255.0
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1), f"16-bit {mode} image scaled to 8-bit RGB"
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB")), f"{mode} image composited over white"
    return np.asarray(image.convert("RGB")), f"{mode} image converted to RGB"


def _open(path: Path) -> tuple[Image.Image, int]:
    """Decode ``path`` upright (EXIF orientation applied) -> ``(image, orientation tag)``; PhotoError otherwise."""
    if not path.is_file():
        raise PhotoError(f"photo not found: {path}")
    try:
        with Image.open(path) as handle:
            handle.load()
            orientation = int(handle.getexif().get(ExifTags.Base.Orientation, 1))
            return ImageOps.exif_transpose(handle), orientation  # a new image, also without a tag
    except UnidentifiedImageError:
        raise PhotoError(f"{path} is not an image (Pillow cannot identify it)") from None
    except Image.DecompressionBombError as exc:
        raise PhotoError(f"{path} is too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise PhotoError(f"could not decode {path}: {exc}") from None


def _array_image(pixels: np.ndarray) -> Image.Image:
    """A photo passed as an array ``(H, W)`` / ``(H, W, 3|4)`` uint8 or uint16 -> a Pillow image."""
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[-1] not in (3, 4)) or 0 in pixels.shape:
        raise PhotoError(f"a photo array must be (H, W), (H, W, 3) or (H, W, 4), got shape {pixels.shape}")
    if pixels.dtype == np.uint16:
        pixels = np.rint(pixels / 257.0).astype(np.uint8)
    if pixels.dtype != np.uint8:
        raise PhotoError(f"a photo array must be uint8 or uint16, got {pixels.dtype}")
    return Image.fromarray(np.ascontiguousarray(pixels))


def load_photo(source: str | os.PathLike | np.ndarray, max_side: int = MAX_SIDE) -> LoadedPhoto:
    """Read a photo as upright RGB uint8, downscaled so that its longer side is at most ``max_side``.

    Args:
        source: an image file (anything Pillow reads: JPEG, PNG incl. 16-bit, TIFF, WebP, ...) or an
            array ``(H, W)`` / ``(H, W, 3|4)`` uint8 or uint16 (RGB(A) order).
        max_side: the largest side kept, pixels.

    Returns:
        :class:`LoadedPhoto` (``scale`` maps its pixels back to the file's: :func:`to_file`).

    Raises:
        PhotoError: the file is missing, not an image or corrupt; the array has an unusable shape or type.
    """
    notes = []
    if isinstance(source, np.ndarray):
        name, image = "<array>", _array_image(source)
    else:
        name = str(source)
        image, orientation = _open(Path(source))
        if orientation != 1:
            notes.append(f"EXIF orientation {orientation} applied")
    rgb, note = to_rgb8(image)
    notes += [note] if note else []
    h, w = rgb.shape[:2]
    scale = 1.0
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        rgb = rescale(rgb, scale)
        notes.append(f"downscaled {w}x{h} -> {rgb.shape[1]}x{rgb.shape[0]} (scale {scale:.4g})")
    return LoadedPhoto(rgb=np.array(rgb, order="C"), scale=scale, source=name, notes=notes)
