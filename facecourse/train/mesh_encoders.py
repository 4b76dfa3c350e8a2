"""One way to get a pretrained mesh encoder for the 3D-ID loss, whichever way it was trained.

Two kinds, both a :class:`~facecourse.nn.SpectralEncoder` (COMA's encoder) with the same call::

    z, features = encoder(vertices, return_features=True)
    # vertices (B, V, 3) metres -> z (B, d), features[l] (B, V_l, C_l) post-ReLU activations of level l

- ``"autoencoder"``: the encoder of the COMA autoencoder (:mod:`facecourse.train.encoder`); :math:`z` is a code
  of the whole mesh (identity and expression), ``d`` = its ``latent_dim`` (8).
- ``"identity"``: the identity-supervised encoder (:mod:`facecourse.train.identity_encoder`); :math:`z` estimates
  the leading FLAME shape coefficients, the same whatever the expression.

``encoder.topology`` is the :func:`facecourse.mesh.topology_hash` of the faces it was trained on: compare it
with your FLAME model's before using the encoder (vertex orders of different topologies are not comparable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from facecourse.nn.autoencoder import SpectralEncoder
from facecourse.train.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from facecourse.train.encoder import PretrainConfig, autoencoder_from_checkpoint, load_pretrained_autoencoder
from facecourse.train.identity_encoder import (IdentityEncoderConfig, identity_encoder_from_checkpoint,
                                               pretrained_identity_encoder)

ENCODER_KINDS = ("autoencoder", "identity")
"""The kinds :func:`pretrained_mesh_encoder` trains or loads."""


def load_mesh_encoder(path: str | Path, map_location: Any = "cpu") -> tuple[SpectralEncoder, Checkpoint]:
    """The :class:`SpectralEncoder` (eval mode) of a mesh-autoencoder or identity-encoder checkpoint.

    Args:
        path: ``last.pt`` / ``best.pt`` of a ``mesh_autoencoder`` or ``mesh_identity_encoder`` run.
        map_location: where tensors go (default CPU).

    Returns:
        ``(encoder, checkpoint)``; ``checkpoint.task`` says which kind it is.

    Raises:
        CheckpointError: missing, unsafe, of another format, of another task (named), or a topology mismatch.
    """
    checkpoint = load_checkpoint(path, map_location=map_location)
    if checkpoint.task == PretrainConfig.TASK:
        encoder = autoencoder_from_checkpoint(checkpoint, str(path)).encoder
    elif checkpoint.task == IdentityEncoderConfig.TASK:
        encoder = identity_encoder_from_checkpoint(checkpoint, str(path))
    else:
        raise CheckpointError(f"{path} is a checkpoint of task {checkpoint.task!r}, not of a mesh encoder "
                              f"({PretrainConfig.TASK!r} or {IdentityEncoderConfig.TASK!r})")
    return encoder.eval(), checkpoint


def pretrained_mesh_encoder(kind: str, mode: str | None = None, progress: bool = True,
                            device: torch.device | str | None = None) -> SpectralEncoder:
    """Train-or-load the mesh encoder of ``kind`` with the preset of ``mode`` (default
    :func:`facecourse.settings.mode`), in eval mode, with ``encoder.topology`` set.

    Args:
        kind: ``"autoencoder"`` (:func:`~facecourse.train.encoder.load_pretrained_autoencoder`'s encoder) or
            ``"identity"`` (:func:`~facecourse.train.identity_encoder.pretrained_identity_encoder`).
        mode: ``"ci"`` or ``"full"``.
        progress: progress bar if it trains. device: where it is (default CPU when loaded).
    """
    config = mesh_encoder_config(kind, mode)
    if kind == "autoencoder":
        return load_pretrained_autoencoder(config, progress=progress, device=device).encoder
    return pretrained_identity_encoder(config, progress=progress, device=device)


def mesh_encoder_config(kind: str, mode: str | None = None) -> PretrainConfig | IdentityEncoderConfig:
    """The preset of ``mode`` (default :func:`facecourse.settings.mode`) that :func:`pretrained_mesh_encoder`
    trains or loads for ``kind`` (``"autoencoder"`` or ``"identity"``)."""
    if kind == "autoencoder":
        return PretrainConfig.for_mode(mode)
    if kind == "identity":
        return IdentityEncoderConfig.for_mode(mode)
    raise ValueError(f"kind must be one of {ENCODER_KINDS}, got {kind!r}")
