"""The training loop: run directory, logs, exact resume (in-process and after SIGKILL), NaN detection,
resume checks. The toy task (tests/train_toy.py) has dropout, so a resume that lost an RNG state, the data
position or the optimiser state would end elsewhere."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facecourse.datasets.paired import SubjectBatchSampler
from facecourse.train.checkpoint import CheckpointError, load_checkpoint
from facecourse.train.config import TrainConfig, cosine_factor
from facecourse.train.distributed import DistEnv
from facecourse.train.loop import FIT_META_KEY, NonFiniteLossError, Task, _per_rank_batch, fit, read_metrics, to_device
from train_toy import Stop, ToyConfig, ToyTask

TOY_SCRIPT = Path(__file__).with_name("train_toy.py")
# 64 samples, batch 8: 8 steps per epoch; 3 epochs = 24 steps. Checkpoints at 5, 8, 10, 15, 16, 20, 24.
CONFIG = ToyConfig(epochs=3, checkpoint_every=5, log_every=3)


def run(task: Task, run_dir: Path, **kwargs):
    return fit(task, run_dir, progress=False, device="cpu", **kwargs)


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_params(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], rtol=0, atol=atol), (name, (a[name] - b[name]).abs().max())


def metric_keys(run_dir: Path) -> list[tuple[int, str, str]]:
    return [(r.step, r.split, r.name) for r in read_metrics(run_dir)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of CONFIG."""
    run_dir = tmp_path_factory.mktemp("reference")
    return run(ToyTask(CONFIG), run_dir)


def test_a_run_writes_its_directory(reference):
    run_dir = reference.run_dir
    names = sorted(p.name for p in run_dir.iterdir())
    events = [n for n in names if n.startswith("events.out.tfevents.")]
    assert len(events) == 1 and sorted(set(names) - set(events)) == ["best.pt", "config.yaml", "last.pt",
                                                                     "metrics.csv"]
    assert ToyConfig.load_yaml(run_dir / "config.yaml") == CONFIG
    last = load_checkpoint(reference.last_path, task="toy")
    assert (last.epoch, last.step, last.step_in_epoch) == (3, 24, 0)
    assert last.config_key == CONFIG.key() and last.config == CONFIG.to_dict() and last.meta["hidden"] == 8
    assert (reference.epoch, reference.step) == (3, 24) and not reference.model.training
    assert_same_params(params(reference.model), last.model, atol=0)


def test_logs_hold_window_means_epoch_means_and_validation(reference):
    rows = read_metrics(reference.run_dir)
    train_steps = sorted({r.step for r in rows if r.split == "train"})
    assert train_steps == [3, 5, 6, 8, 9, 10, 12, 15, 16, 18, 20, 21, 24], "every log_every, checkpoint, epoch end"
    assert {r.name for r in rows if r.split == "train"} == {"loss", "mse", "l2", "lr"}
    assert [(r.step, r.epoch) for r in rows if r.split == "val" and r.name == "mse"] == [(8, 1), (16, 2), (24, 3)]
    assert len(reference.history) == 3
    for entry in reference.history:
        windows = {r.step: r.value for r in rows
                   if r.split == "train" and r.name == "loss" and r.epoch == entry["epoch"]}
        steps = sorted(windows)
        sizes = [s - previous for previous, s in zip([(entry["epoch"] - 1) * 8, *steps[:-1]], steps)]
        assert sum(sizes) == 8
        epoch_mean = sum(windows[s] * n for s, n in zip(steps, sizes)) / 8
        assert entry["train"]["loss"] == pytest.approx(epoch_mean, rel=1e-5)
        val = {r.name: r.value for r in rows if r.split == "val" and r.step == entry["step"]}
        assert entry["val"] == pytest.approx(val) and entry["lr"] == CONFIG.lr
    assert reference.last_metrics == reference.history[-1]["val"]
    best = min(reference.history, key=lambda h: h["val"]["mse"])
    assert reference.best_metrics == best["val"]
    best_checkpoint = load_checkpoint(reference.best_path)
    assert best_checkpoint.step == best["step"] and best_checkpoint.meta[FIT_META_KEY]["best_metrics"] == best["val"]


def test_resume_mid_epoch_in_process_gives_the_uninterrupted_result(reference, tmp_path):
    with pytest.raises(Stop):
        run(ToyTask(CONFIG, stop_at=13), tmp_path)
    mid = load_checkpoint(tmp_path / "last.pt")
    assert (mid.epoch, mid.step, mid.step_in_epoch) == (1, 10, 2)
    resumed = run(ToyTask(CONFIG), tmp_path)
    assert (resumed.epoch, resumed.step) == (3, 24)
    assert_same_params(params(resumed.model), params(reference.model))
    assert metric_keys(tmp_path) == metric_keys(reference.run_dir), "rows after the checkpoint were dropped once"
    for a, b in zip(read_metrics(tmp_path), read_metrics(reference.run_dir)):
        assert a.value == pytest.approx(b.value, rel=1e-5, abs=1e-7), (a, b)
    for a, b in zip(resumed.history, reference.history):
        assert a["train"] == pytest.approx(b["train"], rel=1e-5) and a["val"] == pytest.approx(b["val"], rel=1e-5)


def test_resume_after_sigkill_gives_the_uninterrupted_result(reference, tmp_path):
    """A separate process is killed with SIGKILL mid-epoch (at its 11th loss call); resuming ends where the
    uninterrupted run ends."""
    marker = tmp_path / "killed"
    command = [sys.executable, str(TOY_SCRIPT), str(tmp_path / "run"), "--config",
               json.dumps(CONFIG.to_dict()), "--kill-at", "11", "--marker", str(marker)]
    process = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert process.returncode == -9, process.stderr
    assert marker.exists()
    mid = load_checkpoint(tmp_path / "run" / "last.pt")
    assert (mid.epoch, mid.step, mid.step_in_epoch) == (1, 10, 2)
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp.pt")], "no half checkpoint"
    resumed = run(ToyTask(CONFIG), tmp_path / "run")
    assert_same_params(params(resumed.model), params(reference.model))
    assert metric_keys(tmp_path / "run") == metric_keys(reference.run_dir)


def test_resume_to_more_epochs_and_a_finished_run_trains_nothing(tmp_path):
    two = run(ToyTask(ToyConfig(epochs=2)), tmp_path / "a")
    three = run(ToyTask(ToyConfig(epochs=3)), tmp_path / "a")
    direct = run(ToyTask(ToyConfig(epochs=3)), tmp_path / "b")
    assert (two.step, three.step) == (16, 24)
    assert_same_params(params(three.model), params(direct.model))
    events = sorted(p.name for p in (tmp_path / "a").glob("events.out.tfevents.*"))
    task = ToyTask(ToyConfig(epochs=3))
    again = run(task, tmp_path / "a")
    assert task.calls == 0 and again.step == 24 and again.history == three.history
    assert_same_params(params(again.model), params(three.model), atol=0)
    assert sorted(p.name for p in (tmp_path / "a").glob("events.out.tfevents.*")) == events


def test_resume_with_another_config_is_refused_naming_both_keys(tmp_path):
    run(ToyTask(ToyConfig(epochs=1)), tmp_path)
    other = ToyConfig(epochs=1, lr=2e-2)
    with pytest.raises(CheckpointError) as caught:
        run(ToyTask(other), tmp_path)
    message = str(caught.value)
    assert ToyConfig(epochs=1).key() in message and other.key() in message and "resume=False" in message
    fresh = run(ToyTask(other), tmp_path, resume=False)
    assert fresh.step == 8 and load_checkpoint(tmp_path / "last.pt").config_key == other.key()
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1, "a fresh start clears the old run's events"


def test_non_finite_loss_names_the_step_and_terms_and_keeps_the_last_good_checkpoint(tmp_path):
    config = ToyConfig(epochs=2, checkpoint_every=3, log_every=100)
    with pytest.raises(NonFiniteLossError) as caught:
        run(ToyTask(config, nan_at=7), tmp_path)
    error = caught.value
    message = str(error)
    assert (error.step, error.epoch) == (7, 1) and "step 7 (epoch 1)" in message
    assert math.isnan(error.terms["loss"]) and math.isnan(error.terms["mse"]) and math.isfinite(error.terms["l2"])
    assert "mse=nan" in message and "l2=" in message and "loss=nan" in message
    assert str(tmp_path / "last.pt") in message and "untouched" in message
    last = load_checkpoint(tmp_path / "last.pt")
    assert last.step == 6 < error.step
    assert all(torch.isfinite(v).all() for v in last.model.values())
    assert not (tmp_path / "best.pt").exists(), "the epoch end after the NaN step wrote nothing"
    assert max(r.step for r in read_metrics(tmp_path)) == 6


def test_non_finite_loss_before_any_checkpoint_says_so(tmp_path):
    with pytest.raises(NonFiniteLossError, match="step 2 .*no checkpoint had been written yet"):
        run(ToyTask(ToyConfig(epochs=1, log_every=2), nan_at=2), tmp_path)
    assert not (tmp_path / "last.pt").exists()


class BadTask(ToyTask):
    """Returns whatever ``result`` says instead of the toy loss."""

    def __init__(self, config, result):
        super().__init__(config)
        self.result = result

    def loss(self, model, batch):
        total, terms = super().loss(model, batch)
        return self.result(total, terms)


@pytest.mark.parametrize("result, message", [
    (lambda total, terms: (total.reshape(1), terms), "scalar tensor as the total"),
    (lambda total, terms: (total, [terms["mse"]]), "dict of terms"),
    (lambda total, terms: (total, {"loss": terms["mse"]}), "may not be called 'loss'"),
    (lambda total, terms: (total, {"mse": terms["mse"].reshape(1, 1)}), r"\['mse'\] must be scalar tensors"),
])
def test_bad_loss_returns_are_named(tmp_path, result, message):
    with pytest.raises(ValueError, match=message):
        run(BadTask(ToyConfig(epochs=1), result), tmp_path)


def test_a_best_metric_validation_does_not_return_is_named(tmp_path):
    task = ToyTask(ToyConfig(epochs=1))
    task.best_metric = "accuracy"
    with pytest.raises(ValueError, match=r"'accuracy' is not among the validation metrics \['mae', 'mse'\]"):
        run(task, tmp_path)


def test_validation_does_not_change_training(tmp_path):
    """Validating every epoch or never ends at the same parameters (validate runs under saved RNG states)."""
    class DrawingTask(ToyTask):
        def validate(self, model):
            torch.rand(100)
            return super().validate(model)

    often = run(DrawingTask(ToyConfig(epochs=2, val_every=1)), tmp_path / "often")
    never = run(DrawingTask(ToyConfig(epochs=2, val_every=5)), tmp_path / "never")
    assert often.history[0]["val"] and not never.history[0]["val"] and never.best_path is None
    assert_same_params(params(often.model), params(never.model), atol=0)


def test_the_global_batch_must_split_over_ranks():
    assert _per_rank_batch(ToyConfig(batch_size=8), DistEnv(rank=1, world_size=4)) == 2
    with pytest.raises(ValueError, match=r"batch_size 8 \(global\) is not divisible by the world size 3"):
        _per_rank_batch(ToyConfig(batch_size=8), DistEnv(world_size=3))


def test_fit_needs_a_task(tmp_path):
    with pytest.raises(TypeError, match="Task"):
        fit(object(), tmp_path)


def test_workers_load_the_same_batches(tmp_path, reference):
    """num_workers > 0 (persistent workers) trains on the same batches as loading in-process."""
    with_workers = run(ToyTask(CONFIG), tmp_path, num_workers=1)
    assert_same_params(params(with_workers.model), params(reference.model))


def test_read_metrics_skips_an_unfinished_last_line_and_names_bad_rows(tmp_path):
    (tmp_path / "metrics.csv").write_text("step,epoch,split,name,value\n1,1,train,loss,0.5\n2,1,tra")
    assert [r.value for r in read_metrics(tmp_path)] == [0.5]
    (tmp_path / "metrics.csv").write_text("step,epoch,split,name,value\n1,1,train,loss,x\n2,1,train,loss,1\n")
    with pytest.raises(ValueError, match="metrics.csv:2"):
        read_metrics(tmp_path)
    with pytest.raises(FileNotFoundError, match="metrics.csv"):
        read_metrics(tmp_path / "nothing")


def test_to_device_walks_nested_batches():
    from collections import namedtuple
    from dataclasses import dataclass

    Pair = namedtuple("Pair", "a b")

    @dataclass
    class Batch:
        x: torch.Tensor
        name: str

    batch = {"pair": Pair(torch.ones(1), [torch.zeros(2)]), "item": Batch(torch.ones(3), "n"), "k": 3}
    moved = to_device(batch, torch.device("meta"))
    assert moved["pair"].a.device.type == "meta" and moved["pair"].b[0].device.type == "meta"
    assert isinstance(moved["pair"], Pair) and moved["item"].x.device.type == "meta" and moved["item"].name == "n"
    assert moved["k"] == 3


def test_plain_trainconfig_tasks_work(tmp_path):
    """A task whose config is the base TrainConfig and that has no validation writes no best.pt."""
    class Line(Task):
        def __init__(self):
            self.config = TrainConfig(epochs=2, batch_size=4, lr=0.1, optimizer="sgd", lr_decay=0.5)

        def build_model(self):
            return torch.nn.Linear(1, 1)

        def train_dataset(self):
            x = torch.linspace(-1, 1, 8).unsqueeze(1)
            return torch.utils.data.TensorDataset(x, 3 * x)

        def loss(self, model, batch):
            mse = ((model(batch[0]) - batch[1]) ** 2).mean()
            return mse, {}

    result = run(Line(), tmp_path)
    assert result.best_path is None and result.best_metrics == {} and result.step == 4
    assert [h["lr"] for h in result.history] == [0.1, 0.05]
    assert {r.name for r in read_metrics(tmp_path)} == {"loss", "lr"}


def test_cosine_schedule_steps_every_step_and_resumes_mid_epoch_to_the_same_result(tmp_path):
    config = ToyConfig(epochs=3, checkpoint_every=5, schedule="cosine", warmup_steps=4, lr=5e-2)
    reference = run(ToyTask(config), tmp_path / "reference")
    lrs = [h["lr"] for h in reference.history]  # recorded at each epoch's end: the rate of the next step
    expected = [config.lr * cosine_factor(8 * e + 8, 4, 24) for e in range(3)]
    assert lrs == pytest.approx(expected, abs=1e-9)
    assert reference.history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # decayed to 0 at the last step
    with pytest.raises(Stop):
        run(ToyTask(config, stop_at=13), tmp_path / "resumed")
    resumed = run(ToyTask(config), tmp_path / "resumed")
    assert_same_params(params(resumed.model), params(reference.model))


class _KeyedToyData(torch.utils.data.Dataset):
    """The toy data read by SampleKey (what SubjectBatchSampler yields)."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, key):
        return self.data[key.index]


class SubjectToyTask(ToyTask):
    """The toy regression batched as 4 'subjects' x 2 samples (16 subjects of 4 samples each)."""

    def train_dataset(self):
        return _KeyedToyData(super().train_dataset())

    def batch_sampler(self, dataset, batch_size, rank, world_size):
        subjects = np.arange(len(dataset)) // 4
        return SubjectBatchSampler(subjects, n_subjects=batch_size // 2, k=2, seed=self.config.seed, rank=rank,
                                   world_size=world_size)


def test_a_task_batch_sampler_drives_the_loop_and_resumes_mid_epoch(tmp_path):
    whole = run(SubjectToyTask(CONFIG), tmp_path / "whole")
    assert whole.step == 3 * 4, "16 subjects / 4 per batch = 4 steps per epoch"
    with pytest.raises(Stop):
        run(SubjectToyTask(CONFIG, stop_at=7), tmp_path / "resumed")
    mid = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert (mid.epoch, mid.step_in_epoch) == (1, 1) and mid.samplers["train"]["start"] == 1
    resumed = run(SubjectToyTask(CONFIG), tmp_path / "resumed")
    assert_same_params(params(resumed.model), params(whole.model))
    plain = run(ToyTask(CONFIG), tmp_path / "plain")
    assert not torch.allclose(params(plain.model)["0.weight"], params(whole.model)["0.weight"]), \
        "the task's sampler was not used"
