"""Rendering speed: ms per image for forward + backward at 224 px, 1k / 5k / 10k faces, batch 1 / 8.

Prints a table (never asserts). The peer is pytorch3d's rasteriser when it is installed (ratio column);
otherwise the ratios show how the built-in rasteriser scales with faces and pixels.
Run: ``.venv/bin/python benchmarks/bench_render.py`` (``OMP_NUM_THREADS`` as you like).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import trimesh

from facecourse.render import WeakPerspectiveCamera, directional_sh, pytorch3d_available, render


def sphere_with_faces(n_faces: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A bumpy sphere decimated to about ``n_faces`` triangles (quadric decimation)."""
    mesh = trimesh.creation.icosphere(subdivisions=6)
    mesh = mesh.simplify_quadric_decimation(face_count=n_faces)
    v = np.asarray(mesh.vertices) * (1 + 0.05 * np.sin(5 * np.asarray(mesh.vertices)[:, :1]))
    return torch.tensor(v, dtype=torch.float32), torch.tensor(np.asarray(mesh.faces), dtype=torch.long)


def time_render(vertices, faces, batch: int, size: int, backend: str, repeats: int = 3) -> float:
    """Best-of-``repeats`` seconds for one forward + backward of a shaded render of ``batch`` images."""
    v0 = vertices[None].repeat(batch, 1, 1)
    cam = WeakPerspectiveCamera(torch.tensor([[0.8, 0.0, 0.0]]).repeat(batch, 1))
    light = directional_sh(torch.tensor([[0.3, 0.3, 1.0]]).repeat(batch, 1), 0.6, 0.5)
    albedo = torch.full_like(v0, 0.7)
    best = float("inf")
    for _ in range(repeats + 1):
        v = v0.clone().requires_grad_()
        t = time.perf_counter()
        out = render(v, faces, cam, size, albedo=albedo, lighting=light, backend=backend)
        out.image.mean().backward()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, pytorch3d: {pytorch3d_available()}")
    meshes = {n: sphere_with_faces(n) for n in (1000, 5000, 10000)}
    base = None
    print(f"{'faces':>6} {'batch':>5} {'px':>4} {'ms/img torch':>13} {'ratio':>7}" +
          (f" {'ms/img p3d':>11} {'torch/p3d':>10}" if pytorch3d_available() else ""))
    rows = [(n, b, 224) for n in meshes for b in (1, 8)] + [(5000, 8, 112), (5000, 8, 448)]
    for n, b, px in rows:
        v, f = meshes[n]
        ms = 1000 * time_render(v, f, b, px, "torch") / b
        base = base or ms
        line = f"{f.shape[0]:>6} {b:>5} {px:>4} {ms:>13.1f} {ms / base:>7.2f}"
        if pytorch3d_available():
            ms3 = 1000 * time_render(v, f, b, px, "pytorch3d") / b
            line += f" {ms3:>11.1f} {ms / ms3:>10.2f}"
        print(line)
    print("ratio = ms/img relative to the first row (1k faces, batch 1, 224 px)")


if __name__ == "__main__":
    main()
