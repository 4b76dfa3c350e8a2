"""A toy task for the training-engine tests, importable (``from train_toy import ...``) and runnable as a script.

Regression of a fixed synthetic linear target with a small MLP that has dropout, so the result depends on
the data order and on the RNG states (what an exact resume must restore). The task can be told to break
at its n-th loss call: a NaN loss term, an exception (an in-process interruption) or SIGKILL (once: a
marker file records that it happened, so the resumed run goes on).

As a script (also under torchrun)::

    python tests/train_toy.py RUN_DIR --config '{"epochs": 2}' [--kill-at N --marker PATH] [--params-out DIR]

trains with ``fit`` (no progress bar) and, with ``--params-out``, saves each rank's final parameters to
``DIR/rank<r>.pt``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import TensorDataset

from facecourse.train.config import TrainConfig
from facecourse.train.distributed import rank, shutdown
from facecourse.train.loop import Task, fit


@dataclass
class ToyConfig(TrainConfig):
    """The toy run: ``n_samples`` points in ``dim`` dimensions, an MLP of width ``hidden`` with ``dropout``."""

    TASK: ClassVar[str] = "toy"
    PRESETS: ClassVar[dict[str, dict]] = {"ci": {"epochs": 2}, "full": {"epochs": 4}}

    n_samples: int = 64
    dim: int = 4
    hidden: int = 8
    dropout: float = 0.3
    batch_size: int = 8
    lr: float = 1e-2
    log_every: int = 3


class Stop(Exception):
    """Raised by the toy loss to interrupt a run in-process."""


def toy_data(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` inputs ``(n, dim)`` and targets ``(n, 1)`` of a fixed noisy linear map, from their own generator."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=generator)
    w = torch.linspace(-1.0, 1.0, dim).unsqueeze(1)
    return x, x @ w + 0.1 * torch.randn(n, 1, generator=generator)


class ToyTask(Task):
    """The toy regression; ``nan_at`` / ``stop_at`` / ``kill_at`` break the ``n``-th loss call (0 = never)."""

    best_metric = "mse"

    def __init__(self, config: ToyConfig, *, nan_at: int = 0, stop_at: int = 0, kill_at: int = 0,
                 marker: Path | None = None) -> None:
        self.config = config
        self.nan_at, self.stop_at, self.kill_at, self.marker = nan_at, stop_at, kill_at, marker
        self.calls = 0

    def build_model(self) -> nn.Module:
        c = self.config
        return nn.Sequential(nn.Linear(c.dim, c.hidden), nn.Tanh(), nn.Dropout(c.dropout), nn.Linear(c.hidden, 1))

    def train_dataset(self) -> TensorDataset:
        return TensorDataset(*toy_data(self.config.n_samples, self.config.dim, seed=1234))

    def loss(self, model, batch):
        self.calls += 1
        if self.calls == self.kill_at and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        if self.calls == self.stop_at:
            raise Stop(f"stopped at loss call {self.calls}")
        x, y = batch
        mse = ((model(x) - y) ** 2).mean()
        if self.calls == self.nan_at:
            mse = mse * float("nan")
        l2 = 1e-3 * sum((p**2).sum() for p in model.parameters())
        return mse + l2, {"mse": mse, "l2": l2}

    def validate(self, model):
        x, y = toy_data(32, self.config.dim, seed=99)
        error = model(x) - y
        return {"mse": (error**2).mean(), "mae": error.abs().mean()}

    def checkpoint_meta(self, model):
        return {"dim": self.config.dim, "hidden": self.config.hidden}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--config", default="{}", help="ToyConfig fields as JSON")
    parser.add_argument("--kill-at", type=int, default=0)
    parser.add_argument("--marker", type=Path)
    parser.add_argument("--params-out", type=Path)
    args = parser.parse_args()
    task = ToyTask(ToyConfig(**json.loads(args.config)), kill_at=args.kill_at, marker=args.marker)
    result = fit(task, args.run_dir, progress=False, device="cpu")
    if args.params_out is not None:
        torch.save(result.model.state_dict(), args.params_out / f"rank{rank()}.pt")
    shutdown()


if __name__ == "__main__":
    main()
