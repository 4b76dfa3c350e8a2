"""One checkpoint format for every trainable thing in facecourse, read with ``weights_only=True``.

A checkpoint file is ``torch.save`` of a dict tagged ``format = CHECKPOINT_FORMAT`` and
``version = CHECKPOINT_VERSION`` with the fields of :class:`Checkpoint`: model, optimiser and scheduler state,
progress (epoch, step, step in epoch), every RNG state, sampler positions, the config and its key, the package
version, the mesh topology the model is tied to, and task metadata. Everything in it is a tensor or a plain
Python value (None, bool, int, float, str, list, tuple, dict), so ``torch.load(..., weights_only=True)`` reads
it without running code from the file; a file that needs anything else is refused
(:class:`CheckpointError`), never loaded with ``weights_only=False``.

Writes are atomic (temporary file beside the target, then rename) and done by rank 0 only.
"""

from __future__ import annotations

import dataclasses
import pickle
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facecourse import __version__
from facecourse.data.atomic import atomic_path
from facecourse.train.distributed import barrier, is_main

CHECKPOINT_FORMAT = "facecourse-checkpoint"
"""The ``format`` tag of every facecourse checkpoint."""

CHECKPOINT_VERSION = 1
"""The layout version this code writes and the newest it reads."""

_DEFAULT_REBUILD_HINT = "the training command that wrote it"


def package_version() -> str:
    """``facecourse.__version__``: the package version a checkpoint was written with."""
    return __version__


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, unsafe, of another format, version, task or topology."""


@dataclass
class Checkpoint:
    """Everything needed to rebuild a trained model and to resume its training exactly.

    Attributes:
        task: the task name (``TrainConfig.TASK``).
        model: the (unwrapped) model's ``state_dict``.
        optimizer: the optimiser's ``state_dict`` (None for a weights-only export).
        scheduler: the learning-rate scheduler's ``state_dict`` (or None).
        epoch: finished epochs.
        step: optimiser steps done in total.
        step_in_epoch: batches done within the current epoch (0 at an epoch's end).
        rng: :func:`capture_rng_state` of rank 0; in a distributed run also ``"ranks"``: every rank's state,
            indexed by rank.
        samplers: each sampler's ``state_dict`` by name (the loop's is ``"train"``).
        config: ``TrainConfig.to_dict()`` of the run.
        config_key: ``TrainConfig.key()`` of the run.
        package_version: the facecourse version that wrote it (:func:`package_version`).
        topology: hash of the mesh topology the model is tied to (``facecourse.mesh.topology_hash``), or None.
        meta: whatever else the task needs to rebuild its model (template, faces, history, metrics, ...):
            tensors and plain Python values only.
    """

    task: str
    model: dict[str, Any]
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    epoch: int = 0
    step: int = 0
    step_in_epoch: int = 0
    rng: dict[str, Any] = field(default_factory=dict)
    samplers: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    config_key: str = ""
    package_version: str = field(default_factory=package_version)
    topology: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The dict written to disk: the tags and every field (tensors shared, not copied)."""
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **body}


_FIELDS = tuple(f.name for f in dataclasses.fields(Checkpoint))


def check_plain(value: Any, where: str) -> None:
    """Raise CheckpointError naming ``where`` (e.g. ``meta['history'][0]``) unless ``value`` is made of
    tensors and plain Python values only (what ``weights_only=True`` loads)."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise CheckpointError(f"{where} has a key {key!r} of type {type(key).__name__}; use str or int keys")
            check_plain(item, f"{where}[{key!r}]")
        return
    raise CheckpointError(f"{where} is a {type(value).__module__}.{type(value).__qualname__}; a checkpoint holds "
                          f"tensors and plain Python values only (convert arrays with torch.as_tensor)")


def capture_rng_state() -> dict[str, Any]:
    """Every global RNG's state, as tensors and plain values.

    Returns:
        ``{"torch": ByteTensor, "cuda": [ByteTensor of the current CUDA device] (empty when CUDA is unused),
        "numpy": {"bit_generator", "keys": int64 tensor (624,), "pos", "has_gauss", "cached_gaussian"},
        "python": {"version", "state": list of ints, "gauss_next"}}``: numpy's and ``random``'s state tuples
        as dicts, so ``weights_only=True`` loads them.
    """
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state()] if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
        "numpy": {"bit_generator": str(name), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "state": list(state), "gauss_next": gauss_next},
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Set every global RNG from :func:`capture_rng_state`'s dict. A CUDA state is restored on the current
    CUDA device when there is one, skipped otherwise (resuming a GPU run on CPU)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"][0])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["bit_generator"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss_next"]))


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically on rank 0 (other ranks write nothing), then wait for every
    rank (:func:`~facecourse.train.distributed.barrier`); return ``path``.

    Raises:
        CheckpointError: ``config`` or ``meta`` holds something that is not a tensor or plain value (named).
    """
    path = Path(path)
    if is_main():
        check_plain(checkpoint.config, "checkpoint config")
        check_plain(checkpoint.meta, "checkpoint meta")
        with atomic_path(path) as tmp:
            torch.save(checkpoint.to_dict(), tmp)
    barrier()
    return path


def _format_found(data: Any) -> str:
    """What a loaded object that is not a facecourse checkpoint looks like, for the error message."""
    if not isinstance(data, dict):
        return f"a {type(data).__name__}, not a dict"
    if "format" not in data:
        return "an untagged dict (no 'format' key), e.g. a bare state_dict"
    return repr(data["format"])


def load_checkpoint(path: str | Path, task: str | None = None, map_location: Any = "cpu",
                    rebuild_hint: str | None = None) -> Checkpoint:
    """Read a checkpoint with ``torch.load(..., weights_only=True)``.

    Args:
        path: the ``.pt`` file.
        task: the task it must belong to (None: any).
        map_location: where tensors go (default CPU).
        rebuild_hint: the command that rebuilds it (e.g. ``"facecourse pretrain-encoder"``), quoted in errors.

    Raises:
        CheckpointError: the file is missing; holds objects outside the safe format (never executed); is not
            a torch file; is of another format (named) or a newer version; lacks fields; or belongs to another
            task (both named).
    """
    path = Path(path)
    rebuild = f"rebuild it with {rebuild_hint or _DEFAULT_REBUILD_HINT}"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; {rebuild}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL\s+([\w.]+)", str(error))
        what = f" (it refers to {found.group(1)})" if found else ""
        raise CheckpointError(f"{path} holds objects outside the safe checkpoint format (tensors and plain "
                              f"Python values){what} or is not a torch file, and was not loaded; only use "
                              f"checkpoints you made: {rebuild}") from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable torch file (truncated, corrupt or unreadable: {error}); "
                              f"{rebuild}") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a {CHECKPOINT_FORMAT!r} file (format found: {_format_found(data)}); "
                              f"{rebuild}")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path} has a bad checkpoint version {version!r}; {rebuild}")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} is checkpoint version {version}, written by a newer facecourse (this one "
                              f"reads up to {CHECKPOINT_VERSION}): upgrade facecourse or {rebuild}")
    body = {k: v for k, v in data.items() if k not in ("format", "version")}
    missing = [name for name in ("task", "model") if name not in body]
    unknown = sorted(set(body) - set(_FIELDS))
    if missing or unknown:
        raise CheckpointError(f"{path} has missing field(s) {missing} / unknown field(s) {unknown} for version "
                              f"{version}; {rebuild}")
    checkpoint = Checkpoint(**body)
    if task is not None and checkpoint.task != task:
        raise CheckpointError(f"{path} is a checkpoint of task {checkpoint.task!r}, not of task {task!r}")
    return checkpoint


def verify_topology(checkpoint: Checkpoint, topology_hash: str, what: str) -> None:
    """Raise CheckpointError naming both hashes unless ``checkpoint`` was trained on the mesh topology
    ``topology_hash`` (``what`` names the checkpoint in the message, e.g. its path)."""
    if checkpoint.topology != topology_hash:
        raise CheckpointError(f"{what} was trained on mesh topology {checkpoint.topology}, but this mesh has "
                              f"topology {topology_hash}: retrain it for this mesh")
