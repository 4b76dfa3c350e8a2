"""``facecourse reconstruct`` end to end: a (briefly) trained regressor's checkpoint turns the astronaut photo into
a mesh of the model's vertex count, its 7 NoW landmarks and an overlay; a file that is not a photo is reported
and the exit code says so; a file that is not a regressor checkpoint is refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from facecourse.cli import main
from facecourse.photo import prepare_photo
from facecourse.reconstruct.regress import regress_face
from facecourse.train.loop import fit
from facecourse.train.regressor import RegressorConfig, RegressorTask, load_regressor, load_renderer

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    config = RegressorConfig.for_mode("ci", image_size=32, backbone_width=8, identity_hidden=32, epochs=1,
                                      val_every=1, now_validation=False, w_vertices=30.0, w_id3d=0.0)
    return fit(RegressorTask(config, progress=False), tmp_path_factory.mktemp("reg"), progress=False,
               device="cpu").last_path


@pytest.fixture()
def photos(photo_files):
    return photo_files[:2]


def test_reconstruct_writes_the_mesh_landmarks_and_overlay(tmp_path, photos, checkpoint, capsys):
    good, text = photos
    out = tmp_path / "out"
    code = main(["reconstruct", str(good), str(text), "--checkpoint", str(checkpoint), "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.obj", "astronaut_now7.npy", "astronaut_overlay.png"]
    regressor, config, _ = load_regressor(checkpoint)
    flame = load_renderer(config).flame
    mesh = trimesh.load(out / "astronaut.obj", process=False, maintain_order=True)
    assert mesh.vertices.shape == (flame.n_vertices, 3) and len(mesh.faces) == len(flame.faces)
    face = prepare_photo(good, config.image_size)
    expected = flame(shape=regress_face(regressor, face).shape).vertices[0].double().numpy()
    assert np.abs(mesh.vertices - expected).max() < 1e-5, "the mesh is the regressor's neutral head (metres)"
    now7 = np.load(out / "astronaut_now7.npy")
    assert now7.shape == (7, 3) and np.isfinite(now7).all()
    assert Image.open(out / "astronaut_overlay.png").size == (512, 256)
    text_all = printed.out + printed.err
    assert f"FAILED {text}: {text} is not an image" in text_all
    assert printed.out.strip().splitlines()[-1].startswith("reconstruct: 1 of 2 photo(s)")


def test_a_file_that_is_not_a_regressor_checkpoint_is_named(tmp_path, photos):
    bogus = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(2)}, bogus)
    with pytest.raises(SystemExit, match="reconstruct: .*model.pt"):
        main(["reconstruct", str(photos[0]), "--checkpoint", str(bogus), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit, match="reconstruct: .*missing.pt"):
        main(["reconstruct", str(photos[0]), "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path)])
