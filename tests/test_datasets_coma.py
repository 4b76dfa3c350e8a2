"""CoMA adapter on files written in the official layout, and the pretrain-encoder CLI on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from facecourse.cli import main
from facecourse.datasets.coma import coma_available, coma_split, list_coma_files, load_coma_split
from facecourse.mesh import save_mesh
from facecourse.train import load_checkpoint
from facecourse.train.encoder import (
    PretrainConfig, checkpoint_path, load_autoencoder, load_pretrained_autoencoder, training_report,
)

SUBJECTS = ("FaceTalk_170725_00137_TA", "FaceTalk_170728_03272_TA")
EXPRESSIONS = ("bareteeth", "mouth_open")
FRAMES = 30


@pytest.fixture()
def coma(tmp_path, monkeypatch):
    """Write 2 subjects x 2 expressions x 30 frames of a small deforming sphere as COMA_data/."""
    monkeypatch.setenv("FACECOURSE_DATA", str(tmp_path / "data"))
    root = tmp_path / "data" / "COMA_data"
    m = trimesh.creation.icosphere(4, radius=0.1)
    rng = np.random.default_rng(0)
    for s in SUBJECTS:
        scale = 1 + 0.1 * rng.standard_normal(3)
        for e in EXPRESSIONS:
            for t in range(1, FRAMES + 1):
                v = m.vertices * scale
                v[:, 1] += 0.002 * t * (v[:, 2] > 0)  # an expression that grows over the sequence
                (root / s / e).mkdir(parents=True, exist_ok=True)
                save_mesh(root / s / e / f"{e}.{t:06d}.ply", v, m.faces)
    (root / "README.txt").write_text("not a mesh")
    return root, m


def test_listing_and_splits(coma):
    root, m = coma
    files = list_coma_files(root)
    assert len(files) == len(SUBJECTS) * len(EXPRESSIONS) * FRAMES and coma_available(root)
    assert files[0].subject == SUBJECTS[0] and files[0].expression == "bareteeth" and files[0].frame == 1
    assert [f.frame for f in files[:FRAMES]] == list(range(1, FRAMES + 1))
    train, test = coma_split(files, "sliced")
    assert len(test) == 10 + 10  # indices 0..9 and 100..109 of the sorted list
    assert set(test) == {files[i] for i in range(len(files)) if i % 100 < 10}
    assert not set(train) & set(test)
    train, test = coma_split(files, "expression", "mouth_open")
    assert {f.expression for f in test} == {"mouth_open"} and {f.expression for f in train} == {"bareteeth"}
    train, test = coma_split(files, "identity", SUBJECTS[1])
    assert {f.subject for f in test} == {SUBJECTS[1]}
    with pytest.raises(ValueError, match="held_out"):
        coma_split(files, "identity")
    with pytest.raises(FileNotFoundError):
        list_coma_files(root / "missing")


def test_load_split_reads_vertices(coma):
    root, m = coma
    d = load_coma_split(root, "sliced", progress=False)
    assert d["train"].shape == (100, len(m.vertices), 3) and d["test"].shape == (20, len(m.vertices), 3)
    np.testing.assert_array_equal(d["faces"], m.faces)
    first = list_coma_files(root)[0]
    np.testing.assert_allclose(d["test"][0], trimesh.load(first.path, process=False).vertices, atol=1e-6)
    again = load_coma_split(root, "sliced", progress=False)  # from the .npy cache
    np.testing.assert_array_equal(again["train"], d["train"])


def test_cli_trains_on_coma_and_resumes(coma, capsys, tmp_path):
    # the CI preset's cosine schedule spans all epochs, so more epochs is another run: resume is tested on the
    # per-epoch exponential schedule, where epochs are result-neutral
    config_file = PretrainConfig.for_mode("ci", schedule="exponential").save_yaml(tmp_path / "exponential.yaml")
    args = ["pretrain-encoder", "--config", str(config_file), "--data", "coma", "--epochs", "2", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "data: coma" in out and "held-out error: mean" in out
    path = out.split("checkpoint: ")[1].split()[0]
    model, checkpoint = load_autoencoder(path)
    report = training_report(checkpoint)
    assert checkpoint.epoch == 2 and len(report["history"]) == 2 and report["test"]["mean_mm"] > 0
    assert report["source"] == "coma" and checkpoint.config["data"] == "coma"
    steps = checkpoint.step
    assert main(args[:-3] + ["--epochs", "3", "--no-progress"]) == 0  # resumes: one more epoch
    resumed = load_checkpoint(path)
    assert resumed.epoch == 3 and resumed.step == steps * 3 // 2
    config = PretrainConfig.for_mode("ci", data="coma", epochs=3, schedule="exponential")
    assert str(checkpoint_path(config, model.config["topology"])) == path
    loaded = load_pretrained_autoencoder(config, train_if_missing=False)  # finished: loads, no training
    torch.testing.assert_close(loaded.normalizer.mean, resumed.model["normalizer.mean"])
    with pytest.raises(FileNotFoundError):
        load_pretrained_autoencoder(PretrainConfig.for_mode("ci", data="coma", epochs=4), train_if_missing=False)
