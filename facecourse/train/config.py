"""Training configurations: one dataclass per task, with presets per mode, a result key and YAML files.

Every task's configuration subclasses :class:`TrainConfig` (a ``@dataclass``), adds its own fields, sets
``TASK`` and ``PRESETS`` and is registered with :func:`register_config`::

    @register_config
    @dataclass
    class EncoderConfig(TrainConfig):
        TASK: ClassVar[str] = "encoder"
        PRESETS: ClassVar[dict[str, dict]] = {"ci": {"epochs": 2, "n_train": 64}, "full": {"epochs": 300}}
        latent_dim: int = 8
        n_train: int = 2048

        def __post_init__(self):
            super().__post_init__()
            ...  # validate the new fields

``EncoderConfig.for_mode("ci")`` is the CI preset, ``.key()`` names what the run computes (checkpoints and
run directories are keyed by it), and the presets are committed as YAML under ``configs/<task>/<mode>.yaml``
(:func:`preset_path`); ``python -m facecourse.train.config`` rewrites them and ``--check`` compares them,
as ``tests/test_train_config.py`` does.

The optimiser and learning-rate schedule a config describes are built here too (:func:`optimizer_for`,
:func:`scheduler_for`), so the meaning of ``optimizer``, ``lr``, ``lr_decay``, ``momentum`` and
``weight_decay`` is written once.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
import yaml

from facecourse.data.atomic import atomic_open
from facecourse.settings import MODES
from facecourse.settings import mode as current_mode

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("exponential", "cosine")
"""Learning-rate schedules (:func:`scheduler_for`)."""
"""Optimiser names a config may ask for (:func:`optimizer_for`)."""

CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"
"""The committed presets: ``configs/`` at the root of the source checkout (two levels above the package
``facecourse/``), i.e. the repository the package is installed from in editable mode."""

CONFIGS: dict[str, type[TrainConfig]] = {}
"""Every registered config class by its ``TASK`` name (filled by :func:`register_config` when a task module
is imported; ``import facecourse.train`` imports them all)."""

C = TypeVar("C", bound="TrainConfig")


def _plain(value: Any, where: str) -> Any:
    """``value`` as JSON/YAML-friendly data (tuples become lists); TypeError naming ``where`` otherwise."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{where} must have string keys, got {sorted(map(repr, value))}")
        return {k: _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(f"{where} must be a plain value (None, bool, int, float, str, list, tuple, dict), "
                    f"got {type(value).__name__}")


def _tuples(value: Any) -> Any:
    """Lists (at any depth) back to tuples: the inverse of :func:`_plain` for tuple-valued fields."""
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


def _is_float_hint(hint: Any) -> bool:
    """True for ``float`` and ``float | None`` (an int given for such a field is stored as a float)."""
    if hint is float:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = set(typing.get_args(hint))
        return float in args and int not in args
    return False


def _int(name: str, value: Any, minimum: int) -> None:
    """ValueError unless ``value`` is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _number(name: str, value: Any, low: float, high: float = math.inf, *, low_open: bool = False,
            high_open: bool = False) -> None:
    """ValueError unless ``value`` is a finite real number in the interval ``[low, high]`` (ends optionally
    open)."""
    if high == math.inf:
        expected = f"a finite number {'>' if low_open else '>='} {low:g}"
    else:
        expected = f"a finite number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    if value < low or (low_open and value == low) or value > high or (high_open and value == high):
        raise ValueError(f"{name} must be {expected}, got {value}")


@dataclass
class TrainConfig:
    """The settings every training run has; a task's config subclasses it and adds its own fields.

    Attributes:
        seed: seeds the model initialisation, the data order and (per rank) dropout/augmentation.
        epochs: passes over the training set (result-neutral: a run can be resumed to more epochs).
        batch_size: the GLOBAL batch, summed over all ranks (each of ``W`` ranks takes ``batch_size / W``).
        optimizer: ``"sgd"`` (with ``momentum``), ``"adam"`` or ``"adamw"`` (:func:`optimizer_for`).
        lr: learning rate of the first epoch.
        lr_decay: factor applied to the learning rate after every epoch (``ExponentialLR`` gamma, in (0, 1]);
            used by the ``"exponential"`` schedule.
        schedule: ``"exponential"`` (``lr_decay`` per epoch) or ``"cosine"``: a linear warm-up over
            ``warmup_steps`` optimiser steps, then a cosine decay to 0 at the last step of ``epochs`` epochs
            (stepped every optimiser step; ``epochs`` then changes results and enters :meth:`key`).
        warmup_steps: optimiser steps of the cosine schedule's warm-up (0: none).
        momentum: SGD momentum, in [0, 1) (unused by Adam/AdamW).
        weight_decay: L2 penalty (SGD, Adam) or decoupled decay (AdamW), >= 0.
        grad_clip: clip the gradients' global L2 norm to this value (``clip_grad_norm_``); None = no clipping.
        log_every: optimiser steps between two log lines (TensorBoard, CSV, progress bar).
        val_every: epochs between two validations.
        checkpoint_every: optimiser steps between two ``last.pt`` writes; 0 = only at the end of each epoch.
        amp: bf16 autocast for the forward pass; takes effect on CUDA only.

    Class variables (override in a subclass):
        TASK: the task name; names checkpoints, run keys and ``configs/<TASK>/``.
        PRESETS: field overrides per mode (``"ci"``, ``"full"``), applied by :meth:`for_mode`.
        RESULT_NEUTRAL: fields that do not change what is computed, left out of :meth:`key`.
    """

    TASK: ClassVar[str] = "base"
    PRESETS: ClassVar[dict[str, dict]] = {"ci": {}, "full": {}}
    RESULT_NEUTRAL: ClassVar[tuple[str, ...]] = ("epochs", "log_every", "val_every", "checkpoint_every")

    seed: int = 0
    epochs: int = 1
    batch_size: int = 16
    optimizer: str = "adam"
    lr: float = 1e-3
    lr_decay: float = 1.0
    schedule: str = "exponential"
    warmup_steps: int = 0
    momentum: float = 0.9
    weight_decay: float = 0.0
    grad_clip: float | None = None
    log_every: int = 10
    val_every: int = 1
    checkpoint_every: int = 0
    amp: bool = True

    def __post_init__(self) -> None:
        """Store ints given for float fields as floats (so ``lr=1`` and ``lr=1.0`` have one key) and check
        every field, raising ValueError naming the field and what was expected."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if _is_float_hint(hints.get(f.name)) and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, f.name, float(value))
            _plain(getattr(self, f.name), f"{type(self).__name__}.{f.name}")
        _int("seed", self.seed, 0)
        if self.seed >= 2**63:
            raise ValueError(f"seed must be < 2**63, got {self.seed}")
        _int("epochs", self.epochs, 1)
        _int("batch_size", self.batch_size, 1)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _number("lr", self.lr, 0.0, low_open=True)
        _number("lr_decay", self.lr_decay, 0.0, 1.0, low_open=True)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        _int("warmup_steps", self.warmup_steps, 0)
        _number("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _number("weight_decay", self.weight_decay, 0.0)
        if self.grad_clip is not None:
            _number("grad_clip", self.grad_clip, 0.0, low_open=True)
        _int("log_every", self.log_every, 1)
        _int("val_every", self.val_every, 1)
        _int("checkpoint_every", self.checkpoint_every, 0)
        if not isinstance(self.amp, bool):
            raise ValueError(f"amp must be True or False, got {self.amp!r}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names of the config's fields, in declaration order (base fields first)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def _check_names(cls, names: Iterable[str], what: str) -> None:
        unknown = sorted(set(names) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"{what} of {cls.__name__} has unknown field(s) {unknown}; "
                             f"known: {list(cls.field_names())}")

    @classmethod
    def for_mode(cls: type[C], mode: str | None = None, **overrides: Any) -> C:
        """The preset of ``mode`` (default :func:`facecourse.settings.mode`) with ``overrides`` applied.

        Raises:
            ValueError: unknown mode, or an override (or preset entry) that is not a field.
        """
        mode = current_mode() if mode is None else mode
        if mode not in cls.PRESETS:
            raise ValueError(f"unknown mode {mode!r} for {cls.__name__}; presets: {sorted(cls.PRESETS)}")
        cls._check_names(cls.PRESETS[mode], f"preset {mode!r}")
        cls._check_names(overrides, "overrides")
        return cls(**{**cls.PRESETS[mode], **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Every field by name, as JSON/YAML-friendly values (tuples become lists)."""
        return {f.name: _plain(getattr(self, f.name), f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """The config holding ``data`` (as written by :meth:`to_dict`); missing fields take their defaults,
        lists become tuples where the field's default is a tuple.

        Raises:
            ValueError: ``data`` is not a mapping, has unknown keys (named), or holds a bad value.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"{cls.__name__}.from_dict needs a mapping, got {type(data).__name__}")
        cls._check_names(data, "data")
        values = dict(data)
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            if f.name in values and isinstance(default, tuple):
                values[f.name] = _tuples(values[f.name])
        return cls(**values)

    def key(self) -> str:
        """The run key: first 12 hex digits of the SHA-256 of ``TASK`` and :meth:`to_dict` without the
        ``RESULT_NEUTRAL`` fields, as canonical JSON. Equal keys mean equal results."""
        neutral = set(self.RESULT_NEUTRAL) - ({"epochs"} if self.schedule == "cosine" else set())
        relevant = {k: v for k, v in self.to_dict().items() if k not in neutral}
        text = json.dumps({"task": self.TASK, "config": relevant}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def save_yaml(self, path: str | Path, mode: str | None = None) -> Path:
        """Write ``{task: TASK, mode: mode, config: to_dict()}`` to ``path`` as YAML, atomically; return it.

        ``mode`` records which preset the file is (None for a run's own ``config.yaml``)."""
        document = {"task": self.TASK, "mode": mode, "config": self.to_dict()}
        with atomic_open(path, "w") as handle:
            yaml.safe_dump(document, handle, sort_keys=False)
        return Path(path)

    @classmethod
    def load_yaml(cls: type[C], path: str | Path) -> C:
        """The config stored in the YAML file ``path`` (:meth:`save_yaml`'s layout).

        Raises:
            FileNotFoundError: no such file.
            ValueError: not that layout, its ``task`` is not ``cls.TASK`` (both named), or a bad field.
        """
        path = Path(path)
        with open(path) as handle:
            document = yaml.safe_load(handle)
        if not isinstance(document, dict) or not {"task", "config"} <= set(document):
            raise ValueError(f"{path} is not a facecourse training config (a mapping with 'task', 'mode' "
                             f"and 'config')")
        if document["task"] != cls.TASK:
            raise ValueError(f"{path} is a config of task {document['task']!r}, not of {cls.TASK!r} "
                             f"({cls.__name__})")
        try:
            return cls.from_dict(document["config"])
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


def register_config(cls: type[C]) -> type[C]:
    """Class decorator: add the dataclass ``cls`` to :data:`CONFIGS` under ``cls.TASK``.

    Checks that ``cls`` is a ``@dataclass`` subclass of :class:`TrainConfig` with its own ``TASK``, that
    ``PRESETS`` has every mode of :data:`facecourse.settings.MODES` and that each preset is a valid config.
    Re-registering a class of the same module and name (a re-imported module) replaces it.

    Raises:
        TypeError: not a dataclass subclass of TrainConfig.
        ValueError: no own TASK, missing/bad presets, or TASK taken by another class (both named).
    """
    if not (isinstance(cls, type) and issubclass(cls, TrainConfig)) or "__dataclass_fields__" not in vars(cls):
        raise TypeError(f"register_config needs a @dataclass subclass of TrainConfig, got {cls!r} "
                        f"(put @dataclass below @register_config)")
    if cls.TASK == TrainConfig.TASK or not isinstance(cls.TASK, str) or not cls.TASK.isidentifier():
        raise ValueError(f"{cls.__name__}.TASK must be its own identifier-like task name, got {cls.TASK!r}")
    missing = [m for m in MODES if m not in cls.PRESETS]
    if missing:
        raise ValueError(f"{cls.__name__}.PRESETS lacks mode(s) {missing}")
    for mode in MODES:
        cls.for_mode(mode)
    previous = CONFIGS.get(cls.TASK)
    if previous is not None and (previous.__module__, previous.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"task {cls.TASK!r} is already registered by {previous.__module__}.{previous.__qualname__}, "
                         f"cannot register {cls.__module__}.{cls.__qualname__}")
    CONFIGS[cls.TASK] = cls
    return cls


def preset_path(task: str, mode: str, configs_dir: str | Path | None = None) -> Path:
    """``<configs_dir>/<task>/<mode>.yaml``; ``configs_dir`` defaults to :data:`CONFIGS_DIR` (the
    repository's ``configs/``)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not task.isidentifier():
        raise ValueError(f"task must be an identifier-like name, got {task!r}")
    return Path(CONFIGS_DIR if configs_dir is None else configs_dir) / task / f"{mode}.yaml"


def write_presets(configs_dir: str | Path | None = None) -> list[Path]:
    """Write every registered config's preset of every mode to :func:`preset_path`; return the paths."""
    return [cls.for_mode(mode).save_yaml(preset_path(task, mode, configs_dir), mode=mode)
            for task, cls in sorted(CONFIGS.items()) for mode in MODES]


def preset_mismatches(cls: type[TrainConfig], mode: str, configs_dir: str | Path | None = None) -> list[str]:
    """How the committed preset file of ``cls`` and ``mode`` differs from ``cls.for_mode(mode)``: one line per
    problem (missing file, wrong task/mode, each differing field with both values); empty when in sync."""
    path = preset_path(cls.TASK, mode, configs_dir)
    if not path.is_file():
        return [f"{path} is missing"]
    with open(path) as handle:
        document = yaml.safe_load(handle)
    if not isinstance(document, dict):
        return [f"{path} is not a mapping"]
    problems = [f"{path}: {name} is {document.get(name)!r}, expected {want!r}"
                for name, want in (("task", cls.TASK), ("mode", mode)) if document.get(name) != want]
    stored = document.get("config") if isinstance(document.get("config"), dict) else {}
    code = cls.for_mode(mode).to_dict()
    problems += [f"{path}: field {name!r} is {stored.get(name, '<absent>')!r} in the file, "
                 f"{code.get(name, '<absent>')!r} in the code"
                 for name in sorted(set(stored) | set(code)) if stored.get(name, ...) != code.get(name, ...)]
    return problems


def optimizer_for(config: TrainConfig, params: Iterable) -> torch.optim.Optimizer:
    """The optimiser ``config`` names, over ``params`` (parameters or parameter-group dicts).

    ``"sgd"``: SGD with ``lr``, ``momentum``, ``weight_decay``; ``"adam"``: Adam with ``lr`` and L2
    ``weight_decay``; ``"adamw"``: AdamW with ``lr`` and decoupled ``weight_decay``.
    """
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {config.optimizer!r}")


def steps_scheduled(config: TrainConfig) -> bool:
    """True when the loop steps the scheduler after every optimiser step (``"cosine"``), False when after every
    epoch (``"exponential"``)."""
    return config.schedule == "cosine"


def cosine_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """The cosine schedule's learning-rate factor before optimiser step ``step`` (0-based):

    .. math:: f(s) = \\min\\Big(1, \\frac{s + 1}{w + 1}\\Big)\\,
              \\frac{1}{2}\\Big(1 + \\cos\\frac{\\pi \\min(s, T)}{T}\\Big)

    with :math:`w` warm-up steps and :math:`T` steps in all (1 at the end of the warm-up, 0 at the end).
    """
    warm = min(1.0, (step + 1) / (warmup_steps + 1))
    return warm * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))


def scheduler_for(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int = 1
                  ) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule of ``config``: ``ExponentialLR(lr_decay)`` stepped after every epoch, or the
    warm-up + cosine :func:`cosine_factor` over ``epochs * steps_per_epoch`` optimiser steps, stepped after
    every step (:func:`steps_scheduled`)."""
    if steps_scheduled(config):
        total = config.epochs * steps_per_epoch
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, functools.partial(cosine_factor, warmup_steps=config.warmup_steps, total_steps=total))
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)


def main(argv: list[str] | None = None) -> int:
    """``python -m facecourse.train.config [--check]``: rewrite ``configs/`` from the registered configs, or
    with ``--check`` list the differences and return 1 if any."""
    parser = argparse.ArgumentParser(prog="python -m facecourse.train.config", description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    if args.check:
        problems = [p for cls in CONFIGS.values() for mode in MODES for p in preset_mismatches(cls, mode)]
        print("\n".join(problems) if problems else f"{len(CONFIGS)} task config(s) in sync with {CONFIGS_DIR}")
        return 1 if problems else 0
    for path in write_presets():
        print(path)
    return 0


if __name__ == "__main__":
    # Run with -m, this file executes as the module __main__, whose CONFIGS is empty: the registry the task
    # modules filled is the one of the imported module facecourse.train.config (Python imported the
    # facecourse.train package, and with it every task module, before running this file).
    from facecourse.train.config import main as registered_main

    raise SystemExit(registered_main())
