"""Autoencoder pre-training on the engine: sampling, the task (normaliser, loss, checkpoint round trip, resume,
overfitting), train-or-load, run-directory location, old-format files, the CLI."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import trimesh
from helpers import deformed_spheres

from facecourse.cli import main
from facecourse.flame import FLAME
from facecourse.flame.io import save_deca_landmark_embedding, save_model
from facecourse.mesh import topology_hash
from facecourse.train import CheckpointError, fit, load_checkpoint, save_checkpoint
from facecourse.train import encoder as encoder_module
from facecourse.train.encoder import (
    AutoencoderTask, PretrainConfig, checkpoint_path, load_autoencoder,
    jaw_opening, load_pretrained_autoencoder, pretrain_encoder, reconstruction_errors, sample_flame_meshes,
    training_report,
)


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECOURSE_DATA", str(tmp_path / "data"))


@pytest.fixture()
def tiny_flame(tmp_path):
    """A FLAME-format model (official keys, DECA landmark file) on a 642-vertex sphere with smooth blend shapes."""
    m = trimesh.creation.icosphere(3, radius=0.1)
    v, n = m.vertices, len(m.vertices)
    rng = np.random.default_rng(0)
    poly = np.stack([v[:, 0], v[:, 1], v[:, 2], 10 * v[:, 0] * v[:, 1], 10 * v[:, 1] ** 2], axis=1)
    shapedirs = np.einsum("vb,bck->vck", poly, rng.standard_normal((5, 3, 400)) * 0.01 / np.arange(1, 401) ** 0.5)
    weights = np.zeros((n, 5))
    weights[:, 0] = 1
    folder = tmp_path / "model"
    save_model(folder / "generic_model.pkl", dict(
        v_template=v, f=m.faces, shapedirs=shapedirs, posedirs=np.zeros((n, 3, 36)),
        J_regressor=sp.csc_matrix(np.full((5, n), 1.0 / n)), weights=weights,
        kintree_table=np.array([[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]]), J=np.zeros((5, 3))))
    bary = np.full(3, 1 / 3)
    save_deca_landmark_embedding(folder / "landmark_embedding.npy", np.arange(51), np.tile(bary, (51, 1)),
                                 np.zeros((79, 17), dtype=int), np.tile(bary, (79, 17, 1)), np.arange(68),
                                 np.tile(bary, (68, 1)))
    return folder / "generic_model.pkl"


def small_config(model, **kw):
    base = dict(model=str(model), data="synthetic", n_train=32, n_test=8, factors=(4, 4), filters=(8, 8),
                epochs=2, optimizer="adam", lr=1e-3)
    return PretrainConfig(**{**base, **kw})


def sphere_data(n: int, seed: int = 0, subdivisions: int = 2) -> dict:
    """:func:`pretraining_data`'s dict for ``n`` smooth random deformations (~1 cm) of a 10 cm sphere (metres)."""
    template, faces, x = deformed_spheres(n, seed, subdivisions)
    return {"train": x, "test": x, "template": template, "faces": faces, "source": "synthetic"}


def sphere_task(data: dict, **kw) -> AutoencoderTask:
    base = dict(latent_dim=4, filters=(8, 8), K=3, factors=(4, 4), batch_size=4, optimizer="adam", lr=1e-3,
                weight_decay=0.0, epochs=2)
    return AutoencoderTask(PretrainConfig(**{**base, **kw}), data=data)


# ---- data ----------------------------------------------------------------------------------------------------

def test_sample_flame_meshes(tiny_flame):
    flame = FLAME.from_file(tiny_flame, n_shape=10, n_exp=5)
    a = sample_flame_meshes(flame, 5, seed=3, batch_size=2)
    b = sample_flame_meshes(flame, 5, seed=3)
    assert a.shape == (5, flame.n_vertices, 3) and a.dtype == torch.float32
    torch.testing.assert_close(a, b)  # same seed, same heads, whatever the batching
    assert not torch.allclose(a, sample_flame_meshes(flame, 5, seed=4))
    still = sample_flame_meshes(flame, 2, shape_std=0.0, expression_std=0.0)
    torch.testing.assert_close(still, flame.v_template.expand(2, -1, -1))


def test_jaw_opening_is_drawn_after_shape_and_expression(tiny_flame_path):
    flame = FLAME.from_file(tiny_flame_path)
    closed = sample_flame_meshes(flame, 4, seed=2)
    torch.testing.assert_close(sample_flame_meshes(flame, 4, seed=2, jaw_std=0.0), closed)  # earlier heads kept
    little, more = (sample_flame_meshes(flame, 4, seed=2, jaw_std=s) for s in (0.1, 0.3))
    assert 0 < float((little - closed).norm(dim=-1).max()) < float((more - closed).norm(dim=-1).max())
    pose = jaw_opening(torch.tensor([0.2, 0.0]))
    torch.testing.assert_close(pose, torch.tensor([[0.2, 0.0, 0.0], [0.0, 0.0, 0.0]]))  # about x only


def test_config_checks_its_fields():
    assert (PretrainConfig().optimizer, PretrainConfig().lr, PretrainConfig().epochs) == ("sgd", 8e-3, 300)  # COMA
    ci = PretrainConfig.for_mode("ci")
    assert (ci.optimizer, ci.loss_scale, ci.latent_dim, ci.filters, ci.K) == ("adam", "global", 8, (16, 16, 16, 32), 6)
    assert ci.n_train * ci.epochs // ci.batch_size <= 600  # the CI budget: about a minute of CPU
    assert PretrainConfig().loss_scale == "vertex" and PretrainConfig().jaw_std == 0  # COMA's defaults
    for field, value, message in (("data", "web", "data must be one of"), ("n_train", 0, "n_train must be"),
                                  ("loss_scale", "mm", "loss_scale must be one of"), ("jaw_std", -0.1, "jaw_std must be"),
                                  ("filters", (8, 0), "filters must be"), ("factors", (), "factors must be"),
                                  ("input_scale", "axis", "input_scale must be one of"),
                                  ("input_noise", float("nan"), "input_noise must be >= 0")):
        with pytest.raises(ValueError, match=message):
            PretrainConfig(**{field: value})
    assert (ci.input_scale, ci.input_noise) == ("global", 0.002)  # features that tell people from noise
    assert ci.linear_shortcut and PretrainConfig.for_mode("full").linear_shortcut and not PretrainConfig().linear_shortcut
    with pytest.raises(ValueError, match="linear_shortcut must be true or false"):
        PretrainConfig(linear_shortcut="yes")


def test_training_noise_reaches_the_input_and_not_the_target():
    data = sphere_data(4)
    batch = data["train"]
    clean, noisy = sphere_task(data), sphere_task(data, input_noise=0.01)
    model = clean.build_model()
    clean.on_fresh_start(model, clean.train_dataset())
    torch.manual_seed(0)
    a = noisy.loss(model, batch)[0]
    torch.manual_seed(1)
    b = noisy.loss(model, batch)[0]
    assert a != b  # fresh noise every call
    torch.testing.assert_close(clean.loss(model, batch)[0], clean.loss(model, batch)[0])
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    noisy.loss(model, batch)
    assert 0.005 < float((seen[0] - batch).std()) < 0.02  # the input carries the noise


# ---- the task on the engine ----------------------------------------------------------------------------------

def test_global_loss_scale_divides_by_one_number(tmp_path):
    data = sphere_data(6)
    vertex, global_ = sphere_task(data, epochs=1), sphere_task(data, epochs=1, loss_scale="global")
    model = fit(vertex, tmp_path / "run", progress=False, device="cpu").model
    batch = data["train"][:3]
    residual = (model(batch) - batch).abs()
    torch.testing.assert_close(global_.loss(model, batch)[0], residual.mean() / model.normalizer.std.mean())
    torch.testing.assert_close(vertex.loss(model, batch)[0], (residual / model.normalizer.std).mean())


def test_fresh_start_fits_the_normaliser_and_the_loss_is_normalised_l1(tmp_path):
    data = sphere_data(8)
    task = sphere_task(data, epochs=1)
    result = fit(task, tmp_path / "run", progress=False, device="cpu")
    model = result.model
    torch.testing.assert_close(model.normalizer.mean, data["train"].mean(0))
    torch.testing.assert_close(model.normalizer.std, data["train"].std(0, unbiased=False).clamp_min(1e-4))
    batch = data["train"][:4]
    loss, terms = task.loss(model, batch)
    expected = ((model(batch) - batch) / model.normalizer.std).abs().mean()
    torch.testing.assert_close(loss, expected)
    assert terms == {}
    errors = reconstruction_errors(model, data["test"])
    assert result.last_metrics["mean_mm"] == pytest.approx(float(errors.mean()), rel=1e-5)


@pytest.mark.parametrize("linear_shortcut", [False, True])
def test_checkpoint_round_trip_needs_no_data(tmp_path, linear_shortcut):
    task = sphere_task(sphere_data(8), latent_dim=6, linear_shortcut=linear_shortcut)
    result = fit(task, tmp_path / "run", progress=False, device="cpu")
    loaded, checkpoint = load_autoencoder(result.last_path)
    assert checkpoint.task == "mesh_autoencoder" and checkpoint.epoch == 2 and loaded.config == result.model.config
    assert (loaded.encoder.shortcut is not None) == (loaded.decoder.shortcut is not None) == linear_shortcut
    assert checkpoint.topology == task.topology == loaded.config["topology"]
    x = sphere_data(3, seed=5)["train"]
    torch.testing.assert_close(loaded.normalizer.std, result.model.normalizer.std)
    torch.testing.assert_close(loaded(x), result.model(x))
    z1, f1 = loaded.encoder(x, return_features=True)
    z0, f0 = result.model.encoder(x, return_features=True)
    torch.testing.assert_close(z1, z0)
    report = training_report(checkpoint)
    assert [h["epoch"] for h in report["history"]] == [1, 2] and report["source"] == "synthetic"
    assert report["test"] == result.last_metrics and report["history"][-1]["test_mean_mm"] == report["test"]["mean_mm"]
    best, _ = load_autoencoder(result.best_path)  # best.pt is a checkpoint of the same kind
    assert best.config == loaded.config


def test_checkpoints_of_the_old_format_or_another_topology_are_refused(tmp_path):
    old = tmp_path / "old.pt"
    torch.save({"format": "facecourse-mesh-autoencoder-v1", "model": {}, "config": {}}, old)
    with pytest.raises(CheckpointError, match="rebuild it with facecourse pretrain-encoder"):
        load_autoencoder(old)
    task = sphere_task(sphere_data(8), epochs=1)
    result = fit(task, tmp_path / "run", progress=False, device="cpu")
    checkpoint = load_checkpoint(result.last_path)
    lying = dataclasses.replace(checkpoint, topology="0" * 64)
    with pytest.raises(CheckpointError, match="topology"):
        load_autoencoder(save_checkpoint(tmp_path / "lying.pt", lying))


def test_resume_equals_uninterrupted(tmp_path):
    data = sphere_data(10)
    data = {**data, "train": data["train"][:6], "test": data["train"][6:]}
    straight = fit(sphere_task(data, epochs=3), tmp_path / "a", progress=False, device="cpu")
    fit(sphere_task(data, epochs=2), tmp_path / "b", progress=False, device="cpu")
    resumed = fit(sphere_task(data, epochs=3), tmp_path / "b", progress=False, device="cpu")  # no normaliser refit
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert resumed.last_metrics == pytest.approx(straight.last_metrics)
    with pytest.raises(CheckpointError, match="config key"):
        fit(sphere_task(data, epochs=4, lr=0.1), tmp_path / "b", progress=False, device="cpu")


def test_overfits_a_handful_of_meshes_below_a_millimetre(tmp_path):
    data = sphere_data(4)
    x = data["train"]
    task = sphere_task(data, latent_dim=8, filters=(16, 16), K=4, epochs=400, lr=3e-3, lr_decay=0.995,
                       val_every=400)  # full-batch steps (batch 4)
    before = reconstruction_errors(task.build_model(), x).mean()
    result = fit(task, tmp_path / "run", progress=False, device="cpu")
    err = reconstruction_errors(result.model, x)
    assert before > 5.0  # an untrained network is centimetres off (errors in mm)
    assert result.last_metrics["mean_mm"] == pytest.approx(float(err.mean()), rel=1e-5)
    assert float(err.mean()) < 1.0, result.last_metrics


# ---- train-or-load, location, CLI --------------------------------------------------------------------------

def test_pretrain_then_load_without_training(tiny_flame, monkeypatch):
    config = small_config(tiny_flame)
    model, report = pretrain_encoder(config, progress=False, device="cpu")
    path = checkpoint_path(config, model.config["topology"])
    assert report["checkpoint"] == str(path) and path.name == "last.pt" and path.parent.parent.name == "runs"
    assert path.parent.name == f"mesh_autoencoder-{model.config['topology'][:12]}-{config.key()}"
    assert report["run_dir"] == str(path.parent) and report["source"] == "synthetic"
    assert report["epoch"] == 2 and report["test"]["mean_mm"] > 0 and len(report["history"]) == 2

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must be loaded, not trained")

    monkeypatch.setattr(encoder_module, "fit", no_training)
    monkeypatch.setattr(encoder_module, "pretraining_data", no_training)  # loading samples no meshes either
    loaded = load_pretrained_autoencoder(config)
    x = sample_flame_meshes(FLAME.from_file(tiny_flame), 3, seed=99)
    torch.testing.assert_close(loaded.encoder(x), model.encoder(x))
    assert not loaded.training
    # the checkpoint stores the training set's normalisation
    train = sample_flame_meshes(FLAME.from_file(tiny_flame), config.n_train, seed=0)
    torch.testing.assert_close(loaded.normalizer.mean, train.mean(0))
    with pytest.raises(FileNotFoundError, match="no finished run"):  # 3 epochs are not done: would train
        load_pretrained_autoencoder(dataclasses.replace(config, epochs=3), train_if_missing=False)


def test_train_or_load_resumes_an_unfinished_run(tiny_flame):
    config = small_config(tiny_flame, epochs=1)
    pretrain_encoder(config, progress=False, device="cpu")
    longer = dataclasses.replace(config, epochs=2)
    model = load_pretrained_autoencoder(longer, device="cpu")
    _, checkpoint = load_autoencoder(checkpoint_path(longer, model.config["topology"]))
    assert checkpoint.epoch == 2 and checkpoint.step == 2 * 2  # 32 meshes at batch 16: epoch 2 added 2 steps


def test_an_old_format_file_at_the_place_names_the_rebuild_command(tiny_flame):
    config = small_config(tiny_flame)
    flame = FLAME.from_file(tiny_flame)
    path = checkpoint_path(config, topology_hash(flame.faces.numpy(), flame.n_vertices))
    path.parent.mkdir(parents=True)
    torch.save({"format": "facecourse-mesh-autoencoder-v1", "model": {}}, path)
    for call in (lambda: load_pretrained_autoencoder(config),
                 lambda: pretrain_encoder(config, progress=False, device="cpu")):
        with pytest.raises(CheckpointError, match="rebuild it with facecourse pretrain-encoder") as error:
            call()
        assert str(path) in str(error.value) and "facecourse-mesh-autoencoder-v1" in str(error.value)


def test_cli_synthetic(tiny_flame, capsys):
    args = ["pretrain-encoder", "--mode", "ci", "--model", str(tiny_flame), "--epochs", "1", "--n-train", "16",
            "--n-test", "4", "--latent-dim", "4", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "data: synthetic; epochs: 1" in out and "held-out error: mean" in out and "run directory: " in out
    model, checkpoint = load_autoencoder(out.split("checkpoint: ")[1].split()[0])
    assert model.config["latent_dim"] == 4 and model.config["filters"] == [16, 16, 16, 32]
    assert checkpoint.config["model"] == str(tiny_flame) and checkpoint.config["n_train"] == 16
    assert checkpoint.config_key == PretrainConfig.for_mode("ci", model=str(tiny_flame), epochs=1, n_train=16,
                                                            n_test=4, latent_dim=4).key()


def test_cli_config_file(tiny_flame, tmp_path, capsys):
    preset = small_config(tiny_flame, epochs=5).save_yaml(tmp_path / "mine.yaml")
    assert main(["pretrain-encoder", "--config", str(preset), "--epochs", "1", "--run-dir", str(tmp_path / "run"),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"run directory: {tmp_path / 'run'}" in out
    _, checkpoint = load_autoencoder(tmp_path / "run" / "last.pt")
    assert checkpoint.config == small_config(tiny_flame, epochs=1).to_dict()
    with pytest.raises(SystemExit, match="not both"):
        main(["pretrain-encoder", "--config", str(preset), "--mode", "ci"])
    with pytest.raises(SystemExit, match="missing.yaml"):
        main(["pretrain-encoder", "--config", str(tmp_path / "missing.yaml")])
