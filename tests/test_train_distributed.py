"""Distributed training: torchrun's environment, rank queries without a process group, per-rank seeds, the
resumable DistributedSampler, and a 2-process gloo DDP run that must equal one process with the global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

from facecourse.train.checkpoint import load_checkpoint
from facecourse.train.distributed import (DistEnv, barrier, derive_seed, is_main, rank, rank_device, rank_seed,
                                          shutdown, unwrap_model, world_size, wrap_model)
from facecourse.train.loop import fit, read_metrics
from facecourse.train.sampler import ResumableSampler
from train_toy import ToyConfig, ToyTask

TOY_SCRIPT = Path(__file__).with_name("train_toy.py")


# ---- environment and queries ------------------------------------------------------------------------------

def test_dist_env_reads_torchrun_variables():
    assert DistEnv.from_environ({}) == DistEnv(0, 0, 1) and not DistEnv.from_environ({}).is_distributed
    env = DistEnv.from_environ({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"})
    assert (env.rank, env.local_rank, env.world_size, env.is_distributed, env.is_main) == (3, 1, 4, True, False)


@pytest.mark.parametrize("environ, message", [
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE must be an integer, got 'two'"),
    ({"RANK": "1.5", "WORLD_SIZE": "2"}, "RANK must be an integer"),
    ({"LOCAL_RANK": "x"}, "LOCAL_RANK must be an integer"),
    ({"RANK": "2", "WORLD_SIZE": "2"}, r"RANK must be in \[0, WORLD_SIZE=2\), got 2"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE must be >= 1, got 0"),
    ({"LOCAL_RANK": "-1"}, "LOCAL_RANK must be >= 0"),
])
def test_bad_torchrun_variables_are_named(environ, message):
    with pytest.raises(ValueError, match=message):
        DistEnv.from_environ(environ)


def test_queries_work_without_a_process_group():
    assert (world_size(), rank(), is_main()) == (1, 0, True)
    barrier()
    shutdown()
    model = torch.nn.Linear(2, 2)
    assert wrap_model(model, DistEnv(), torch.device("cpu")) is model and unwrap_model(model) is model
    assert rank_device(torch.device("cpu"), DistEnv(1, 1, 2)) == torch.device("cpu")
    assert rank_device(torch.device("cuda"), DistEnv(1, 1, 2)) == torch.device("cuda", 1)
    assert rank_device(torch.device("cuda"), DistEnv()) == torch.device("cuda")


def test_rank_seeds_are_deterministic_distinct_and_unlike_seed_plus_rank():
    seeds = {rank_seed(s, r) for s in range(4) for r in range(4)}
    assert len(seeds) == 16 and all(0 <= s < 2**63 for s in seeds)
    assert rank_seed(5, 1) == rank_seed(5, 1) == derive_seed("rank", 5, 1)
    assert rank_seed(1, 0) != rank_seed(0, 1)


# ---- the sampler -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, world", [(10, 1), (10, 3), (12, 4), (5, 8)])
def test_sampler_yields_what_distributed_sampler_yields(n, world):
    data = list(range(n))
    for r in range(world):
        for epoch in (0, 3):
            ours = ResumableSampler(data, rank=r, world_size=world, seed=7)
            theirs = DistributedSampler(data, num_replicas=world, rank=r, seed=7)
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_w_ranks_see_the_global_batches_of_one_process():
    """Step k of W ranks with batch B/W covers exactly the samples of step k of one process with batch B."""
    data, batch = list(range(48)), 8
    single = ResumableSampler(data, seed=3)
    single.set_epoch(2)
    one = list(single)
    for world in (2, 4):
        shares = []
        for r in range(world):
            sampler = ResumableSampler(data, rank=r, world_size=world, seed=3)
            sampler.set_epoch(2)
            shares.append(list(sampler))
        per_rank = batch // world
        for k in range(len(data) // batch):
            union = sorted(i for share in shares for i in share[k * per_rank:(k + 1) * per_rank])
            assert union == sorted(one[k * batch:(k + 1) * batch]), (world, k)


def test_sampler_starts_mid_epoch_and_restores_its_state():
    data = list(range(20))
    sampler = ResumableSampler(data, rank=1, world_size=2, seed=0)
    sampler.set_epoch(1)
    full = list(sampler)
    sampler.advance(4)
    assert list(sampler) == full[4:] and len(sampler) == 6
    state = sampler.state_dict()
    assert state == {"length": 20, "seed": 0, "shuffle": True, "world_size": 2, "epoch": 1, "start": 4}
    again = ResumableSampler(data, rank=1, world_size=2, seed=0)
    again.load_state_dict(state)
    assert list(again) == full[4:]
    sampler.advance(100)
    assert list(sampler) == [] and sampler.start == 10
    sampler.set_epoch(2)
    assert len(list(sampler)) == 10 and list(sampler) != full


def test_sampler_state_moves_between_world_sizes_by_global_position():
    data = list(range(32))
    two = ResumableSampler(data, rank=0, world_size=2, seed=1)
    two.set_epoch(0, start=4)  # 8 samples of the epoch consumed globally
    four = ResumableSampler(data, rank=3, world_size=4, seed=1)
    four.load_state_dict(two.state_dict())
    assert (four.epoch, four.start) == (0, 2)
    three = ResumableSampler(data, rank=0, world_size=3, seed=1)
    with pytest.raises(ValueError, match="global position 8, which 3 ranks cannot share evenly"):
        three.load_state_dict(two.state_dict())


@pytest.mark.parametrize("change, message", [({"length": 21}, "length=21"), ({"seed": 5}, "seed=5"),
                                             ({"shuffle": False}, "shuffle=False")])
def test_sampler_state_of_another_dataset_is_refused(change, message):
    sampler = ResumableSampler(list(range(20)))
    with pytest.raises(ValueError, match=message):
        sampler.load_state_dict({**sampler.state_dict(), **change})


def test_sampler_checks_its_inputs():
    with pytest.raises(ValueError, match="empty"):
        ResumableSampler([])
    with pytest.raises(ValueError, match=r"start must be in \[0, 10\]"):
        ResumableSampler(list(range(10))).set_epoch(0, start=11)


def test_sampler_never_touches_the_global_rng():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    sampler = ResumableSampler(list(range(50)), seed=4)
    sampler.set_epoch(3)
    list(sampler)
    assert torch.equal(torch.get_rng_state(), before)


# ---- DDP on CPU ------------------------------------------------------------------------------------------

def torchrun(config: ToyConfig, run_dir: Path, params_out: Path) -> None:
    """Train the toy task with 2 gloo ranks under torchrun (a hang fails after 120 s)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(TOY_SCRIPT), str(run_dir), "--config", json.dumps(config.to_dict()), "--params-out", str(params_out)]
    process = subprocess.run(command, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]


def assert_params_close(state: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], what: str) -> None:
    for name, value in reference.items():
        assert torch.allclose(state[name], value, rtol=0, atol=1e-6), (what, name, (state[name] - value).abs().max())


def test_two_process_ddp_equals_one_process_with_the_global_batch(tmp_path):
    """torchrun, 2 gloo ranks x batch 4 = one process x batch 8: same parameters, one set of files; resuming
    the DDP run to a third epoch still equals one process."""
    # 32 samples / global batch 8: every step is a full global batch (no padding); no dropout.
    config = ToyConfig(n_samples=32, dropout=0.0, epochs=2, log_every=2, checkpoint_every=3)
    torchrun(config, tmp_path / "ddp", tmp_path)
    single = fit(ToyTask(config), tmp_path / "single", progress=False, device="cpu")
    ddp = load_checkpoint(tmp_path / "ddp" / "last.pt", task="toy")
    assert (ddp.epoch, ddp.step) == (2, 8) == (single.epoch, single.step)
    reference = single.model.state_dict()
    for r in (0, 1):
        assert_params_close(torch.load(tmp_path / f"rank{r}.pt", weights_only=True), reference, f"rank {r}")
    assert_params_close(ddp.model, reference, "last.pt")
    assert len(ddp.rng["ranks"]) == 2, "every rank's RNG state is checkpointed"
    assert not torch.equal(ddp.rng["ranks"][0]["torch"], ddp.rng["ranks"][1]["torch"]), "per-rank seeds"

    files = sorted(p.name for p in (tmp_path / "ddp").iterdir())
    events = [f for f in files if f.startswith("events.out.tfevents.")]
    assert len(events) == 1, files
    assert sorted(set(files) - set(events)) == ["best.pt", "config.yaml", "last.pt", "metrics.csv"]
    rows, expected = read_metrics(tmp_path / "ddp"), read_metrics(tmp_path / "single")
    keys = [(r.step, r.split, r.name) for r in rows]
    assert len(keys) == len(set(keys)), "no duplicated rows"
    assert keys == [(r.step, r.split, r.name) for r in expected]
    for got, want in zip(rows, expected):
        assert got.value == pytest.approx(want.value, rel=1e-5, abs=1e-7), (got, want)

    longer = ToyConfig(**{**config.to_dict(), "epochs": 3})
    torchrun(longer, tmp_path / "ddp", tmp_path)
    resumed = load_checkpoint(tmp_path / "ddp" / "last.pt")
    single = fit(ToyTask(longer), tmp_path / "single", progress=False, device="cpu")
    assert (resumed.epoch, resumed.step) == (3, 12) == (single.epoch, single.step)
    assert_params_close(resumed.model, single.model.state_dict(), "resumed last.pt")
    keys = [(r.step, r.split, r.name) for r in read_metrics(tmp_path / "ddp")]
    assert keys == [(r.step, r.split, r.name) for r in read_metrics(tmp_path / "single")]
