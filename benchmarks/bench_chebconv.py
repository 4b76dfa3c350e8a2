"""facecourse ChebConv vs torch_geometric ChebConv: forward + backward, batch 32, FLAME-size mesh.

Prints the time of each, the speed ratio (target >= 3x) and the largest output/gradient difference
(:func:`facecourse.nn.chebconv.compare_with_pyg`). PyG is run the way its DataLoader batches meshes: one
block-diagonal graph of B copies, its normalisation computed in every call.

    .venv/bin/python benchmarks/bench_chebconv.py [--batch 32] [--channels 16] [--K 6] [--repeats 5]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from facecourse.nn import ChebConv, decimate
from facecourse.nn.chebconv import compare_with_pyg


def flame_size_mesh() -> tuple[str, np.ndarray, int]:
    """Name, faces and vertex count of a ~5k-vertex mesh: the synthetic 'full' FLAME if it can be built, else a sphere."""
    try:
        from facecourse.flame import FLAME, default_model_path

        flame = FLAME.from_file(default_model_path("full"))
        return f"FLAME ({default_model_path('full')})", flame.faces.numpy(), flame.n_vertices
    except Exception as exc:  # the FLAME model is optional for this benchmark
        import trimesh

        print(f"(FLAME 'full' unavailable: {exc}; using a 5023-vertex decimated icosphere)")
        m = trimesh.creation.icosphere(5)
        kept, faces = decimate(m.vertices, m.faces, 5023)
        return "icosphere decimated to 5023 vertices", faces, len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--K", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    name, faces, n = flame_size_mesh()
    b, c, k = args.batch, args.channels, args.K
    conv = ChebConv.from_faces(c, c, k, faces, n)
    x = torch.randn(b, n, c)
    r = compare_with_pyg(conv, faces, x, repeats=args.repeats)
    print(f"mesh: {name}, V={n}, batch={b}, channels={c}->{c}, K={k}, torch threads={torch.get_num_threads()}")
    print(f"max |output difference| = {r['max_abs_diff']:.2e}, max |input-grad difference| = {r['max_grad_diff']:.2e}")
    print(f"facecourse ChebConv          forward+backward: {1e3 * r['ours_s']:8.1f} ms")
    print(f"PyG ChebConv (batched graph) forward+backward: {1e3 * r['pyg_s']:8.1f} ms")
    print(f"speed ratio PyG / facecourse: {r['ratio']:.1f}x (target >= 3x)")

if __name__ == "__main__":
    main()
