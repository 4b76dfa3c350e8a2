"""Mesh files (OBJ, PLY, ...) through trimesh, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import trimesh

from facecourse.arrays import to_numpy
from facecourse.data.atomic import atomic_path
from facecourse.mesh.topology import as_faces


def load_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh without merging or reordering vertices.

    Args:
        path: an ``.obj``, ``.ply``, ``.off`` or ``.stl`` file (OBJ vertex colours are ignored).

    Returns:
        ``(vertices (V, 3) float64, faces (F, 3) int64)`` in the file's units.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file holds no triangle mesh (no vertices, or points without faces), or non-finite
            vertices.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mesh file not found: {path}")
    try:
        mesh = trimesh.load(path, process=False, maintain_order=True, force="mesh")
    except Exception as exc:  # trimesh raises many types for broken files
        raise ValueError(f"could not read a mesh from {path}: {exc}") from exc
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(vertices) == 0 or len(faces) == 0:
        points = len(getattr(trimesh.load(path, process=False), "vertices", ()))  # what the file holds without faces
        if points:
            raise ValueError(f"{path} holds {points} points but no faces: a point cloud, not a triangle mesh")
        raise ValueError(f"{path} holds no vertices")
    if not np.isfinite(vertices).all():
        raise ValueError(f"{path} has non-finite vertex coordinates")
    return vertices, faces


def save_mesh(path: str | os.PathLike, vertices, faces) -> Path:
    """Write a triangle mesh atomically; the format follows the suffix (``.obj``, ``.ply``, ...).

    Args:
        path: destination file.
        vertices: ``(V, 3)`` array-like (numpy or torch).
        faces: ``(F, 3)`` integer array-like (numpy or torch); float indices are refused, not truncated.

    Returns:
        The path written.
    """
    path = Path(path)
    vertices = to_numpy(vertices, np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {vertices.shape}")
    faces = as_faces(faces, len(vertices))
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    with atomic_path(path) as tmp:
        mesh.export(tmp, file_type=path.suffix.lstrip(".").lower())
    return path
