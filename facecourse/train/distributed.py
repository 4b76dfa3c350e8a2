"""Data-parallel training through torchrun: process group, rank queries, DDP wrapping, per-rank seeds.

Launch any training script with ``torchrun --nproc_per_node N script.py`` (or
``python -m torch.distributed.run ...``): torchrun sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (and the
rendezvous address) in each process's environment, :func:`init_distributed` joins the process group (NCCL on
CUDA, gloo on CPU), and :func:`wrap_model` wraps the model in ``DistributedDataParallel``, which averages the
gradients over the ranks in ``backward``. Each rank sees ``1 / W`` of every global batch
(:class:`facecourse.train.sampler.ResumableSampler`), so ``W`` ranks with batch ``B / W`` compute the same
step as one process with batch ``B``.

Seeds: the model is initialised from the config's seed on every rank (identical weights; DDP also broadcasts
rank 0's), then each rank reseeds its global RNG with :func:`rank_seed` so dropout and augmentation differ
between ranks. Every query here works, as a single process, when no process group exists.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    """The integer environment variable ``name`` (``default`` when unset); ValueError naming it if bad."""
    text = environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {text!r}") from None


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a torchrun job.

    Attributes:
        rank: global rank, in ``[0, world_size)``; rank 0 writes files.
        local_rank: rank on this machine (the CUDA device index it uses).
        world_size: number of processes (1 = not distributed).
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1:
            raise ValueError(f"WORLD_SIZE must be >= 1, got {self.world_size}")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"RANK must be in [0, WORLD_SIZE={self.world_size}), got {self.rank}")
        if self.local_rank < 0:
            raise ValueError(f"LOCAL_RANK must be >= 0, got {self.local_rank}")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> DistEnv:
        """Read torchrun's ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (default: ``os.environ``; unset means a
        single process: 0, 0, 1).

        Raises:
            ValueError: a variable that is not an integer or out of range, named.
        """
        environ = os.environ if environ is None else environ
        return cls(rank=_env_int(environ, "RANK", 0), local_rank=_env_int(environ, "LOCAL_RANK", 0),
                   world_size=_env_int(environ, "WORLD_SIZE", 1))

    @property
    def is_distributed(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes files."""
        return self.rank == 0


def is_initialized() -> bool:
    """True when a ``torch.distributed`` process group exists in this process."""
    return dist.is_available() and dist.is_initialized()


def init_distributed(device: torch.device) -> DistEnv:
    """Join the torchrun process group if ``WORLD_SIZE > 1`` and none exists yet; return this process's
    :class:`DistEnv`.

    The backend is NCCL when ``device`` is CUDA (after ``torch.cuda.set_device(local_rank)``), else gloo.
    """
    env = DistEnv.from_environ()
    if env.is_distributed and not is_initialized():
        if not dist.is_available():
            raise RuntimeError(f"WORLD_SIZE={env.world_size} but this torch build has no torch.distributed")
        if device.type == "cuda":
            torch.cuda.set_device(env.local_rank)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return env


def rank_device(device: torch.device, env: DistEnv) -> torch.device:
    """The device this rank computes on: ``cuda:<local_rank>`` for a distributed CUDA run, else ``device``."""
    if device.type == "cuda" and env.is_distributed:
        return torch.device("cuda", env.local_rank)
    return device


def world_size() -> int:
    """Number of processes in the process group (1 without one)."""
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if is_initialized() else 0


def is_main() -> bool:
    """True on rank 0, or without a process group: the process that writes files."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for without a process group)."""
    if is_initialized():
        dist.barrier()


def wrap_model(model: nn.Module, env: DistEnv, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` when ``env`` is distributed (on ``device``'s CUDA index when
    CUDA), else ``model`` itself. ``model`` must already be on ``device``."""
    if not env.is_distributed:
        return model
    device_ids = [device.index if device.index is not None else env.local_rank] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def derive_seed(*parts: int | str) -> int:
    """A seed in ``[0, 2**63)`` from the SHA-256 of ``parts``: distinct parts give unrelated streams (unlike
    ``seed + rank``, where seed 1 rank 0 equals seed 0 rank 1)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s global RNG (dropout, augmentation) in a run seeded with ``seed``."""
    return derive_seed("rank", seed, rank)


def shutdown() -> None:
    """Leave the process group (call once at the end of a torchrun script); nothing without one."""
    if is_initialized():
        dist.destroy_process_group()
