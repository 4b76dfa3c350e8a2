"""The training loop every facecourse task runs: :func:`fit` a :class:`Task` into a run directory.

A task (subclass :class:`Task`) says what to train: the config, how to build the model and the training set,
the loss, and optionally validation, parameter groups, extra checkpoint data and a fresh-start hook. The loop
does the rest, the same way for every task:

- seeding: ``config.seed`` before ``build_model`` (identical initial weights on every rank), then a per-rank
  seed (:func:`~facecourse.train.distributed.rank_seed`) for dropout and augmentation;
- data: the task's :meth:`Task.batch_sampler` (default: a :class:`~facecourse.train.sampler.ResumableSampler`,
  DistributedSampler order, resumable mid-epoch, in batches of the per-rank batch
  ``config.batch_size // world_size``) drives a ``DataLoader``; batches are moved to the device
  (:func:`to_device`) before ``task.loss``;
- a step: forward under bf16 autocast (CUDA and ``config.amp`` only), backward, optional gradient clipping,
  ``optimizer.step()``; the loss and its terms are summed on the device and a device-side flag records the
  first non-finite step, so no step waits for the GPU;
- every ``log_every`` steps, at each epoch's end and before each checkpoint: one host sync that logs the means
  (``metrics.csv``, TensorBoard, the ``tqdm.auto`` bar) and raises :class:`NonFiniteLossError` if a step was
  not finite (so no checkpoint is ever written after a non-finite step);
- ``last.pt`` every ``checkpoint_every`` steps and at each epoch's end, validation on rank 0 every
  ``val_every`` epochs (without touching the training RNG), ``best.pt`` when ``task.best_metric`` improves,
  the learning-rate schedule stepped per epoch;
- resume: a run directory with ``last.pt`` continues where it stopped, mid-epoch included, to the same
  parameters an uninterrupted run reaches (with ``num_workers=0``, or a dataset whose ``__getitem__`` draws no
  random numbers: worker processes' RNGs are not checkpointed);
- torchrun: DDP across ranks, rank 0 writes every file, all ranks stop together.

Run directory: ``config.yaml`` (the run's config), ``last.pt``, ``best.pt``, ``metrics.csv`` (long format: one
row per value, columns :data:`METRIC_COLUMNS`; ``split`` is ``"train"`` for the loss means over the steps since
the previous row (``loss`` = the total, one row per term, ``lr``) and ``"val"`` for validation metrics;
``epoch`` is the 1-based epoch the row belongs to) and TensorBoard event files (tags ``train/<name>``,
``val/<name>``). Read the CSV back with :func:`read_metrics`. The directory must be shared by all ranks.

In a torchrun script call :func:`facecourse.train.distributed.shutdown` after the last :func:`fit`.
"""

from __future__ import annotations

import abc
import contextlib
import csv
import dataclasses
import random
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate
from torch.utils.tensorboard import SummaryWriter

from facecourse.data.atomic import atomic_open
from facecourse.settings import device as default_device
from facecourse.train.checkpoint import (Checkpoint, CheckpointError, capture_rng_state, load_checkpoint,
                                         restore_rng_state, save_checkpoint, verify_topology)
from facecourse.train.config import TrainConfig, optimizer_for, scheduler_for, steps_scheduled
from facecourse.train.distributed import (DistEnv, barrier, derive_seed, init_distributed, rank_device, rank_seed,
                                          wrap_model)
from facecourse.train.sampler import ResumableBatches, ResumableSampler, SampleBatches
from facecourse.settings import progress_bar

LAST = "last.pt"
BEST = "best.pt"
METRICS = "metrics.csv"
CONFIG_FILE = "config.yaml"
METRIC_COLUMNS = ("step", "epoch", "split", "name", "value")
FIT_META_KEY = "fit"
"""``Checkpoint.meta`` key of the loop's own data (history, metrics, epoch sums); tasks must not use it."""
TOTAL = "loss"
"""Name under which the total loss is logged (a loss term may not use it)."""


class NonFiniteLossError(ValueError):
    """A training step's loss was NaN or infinite.

    Attributes:
        step: the global optimiser step (1-based) whose loss was first non-finite.
        epoch: the 1-based epoch it was in.
        terms: the total (``"loss"``) and every term's value at that step.
        checkpoint: the last good checkpoint (untouched), or None if none had been written.
    """

    def __init__(self, step: int, epoch: int, terms: Mapping[str, float], checkpoint: Path | None) -> None:
        self.step, self.epoch, self.terms, self.checkpoint = step, epoch, dict(terms), checkpoint
        listing = ", ".join(f"{name}={value:.6g}" for name, value in self.terms.items())
        kept = (f"the last good checkpoint {checkpoint} is untouched" if checkpoint is not None
                else "no checkpoint had been written yet")
        super().__init__(f"non-finite loss at step {step} (epoch {epoch}): {listing}; {kept}")


class Task(abc.ABC):
    """What to train; :func:`fit` does the training. Subclass it and implement the three abstract methods.

    Attributes:
        config: the run's :class:`~facecourse.train.config.TrainConfig` (a subclass of it).
        best_metric: name of a :meth:`validate` metric, lower is better; ``best.pt`` tracks it (None: no best).
        topology: hash of the mesh topology the model is tied to (stored in, and checked against, checkpoints).
    """

    config: TrainConfig
    best_metric: str | None = None
    topology: str | None = None

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """A fresh model (called right after seeding with ``config.seed``; the loop moves it to the device)."""

    @abc.abstractmethod
    def train_dataset(self) -> Dataset:
        """The map-style training set (``__len__`` and ``__getitem__``); the loop samples and batches it.
        Random numbers drawn here come from the global RNG right after :meth:`build_model`, the same on a
        fresh start and a resume."""

    @abc.abstractmethod
    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The scalar loss to minimise on ``batch`` (already on the model's device) and its named scalar terms.

        ``model`` may be the DDP wrapper: call ``model(...)`` (its ``forward``), not its submodules, so that the
        gradients are averaged over ranks. Return tensors, never ``.item()`` values (no host sync per step).
        """

    def collate(self, samples: list[Any]) -> Any:
        """Batch a list of ``train_dataset()`` items (default ``torch.utils.data.default_collate``)."""
        return default_collate(samples)

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Metrics of the unwrapped ``model`` on held-out data (called on rank 0 every ``val_every`` epochs in
        eval mode under ``torch.no_grad``, with the RNG states saved and restored around it). Default: none."""
        return {}

    def param_groups(self, model: nn.Module) -> Iterable:
        """What the optimiser updates: parameters or parameter-group dicts (default: all parameters)."""
        return model.parameters()

    def checkpoint_meta(self, model: nn.Module) -> dict[str, Any]:
        """Extra data to rebuild the model from a checkpoint (``Checkpoint.meta``): tensors and plain values."""
        return {}

    def on_fresh_start(self, model: nn.Module, dataset: Dataset) -> None:
        """Called once before the first step of a new run (not on resume), e.g. to fit a normaliser."""

    def batch_sampler(self, dataset: Dataset, batch_size: int, rank: int, world_size: int) -> ResumableBatches:
        """This rank's batches of ``dataset`` (``batch_size`` = the per-rank batch). Default: a
        :class:`~facecourse.train.sampler.ResumableSampler` seeded with ``config.seed`` in batches
        (:class:`~facecourse.train.sampler.SampleBatches`); override to batch otherwise, e.g. N subjects x K
        images (:class:`facecourse.datasets.paired.SubjectBatchSampler`). The epoch a sampler yields is set by
        the loop (``set_epoch``), never by the task."""
        return SampleBatches(ResumableSampler(dataset, rank=rank, world_size=world_size, seed=self.config.seed),
                             batch_size)


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model, unwrapped from DDP, in eval mode.
        epoch: finished epochs; step: optimiser steps done.
        history: one dict per finished epoch: ``epoch``, ``step``, ``lr`` (used in that epoch), ``train``
            (mean loss and terms over the epoch), ``val`` (validation metrics, ``{}`` when not validated).
        last_metrics: the latest validation metrics (``{}`` if none); best_metrics: those of ``best.pt``.
        run_dir, last_path: the run directory and its ``last.pt``; best_path: ``best.pt`` or None.
    """

    model: nn.Module
    epoch: int
    step: int
    history: list[dict[str, Any]]
    last_metrics: dict[str, float]
    best_metrics: dict[str, float]
    run_dir: Path
    last_path: Path
    best_path: Path | None


@dataclass(frozen=True)
class MetricRow:
    """One row of ``metrics.csv``: the value of ``name`` in ``split`` after global step ``step`` of the
    (1-based) epoch ``epoch``."""

    step: int
    epoch: int
    split: str
    name: str
    value: float


def read_metrics(run_dir: str | Path) -> list[MetricRow]:
    """The rows of ``run_dir/metrics.csv`` in file order. An unfinished last line (a run writing or killed
    mid-write) is skipped.

    Raises:
        FileNotFoundError: no metrics file (named).
        ValueError: a malformed row before the last (file and line named).
    """
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise FileNotFoundError(f"no metrics file {path}")
    text = path.read_text()
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines = lines[:-1]
    if not lines or tuple(lines[0].split(",")) != METRIC_COLUMNS:
        raise ValueError(f"{path} does not start with the header {','.join(METRIC_COLUMNS)}")
    rows = []
    for number, record in enumerate(csv.reader(lines[1:]), start=2):
        try:
            step, epoch, split, name, value = record
            rows.append(MetricRow(int(step), int(epoch), split, name, float(value)))
        except ValueError:
            raise ValueError(f"{path}:{number}: malformed metrics row {record!r}") from None
    return rows


def to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """``batch`` with every tensor moved to ``device``: through dicts, lists, tuples (named too) and
    dataclass instances; anything else is returned as it is."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return type(batch)({k: to_device(v, device, non_blocking) for k, v in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device, non_blocking) for v in batch)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(batch, **{f.name: to_device(getattr(batch, f.name), device, non_blocking)
                                             for f in dataclasses.fields(batch) if f.init})
    return batch


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and ``random`` in a worker from its torch seed (which the
    loader derives from its generator and ``worker_id``), so workers draw reproducible numbers."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's global RNG and ``random`` with ``seed``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _all_reduce(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """``tensor`` summed over ranks (a new tensor; ``tensor`` itself without a process group)."""
    if not env.is_distributed:
        return tensor
    total = tensor.clone()
    dist.all_reduce(total)
    return total


def _all_gather(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Every rank's ``tensor`` stacked along a new first axis (``(W, *tensor.shape)``)."""
    if not env.is_distributed:
        return tensor.unsqueeze(0)
    parts = [torch.empty_like(tensor) for _ in range(env.world_size)]
    dist.all_gather(parts, tensor)
    return torch.stack(parts)


class _LossStats:
    """Device-side sums of the total loss and its terms (per log window and per epoch) and the first
    non-finite step, read with one host sync in :meth:`check_finite` / :meth:`window_means`.

    Sums are local to the rank; means are taken over all ranks' sums (``sum / (steps * world_size)``).
    ``epoch_sums`` (restored from a checkpoint) are global sums, held by rank 0 only.
    """

    def __init__(self, device: torch.device, env: DistEnv, step: int, names: Sequence[str] | None = None,
                 epoch_sums: Sequence[float] | None = None, epoch_steps: int = 0) -> None:
        self.device, self.env = device, env
        self.names = list(names) if names is not None else None
        self.step = torch.full((1,), step, dtype=torch.int64, device=device)
        self.bad_step = torch.full((1,), -1, dtype=torch.int64, device=device)
        self.bad_values: torch.Tensor | None = None
        self.window: torch.Tensor | None = None
        self.window_steps = 0
        self.epoch: torch.Tensor | None = None
        self.epoch_steps = epoch_steps
        if epoch_sums is not None and epoch_steps:
            carried = torch.tensor(epoch_sums, dtype=torch.float32, device=device)
            self.epoch = carried if env.is_main else torch.zeros_like(carried)

    def _values(self, total: torch.Tensor, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``[total, *terms]`` as one float32 vector (shape checks are metadata only: no sync)."""
        if not isinstance(total, torch.Tensor) or total.ndim != 0:
            raise ValueError(f"task.loss must return a scalar tensor as the total, got {type(total).__name__} "
                             f"of shape {tuple(getattr(total, 'shape', ()))}")
        if not isinstance(terms, Mapping):
            raise ValueError(f"task.loss must return (total, dict of terms), got terms of type {type(terms).__name__}")
        if self.names is None:
            if TOTAL in terms:
                raise ValueError(f"a loss term may not be called {TOTAL!r} (the total is logged under it)")
            self.names = [TOTAL, *terms]
        if list(terms) != self.names[1:]:
            raise ValueError(f"task.loss returned the terms {list(terms)}, expected {self.names[1:]} "
                             f"(the same names every step)")
        bad = [name for name, value in terms.items() if not isinstance(value, torch.Tensor) or value.ndim != 0]
        if bad:
            raise ValueError(f"loss terms {bad} must be scalar tensors")
        return torch.stack([total.detach().float(), *(t.detach().float() for t in terms.values())])

    def add(self, total: torch.Tensor, terms: Mapping[str, torch.Tensor]) -> None:
        """Count one optimiser step's loss values (device operations only)."""
        values = self._values(total, terms)
        self.step += 1
        if self.bad_values is None:
            self.bad_values = torch.zeros_like(values)
        first = (self.bad_step < 0) & ~torch.isfinite(values).all()
        self.bad_step = torch.where(first, self.step, self.bad_step)
        self.bad_values = torch.where(first, values, self.bad_values)
        self.window = values if self.window is None else self.window + values
        self.epoch = values if self.epoch is None else self.epoch + values
        self.window_steps += 1
        self.epoch_steps += 1

    def check_finite(self, epoch: int, checkpoint: Path | None) -> None:
        """Raise :class:`NonFiniteLossError` (on every rank) if any rank had a non-finite step since the start.

        ``epoch`` is the 1-based epoch in progress, ``checkpoint`` the last good checkpoint (or None)."""
        if self.bad_values is None:
            return
        steps = _all_gather(self.bad_step, self.env).flatten().tolist()
        failed = [(step, r) for r, step in enumerate(steps) if step >= 0]
        if failed:
            step, r = min(failed)
            values = _all_gather(self.bad_values, self.env)[r].tolist()
            raise NonFiniteLossError(step, epoch, dict(zip(self.names, values)), checkpoint)

    def _means(self, sums: torch.Tensor | None, steps: int) -> dict[str, float] | None:
        if sums is None or steps == 0:
            return None
        means = (_all_reduce(sums, self.env) / (steps * self.env.world_size)).tolist()
        return dict(zip(self.names, means))

    def window_means(self) -> dict[str, float] | None:
        """Mean of each value over the steps (and ranks) since the previous call; None if no step."""
        means = self._means(self.window, self.window_steps)
        self.window, self.window_steps = None, 0
        return means

    def epoch_means(self) -> dict[str, float] | None:
        """Mean of each value over this epoch's steps (and ranks) so far; None if no step."""
        return self._means(self.epoch, self.epoch_steps)

    def epoch_state(self) -> dict[str, Any]:
        """This epoch's global sums so far, for a checkpoint (``sums`` None when no step yet)."""
        sums = None if self.epoch is None else _all_reduce(self.epoch, self.env).tolist()
        return {"names": self.names, "sums": sums, "steps": self.epoch_steps}

    def new_epoch(self) -> None:
        """Start the epoch sums afresh."""
        self.epoch, self.epoch_steps = None, 0


class _Outputs:
    """Rank 0's outputs: ``metrics.csv`` rows, TensorBoard scalars and the progress bar (inactive elsewhere)."""

    def __init__(self, run_dir: Path, env: DistEnv, resumed_step: int | None, total: int, initial: int,
                 progress: bool, desc: str) -> None:
        self.active = env.is_main
        self.bar = progress_bar(total=total, initial=initial, desc=desc, unit="step", disable=not (progress and self.active))
        self.csv_file = self.writer = None
        if not self.active:
            return
        path = run_dir / METRICS
        resumed = resumed_step is not None and path.is_file()
        kept = [r for r in read_metrics(run_dir) if r.step <= resumed_step] if resumed else []
        with atomic_open(path, "w") as handle:
            rows = csv.writer(handle, lineterminator="\n")
            rows.writerow(METRIC_COLUMNS)
            rows.writerows(dataclasses.astuple(r) for r in kept)
        self.csv_file = open(path, "a", newline="")
        self.csv = csv.writer(self.csv_file, lineterminator="\n")
        self.writer = SummaryWriter(log_dir=str(run_dir),
                                    purge_step=resumed_step + 1 if resumed_step is not None else None)

    def scalars(self, step: int, epoch: int, split: str, values: Mapping[str, float]) -> None:
        """Log ``values`` of ``split`` at ``step`` to the CSV and TensorBoard."""
        if not self.active:
            return
        for name, value in values.items():
            self.csv.writerow((step, epoch, split, name, value))
            self.writer.add_scalar(f"{split}/{name}", value, step)
        self.csv_file.flush()

    def postfix(self, values: Mapping[str, float]) -> None:
        """Show ``values`` on the progress bar."""
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)

    def flush(self) -> None:
        """Push TensorBoard events to disk (before a checkpoint)."""
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        """Close the bar, the CSV and the TensorBoard writer."""
        self.bar.close()
        if self.csv_file is not None:
            self.csv_file.close()
        if self.writer is not None:
            self.writer.close()


@dataclass
class _Progress:
    """Where the run is and what it has measured (the loop's part of a checkpoint)."""

    epoch: int = 0
    step: int = 0
    step_in_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    last_metrics: dict[str, float] = field(default_factory=dict)
    best_metrics: dict[str, float] = field(default_factory=dict)
    has_checkpoint: bool = False


def _per_rank_batch(config: TrainConfig, env: DistEnv) -> int:
    """``config.batch_size // world_size``; ValueError unless it divides evenly."""
    if config.batch_size % env.world_size:
        raise ValueError(f"batch_size {config.batch_size} (global) is not divisible by the world size "
                         f"{env.world_size}")
    return config.batch_size // env.world_size


def _restore_rng(rng: Mapping[str, Any], env: DistEnv, seed: int, step: int) -> None:
    """Restore this rank's RNG states from a checkpoint; reseed (with a warning) if it came from another
    world size, whose per-rank streams cannot be mapped onto this one."""
    states = rng["ranks"] if "ranks" in rng else [rng]
    if len(states) == env.world_size:
        restore_rng_state(states[env.rank])
        return
    warnings.warn(f"resuming a {len(states)}-process run with {env.world_size} processes: the per-rank random "
                  f"streams are reseeded, so the result will not match an uninterrupted run bit for bit")
    seed_everything(derive_seed("resume", seed, step, env.rank))


def _gather_rng(env: DistEnv) -> dict[str, Any]:
    """Rank 0's RNG states, plus every rank's under ``"ranks"`` in a distributed run (a collective)."""
    state = capture_rng_state()
    if not env.is_distributed:
        return state
    states: list[Any] = [None] * env.world_size
    dist.all_gather_object(states, state)
    return {**states[0], "ranks": states}


def _validate(task: Task, model: nn.Module, env: DistEnv) -> dict[str, float]:
    """``task.validate(model)`` on rank 0 (eval mode, no_grad, RNG states restored afterwards), broadcast to
    every rank; an exception on rank 0 is raised on every rank."""
    outcome: dict[str, float] | str = "validation did not run"
    if env.is_main:
        saved = capture_rng_state()
        model.eval()
        try:
            with torch.no_grad():
                outcome = {str(k): float(v) for k, v in task.validate(model).items()}
        except Exception as error:
            if not env.is_distributed:
                raise
            outcome = f"validation failed on rank 0: {error!r}"
            failure = error
        finally:
            restore_rng_state(saved)
            model.train()
    if env.is_distributed:
        box = [outcome]
        dist.broadcast_object_list(box, src=0)
        outcome = box[0]
        if isinstance(outcome, str):
            if env.is_main:
                raise failure
            raise RuntimeError(outcome)
    if task.best_metric is not None and task.best_metric not in outcome:
        raise ValueError(f"task.best_metric {task.best_metric!r} is not among the validation metrics "
                         f"{sorted(outcome)}")
    return outcome


class _Run:
    """One call of :func:`fit`: the objects it trains with and the steps of the loop."""

    def __init__(self, task: Task, run_dir: Path, resume: bool, progress: bool, device: torch.device | None,
                 num_workers: int) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"fit needs a facecourse.train.Task, got {type(task).__name__}")
        if not isinstance(getattr(task, "config", None), TrainConfig):
            raise TypeError(f"task.config must be a TrainConfig, got {type(getattr(task, 'config', None)).__name__}")
        self.task, self.config, self.run_dir = task, task.config, run_dir
        self.last_path, self.best_path = run_dir / LAST, run_dir / BEST
        device = torch.device(device) if device is not None else default_device()
        self.env = init_distributed(device)
        self.device = rank_device(device, self.env)
        self.batch = _per_rank_batch(self.config, self.env)
        self.progress_bar = progress

        seed_everything(self.config.seed)
        self.model = task.build_model().to(self.device)
        self.dataset = task.train_dataset()
        self.sampler = task.batch_sampler(self.dataset, self.batch, self.env.rank, self.env.world_size)
        if not isinstance(self.sampler, ResumableBatches):
            raise TypeError(f"task.batch_sampler must return a facecourse.train.sampler.ResumableBatches, got "
                            f"{type(self.sampler).__name__}")
        self.state = _Progress()
        checkpoint = self._checkpoint_to_resume() if resume else None
        barrier()  # every rank has decided whether to resume before rank 0 clears a stale run
        if self.env.is_main:
            self._prepare_dir(fresh=checkpoint is None)
        if checkpoint is None:
            task.on_fresh_start(self.model, self.dataset)
        else:
            self.model.load_state_dict(checkpoint.model)
        self.wrapped = wrap_model(self.model, self.env, self.device)
        self.optimizer = optimizer_for(self.config, task.param_groups(self.model))
        self.steps_per_epoch = self.sampler.batches_per_epoch
        self.scheduler = scheduler_for(self.config, self.optimizer, self.steps_per_epoch)
        self.per_step_schedule = steps_scheduled(self.config)
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        epoch_sums: dict[str, Any] = {"names": None, "sums": None, "steps": 0}
        if checkpoint is None:
            seed_everything(rank_seed(self.config.seed, self.env.rank))
        else:
            epoch_sums = self._restore(checkpoint)
        self.stats = _LossStats(self.device, self.env, self.state.step, epoch_sums["names"], epoch_sums["sums"],
                                epoch_sums["steps"])
        self.loader = DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=num_workers,
                                 collate_fn=task.collate, persistent_workers=num_workers > 0,
                                 worker_init_fn=seed_worker, pin_memory=self.device.type == "cuda",
                                 generator=torch.Generator().manual_seed(
                                     derive_seed("loader", self.config.seed, self.env.rank)))
        self.resumed_step = None if checkpoint is None else checkpoint.step

    def _checkpoint_to_resume(self) -> Checkpoint | None:
        """``last.pt`` of the run directory if there is one, checked against this task and config."""
        if not self.last_path.is_file():
            return None
        checkpoint = load_checkpoint(self.last_path, task=self.config.TASK)
        if checkpoint.config_key != self.config.key():
            raise CheckpointError(f"{self.last_path} belongs to a run with config key {checkpoint.config_key}, "
                                  f"this config has key {self.config.key()}: pass resume=False to start afresh "
                                  f"there, or use another run directory")
        if self.task.topology is not None:
            verify_topology(checkpoint, self.task.topology, str(self.last_path))
        return checkpoint

    def _prepare_dir(self, fresh: bool) -> None:
        """Create the run directory, write ``config.yaml``; on a fresh start delete a previous run's files."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if fresh:
            for old in [self.last_path, self.best_path, self.run_dir / METRICS,
                        *self.run_dir.glob("events.out.tfevents.*")]:
                old.unlink(missing_ok=True)
        self.config.save_yaml(self.run_dir / CONFIG_FILE)

    def _restore(self, checkpoint: Checkpoint) -> dict[str, Any]:
        """Load optimiser, scheduler, sampler, RNG and progress from ``checkpoint``; return its epoch sums."""
        self.optimizer.load_state_dict(checkpoint.optimizer)
        self.scheduler.load_state_dict(checkpoint.scheduler)
        self.sampler.load_state_dict(checkpoint.samplers["train"])
        _restore_rng(checkpoint.rng, self.env, self.config.seed, checkpoint.step)
        own = checkpoint.meta[FIT_META_KEY]
        self.state = _Progress(epoch=checkpoint.epoch, step=checkpoint.step, step_in_epoch=checkpoint.step_in_epoch,
                               history=list(own["history"]), last_metrics=dict(own["last_metrics"]),
                               best_metrics=dict(own["best_metrics"]), has_checkpoint=True)
        return own["epoch_sums"]

    def _checkpoint(self) -> Checkpoint:
        """The run's current state as a checkpoint (collectives: call on every rank)."""
        meta = dict(self.task.checkpoint_meta(self.model))
        if FIT_META_KEY in meta:
            raise ValueError(f"task.checkpoint_meta may not use the key {FIT_META_KEY!r} (the loop's own)")
        meta[FIT_META_KEY] = {"history": self.state.history, "last_metrics": self.state.last_metrics,
                              "best_metrics": self.state.best_metrics, "epoch_sums": self.stats.epoch_state()}
        return Checkpoint(task=self.config.TASK, model=self.model.state_dict(),
                          optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                          epoch=self.state.epoch, step=self.state.step, step_in_epoch=self.state.step_in_epoch,
                          rng=_gather_rng(self.env), samplers={"train": self.sampler.state_dict()},
                          config=self.config.to_dict(), config_key=self.config.key(), topology=self.task.topology,
                          meta=meta)

    def _sync(self, out: _Outputs) -> None:
        """The host sync: raise if a step was non-finite, else log the window's means."""
        self.stats.check_finite(self.state.epoch + 1, self.last_path if self.state.has_checkpoint else None)
        means = self.stats.window_means()
        if means is not None:
            values = {**means, "lr": self.optimizer.param_groups[0]["lr"]}
            out.scalars(self.state.step, self.state.epoch + 1, "train", values)
            out.postfix(means)

    def _save(self, path: Path, out: _Outputs) -> None:
        out.flush()
        save_checkpoint(path, self._checkpoint())
        self.state.has_checkpoint = True

    def _step(self, batch: Any) -> None:
        """One optimiser step on ``batch`` (no host sync)."""
        batch = to_device(batch, self.device, non_blocking=self.device.type == "cuda")
        amp = self.device.type == "cuda" and self.config.amp
        with torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext():
            total, terms = self.task.loss(self.wrapped, batch)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        self.optimizer.step()
        if self.per_step_schedule:
            self.scheduler.step()
        self.stats.add(total, terms)
        self.sampler.advance(1)
        self.state.step += 1
        self.state.step_in_epoch += 1

    def _end_epoch(self, out: _Outputs) -> None:
        """Epoch bookkeeping: schedule, validation, history, ``best.pt`` and ``last.pt``."""
        self._sync(out)
        train = self.stats.epoch_means() or {}
        lr = self.optimizer.param_groups[0]["lr"]
        state = self.state
        state.epoch, state.step_in_epoch = state.epoch + 1, 0
        self.stats.new_epoch()
        if not self.per_step_schedule:
            self.scheduler.step()
        self.sampler.set_epoch(state.epoch)
        val: dict[str, float] = {}
        if state.epoch % self.config.val_every == 0:
            val = _validate(self.task, self.model, self.env)
            out.scalars(state.step, state.epoch, "val", val)
            state.last_metrics = val
        state.history.append({"epoch": state.epoch, "step": state.step, "lr": lr, "train": train, "val": val})
        metric = self.task.best_metric
        if val and metric is not None and (not state.best_metrics or val[metric] < state.best_metrics[metric]):
            state.best_metrics = val
            self._save(self.best_path, out)
        self._save(self.last_path, out)

    def train(self) -> None:
        """Train from the current state to ``config.epochs`` epochs."""
        config, state = self.config, self.state
        if state.epoch >= config.epochs:
            return
        out = _Outputs(self.run_dir, self.env, self.resumed_step, config.epochs * self.steps_per_epoch,
                       state.step, self.progress_bar, config.TASK)
        try:
            self.wrapped.train()
            while state.epoch < config.epochs:
                for batch in self.loader:
                    self._step(batch)
                    out.bar.update(1)
                    if state.step_in_epoch == self.steps_per_epoch:
                        break
                    if state.step % config.log_every == 0:
                        self._sync(out)
                    if config.checkpoint_every and state.step % config.checkpoint_every == 0:
                        self._sync(out)
                        self._save(self.last_path, out)
                self._end_epoch(out)
        finally:
            out.close()
        barrier()

    def result(self) -> FitResult:
        """The :class:`FitResult` of the run as it stands."""
        self.model.eval()
        return FitResult(model=self.model, epoch=self.state.epoch, step=self.state.step, history=self.state.history,
                         last_metrics=self.state.last_metrics, best_metrics=self.state.best_metrics,
                         run_dir=self.run_dir, last_path=self.last_path,
                         best_path=self.best_path if self.best_path.is_file() else None)


def fit(task: Task, run_dir: str | Path, *, resume: bool = True, progress: bool = True,
        device: torch.device | str | None = None, num_workers: int = 0) -> FitResult:
    """Train ``task`` in ``run_dir`` to ``task.config.epochs`` epochs (see the module docstring).

    Args:
        task: what to train.
        run_dir: where the run's files go (created; shared by all ranks).
        resume: continue from ``run_dir/last.pt`` when it exists (a finished run trains nothing more); False
            starts afresh and deletes a previous run's checkpoints, metrics and event files there.
        progress: show a ``tqdm.auto`` bar (rank 0 only).
        device: where to train (default :func:`facecourse.settings.device`; ``cuda:<local_rank>`` per rank
            under torchrun).
        num_workers: DataLoader worker processes (persistent); 0 loads in the training process.

    Raises:
        NonFiniteLossError: a step's loss was NaN/inf (``last.pt`` holds the last good state).
        CheckpointError: ``last.pt`` belongs to another task, config key or mesh topology.
        ValueError: the global batch does not split evenly over the ranks, or a bad loss/metric.
    """
    run = _Run(task, Path(run_dir), resume, progress, device, num_workers)
    run.train()
    return run.result()
