"""What the offline recogniser responds to: the CI preset (shape and albedo, 64 px, 4000 people) against the
shape-blind recipe it replaced (albedo only, ``code_shape=0``, 48 px, 2000 people), in one run.

For each recipe it trains the recogniser with the engine in a temporary folder and prints the held-out
verification accuracy, the held-out R^2 of each regressed code coefficient (300 unseen people, one random view
each) and :func:`facecourse.train.recogniser.identity_change_losses` (1 - cos; the margin that matters is
``shape_only - same_person``: > 0 when another face shape in another view looks less like the person than the
person in another view).

    .venv/bin/python benchmarks/bench_recogniser.py [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import torch

from facecourse.datasets.synthetic_images import render_identity_views
from facecourse.losses.identity import unit_preprocess
from facecourse.train import fit
from facecourse.train.recogniser import RecogniserConfig, RecogniserTask, identity_change_losses, recogniser

RECIPES = {
    "shape-blind (code_shape=0, 48 px, 2000 people)": {"code_shape": 0, "size": 48, "n_identities": 2000},
    "CI preset (shape + albedo, 64 px, 4000 people)": {},
}


@torch.no_grad()
def code_r2(net: torch.nn.Module, config: RecogniserConfig, n_people: int = 300) -> list[float]:
    """Held-out R^2 of each regressed coefficient (shape first, then albedo) on ``n_people`` unseen people."""
    images, _, codes = render_identity_views(n_people, 1, config.size, seed=777)
    codes = config.regressed_codes(codes)
    predicted = net(unit_preprocess(images))
    return (1 - ((predicted - codes) ** 2).mean(0) / codes.var(0)).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name, overrides in RECIPES.items():
        config = RecogniserConfig.for_mode("ci", seed=args.seed, **overrides)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as run_dir:
            result = fit(RecogniserTask(config), run_dir, progress=False, device="cpu")
        seconds = time.perf_counter() - start
        net = result.model.cpu().eval()
        losses = identity_change_losses(recogniser(net, config))
        r2 = code_r2(net, config)
        print(f"{name}: trained in {seconds:.0f} s, held-out verification "
              f"{result.last_metrics['verification_accuracy']:.3f}")
        print(f"  R^2 shape {[round(x, 2) for x in r2[:config.code_shape]]}, "
              f"albedo {[round(x, 2) for x in r2[config.code_shape:]]}")
        print("  1 - cos: " + ", ".join(f"{k} {v:.3f}" for k, v in dataclasses.asdict(losses).items()))
        print(f"  margin shape_only - same_person: {losses.shape_only - losses.same_person:+.3f}")


if __name__ == "__main__":
    main()
