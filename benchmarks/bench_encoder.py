"""Mesh encoders against their baselines, on the same held-out heads.

Reconstruction (per-vertex Euclidean error in mm, mean / median / std over every vertex of the held-out meshes
of the autoencoder preset): the mean head, PCA with as many components as the latent, the autoencoder of the
preset (COMA's network with the linear shortcuts) and COMA's network alone trained the same way, with the ratio to PCA and the training time (wall and CPU seconds of
this process, measured around train-or-load; with ``--retrain`` both encoders train from scratch in temporary
run directories, so the times are those of sampling the heads and training). Identity (held-out people, two meshes each): the identity encoder's neutral-head
error and R² of its shape coefficients, and retrieval / verification of people from the code of either encoder.

    .venv/bin/python benchmarks/bench_encoder.py [--mode ci|full] [--retrain]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import tempfile
import time
from collections.abc import Callable
from typing import Any

from facecourse.nn.baselines import error_summary, mean_head_errors, pca_errors
from facecourse.train.encoder import (PretrainConfig, load_pretrained_autoencoder, pretrain_encoder, pretraining_data,
                                      reconstruction_errors)
from facecourse.train.identity_encoder import (IdentityEncoderConfig, identity_data, identity_metrics,
                                               neutral_head_errors, pretrained_identity_encoder,
                                               train_identity_encoder)


def timed(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """``(call(), wall seconds, CPU seconds of this process (user + sys))``."""
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    out = call()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return out, time.perf_counter() - start, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def row(name: str, summary: dict[str, float], pca_mean: float) -> str:
    return (f"  {name:28s} mean {summary['mean_mm']:6.3f}  median {summary['median_mm']:6.3f}  "
            f"std {summary['std_mm']:6.3f} mm   x{summary['mean_mm'] / pca_mean:5.2f} PCA")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("ci", "full"), default="ci")
    parser.add_argument("--retrain", action="store_true", help="train both from scratch in temporary run directories")
    args = parser.parse_args()
    ae_config, id_config = PretrainConfig.for_mode(args.mode), IdentityEncoderConfig.for_mode(args.mode)

    def fresh() -> str:
        return tempfile.mkdtemp(prefix="bench_encoder_")

    coma_config = dataclasses.replace(ae_config, linear_shortcut=False)
    if args.retrain:
        train_ae = lambda: pretrain_encoder(ae_config, resume=False, progress=False, run_dir=fresh())[0]  # noqa: E731
        train_coma = lambda: pretrain_encoder(coma_config, resume=False, progress=False, run_dir=fresh())[0]  # noqa: E731
        train_id = lambda: train_identity_encoder(id_config, resume=False, progress=False, run_dir=fresh())[0]  # noqa: E731
    else:
        train_ae = lambda: load_pretrained_autoencoder(ae_config, progress=False)  # noqa: E731
        train_coma = lambda: load_pretrained_autoencoder(coma_config, progress=False)  # noqa: E731
        train_id = lambda: pretrained_identity_encoder(id_config, progress=False)  # noqa: E731
    autoencoder, ae_wall, ae_cpu = timed(train_ae)
    data = pretraining_data(ae_config, progress=False)
    train, test, k = data["train"], data["test"], ae_config.latent_dim
    pca = error_summary(pca_errors(train, test, k))
    print(f"reconstruction, mode {args.mode}: {len(test)} held-out heads ({data['source']}), PCA and mean head "
          f"fitted on the {len(train)} training heads, latent / components k = {k}")
    print(row("mean head", error_summary(mean_head_errors(train, test)), pca["mean_mm"]))
    print(row(f"PCA (k={k})", pca, pca["mean_mm"]))
    ae = error_summary(reconstruction_errors(autoencoder, test))
    print(row(f"autoencoder (latent {k})", ae, pca["mean_mm"]))
    coma, coma_wall, _ = timed(train_coma)
    print(row("  same, COMA's network alone", error_summary(reconstruction_errors(coma, test)), pca["mean_mm"]))
    print(f"  autoencoder ready in {ae_wall:.1f} s wall, {ae_cpu:.1f} s CPU (user+sys); COMA's network alone "
          f"{coma_wall:.1f} s wall")

    identity, id_wall, id_cpu = timed(train_id)
    people = identity_data(id_config)
    template_mm = float(neutral_head_errors(people.template, people.shape_basis, people.test.shape,
                                            people.test.shape[:, :0]).mean())
    own = identity_metrics(identity, people.test, people.template, people.shape_basis)
    theirs = identity_metrics(autoencoder.encoder, people.test)
    n = len(people.test.shape)
    print(f"identity, mode {args.mode}: {n} held-out people x 2 meshes (expression and jaw differ)")
    print(f"  identity encoder (d={id_config.latent_dim}): neutral head {own.neutral_mm:.3f} mm "
          f"(template: {template_mm:.3f} mm), R^2 {own.r2:.3f}, "
          f"retrieval top-1 {own.retrieval_top1:.3f}, verification {own.verification:.3f}")
    print(f"  autoencoder code (d={k}):          retrieval top-1 {theirs.retrieval_top1:.3f}, "
          f"verification {theirs.verification:.3f}   (chance: top-1 {1 / n:.3f}, verification 0.5)")
    print(f"  identity encoder ready in {id_wall:.1f} s wall, {id_cpu:.1f} s CPU")


if __name__ == "__main__":
    main()
