"""Regressor training throughput (images/s) of the CI config: the engine's whole epochs (data, forward through
FLAME and the renderer, the 2D terms, the 3D terms, backward, step, logging, ``last.pt``; no validation), for the
loss variants of the ablation, next to the data loading alone (so loading is seen not to be the bottleneck).

On CUDA, the same runs again with bf16 autocast (``amp=True``) on the GPU, with torch's sync debug mode set to
"warn" so a host sync inside the step would be printed.

    .venv/bin/python benchmarks/bench_train.py [--epochs 2] [--workers 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import torch
from torch.utils.data import DataLoader

from facecourse.train.loop import fit
from facecourse.train.regressor import RegressorConfig, RegressorTask

VARIANTS = {"2D only": dict(w_vertices=0.0, w_id3d=0.0), "+ vertices": dict(w_vertices=30.0, w_id3d=0.0),
            "+ vertices + 3D-ID": dict(w_vertices=30.0, w_id3d=0.1)}


def engine_images_per_second(config: RegressorConfig, epochs: int, device: str, workers: int) -> float:
    """Images/s of ``fit`` over ``epochs`` epochs after a first, untimed epoch in the same run directory."""
    run_dir = tempfile.mkdtemp(prefix="bench_train_")
    first = dataclasses.replace(config, epochs=1, val_every=10**6)
    fit(RegressorTask(first, progress=False), run_dir, progress=False, device=device, num_workers=workers)
    timed = RegressorTask(dataclasses.replace(first, epochs=1 + epochs), progress=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fit(timed, run_dir, progress=False, device=device, num_workers=workers)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    steps = result.step - result.history[0]["step"]
    return steps * config.batch_size / elapsed


def loading_images_per_second(config: RegressorConfig, workers: int, epochs: int) -> float:
    """Images/s of the training DataLoader alone (same sampler and collate as the engine's)."""
    task = RegressorTask(config, progress=False)
    dataset = task.train_dataset()
    sampler = task.batch_sampler(dataset, config.batch_size, 0, 1)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=task.collate, num_workers=workers)
    n, start = 0, time.perf_counter()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in loader:
            n += batch.images.shape[0]
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (14 steps of 16 images each)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    args = parser.parse_args()
    base = RegressorConfig.for_mode("ci", now_validation=False)
    print(f"CI config: {base.image_size} px, ResNet-{base.backbone_depth} width {base.backbone_width}, batch "
          f"{base.batch_size} ({base.subjects_per_batch} subjects x {base.k_images}), torch threads "
          f"{torch.get_num_threads()}, workers {args.workers}")
    loading = loading_images_per_second(base, args.workers, args.epochs)
    print(f"data loading alone: {loading:8.1f} images/s")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        if device == "cuda":
            torch.cuda.set_sync_debug_mode("warn")
        for name, weights in VARIANTS.items():
            config = dataclasses.replace(base, **weights, amp=device == "cuda")
            rate = engine_images_per_second(config, args.epochs, device, args.workers)
            precision = "bf16 autocast" if config.amp else "fp32"
            print(f"{device:4s} {precision:13s} {name:20s}: {rate:7.1f} images/s (loading is {loading / rate:5.1f}x "
                  f"faster)")
    if len(devices) == 1:
        print("no CUDA device here: the bf16 rows print on a machine with one")


if __name__ == "__main__":
    main()
