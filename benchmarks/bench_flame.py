"""facecourse FLAME forward vs smplx's FLAME class on the same model file: time ratio and largest difference.

Both get the same pickle (smplx as ``FLAME_NEUTRAL.pkl`` beside the RingNet landmark files, as it expects),
the same parameters (neck zero: smplx reads the contour yaw from the global rotation only), no autograd.

    .venv/bin/python benchmarks/bench_flame.py [--size small|full] [--batch 16] [--repeats 30]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from facecourse.flame import FLAME, default_model_path
from facecourse.flame import io as fio


def _time(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="full", choices=("small", "full"))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    try:
        import smplx
    except ImportError:
        print("smplx is not installed (pip install smplx): nothing to compare against, skipped")
        return 0
    path = default_model_path(args.size)
    b = args.batch
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(path, Path(tmp) / "FLAME_NEUTRAL.pkl")
        for name in (fio.RINGNET_STATIC, fio.RINGNET_DYNAMIC):
            shutil.copy(path.parent / name, Path(tmp) / name)
        ref = smplx.FLAME(model_path=tmp, num_betas=100, num_expression_coeffs=50, use_face_contour=True,
                          batch_size=b)
    ours = FLAME.from_file(path, n_shape=100, n_exp=50)
    g = torch.Generator().manual_seed(0)
    shape, expr = torch.randn(b, 100, generator=g), torch.randn(b, 50, generator=g)
    glob, jaw = torch.randn(b, 3, generator=g) * 0.3, torch.randn(b, 3, generator=g) * 0.1
    with torch.no_grad():
        a = _time(lambda: ours(shape=shape, expression=expr, global_pose=glob, jaw_pose=jaw), args.repeats)
        c = _time(lambda: ref(betas=shape, expression=expr, global_orient=glob, jaw_pose=jaw), args.repeats)
        diff = (ours(shape=shape, expression=expr, global_pose=glob, jaw_pose=jaw).vertices
                - ref(betas=shape, expression=expr, global_orient=glob, jaw_pose=jaw).vertices).abs().max()
    print(f"model {path} (V={ours.n_vertices}), batch {b}, forward without autograd")
    print(f"facecourse {a * 1e3:.2f} ms | smplx {c * 1e3:.2f} ms | time ratio facecourse/smplx {a / c:.2f} "
          f"| max vertex difference {diff.item() * 1e6:.3f} µm (float32)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
