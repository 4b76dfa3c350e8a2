"""Paired data throughput: images/s generated (rendered into shards) and loaded (DataLoader with 0 and 2 workers,
crops with jitter + collate), at the CI size and a full-like size, against one training step of a small CNN.

Prints a table (never asserts). A load rate well above the step's images/s means loading is not the
bottleneck; the "step" column is a ResNet-ish forward + backward on CPU at that crop size (on a GPU a step is
~10-50x faster, hence the workers). The full-like set is a few subjects of the ``full`` spec (FLAME size,
256 px stored, 224 px crops), built into a temporary folder.
Run: ``.venv/bin/python benchmarks/bench_paired_data.py`` (``OMP_NUM_THREADS`` as you like).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from facecourse.datasets.paired import CropScaleJitter, PairedFaceDataset, SubjectBatchSampler, collate_paired
from facecourse.datasets.paired_synthetic import SPECS, PairedSyntheticSpec, ShardSource, build_paired_synthetic

N_SUBJECTS, K = 8, 2  # MICA's and DECA's batch: 8 subjects x 2 images


def small_cnn() -> nn.Module:
    """A ResNet-18-like stem + 4 strided stages (about 1.2 M parameters) -> 300 outputs (a shape regressor)."""
    def stage(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
    return nn.Sequential(nn.Conv2d(3, 32, 7, 2, 3), nn.ReLU(), stage(32, 48), stage(48, 64), stage(64, 128),
                         stage(128, 192), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(192, 300))


def step_images_per_second(size: int, repeats: int = 3) -> float:
    """Images/s of forward + backward + SGD step of :func:`small_cnn` on a batch of ``N_SUBJECTS * K``."""
    model = small_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.rand(N_SUBJECTS * K, 3, size, size)
    best = float("inf")
    for _ in range(repeats + 1):
        t = time.perf_counter()
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
        best = min(best, time.perf_counter() - t)
    return N_SUBJECTS * K / best


def load_images_per_second(dataset: PairedFaceDataset, workers: int, epochs: int = 2) -> float:
    """Images/s through ``DataLoader(batch_sampler=SubjectBatchSampler, collate_paired)`` (worker start-up
    included once, as a persistent loader pays it)."""
    sampler = SubjectBatchSampler(dataset.subjects, N_SUBJECTS, K, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_paired, num_workers=workers,
                        persistent_workers=workers > 0)
    t, n = time.perf_counter(), 0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in loader:
            n += len(batch)
    return n / (time.perf_counter() - t)


def measure(name: str, spec: PairedSyntheticSpec, folder: Path) -> dict:
    t = time.perf_counter()
    build_paired_synthetic(folder, spec, progress=False)
    generated = (spec.train_subjects + spec.val_subjects) * spec.images_per_subject / (time.perf_counter() - t)
    dataset = PairedFaceDataset(ShardSource(folder, "train"), spec.crop_size, CropScaleJitter())
    return {"set": name, "stored": spec.image_size, "crop": spec.crop_size, "generated": generated,
            "load0": load_images_per_second(dataset, 0), "load2": load_images_per_second(dataset, 2),
            "step": step_images_per_second(spec.crop_size)}


def main() -> None:
    torch.manual_seed(0)
    ci = SPECS["ci"]
    full_like = dataclasses.replace(SPECS["full"], train_subjects=32, val_subjects=2)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure("ci", ci, Path(tmp) / "ci"), measure("full-like", full_like, Path(tmp) / "full")]
    print(f"threads: {torch.get_num_threads()}; batch {N_SUBJECTS} subjects x {K} images")
    print(f"{'set':>10} {'stored px':>9} {'crop px':>7} {'generated/s':>11} {'load/s w=0':>10} {'load/s w=2':>10} "
          f"{'step img/s':>10} {'load/step':>9}")
    for r in rows:
        print(f"{r['set']:>10} {r['stored']:>9} {r['crop']:>7} {r['generated']:>11.1f} {r['load0']:>10.0f} "
              f"{r['load2']:>10.0f} {r['step']:>10.0f} {max(r['load0'], r['load2']) / r['step']:>9.1f}x")


if __name__ == "__main__":
    main()
