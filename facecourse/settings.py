"""Run-time settings read from the environment: course mode, compute device and progress bars.

``FACECOURSE_MODE`` selects ``"ci"`` (small sizes, CPU minutes; set by ``make test``) or ``"full"``
(real data sizes, GPU hours; the default for people). Every notebook's parameters cell derives its sizes,
steps and device from :func:`mode` and :func:`device`. ``FACECOURSE_PROGRESS`` chooses the progress bars
(:func:`progress_bar`).
"""

from __future__ import annotations

import os

import torch

MODES = ("ci", "full")
PROGRESS_STYLES = ("auto", "text")
"""``FACECOURSE_PROGRESS`` values: ``"auto"`` (a notebook widget in Jupyter, text elsewhere) or ``"text"``."""


def mode() -> str:
    """Return the course mode, ``"ci"`` or ``"full"`` (env ``FACECOURSE_MODE``, default ``"full"``).

    Raises:
        ValueError: if ``FACECOURSE_MODE`` is set to anything else.
    """
    value = os.environ.get("FACECOURSE_MODE", "full").strip().lower()
    if value not in MODES:
        raise ValueError(f"FACECOURSE_MODE must be one of {MODES}, got {value!r}")
    return value


def is_ci() -> bool:
    """True when running in CI mode (small, fast settings)."""
    return mode() == "ci"


def device() -> torch.device:
    """The compute device: ``FACECOURSE_DEVICE`` if set, else CUDA when available, else CPU.

    Raises:
        ValueError: ``FACECOURSE_DEVICE`` names no torch device, or a CUDA device this machine does not have
            (the message lists the available ones), so a run is refused at start rather than at the first tensor.
    """
    requested = os.environ.get("FACECOURSE_DEVICE")
    if requested:
        try:
            chosen = torch.device(requested)
        except RuntimeError:
            raise ValueError(f"FACECOURSE_DEVICE={requested!r} is not a torch device; available: "
                             f"{available_devices()}") from None
        if chosen.type == "cuda" and (not torch.cuda.is_available() or (chosen.index or 0) >= torch.cuda.device_count()):
            raise ValueError(f"FACECOURSE_DEVICE={requested!r} but that CUDA device is not available here; available: "
                             f"{available_devices()}")
        return chosen
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def available_devices() -> list[str]:
    """The torch devices usable here: ``"cpu"`` and one ``"cuda:<i>"`` per visible GPU."""
    return ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]


TEXT_REFRESH_S = 20.0
"""Seconds between two redraws of a text progress bar (``FACECOURSE_PROGRESS=text``)."""


def progress_bar(*args, **kwargs):
    """A ``tqdm`` progress bar (same arguments): the ``tqdm.auto`` one, or plain text when
    ``FACECOURSE_PROGRESS=text``.

    A notebook widget is live in JupyterLab, but an executed notebook exported to HTML (``make course``, CI)
    keeps only its first frame, a static 0%; ``make course`` and ``make test`` set ``FACECOURSE_PROGRESS=text`` so
    the saved output is the finished bar. A text bar redraws at most every :data:`TEXT_REFRESH_S` seconds and
    always on its own line (``position=0``: a bar inside another one, such as a training run inside the
    ablation, does not move the cursor up), so a saved notebook keeps a few frames per bar instead of one per
    step (unless the caller passes ``mininterval`` or ``position``).

    Raises:
        ValueError: ``FACECOURSE_PROGRESS`` is neither ``auto`` nor ``text``.
    """
    style = os.environ.get("FACECOURSE_PROGRESS", "auto").strip().lower()
    if style not in PROGRESS_STYLES:
        raise ValueError(f"FACECOURSE_PROGRESS must be one of {PROGRESS_STYLES}, got {style!r}")
    if style == "text":
        from tqdm.std import tqdm  # imported on use: tqdm.auto probes IPython, the text bar does not
        kwargs = {"mininterval": TEXT_REFRESH_S, "position": 0, **kwargs}
    else:
        from tqdm.auto import tqdm
    return tqdm(*args, **kwargs)
