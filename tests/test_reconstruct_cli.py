"""``facecourse fit`` end to end through ``facecourse.cli.main``: the astronaut photo and files that are not
usable photos; every good photo gets its files, every bad one is reported with its path and reason, and the
exit code says whether any failed."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PIL import Image

from facecourse.cli import main
from facecourse.photo import PhotoDependencyError
from facecourse.reconstruct import cli as fit_cli
from facecourse.render.head import HeadRenderer

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture()
def photos(photo_files):
    return photo_files


def test_good_photo_written_bad_ones_reported(tmp_path, photos, capsys):
    good, text, noise = photos
    out = tmp_path / "out"
    code = main(["fit", str(good), str(text), str(noise), "--out", str(out), "--steps", "20"])
    printed = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.obj", "astronaut_now7.npy", "astronaut_overlay.png"]
    mesh = trimesh.load(out / "astronaut.obj", process=False, maintain_order=True)
    flame = HeadRenderer.default("small").flame  # the model the CI fit used (synthetic, or real FLAME)
    assert mesh.vertices.shape == (flame.n_vertices, 3) and len(mesh.faces) == len(flame.faces)
    assert np.load(out / "astronaut_now7.npy").shape == (7, 3)
    assert Image.open(out / "astronaut_overlay.png").size == (512, 256)
    text_all = printed.out + printed.err
    assert f"FAILED {text}: {text} is not an image" in text_all
    assert f"FAILED {noise}: no face found in {noise}" in text_all
    assert f"{good}: landmark error" in text_all
    summary = printed.out.strip().splitlines()[-1]
    assert summary.startswith("fit: 1 of 3 photo(s)") and "2 failed" in summary


def test_all_good_exits_zero_and_notes_are_printed(tmp_path, capsys):
    canvas = np.full((600, 1100, 3), 90, np.uint8)
    astronaut = skimage_data.astronaut()
    canvas[40:552, :512] = astronaut
    canvas[150:406, 700:956] = np.asarray(Image.fromarray(astronaut).resize((256, 256)))
    Image.fromarray(canvas).save(tmp_path / "two.png")
    assert main(["fit", str(tmp_path / "two.png"), "--out", str(tmp_path / "out"), "--steps", "0"]) == 0
    printed = capsys.readouterr()
    assert "2 faces found" in printed.out + printed.err
    assert (tmp_path / "out" / "two.obj").is_file()


def test_missing_dlib_says_what_to_install(tmp_path, photos, monkeypatch, capsys):
    def missing():
        raise PhotoDependencyError("dlib is not installed (needed for face detection): pip install 'facecourse[photo]'")

    monkeypatch.setattr(fit_cli, "default_detector", missing)
    assert main(["fit", str(photos[0]), "--out", str(tmp_path / "out")]) == 2
    assert "pip install 'facecourse[photo]'" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()
