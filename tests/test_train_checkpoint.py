"""Checkpoints: one tagged format, atomic writes, weights_only reads that refuse code, clear errors."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from facecourse.train.checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, Checkpoint, CheckpointError,
                                         capture_rng_state, load_checkpoint, package_version, restore_rng_state,
                                         save_checkpoint, verify_topology)


def trained_checkpoint() -> Checkpoint:
    """A checkpoint with real optimiser/scheduler state and every kind of field."""
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    return Checkpoint(task="toy", model=model.state_dict(), optimizer=optimizer.state_dict(),
                      scheduler=scheduler.state_dict(), epoch=1, step=7, step_in_epoch=3, rng=capture_rng_state(),
                      samplers={"train": {"epoch": 1, "start": 24}}, config={"lr": 0.1, "filters": [1, 2]},
                      config_key="0123456789ab", topology="f" * 64,
                      meta={"faces": torch.tensor([[0, 1, 2]]), "history": [{"epoch": 1, "loss": 0.5}], "tag": None})


class Payload:
    """Unpickling this runs a shell command: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_round_trip_keeps_every_field(tmp_path):
    checkpoint = trained_checkpoint()
    path = save_checkpoint(tmp_path / "run" / "last.pt", checkpoint)
    assert path == tmp_path / "run" / "last.pt" and os.listdir(path.parent) == ["last.pt"]
    loaded = load_checkpoint(path, task="toy")
    for name in ("task", "epoch", "step", "step_in_epoch", "samplers", "config", "config_key", "topology",
                 "scheduler"):
        assert getattr(loaded, name) == getattr(checkpoint, name), name
    assert loaded.package_version == package_version() != "unknown"
    assert all(torch.equal(loaded.model[k], v) for k, v in checkpoint.model.items())
    assert torch.equal(loaded.meta["faces"], checkpoint.meta["faces"]) and loaded.meta["history"][0]["loss"] == 0.5
    model = torch.nn.Linear(3, 2)
    model.load_state_dict(loaded.model)
    optimizer = torch.optim.Adam(model.parameters())
    optimizer.load_state_dict(loaded.optimizer)
    assert torch.equal(optimizer.state_dict()["state"][0]["exp_avg"], checkpoint.optimizer["state"][0]["exp_avg"])
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT and raw["version"] == CHECKPOINT_VERSION


def test_rng_states_are_captured_and_restored():
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached gaussian in numpy's legacy state
    state = capture_rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random(), np.random.standard_normal())
    restore_rng_state(state)
    second = (torch.rand(3), np.random.rand(3), random.random(), np.random.standard_normal())
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert first[2:] == second[2:]


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "task": "toy", "model": Payload(marker)}, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert str(path) in message and "outside the safe checkpoint format" in message and "not loaded" in message
    assert "weights_only" not in message and "False" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__, "torch's advice is not chained"
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is live: an unsafe load would have run it
    assert marker.exists()


def test_numpy_objects_are_outside_the_format(tmp_path):
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "task": "toy", "model": np.zeros(3)}, tmp_path / "np.pt")
    with pytest.raises(CheckpointError, match="outside the safe checkpoint format"):
        load_checkpoint(tmp_path / "np.pt")


@pytest.mark.parametrize("content, found", [
    ({"weight": torch.zeros(2)}, "untagged dict"),
    ({"format": "facecourse-mesh-autoencoder-v1", "state_dict": {}}, "'facecourse-mesh-autoencoder-v1'"),
    (torch.zeros(2), "a Tensor, not a dict"),
])
def test_other_formats_are_named_with_the_rebuild_hint(tmp_path, content, found):
    path = tmp_path / "old.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path, rebuild_hint="facecourse pretrain-encoder")
    message = str(caught.value)
    assert str(path) in message and found in message and "rebuild it with facecourse pretrain-encoder" in message


def test_newer_version_missing_fields_and_other_task_are_refused(tmp_path):
    body = trained_checkpoint().to_dict()
    torch.save({**body, "version": CHECKPOINT_VERSION + 1}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="version 2, written by a newer facecourse"):
        load_checkpoint(tmp_path / "new.pt")
    torch.save({k: v for k, v in body.items() if k != "model"}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"missing field\(s\) \['model'\]"):
        load_checkpoint(tmp_path / "partial.pt")
    torch.save({**body, "surprise": 1}, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match=r"unknown field\(s\) \['surprise'\]"):
        load_checkpoint(tmp_path / "extra.pt")
    save_checkpoint(tmp_path / "toy.pt", trained_checkpoint())
    with pytest.raises(CheckpointError, match="task 'toy', not of task 'encoder'"):
        load_checkpoint(tmp_path / "toy.pt", task="encoder")


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope.pt does not exist.*rebuild it with facecourse train"):
        load_checkpoint(tmp_path / "nope.pt", rebuild_hint="facecourse train")
    save_checkpoint(tmp_path / "whole.pt", trained_checkpoint())
    data = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="half.pt is not a readable torch file"):
        load_checkpoint(tmp_path / "half.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="text.pt"):
        load_checkpoint(tmp_path / "text.pt")


def test_saving_objects_outside_the_format_is_refused_before_writing(tmp_path):
    checkpoint = trained_checkpoint()
    checkpoint.meta["template"] = np.zeros((3, 3))
    with pytest.raises(CheckpointError, match=r"checkpoint meta\['template'\] is a numpy.ndarray"):
        save_checkpoint(tmp_path / "bad.pt", checkpoint)
    checkpoint.meta = {"where": [Path("x")]}
    with pytest.raises(CheckpointError, match=r"meta\['where'\]\[0\] is a pathlib"):
        save_checkpoint(tmp_path / "bad.pt", checkpoint)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_checkpoint_is_replaced_whole(tmp_path):
    first = trained_checkpoint()
    save_checkpoint(tmp_path / "last.pt", first)
    second = trained_checkpoint()
    second.step = 99
    save_checkpoint(tmp_path / "last.pt", second)
    assert load_checkpoint(tmp_path / "last.pt").step == 99 and os.listdir(tmp_path) == ["last.pt"]


def test_verify_topology_names_both_hashes():
    checkpoint = trained_checkpoint()
    verify_topology(checkpoint, "f" * 64, "encoder.pt")
    with pytest.raises(CheckpointError, match=f"encoder.pt was trained on mesh topology {'f' * 64}.*topology abc"):
        verify_topology(checkpoint, "abc", "encoder.pt")
