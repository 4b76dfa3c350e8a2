"""facecourse ChebConv vs torch_geometric ChebConv: forward + backward, batch 32, FLAME-size mesh.

Prints the time of each, the speed ratio (target >= 3x) and the largest output/gradient difference.
PyG is run the way its DataLoader batches meshes (one block-diagonal graph of B copies, normalisation
computed in every call); a second PyG line feeds (B, V, C) with one edge_index (its node_dim trick).

    .venv/bin/python benchmarks/bench_chebconv.py [--batch 32] [--channels 16] [--K 6] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch_geometric.nn import ChebConv as PygChebConv

from facecourse.mesh import edges_from_faces
from facecourse.nn import ChebConv, decimate


def flame_size_mesh() -> tuple[str, np.ndarray]:
    """Faces and name of a ~5k-vertex mesh: the synthetic 'full' FLAME if it can be built, else a sphere."""
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


def timed(step, repeats: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


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
    ours = ChebConv.from_faces(c, c, k, faces, n)
    pyg = PygChebConv(c, c, k)
    with torch.no_grad():
        for i in range(k):
            pyg.lins[i].weight.copy_(ours.weight[i].T)
        pyg.bias.copy_(ours.bias)
    e = torch.from_numpy(edges_from_faces(faces)).T
    one = torch.cat([e, e.flip(0)], dim=1)
    batched = torch.cat([one + i * n for i in range(b)], dim=1)
    x = torch.randn(b, n, c)

    def run_ours():
        xi = x.clone().requires_grad_()
        y = ours(xi)
        y.square().sum().backward()
        return y, xi.grad

    def run_pyg():
        xi = x.reshape(b * n, c).clone().requires_grad_()
        y = pyg(xi, batched)
        y.square().sum().backward()
        return y.reshape(b, n, c), xi.grad.reshape(b, n, c)

    def run_pyg_nodedim():
        xi = x.clone().requires_grad_()
        y = pyg(xi, one)
        y.square().sum().backward()
        return y, xi.grad

    y0, g0 = run_ours()
    y1, g1 = run_pyg()
    t_ours = timed(run_ours, args.repeats)
    t_pyg = timed(run_pyg, args.repeats)
    t_pyg2 = timed(run_pyg_nodedim, args.repeats)
    print(f"mesh: {name}, V={n}, batch={b}, channels={c}->{c}, K={k}, torch threads={torch.get_num_threads()}")
    print(f"max |output difference| = {(y0 - y1).abs().max():.2e}, max |grad difference| = {(g0 - g1).abs().max():.2e}")
    print(f"facecourse ChebConv           forward+backward: {1e3 * t_ours:8.1f} ms")
    print(f"PyG ChebConv (batched graph)  forward+backward: {1e3 * t_pyg:8.1f} ms   ratio {t_pyg / t_ours:5.1f}x (target >= 3x)")
    print(f"PyG ChebConv ((B, V, C) input) forward+backward: {1e3 * t_pyg2:8.1f} ms   ratio {t_pyg2 / t_ours:5.1f}x")


if __name__ == "__main__":
    main()
