"""Identity-supervised mesh encoder: people sampling, metrics against hand-made cases, the loss against its
definition, training on a tiny FLAME model, checkpoints, train-or-load and the one loader of both kinds."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from facecourse.flame import FLAME
from facecourse.mesh import topology_hash
from facecourse.train import CheckpointError, fit, load_checkpoint, save_checkpoint
from facecourse.train import identity_encoder as module
from facecourse.train.encoder import PretrainConfig, pretrain_encoder
from facecourse.train.identity_encoder import (
    IdentityEncoderConfig, IdentityEncoderTask, default_run_dir, identity_data, identity_metrics,
    load_identity_encoder, neutral_head_errors, pretrained_identity_encoder, retrieval_accuracy, sample_people,
)
from facecourse.train.mesh_encoders import load_mesh_encoder, pretrained_mesh_encoder


@pytest.fixture(autouse=True)
def _data(data_dir):
    return data_dir


def tiny_config(path, **kw) -> IdentityEncoderConfig:
    base = dict(model=str(path), n_identities=48, n_expressions=2, n_test_identities=12, latent_dim=4,
                filters=(8, 8), K=3, factors=(4, 4), epochs=2, batch_size=8, lr=3e-3, jaw_std=0.1)
    return IdentityEncoderConfig(**{**base, **kw})


def test_people_share_a_shape_across_their_meshes(tiny_flame_path):
    flame = FLAME.from_file(tiny_flame_path)
    people = sample_people(flame, 3, 2, seed=1, jaw_std=0.2)
    assert people.vertices.shape == (3, 2, flame.n_vertices, 3) and people.shape.shape == (3, flame.n_shape)
    assert not torch.allclose(people.vertices[:, 0], people.vertices[:, 1])  # expressions differ
    torch.testing.assert_close(sample_people(flame, 3, 2, seed=1, jaw_std=0.2).vertices, people.vertices)
    still = sample_people(flame, 3, 2, seed=1, expression_std=0.0, jaw_std=0.0)
    torch.testing.assert_close(still.vertices[:, 0], still.vertices[:, 1])  # same person, same neutral head
    torch.testing.assert_close(still.vertices[:, 0], flame(shape=people.shape).vertices.float())
    meshes, person = people.meshes()
    assert meshes.shape == (6, flame.n_vertices, 3) and person.tolist() == [0, 0, 1, 1, 2, 2]


def test_neutral_head_errors_and_retrieval_on_known_answers(tiny_flame_path):
    data = identity_data(tiny_config(tiny_flame_path))
    t, s, beta = data.template, data.shape_basis, data.test.shape
    assert float(neutral_head_errors(t, s, beta, beta).max()) < 1e-9  # the truth: no error
    template_errors = neutral_head_errors(t, s, beta, beta[:, :0])  # nothing estimated: the template
    truth = t + torch.einsum("vck,nk->nvc", s, beta.double())
    torch.testing.assert_close(template_errors, (truth - t).norm(dim=-1) * 1000)
    z = torch.randn(5, 3)
    assert retrieval_accuracy(z, z + 1e-3) == 1.0
    assert retrieval_accuracy(z, z[[1, 0, 2, 3, 4]]) == pytest.approx(0.6)


def test_oracle_code_scores_perfectly_and_the_loss_is_the_neutral_squared_error(tiny_flame_path):
    config = tiny_config(tiny_flame_path)
    task = IdentityEncoderTask(config)
    d = config.latent_dim
    people = task.data.test

    class Oracle(torch.nn.Module):  # answers each held-out mesh with its person's true first d coefficients
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(()))
            self.lookup = {m.numpy().tobytes(): people.shape[i, :d] for i, pm in enumerate(people.vertices) for m in pm}

        def forward(self, x):
            return torch.stack([self.lookup[m.numpy().tobytes()] for m in x]) + self.anchor

    metrics = identity_metrics(Oracle(), people, task.data.template, task.data.shape_basis)
    assert metrics.r2 == pytest.approx(1.0) and metrics.retrieval_top1 == 1.0 and metrics.verification == 1.0
    full = neutral_head_errors(task.data.template, task.data.shape_basis, people.shape, people.shape).mean()
    assert metrics.neutral_mm > float(full)  # truncation to d coefficients counts
    model = task.build_model()
    vertices, beta = task.train_dataset().__getitems__([0, 1, 2])
    loss, terms = task.loss(model, (vertices, beta))
    errors = neutral_head_errors(task.data.template, task.data.shape_basis, torch.nn.functional.pad(beta, (0, task.data.shape_basis.shape[-1] - d)),
                                 model(vertices).detach())
    assert terms == {} and float(loss.detach()) == pytest.approx(float((errors ** 2).mean()), rel=1e-4)


def test_training_learns_identity_and_round_trips(tiny_flame_path):
    config = tiny_config(tiny_flame_path, epochs=6)
    task = IdentityEncoderTask(config)
    before = identity_metrics(task.build_model(), task.data.test, task.data.template, task.data.shape_basis)
    result = fit(task, default_run_dir(config, task.topology), progress=False, device="cpu")
    after = identity_metrics(result.model, task.data.test, task.data.template, task.data.shape_basis)
    assert result.last_metrics == pytest.approx(after.as_dict())
    assert after.r2 > 0.5 > before.r2 and after.neutral_mm < 0.7 * before.neutral_mm, (before, after)
    assert after.retrieval_top1 > 0.5  # 12 people: chance is 1/12
    encoder, checkpoint = load_identity_encoder(result.last_path)
    assert checkpoint.task == "mesh_identity_encoder" and not encoder.training
    flame = FLAME.from_file(tiny_flame_path)
    assert encoder.topology == topology_hash(flame.faces.numpy(), flame.n_vertices) == checkpoint.topology
    x = task.data.test.vertices[:, 0]
    torch.testing.assert_close(encoder(x), result.model(x))
    same, _ = load_mesh_encoder(result.last_path)  # the one loader of either kind
    z, features = same(x, return_features=True)
    torch.testing.assert_close(z, encoder(x))
    assert [f.shape[-1] for f in features] == [8, 8]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must be loaded, not trained")

    monkeypatch = pytest.MonkeyPatch()
    with monkeypatch.context() as m:
        m.setattr(module, "fit", no_training)
        torch.testing.assert_close(pretrained_identity_encoder(config)(x), encoder(x))
    with pytest.raises(FileNotFoundError, match="no finished run"):
        pretrained_identity_encoder(dataclasses.replace(config, epochs=7), train_if_missing=False)
    lying = dataclasses.replace(load_checkpoint(result.last_path), topology="0" * 64)
    with pytest.raises(CheckpointError, match="topology"):
        load_mesh_encoder(save_checkpoint(result.run_dir / "lying.pt", lying))


def test_one_loader_for_both_kinds_and_refuses_other_tasks(tiny_flame_path, tmp_path):
    ae_config = PretrainConfig(model=str(tiny_flame_path), data="synthetic", n_train=16, n_test=4, factors=(4, 4),
                               filters=(8, 8), K=3, latent_dim=4, epochs=1, optimizer="adam", lr=1e-3)
    model, report = pretrain_encoder(ae_config, progress=False, device="cpu")
    encoder, checkpoint = load_mesh_encoder(report["checkpoint"])
    x = sample_people(FLAME.from_file(tiny_flame_path), 2, 1).vertices[:, 0]
    assert checkpoint.task == "mesh_autoencoder" and encoder.topology == model.config["topology"]
    torch.testing.assert_close(encoder(x), model.encoder(x))
    other = dataclasses.replace(checkpoint, task="face_recogniser")
    with pytest.raises(CheckpointError, match="not of a mesh encoder"):
        load_mesh_encoder(save_checkpoint(tmp_path / "other.pt", other))
    with pytest.raises(ValueError, match="kind must be one of"):
        pretrained_mesh_encoder("pca")


def test_config_checks_its_fields():
    ci = IdentityEncoderConfig.for_mode("ci")
    assert ci.model == "small" and ci.n_identities * ci.n_expressions // ci.batch_size * ci.epochs <= 400
    assert (ci.input_scale, ci.input_noise) == ("global", 0.002)
    for field, value, message in (("n_test_identities", 1, "n_test_identities must be"),
                                  ("jaw_std", -1.0, "jaw_std must be"), ("filters", (8, 0), "filters must be"),
                                  ("input_scale", "axis", "input_scale must be one of"),
                                  ("input_noise", -0.1, "input_noise must be")):
        with pytest.raises(ValueError, match=message):
            IdentityEncoderConfig(**{field: value})
