"""Adapter for the CoMA dataset (Ranjan et al. 2018): 20,466 FLAME-topology meshes of 12 subjects.

Official layout after unpacking (``data_dir()/"COMA_data"``)::

    COMA_data/<subject>/<expression>/<expression>.<frame>.ply   e.g.
    COMA_data/FaceTalk_170725_00137_TA/bareteeth/bareteeth.000001.ply

Vertices are FLAME-registered (5023 vertices) in metres. The splits follow the public COMA ports:

* ``"sliced"`` (the "interpolation" experiment): files sorted, index ``i`` goes to the test set when
  ``i % 100 < 10`` -- 10 consecutive frames out of every 100, 10 % of the data;
* ``"expression"``: every sequence of one expression is held out;
* ``"identity"``: every mesh of one subject is held out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecourse.data.atomic import atomic_open
from facecourse.data.paths import data_dir
from facecourse.mesh import load_mesh
from facecourse.settings import progress_bar

EXPRESSIONS = ("bareteeth", "cheeks_in", "eyebrow", "high_smile", "lips_back", "lips_up", "mouth_down",
               "mouth_extreme", "mouth_middle", "mouth_open", "mouth_side", "mouth_up")
SPLITS = ("sliced", "expression", "identity")
_NAME = re.compile(r"^(?P<stem>.+)\.(?P<frame>\d+)\.ply$")


@dataclass(frozen=True)
class ComaFile:
    """One CoMA mesh: ``subject``, ``expression`` (sequence folder), ``frame`` number and ``path``."""

    subject: str
    expression: str
    frame: int
    path: Path


def coma_root() -> Path:
    """``data_dir()/"COMA_data"`` (may not exist)."""
    return data_dir() / "COMA_data"


def list_coma_files(root: str | Path | None = None) -> list[ComaFile]:
    """All meshes under ``root`` in the official layout, sorted by (subject, expression, frame).

    Raises:
        FileNotFoundError: ``root`` is missing or holds no ``<subject>/<expression>/<name>.<frame>.ply``.
    """
    root = coma_root() if root is None else Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"CoMA folder not found: {root} (expected COMA_data/<subject>/<expression>/*.ply)")
    files = []
    for path in root.glob("*/*/*.ply"):
        match = _NAME.match(path.name)
        if match:
            files.append(ComaFile(path.parent.parent.name, path.parent.name, int(match["frame"]), path))
    if not files:
        raise FileNotFoundError(f"no CoMA meshes <subject>/<expression>/<name>.<frame>.ply under {root}")
    return sorted(files, key=lambda f: (f.subject, f.expression, f.frame))


def coma_available(root: str | Path | None = None) -> bool:
    """True when :func:`list_coma_files` finds meshes."""
    try:
        list_coma_files(root)
    except FileNotFoundError:
        return False
    return True


def coma_split(files: list[ComaFile], split: str = "sliced", held_out: str | None = None
               ) -> tuple[list[ComaFile], list[ComaFile]]:
    """Split CoMA files into ``(train, test)``.

    Args:
        files: sorted list from :func:`list_coma_files`.
        split: ``"sliced"`` (``i % 100 < 10`` is test), ``"expression"`` or ``"identity"``.
        held_out: the expression / subject held out (required for those two splits).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "sliced":
        test = [i % 100 < 10 for i in range(len(files))]
    else:
        if held_out is None:
            raise ValueError(f"split={split!r} needs held_out (an {'expression' if split == 'expression' else 'subject'})")
        key = "expression" if split == "expression" else "subject"
        test = [getattr(f, key) == held_out for f in files]
        if not any(test):
            raise ValueError(f"no CoMA file has {key}={held_out!r}")
    return [f for f, t in zip(files, test) if not t], [f for f, t in zip(files, test) if t]


def load_coma_vertices(files: list[ComaFile], progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read the meshes: ``(vertices (N, V, 3) float32 metres, faces (F, 3) int64)``.

    Raises:
        ValueError: the meshes do not all share the first file's topology.
    """
    if not files:
        raise ValueError("no CoMA files given")
    vertices, faces = [], None
    for f in progress_bar(files, desc="CoMA meshes", disable=not progress):
        v, fc = load_mesh(f.path)
        if faces is None:
            faces = fc
        elif fc.shape != faces.shape or not np.array_equal(fc, faces):
            raise ValueError(f"{f.path} has a different topology from {files[0].path}")
        vertices.append(v.astype(np.float32))
    return np.stack(vertices), faces


def load_coma_split(root: str | Path | None = None, split: str = "sliced", held_out: str | None = None,
                    cache: bool = True, progress: bool = True) -> dict[str, np.ndarray]:
    """Train/test vertices of a CoMA split, cached as ``.npy`` under ``data_dir()/"cache"`` (atomic).

    Returns:
        ``{"train": (N, V, 3) float32, "test": (M, V, 3) float32, "faces": (F, 3) int64}`` in metres.
    """
    root = coma_root() if root is None else Path(root)
    files = list_coma_files(root)
    train, test = coma_split(files, split, held_out)
    where = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]
    tag = f"coma-{where}-{split}-{held_out or 'all'}-{len(files)}"
    cache_dir = data_dir() / "cache"
    out = {}
    for name, subset in (("train", train), ("test", test)):
        path = cache_dir / f"{tag}-{name}.npy"
        if cache and path.is_file():
            out[name] = np.load(path, allow_pickle=False)
            continue
        out[name], out["faces"] = load_coma_vertices(subset, progress)
        if cache:
            with atomic_open(path) as handle:
                np.save(handle, out[name])
    if "faces" not in out:
        out["faces"] = load_mesh(files[0].path)[1]
    return out
