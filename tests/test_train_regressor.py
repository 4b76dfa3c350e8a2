"""The regressor's training task: its config refuses bad settings by name, the engine trains it on N subjects
x K images, a run interrupted mid-epoch resumes to the uninterrupted weights, two gloo ranks train it under
torchrun, the checkpoint rebuilds the network, and the NoW validation runs through ``facecourse train``."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch

from facecourse.cli import main
from facecourse.train.checkpoint import load_checkpoint
from facecourse.train.loop import fit, read_metrics
from facecourse.train.regressor import (RegressorConfig, RegressorTask, load_regressor, parse_overrides,
                                        typical_camera_scale, paired_data)

#: A small, fast run: 32 px crops, a narrow ResNet-18, 7 steps per epoch (56 subjects / 8 per batch).
SMALL = dict(image_size=32, backbone_width=8, identity_hidden=32, epochs=2, val_every=2, now_validation=False,
             checkpoint_every=2, log_every=2, lr=2e-3, w_id3d=0.0)


def small_config(**changes) -> RegressorConfig:
    return RegressorConfig.for_mode("ci", **{**SMALL, **changes})


class Stop(Exception):
    pass


class StoppingTask(RegressorTask):
    """Raises at the ``stop_at``-th loss call (an in-process interruption)."""

    def __init__(self, config, stop_at):
        super().__init__(config, progress=False)
        self.calls, self.stop_at = 0, stop_at

    def loss(self, model, batch):
        self.calls += 1
        if self.calls == self.stop_at:
            raise Stop
        return super().loss(model, batch)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted small run with the vertices loss."""
    return fit(RegressorTask(small_config(w_vertices=30.0), progress=False), tmp_path_factory.mktemp("reg"),
               progress=False, device="cpu")


def test_the_config_names_bad_settings():
    with pytest.raises(ValueError, match="rendered with the 'small' FLAME model; model is 'full'"):
        RegressorConfig.for_mode("ci", model="full")
    with pytest.raises(ValueError, match="batch_size 15 must be a multiple of k_images 2"):
        RegressorConfig.for_mode("ci", batch_size=15)
    with pytest.raises(ValueError, match="w_id3d must be a finite number >= 0"):
        RegressorConfig.for_mode("ci", w_id3d=-1.0)
    with pytest.raises(ValueError, match="id3d_encoder must be one of"):
        RegressorConfig.for_mode("ci", id3d_encoder="pca")
    with pytest.raises(ValueError, match="backbone_depth must be one of"):
        RegressorConfig.for_mode("ci", backbone_depth=20)
    assert parse_overrides(["w_id3d=0.5", "id3d_levels=[1, 0.5]", "id3d_encoder=identity"]) == \
        {"w_id3d": 0.5, "id3d_levels": [1, 0.5], "id3d_encoder": "identity"}
    with pytest.raises(ValueError, match="name=value"):
        parse_overrides(["w_id3d"])


def test_the_camera_scale_frames_the_crops_like_the_ground_truth_cameras():
    config = small_config()
    task = RegressorTask(config, progress=False)
    dataset = paired_data(config, "val", task.renderer.flame)
    truth = torch.stack([dataset[i].params.camera[0, 0] for i in range(len(dataset))]).median()
    assert typical_camera_scale(dataset, task.renderer.flame) == pytest.approx(float(truth), rel=0.1)


def test_training_batches_subjects_lowers_the_loss_and_logs_every_term(reference):
    assert reference.step == 2 * 7
    rows = read_metrics(reference.run_dir)
    names = {r.name for r in rows if r.split == "train"}
    assert {"landmark", "photometric", "vertices", "eye", "lip", "loss", "lr"} <= names
    first, last = reference.history[0]["train"], reference.history[-1]["train"]
    assert last["vertices"] < first["vertices"] and last["landmark"] < first["landmark"]
    val = reference.last_metrics
    assert {"val_face_mm", "val_mean_face_mm", "val_head_mm", "val_mean_head_mm"} <= set(val)
    assert 0 < val["val_face_mm"] < 20
    state = load_checkpoint(reference.last_path).samplers["train"]
    assert state["k"] == 2 and state["n_subjects"] == 8, "batches are N subjects x K images"


def test_a_run_interrupted_mid_epoch_resumes_to_the_uninterrupted_weights(reference, tmp_path):
    config = small_config(w_vertices=30.0)
    with pytest.raises(Stop):
        fit(StoppingTask(config, stop_at=10), tmp_path, progress=False, device="cpu")
    mid = load_checkpoint(tmp_path / "last.pt")
    assert (mid.epoch, mid.step, mid.step_in_epoch) == (1, 8, 1), "the checkpoint of step 8, mid-epoch 2"
    resumed = fit(RegressorTask(config, progress=False), tmp_path, progress=False, device="cpu")
    for name, value in reference.model.state_dict().items():
        assert torch.allclose(resumed.model.state_dict()[name], value, atol=1e-6), name


def test_the_checkpoint_rebuilds_the_regressor_without_data(reference):
    regressor, config, checkpoint = load_regressor(reference.last_path)
    assert config == small_config(w_vertices=30.0) and checkpoint.epoch == 2
    images = torch.rand(3, 3, 32, 32)
    trained = reference.model.regressor.eval()
    with torch.no_grad():
        assert torch.allclose(regressor(images).shape, trained(images).shape, atol=1e-6)
        assert torch.allclose(regressor(images).camera, trained(images).camera, atol=1e-6)


def test_two_gloo_ranks_train_it_under_torchrun_and_write_one_run(tmp_path):
    run_dir = tmp_path / "ddp"
    sets = [f"{k}={v}" for k, v in {**SMALL, "epochs": 1, "checkpoint_every": 3}.items()]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "facecourse", "train", "--run-dir", str(run_dir), "--no-progress", "--device", "cpu",
               "--set", *sets]
    process = subprocess.run(command, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert process.stdout.count("run directory:") == 1, "rank 0 alone reports"
    checkpoint = load_checkpoint(run_dir / "last.pt")
    state = checkpoint.samplers["train"]
    assert state["world_size"] == 2 and state["n_subjects"] == 4, "per rank: 4 subjects x 2 images"
    assert checkpoint.step == 7, "56 subjects / (4 per rank x 2 ranks)"
    steps = [r.step for r in read_metrics(run_dir) if r.split == "train" and r.name == "loss"]
    assert steps == sorted(set(steps)), "one rank writes the metrics"


def test_facecourse_train_validates_with_the_now_protocol(tmp_path, capsys):
    code = main(["train", "--run-dir", str(tmp_path), "--no-progress", "--device", "cpu", "--set",
                 *[f"{k}={v}" for k, v in {**SMALL, "epochs": 1, "val_every": 1, "now_validation": True}.items()]])
    assert code == 0
    out = capsys.readouterr().out
    assert "now_median_mm" in out and "checkpoint:" in out
    metrics = load_checkpoint(tmp_path / "best.pt").meta["fit"]["best_metrics"]
    assert metrics["now_failed"] == 0 and 0 < metrics["now_median_mm"] < 5
    assert metrics["now_mean_face_median_mm"] > 0
    with pytest.raises(SystemExit, match="train: .*unknown"):
        main(["train", "--set", "no_such_field=1"])


def test_the_run_directory_names_the_pretrained_networks_it_trains_with(monkeypatch):
    from facecourse.train import regressor as regressor_module
    from facecourse.train.encoder import PretrainConfig
    from facecourse.train.regressor import default_run_dir, pretrained_inputs_key

    base = RegressorConfig.for_mode("ci")
    plain = dataclasses.replace(base, w_identity=0.0, w_id3d=0.0)
    assert pretrained_inputs_key(plain) == "" and default_run_dir(plain, "t" * 12).name.endswith(plain.key())
    autoencoder = dataclasses.replace(base, w_id3d=0.1, id3d_encoder="autoencoder")
    identity = dataclasses.replace(base, w_id3d=0.1, id3d_encoder="identity")
    assert len({pretrained_inputs_key(c) for c in (plain, autoencoder, identity)}) == 3
    before = default_run_dir(autoencoder, "t" * 12)
    other = PretrainConfig.for_mode("ci", latent_dim=9)  # another autoencoder preset: another regressor run
    monkeypatch.setattr(regressor_module, "mesh_encoder_config", lambda kind, mode=None: other)
    assert default_run_dir(autoencoder, "t" * 12) != before
