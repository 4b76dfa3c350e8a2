"""Resumable, rank-aware samplers for map-style datasets: per sample (:class:`ResumableSampler`) and per batch
(:class:`ResumableBatches`, the protocol the training loop drives; :class:`SampleBatches` adapts the former).

:class:`ResumableSampler` is ``torch.utils.data.DistributedSampler`` (same permutation per epoch, from a
``torch.Generator`` seeded with ``seed + epoch``, never the global RNG; same padding to a multiple of the
world size; same split ``indices[rank::world_size]``) that can also start part-way through an epoch: it skips
the first ``start`` indices of this rank's share. The training loop advances it by each batch it consumes,
so its :meth:`~ResumableSampler.state_dict` is the exact data position, and a resumed run sees the same
remaining batches as an uninterrupted one.

Why the global batches of ``W`` ranks equal those of one process: after ``k`` steps of ``b`` samples per rank,
rank ``r`` has used positions ``r, r + W, ..., r + (kb - 1) W`` of the padded permutation, so the ranks
together have used exactly its first ``k b W`` positions, what one process with batch ``bW`` uses. (The last
batch of an epoch differs when the dataset length is not a multiple of the global batch: the padding repeats
a few samples.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any, Protocol, runtime_checkable

from torch.utils.data import DistributedSampler


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start mid-epoch and save/restore its position.

    Args:
        dataset: the map-style dataset (only its length is used).
        rank, world_size: this process's place (defaults: one process).
        shuffle: a fresh permutation per epoch (else ``0 .. n-1``).
        seed: the permutation of epoch ``e`` is ``randperm(n)`` from a generator seeded ``seed + e``.

    Attributes:
        epoch: the epoch whose indices it yields (0-based).
        start: indices of this rank's share already consumed in this epoch; iteration yields the rest.
        num_samples: length of this rank's share of one epoch (``ceil(n / world_size)``).
    """

    def __init__(self, dataset: Sized, *, rank: int = 0, world_size: int = 1, shuffle: bool = True,
                 seed: int = 0) -> None:
        if len(dataset) < 1:
            raise ValueError("the dataset is empty: a sampler needs at least one sample")
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Yield epoch ``epoch``'s share from position ``start`` (0 = the whole share) on the next iteration."""
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"start must be in [0, {self.num_samples}] (this rank's share), got {start}")
        super().set_epoch(epoch)
        self.start = start

    def advance(self, n: int) -> None:
        """Record that ``n`` more indices of this epoch were consumed (a batch); saturates at the share's end."""
        self.start = min(self.start + n, self.num_samples)

    def __iter__(self) -> Iterator[int]:
        """This rank's indices of the current epoch from position ``start`` on (what DistributedSampler yields,
        minus the first ``start``)."""
        return iter(list(super().__iter__())[self.start:])

    def __len__(self) -> int:
        """Indices left in this epoch for this rank."""
        return self.num_samples - self.start

    def state_dict(self) -> dict[str, Any]:
        """The position (``epoch``, ``start``) and what it is a position in (``length``, ``seed``, ``shuffle``,
        ``world_size``), as plain values."""
        return {"length": len(self.dataset), "seed": self.seed, "shuffle": self.shuffle,
                "world_size": self.num_replicas, "epoch": self.epoch, "start": self.start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict`. A state saved with another world size is converted through its
        global position (``start * world_size`` samples of the epoch).

        Raises:
            ValueError: the state belongs to another dataset length, seed or shuffling, or its global
                position cannot be split evenly over this world size.
        """
        for name, mine in (("length", len(self.dataset)), ("seed", self.seed), ("shuffle", self.shuffle)):
            if state[name] != mine:
                raise ValueError(f"sampler state has {name}={state[name]!r} but this sampler has {mine!r} "
                                 f"(the training set or the seed changed since the state was saved)")
        consumed = state["start"] * state["world_size"]
        if consumed % self.num_replicas:
            raise ValueError(f"sampler state is at global position {consumed}, which {self.num_replicas} ranks "
                             f"cannot share evenly")
        self.set_epoch(state["epoch"], min(consumed // self.num_replicas, self.num_samples))


@runtime_checkable
class ResumableBatches(Protocol):
    """What the training loop needs of a batch sampler (``DataLoader(batch_sampler=...)``): whole epochs of
    this rank's batches (lists of dataset keys), a position inside the epoch counted in batches, and that
    position as plain state for checkpoints. :class:`SampleBatches` and
    :class:`facecourse.datasets.paired.SubjectBatchSampler` implement it.
    """

    @property
    def batches_per_epoch(self) -> int:
        """Batches this rank yields in a whole epoch."""

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Yield epoch ``epoch`` from this rank's batch ``start`` on at the next iteration."""

    def advance(self, n: int = 1) -> None:
        """Record that ``n`` more batches of the epoch were consumed."""

    def state_dict(self) -> dict[str, Any]:
        """The position as plain values."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict`."""

    def __iter__(self) -> Iterator[list[Any]]: ...

    def __len__(self) -> int: ...


class SampleBatches:
    """A :class:`ResumableSampler` cut into batches of ``batch_size`` indices (the last one of an epoch may be
    shorter): the batches ``DataLoader(batch_size=batch_size, sampler=sampler)`` makes, with the
    :class:`ResumableBatches` position (a batch position ``b`` is the sample position ``b * batch_size``; the
    state is the sampler's own, so checkpoints hold the same data either way).

    Args:
        sampler: the per-sample sampler. batch_size: indices per batch on this rank.
    """

    def __init__(self, sampler: ResumableSampler, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.sampler, self.batch_size = sampler, batch_size

    @property
    def batches_per_epoch(self) -> int:
        """``ceil(num_samples / batch_size)``."""
        return -(-self.sampler.num_samples // self.batch_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Epoch ``epoch`` from batch ``start`` on."""
        if not 0 <= start <= self.batches_per_epoch:
            raise ValueError(f"start must be in [0, {self.batches_per_epoch}] (batches per epoch), got {start}")
        self.sampler.set_epoch(epoch, min(start * self.batch_size, self.sampler.num_samples))

    def advance(self, n: int = 1) -> None:
        """``n`` more batches consumed."""
        self.sampler.advance(n * self.batch_size)

    def state_dict(self) -> dict[str, Any]:
        """The sampler's state (:meth:`ResumableSampler.state_dict`)."""
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the sampler's state (:meth:`ResumableSampler.load_state_dict`)."""
        self.sampler.load_state_dict(state)

    def __iter__(self) -> Iterator[list[int]]:
        indices = list(self.sampler)
        return iter([indices[i:i + self.batch_size] for i in range(0, len(indices), self.batch_size)])

    def __len__(self) -> int:
        """Batches left in this epoch."""
        return -(-len(self.sampler) // self.batch_size)
