"""facecourse.photo.image: photo files -> upright RGB uint8 (EXIF orientation, colour modes, 16-bit,
downscaling by one exact factor) and clear errors for files that are not images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facecourse.photo.image import PhotoError, load_photo, rescale, to_file, to_working

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


def test_exif_orientation_is_applied(tmp_path, astronaut):
    # tag 6: "rotate 90 degrees clockwise to show", so the stored pixels are the photo turned anticlockwise
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(astronaut, k=1).copy()).save(path, exif=exif, quality=95)
    photo = load_photo(path)
    assert photo.rgb.shape == astronaut.shape
    assert np.abs(photo.rgb.astype(float) - astronaut).mean() < 4  # JPEG noise only
    assert any("orientation 6" in n for n in photo.notes)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_colour_modes_become_rgb_uint8(tmp_path, astronaut, mode):
    path = tmp_path / f"face_{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
    Image.fromarray(astronaut).convert(mode).save(path)
    photo = load_photo(path)
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == astronaut.shape and photo.scale == 1.0
    grey = astronaut.mean(-1)
    assert np.corrcoef(photo.rgb.mean(-1).ravel(), grey.ravel())[0, 1] > 0.95
    assert photo.notes


def test_transparent_pixels_are_composited_over_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:4, :, :] = (10, 20, 30, 255)  # top half opaque, bottom half fully transparent black
    Image.fromarray(rgba).save(tmp_path / "a.png")
    rgb = load_photo(tmp_path / "a.png").rgb
    assert (rgb[:4] == (10, 20, 30)).all() and (rgb[4:] == 255).all()


def test_16_bit_greyscale_png(tmp_path, astronaut):
    grey16 = (astronaut.mean(-1) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    photo = load_photo(tmp_path / "deep.png")
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == astronaut.shape
    assert np.abs(photo.rgb[..., 0].astype(float) - astronaut.mean(-1)).max() <= 1  # 0..65535 -> 0..255
    assert (photo.rgb[..., 0] == photo.rgb[..., 2]).all()


def test_arrays_uint8_and_uint16(astronaut):
    assert (load_photo(astronaut).rgb == astronaut).all()
    assert (load_photo(astronaut.astype(np.uint16) * 257).rgb == astronaut).all()
    assert load_photo(astronaut[..., 0]).rgb.shape == astronaut.shape
    with pytest.raises(PhotoError, match="uint8 or uint16"):
        load_photo(astronaut.astype(np.float32))
    with pytest.raises(PhotoError, match="shape"):
        load_photo(np.zeros((4, 4, 2), np.uint8))


def test_large_photo_is_downscaled_by_one_recorded_factor(tmp_path, astronaut):
    huge = np.asarray(Image.fromarray(astronaut).resize((2000, 2000), Image.Resampling.BICUBIC))
    Image.fromarray(huge).save(tmp_path / "huge.png")
    photo = load_photo(tmp_path / "huge.png", max_side=1600)
    assert photo.rgb.shape == (1600, 1600, 3) and photo.scale == pytest.approx(0.8)
    assert any("downscaled 2000x2000" in n for n in photo.notes)
    # points map back and forth; the pixels line up with the original at the mapped places
    pts = np.array([[0.0, 0.0], [1999.0, 1234.5]])
    assert np.allclose(to_file(to_working(pts, photo.scale), photo.scale), pts)
    small = rescale(photo.rgb, 512 / 1600)
    assert np.abs(small.astype(float) - astronaut).mean() < 6


def test_rescale_maps_pixel_centres_exactly():
    image = np.zeros((1003, 1001, 3), np.uint8)
    image[500] = 255  # one bright row, centre y = 500
    for scale in (0.3337, 0.5, 0.78125):
        column = rescale(image, scale)[:, 100, 0].astype(float)
        centre = (column * np.arange(len(column))).sum() / column.sum()
        assert centre == pytest.approx(to_working(np.array([[0.0, 500.0]]), scale)[0, 1], abs=0.1)  # x s would be 0.25 px off at s = 1/2
    with pytest.raises(ValueError, match="scale"):
        rescale(image, 1.5)


def test_files_that_are_not_photos_are_named(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a JPEG")
    with pytest.raises(PhotoError, match=r"notes\.jpg is not an image"):
        load_photo(text)
    with pytest.raises(PhotoError, match="not found: .*missing.png"):
        load_photo(tmp_path / "missing.png")
    broken = tmp_path / "cut.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 80).save(broken)
    broken.write_bytes(broken.read_bytes()[:60])
    with pytest.raises(PhotoError, match=r"cut\.png"):
        load_photo(broken)
