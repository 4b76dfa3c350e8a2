"""``facecourse doctor``: what is installed, which device and mode, which data is used, what to do next.

:func:`report` returns everything as a plain dict (notebook 00 shows it); :func:`format_report` renders it
as text; :func:`run` is the command-line entry (``facecourse doctor [--json]``).

Data is reported per item as ``"real"`` (the official files are in the data directory), ``"synthetic"``
(the embedded default is used instead) or ``"missing"``. Real data, when present, wins — the same rule the
loaders follow.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
from pathlib import Path

from facecourse.data.assets import ASSETS, NOW_ROOT, asset_status
from facecourse.data.paths import resolve_data_dir
from facecourse.flame.io import DECA_EMBEDDING, has_landmark_embedding
from facecourse.flame.paths import SIZES, real_model_path, synthetic_model_file, usable_real_model

PACKAGES: dict[str, tuple[str, bool]] = {
    "torch": ("torch", True),
    "torch-geometric": ("torch_geometric", True),
    "numpy": ("numpy", True),
    "scipy": ("scipy", True),
    "trimesh": ("trimesh", True),
    "libigl": ("libigl", True),
    "k3d": ("k3d", True),
    "jupyterlab": ("jupyterlab", True),
    "pytorch3d": ("pytorch3d", False),
    "dlib-bin": ("dlib-bin", False),
    "face-models": ("face_recognition_models", False),
    "scikit-image": ("scikit-image", False),
}
"""Reported packages: display name -> (distribution name, required)."""

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def package_versions() -> dict[str, str | None]:
    """Installed version of Python and of every package in :data:`PACKAGES` (None when not installed).

    Versions come from the installed distributions' metadata, so nothing heavy is imported.
    """
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name, (dist, _required) in PACKAGES.items():
        try:
            versions[name] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def missing_packages(versions: dict[str, str | None]) -> list[str]:
    """Names of the required packages of :data:`PACKAGES` that ``versions`` (:func:`package_versions`) lacks."""
    return [n for n, (_, required) in PACKAGES.items() if required and versions.get(n) is None]


def device_report() -> dict:
    """The compute device the course will use (``facecourse.settings.device()``), CUDA details if any."""
    import torch

    from facecourse.settings import device

    info: dict = {"cuda_available": torch.cuda.is_available(), "cuda_devices": [], "cuda_version": torch.version.cuda}
    try:
        info["device"] = str(device())
    except RuntimeError as err:  # e.g. FACECOURSE_DEVICE=nonsense
        info["device"], info["error"] = None, str(err)
    if info["cuda_available"]:
        info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def mode_report() -> dict:
    """The course mode (``FACECOURSE_MODE``) or the error explaining a bad value."""
    from facecourse.settings import mode

    try:
        return {"mode": mode(), "error": None}
    except ValueError as err:
        return {"mode": None, "error": str(err)}


def _nonempty(folder: Path) -> bool:
    return folder.is_dir() and next(folder.iterdir(), None) is not None


def data_report(root: str | os.PathLike | None = None) -> dict[str, dict]:
    """Which data each part of the course uses: ``{item: {"source", "path", "detail"}}``.

    Items: ``flame`` (head model), ``landmark_embedding``, ``now`` (evaluation set), ``coma`` (registered
    meshes) and ``checkpoints`` (pre-trained weights in ``data_dir()/"checkpoints"``). ``source`` is
    ``"real"``, ``"synthetic"`` or ``"missing"`` (checkpoints: ``"present"`` or ``"missing"``). Like
    :func:`facecourse.flame.default_model_path`, the real FLAME 2020 model counts only with a landmark
    embedding beside it; ``flame["real_needs_embedding"]`` flags a pickle that lacks one.
    """
    root = resolve_data_dir(root)
    synthetic = root / "synthetic"
    out: dict[str, dict] = {}

    real_pkl = real_model_path(root)
    real_dir = real_pkl.parent
    real_usable = usable_real_model(root) is not None
    flame_syn = [p for p in (synthetic_model_file(s, root) for s in SIZES) if p.is_file()]
    notes = []
    if real_pkl.is_file() and not real_usable:
        notes.append("FLAME2020/generic_model.pkl has no landmark embedding beside it, so it is not used yet")
    if (root / "FLAME2023Open" / "flame2023_Open.pkl").is_file():
        notes.append("FLAME2023Open present (pass its path to FLAME.from_file to use it)")
    if real_usable:
        out["flame"] = {"source": "real", "path": str(real_pkl), "detail": "; ".join(["FLAME 2020"] + notes)}
    elif flame_syn:
        detail = "synthetic FLAME-format model, sizes: " + ", ".join(p.parent.name for p in flame_syn)
        out["flame"] = {"source": "synthetic", "path": str(flame_syn[0]), "detail": "; ".join([detail] + notes)}
    else:
        out["flame"] = {"source": "missing", "path": str(real_pkl), "detail": "; ".join(notes)}
    out["flame"]["real_needs_embedding"] = real_pkl.is_file() and not real_usable

    lmk_real = root / ASSETS["landmark-embedding"].files[0].dest
    lmk_syn = synthetic_model_file("small", root).with_name(DECA_EMBEDDING)
    out["landmark_embedding"] = (
        {"source": "real", "path": str(real_dir), "detail": "embedding beside the FLAME 2020 pickle"}
        if has_landmark_embedding(real_dir)
        else {"source": "synthetic", "path": str(lmk_syn), "detail": "embedding of the synthetic model"}
        if lmk_syn.is_file() else {"source": "missing", "path": str(lmk_real), "detail": ""}
    )

    now_status = asset_status("now", root)
    now_real, now_syn = root / NOW_ROOT, synthetic / NOW_ROOT
    if now_status == "present":
        out["now"] = {"source": "real", "path": str(now_real), "detail": "NoW validation scans, landmarks and images"}
    elif _nonempty(now_syn):
        detail = "synthetic NoW-format set" + (" (real NoW incomplete)" if now_status == "partial" else "")
        out["now"] = {"source": "synthetic", "path": str(now_syn), "detail": detail}
    else:
        out["now"] = {"source": "missing", "path": str(now_real),
                      "detail": "real NoW incomplete" if now_status == "partial" else ""}

    coma = root / "COMA_data"
    out["coma"] = (
        {"source": "real", "path": str(coma), "detail": f"{len(list(coma.glob('FaceTalk_*')))} subjects"}
        if asset_status("coma", root) == "present"
        else {"source": "missing", "path": str(coma),
              "detail": "optional: the mesh autoencoder trains on meshes sampled from the FLAME model instead"}
    )

    ckpt_dir = root / "checkpoints"
    ckpts = sorted(p.relative_to(ckpt_dir).as_posix() for p in ckpt_dir.rglob("*")
                   if p.suffix in CHECKPOINT_SUFFIXES) if ckpt_dir.is_dir() else []
    out["checkpoints"] = {"source": "present" if ckpts else "missing", "path": str(ckpt_dir),
                          "detail": ", ".join(ckpts) if ckpts else "notebooks train and cache what they need"}
    return out


def next_steps(versions: dict, device: dict, mode: dict, data: dict) -> list[str]:
    """Concrete advice, most important first, derived from the other parts of the report."""
    steps = []
    missing = missing_packages(versions)
    if missing:
        steps.append(f"Install the missing packages ({', '.join(missing)}): `make install` "
                     "(or `pip install -e '.[dev]'` in your environment).")
    if mode.get("error"):
        steps.append(f"Fix FACECOURSE_MODE: {mode['error']}")
    if data["flame"]["source"] == "missing":
        steps.append("Build the synthetic default data: `python data_download.py synthetic` (or `make data`).")
    elif data["now"]["source"] == "missing":
        steps.append("Build the synthetic NoW set: `python data_download.py synthetic`.")
    if data["flame"]["real_needs_embedding"]:
        steps.append("Real FLAME found without its landmark embedding: `python data_download.py landmark-embedding`.")
    elif data["flame"]["source"] != "real":
        steps.append("Optional, real FLAME: register at https://flame.is.tue.mpg.de/, set FLAME_USERNAME and "
                     "FLAME_PASSWORD, run `python data_download.py flame2020 landmark-embedding`.")
    if data["now"]["source"] != "real":
        steps.append("Optional, real NoW validation set: register at https://now.is.tue.mpg.de/, set NOW_USERNAME "
                     "and NOW_PASSWORD, run `python data_download.py now`.")
    if versions.get("dlib-bin") is None or versions.get("face-models") is None:
        steps.append("Optional, real photos (facecourse fit / reconstruct): `pip install -e '.[photo]'` "
                     "(dlib-bin and face_recognition_models; `make lab` installs them).")
    if not device.get("cuda_available"):
        steps.append("No GPU: use FACECOURSE_MODE=ci for quick runs; full-mode training needs a CUDA machine.")
    steps.append("Start the course: `make lab` and open notebooks/00_setup.ipynb.")
    return steps


def report(root: str | os.PathLike | None = None) -> dict:
    """The whole doctor report as a dict: ``versions``, ``device``, ``mode``, ``data_dir``, ``data``, ``next_steps``."""
    versions, device, mode = package_versions(), device_report(), mode_report()
    root = resolve_data_dir(root)
    data = data_report(root)
    return {"versions": versions, "device": device, "mode": mode, "data_dir": str(root), "data": data,
            "next_steps": next_steps(versions, device, mode, data)}


def format_report(rep: dict) -> str:
    """Human-readable text of a :func:`report` dict."""
    lines = ["facecourse doctor", "", "versions:"]
    for name, version in rep["versions"].items():
        required = PACKAGES.get(name, ("", True))[1]
        shown = version or ("MISSING (required)" if required else "not installed (optional)")
        lines.append(f"  {name:<16}{shown}")
    dev = rep["device"]
    gpus = f" ({', '.join(dev['cuda_devices'])})" if dev["cuda_devices"] else ""
    lines += ["", f"device:   {dev['device'] or 'ERROR: ' + dev.get('error', '')}{gpus}"
              f"  [CUDA {'available' if dev['cuda_available'] else 'not available'}]"]
    mode = rep["mode"]
    lines.append(f"mode:     {mode['mode'] or 'ERROR: ' + mode['error']}  (FACECOURSE_MODE=ci|full)")
    lines += [f"data dir: {rep['data_dir']}", "", "data:"]
    for item, info in rep["data"].items():
        detail = f"  — {info['detail']}" if info["detail"] else ""
        lines.append(f"  {item:<20}{info['source']:<10}{info['path']}{detail}")
    lines += ["", "next steps:"] + [f"  {i}. {s}" for i, s in enumerate(rep["next_steps"], 1)]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``facecourse doctor``."""
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    """Print the report; exit code 1 when a required package is missing, else 0."""
    rep = report()
    print(json.dumps(rep, indent=2) if args.json else format_report(rep))
    return 1 if missing_packages(rep["versions"]) else 0
