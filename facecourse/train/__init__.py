"""The training engine (chapters 03 and 06): one loop and one checkpoint format for every trainable thing.

- :mod:`facecourse.train.config`: :class:`TrainConfig` (dataclass base of every task's config: presets per
  mode, result key, YAML), the registry :data:`CONFIGS` behind ``configs/<task>/<mode>.yaml``, and the
  optimiser/schedule a config describes.
- :mod:`facecourse.train.checkpoint`: the tagged, versioned :class:`Checkpoint`, written atomically by rank 0
  and read with ``weights_only=True``.
- :mod:`facecourse.train.loop`: the :class:`Task` protocol and :func:`fit` (autocast, no host sync per step,
  clipping, non-finite detection, tqdm, TensorBoard + CSV, validation, best/last, exact resume).
- :mod:`facecourse.train.distributed` and :mod:`facecourse.train.sampler`: torchrun/DDP and the resumable
  DistributedSampler.

A minimal task::

    @register_config
    @dataclass
    class LineConfig(TrainConfig):
        TASK: ClassVar[str] = "line"
        PRESETS: ClassVar[dict[str, dict]] = {"ci": {"epochs": 2}, "full": {"epochs": 50}}

    class Line(Task):
        def __init__(self, config): self.config = config
        def build_model(self): return torch.nn.Linear(1, 1)
        def train_dataset(self): return TensorDataset(x, y)
        def loss(self, model, batch):
            mse = ((model(batch[0]) - batch[1]) ** 2).mean()
            return mse, {"mse": mse}

    result = fit(Line(LineConfig.for_mode()), "runs/line")
"""

from facecourse.train.checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, Checkpoint, CheckpointError,
                                         capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint,
                                         verify_topology)
from facecourse.train.config import (CONFIGS, TrainConfig, optimizer_for, preset_path, register_config,
                                     scheduler_for, write_presets)
from facecourse.train.distributed import DistEnv, init_distributed, is_main, rank_seed, shutdown, wrap_model
from facecourse.train.loop import (FitResult, MetricRow, NonFiniteLossError, Task, fit, read_metrics,
                                   seed_everything, to_device)
from facecourse.train.sampler import ResumableBatches, ResumableSampler, SampleBatches

# Task modules: each registers its config with @register_config when imported. Import every task module
# here (e.g. ``from facecourse.train import encoder``), so that ``import facecourse.train`` fills CONFIGS for
# the preset files (``python -m facecourse.train.config``) and their sync test (tests/test_train_config.py).
from facecourse.train import encoder, identity_encoder, recogniser, regressor  # noqa: E402,F401  (register their configs)
from facecourse.train.mesh_encoders import ENCODER_KINDS, load_mesh_encoder, pretrained_mesh_encoder  # noqa: E402

__all__ = [
    "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CONFIGS", "Checkpoint", "CheckpointError", "DistEnv", "ENCODER_KINDS",
    "FitResult",
    "MetricRow", "NonFiniteLossError", "ResumableBatches", "ResumableSampler", "SampleBatches", "Task", "TrainConfig", "capture_rng_state", "fit",
    "init_distributed", "is_main", "load_checkpoint", "load_mesh_encoder", "optimizer_for", "preset_path", "pretrained_mesh_encoder", "rank_seed", "read_metrics",
    "register_config", "restore_rng_state", "save_checkpoint", "scheduler_for", "seed_everything", "shutdown",
    "to_device", "verify_topology", "wrap_model", "write_presets",
]
