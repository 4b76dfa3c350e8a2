"""NoW evaluation speed: libigl's exact point-to-surface distance vs trimesh, and one whole image.

Prints (never asserts):
* the distance step, 100k scan-like points (mm, within a few mm of the surface) against a 10k-face mesh:
  ``facecourse.now.SurfaceDistance`` (libigl AABB tree) vs ``trimesh.proximity.closest_point``, their
  ratio (target >= 15x) and the largest absolute difference (target <= 1e-6 mm);
* the whole evaluation of one image (crop, Procrustes, refinement, final distances) for a 100k-vertex
  scan and a 10k-face prediction (target < 1 s).

Run: ``.venv/bin/python benchmarks/bench_now.py`` (``make bench``). Timings are best-of-N wall clock.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import fast_simplification  # noqa: E402
import numpy as np  # noqa: E402
import trimesh  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

from facecourse.now import M_TO_MM, Similarity, SurfaceDistance, evaluate_prediction  # noqa: E402
from facecourse.now.synthetic import scan_from_head  # noqa: E402

AXES = np.array([75.0, 100.0, 90.0])


def head(subdivisions: int):
    """An ellipsoid head in mm with a nose, and 7 NoW-like landmarks on it."""
    m = trimesh.creation.icosphere(subdivisions=subdivisions)

    def shape(d):
        bump = 14.0 * np.exp(-((d[:, 0] / 0.22) ** 2 + ((d[:, 1] + 0.1) / 0.3) ** 2)) * (d[:, 2] > 0)
        brow = 4.0 * np.exp(-((d[:, 1] - 0.3) / 0.08) ** 2) * (d[:, 2] > 0)
        return d * AXES + (bump + brow)[:, None] * np.array([0.0, 0.0, 1.0])

    xy = np.array([[-45.0, 25], [-15, 25], [15, 25], [45, 25], [0, -20], [-25, -45], [25, -45]])
    dl = np.column_stack([xy[:, 0] / AXES[0], xy[:, 1] / AXES[1], np.zeros(7)])
    dl[:, 2] = np.sqrt(1 - (dl[:, :2] ** 2).sum(axis=1))
    return shape(np.asarray(m.vertices)), np.asarray(m.faces), shape(dl)


def best_of(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> int:
    rng = np.random.default_rng(0)
    v, f, lm = head(5)
    pv, pf = fast_simplification.simplify(v, f, target_count=10_000)
    print(f"prediction mesh: {len(pv)} vertices, {len(pf)} faces (mm)")

    # 1. distance step: 100k points sampled on the surface and pushed off it by up to a few mm
    pts, _ = trimesh.sample.sample_surface(trimesh.Trimesh(v, f, process=False), 100_000, seed=1)
    pts = pts + rng.normal(scale=2.0, size=pts.shape)
    t_igl, d_igl = best_of(lambda: SurfaceDistance(pv, pf)(pts), 3)
    mesh = trimesh.Trimesh(pv, pf, process=False)
    t_tm, (_, d_tm, _) = best_of(lambda: trimesh.proximity.closest_point(mesh, pts), 1)
    diff = np.abs(d_igl - d_tm).max()
    ratio = t_tm / t_igl
    print(f"distance, 100k points vs {len(pf)} faces: libigl {t_igl * 1e3:.1f} ms (tree build included), "
          f"trimesh {t_tm * 1e3:.0f} ms -> {ratio:.1f}x (target >= 15x: {'met' if ratio >= 15 else 'NOT met'}); "
          f"max |difference| {diff:.2e} mm (target <= 1e-6: {'met' if diff <= 1e-6 else 'NOT met'})")

    # 2. one whole image: a 100k-vertex scan and the 10k-face prediction moved away by a similarity
    sv_head, sf_head, slm_head = head(6)
    sv, sf, slm, _ = scan_from_head(sv_head, sf_head, slm_head, rng, subdivisions=1, back_fraction=0.35)
    move = Similarity(1 / M_TO_MM, Rotation.from_rotvec([0.3, -1.0, 0.2]).as_matrix(), np.array([0.1, 0.2, -0.3]))
    pred_v, pred_lm = move.apply(pv), move.apply(lm)  # "metres", rotated, as a prediction would be
    t_img, res = best_of(lambda: evaluate_prediction(sv, sf, slm, pred_v, pf, pred_lm), 3)
    print(f"whole image: scan {len(sv)} vertices ({len(res.distances)} in the crop), crop + Procrustes + "
          f"refinement ({res.refinement.iterations} iterations) + distances = {t_img * 1e3:.0f} ms "
          f"(target < 1 s: {'met' if t_img < 1 else 'NOT met'}); median error {np.median(res.distances):.3f} mm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
