"""facecourse ChebConv vs torch_geometric ChebConv: forward + backward, batch 32, FLAME-size mesh.

Prints the time of each, the speed ratio (target >= 3x) and the largest output/gradient difference
(:func:`facecourse.nn.chebconv.compare_with_pyg`). PyG is run the way its DataLoader batches meshes: one
block-diagonal graph of B copies, its normalisation computed in every call.

    .venv/bin/python benchmarks/bench_chebconv.py [--batch 32] [--channels 16] [--K 6] [--repeats 5]
"""

from __future__ import annotations

import argparse

import torch
from bench_chebyshev_vs_exact import load_mesh_5k  # the one FLAME-size mesh of the benchmarks (same folder)

from facecourse.nn import ChebConv
from facecourse.nn.chebconv import compare_with_pyg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--K", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    vertices, faces, name = load_mesh_5k()
    n = len(vertices)
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
