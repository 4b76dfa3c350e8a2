"""Autoencoder pre-training step time: the training engine (``fit`` of ``AutoencoderTask``) vs a bare torch loop.

For the small and the FLAME-size synthetic model, with the CI preset's network and optimiser (COMA's
hierarchy and filters, Adam) at batch 16: the engine's milliseconds per optimiser step over whole epochs
(data loading, the step, its loss bookkeeping and each epoch's ``last.pt``; no validation), and those of a bare
loop (index a shuffled batch, forward, L1, zero_grad, backward, step) on the same model and meshes, with
their ratio (engine / bare; 1.0 = no overhead).

    .venv/bin/python benchmarks/bench_pretrain.py [--models small full] [--n-train 160] [--epochs 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import torch

from facecourse.train import fit, seed_everything
from facecourse.train.encoder import AutoencoderTask, PretrainConfig, pretraining_data


def engine_ms_per_step(task: AutoencoderTask, epochs: int, run_dir: str) -> float:
    """ms per step of ``fit`` over ``epochs`` epochs, after a first (untimed) epoch in the same run directory."""
    fit(task, run_dir, progress=False, device="cpu")
    longer = dataclasses.replace(task.config, epochs=task.config.epochs + epochs)
    timed = AutoencoderTask(longer, data=task.data)
    start = time.perf_counter()
    result = fit(timed, run_dir, progress=False, device="cpu")
    elapsed = time.perf_counter() - start
    steps = result.step - result.history[task.config.epochs - 1]["step"]
    return 1e3 * elapsed / steps


def bare_ms_per_step(task: AutoencoderTask, steps: int) -> float:
    """ms per step of a plain torch loop (shuffled batches of the training meshes) on the task's model."""
    config = task.config
    seed_everything(config.seed)
    model = task.build_model()
    train = task.data["train"]
    model.normalizer.fit(train)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    std = model.normalizer.std
    order = torch.cat([torch.randperm(len(train)) for _ in range(-(-steps * config.batch_size // len(train)) + 1)])

    def step(i: int) -> None:
        x = train[order[i * config.batch_size:(i + 1) * config.batch_size]]
        loss = ((model(x) - x) / std).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(0)  # warm-up
    start = time.perf_counter()
    for i in range(1, steps + 1):
        step(i)
    return 1e3 * (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["small", "full"], help="synthetic FLAME sizes")
    parser.add_argument("--n-train", type=int, default=160, help="training meshes (10 steps per epoch at batch 16)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs")
    parser.add_argument("--repeats", type=int, default=3, help="the fastest of this many measurements is shown")
    args = parser.parse_args()
    print(f"torch threads={torch.get_num_threads()}, batch 16, CI preset network and optimiser (Adam), "
          f"{args.n_train} meshes, {args.epochs} timed epochs, best of {args.repeats}")
    for model in args.models:
        config = PretrainConfig.for_mode("ci", model=model, data="synthetic", n_train=args.n_train, n_test=8,
                                         epochs=1, batch_size=16, val_every=10**6)
        task = AutoencoderTask(config, data=pretraining_data(config, progress=False))
        n_vertices = len(task.data["template"])
        steps = args.epochs * -(-args.n_train // config.batch_size)
        engine = min(engine_ms_per_step(task, args.epochs, tempfile.mkdtemp(prefix="bench_pretrain_"))
                     for _ in range(args.repeats))
        bare = min(bare_ms_per_step(task, steps) for _ in range(args.repeats))
        print(f"model {model:5s} (V={n_vertices:5d}): engine {engine:7.1f} ms/step, bare torch loop {bare:7.1f} "
              f"ms/step, ratio engine/bare {engine / bare:.2f}")


if __name__ == "__main__":
    main()
