"""Geometry of the synthetic FLAME-format head: an implicit head, meshed, plus two eyeballs.

The head is the zero level set of an implicit function :math:`f(\\mathbf p)` (metres, negative inside)
built from smooth unions of simple solids (cranium, lower face, neck, nose, lips, chin, ears, jaw angles),
Gaussian bumps and dents (brows, cheek bones, temples, folds) and carved eye sockets closed by eyelid
shells around the eyeballs:

.. math::  \\operatorname{smin}_k(a, b) = \\min(a, b) - \\tfrac{k}{4} \\max(k - |a - b|, 0)^2 / k^2 .

The surface is *star-shaped* from :data:`STAR_CENTRE` (apart from the back of the ears), so every
direction :math:`\\mathbf d` on the unit sphere meets it once at the outermost root of
:math:`f(\\mathbf c + r\\mathbf d) = 0`, found by sphere tracing. Vertices are picked among many such
surface points by weighted farthest-point sampling (denser on the face), after the boundaries were laid
out: the two eye openings (almond-shaped holes in the lid shells), the mouth line (a slit whose interior
vertices are duplicated so that the lips are topologically separate and the mouth can open) and the neck
cut (a horizontal plane, open like FLAME's). Connectivity is the Delaunay triangulation of the
directions after a stereographic projection from the bottom pole (circle preserving, so it is the
spherical Delaunay triangulation), which always gives a valid manifold surface.

Model space (FLAME's): metres, +x = subject's left, +y up, +z out of the face. Everything here is a pure
function of an :class:`Anatomy` and a vertex budget; :mod:`facecourse.flame.synthetic` adds blend shapes,
skinning, landmarks and masks and writes the official files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import Delaunay, cKDTree

#: Centre from which the head surface is star-shaped (metres).
STAR_CENTRE = np.array([0.0, -0.02, -0.008])


@dataclass(frozen=True)
class Anatomy:
    """Landmark positions of the synthetic head (metres, model space, left-side values; right = mirror in x).

    Sizes follow adult averages: head breadth ~0.15 m, glabella-opisthocranion ~0.19 m, vertex-menton
    ~0.23 m, interpupillary distance ~63 mm, eyeball radius 12.5 mm, mouth width ~50 mm.
    """

    eye_centre: tuple = (0.032, 0.0, 0.0615)
    eye_radius: float = 0.0125
    lid_thickness: float = 0.0016
    #: half-angle (degrees, about the eye centre) of the eye opening from the gaze axis to a corner
    eye_corner_deg: float = 62.0
    eye_upper_deg: float = 21.0
    eye_lower_deg: float = 15.0
    mouth_y: float = -0.0695
    mouth_half_width: float = 0.025
    jaw_joint: tuple = (0.0, -0.022, -0.006)
    neck_joint: tuple = (0.0, -0.075, -0.02)
    neck_cut_y: float = -0.185
    ear_centre: tuple = (0.077, -0.006, -0.012)


#: Right-eye / left-eye sign of x (FLAME: +x is the subject's left). Index 0 = left, 1 = right.
EYE_SIDES = (1.0, -1.0)


# --------------------------------------------------------------------------------------------------
# Implicit primitives (approximate signed distances, metres)
# --------------------------------------------------------------------------------------------------


def _ellipsoid(p: np.ndarray, centre, radii) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipsoid: :math:`k_0 (k_0 - 1) / k_1`."""
    q = (p - np.asarray(centre)) / np.asarray(radii)
    k0 = np.linalg.norm(q, axis=-1)
    k1 = np.linalg.norm(q / np.asarray(radii), axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def _round_cone(p: np.ndarray, a, b, ra: float, rb: float) -> np.ndarray:
    """Signed distance (approximate) to a capsule from ``a`` to ``b`` with radius ``ra`` -> ``rb``."""
    a, b = np.asarray(a), np.asarray(b)
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    closest = a + t[:, None] * ab
    return np.linalg.norm(p - closest, axis=-1) - (ra + (rb - ra) * t)


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (smooth union) with blend radius ``k``."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _smax(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth maximum (smooth intersection / subtraction)."""
    return -_smin(-a, -b, k)


def gauss(p: np.ndarray, centre, sigma) -> np.ndarray:
    """Anisotropic Gaussian :math:`\\exp(-\\tfrac12 \\sum_i ((p_i - c_i)/\\sigma_i)^2)` of points ``p``
    ``(N, 3)`` around ``centre`` ``(3,)`` with widths ``sigma`` ``(3,)`` (metres): values ``(N,)`` in (0, 1]."""
    q = (p - np.asarray(centre)) / np.asarray(sigma)
    return np.exp(-0.5 * np.einsum("ij,ij->i", q, q))


def _mirror(c) -> tuple:
    return (-c[0], c[1], c[2])


def _both(c):
    return (tuple(c), _mirror(c))


def eye_centres(anatomy: Anatomy) -> np.ndarray:
    """Eyeball centres ``(2, 3)``: row 0 the subject's left eye (+x), row 1 the right eye (-x)."""
    e = np.asarray(anatomy.eye_centre, dtype=np.float64)
    return np.stack([e, e * np.array([-1.0, 1.0, 1.0])])


def lips_sdf(p: np.ndarray, anatomy: Anatomy) -> np.ndarray:
    """Implicit lips ``(N,)``: upper and lower lip ellipsoids meeting along the mouth line."""
    m = anatomy.mouth_y
    bent = p + np.stack([0 * p[:, 0], 0 * p[:, 0], 11.0 * p[:, 0] ** 2], 1)  # lips follow the dental arch
    upper = _ellipsoid(bent, (0.0, m + 0.0072, 0.079), (0.0255, 0.0068, 0.0115))
    lower = _ellipsoid(bent, (0.0, m - 0.0078, 0.077), (0.0225, 0.0078, 0.0115))
    return _smin(upper, lower, 0.0015)


def nose_sdf(p: np.ndarray, anatomy: Anatomy) -> np.ndarray:
    """Implicit nose ``(N,)``: bridge (round cone), tip, alae and columella, smoothly united."""
    nose = _round_cone(p, (0.0, 0.006, 0.077), (0.0, -0.027, 0.101), 0.0055, 0.0068)
    nose = _smin(nose, _ellipsoid(p, (0.0, -0.033, 0.1015), (0.0088, 0.0092, 0.0098)), 0.004)
    for c in _both((0.0112, -0.0365, 0.0885)):
        nose = _smin(nose, _ellipsoid(p, c, (0.0066, 0.0062, 0.0085)), 0.006)
    return _smin(nose, _round_cone(p, (0.0, -0.036, 0.099), (0.0, -0.044, 0.086), 0.0048, 0.0045), 0.003)


def ear_centre(side: int, anatomy: Anatomy) -> np.ndarray:
    """Centre ``(3,)`` of ear ``side`` (0 = left, +x; 1 = right, -x)."""
    return np.asarray(anatomy.ear_centre, dtype=np.float64) * np.array([EYE_SIDES[side], 1.0, 1.0])


def ear_sdf(p: np.ndarray, side: int, anatomy: Anatomy) -> np.ndarray:
    """Implicit ear ``(N,)``: a flattened ellipsoid tilted back, rim standing off, a hollow (concha)."""
    s = EYE_SIDES[side]
    q = p - ear_centre(side, anatomy)
    tilt = np.deg2rad(18.0)  # long axis tilted back
    qy = q[:, 1] * np.cos(tilt) + q[:, 2] * np.sin(tilt)
    qz = -q[:, 1] * np.sin(tilt) + q[:, 2] * np.cos(tilt)
    qx = q[:, 0] * s - 0.0025 * (qz / 0.016)  # back rim stands off the head
    local = np.stack([qx, qy, qz], 1)
    ear = _ellipsoid(local, (0, 0, 0), (0.0075, 0.029, 0.016))
    concha = _ellipsoid(local, (0.008, -0.003, 0.003), (0.0045, 0.011, 0.0085))
    return _smax(ear, -concha, 0.002)


def head_sdf(p: np.ndarray, anatomy: Anatomy) -> np.ndarray:
    """Implicit head function ``(N,)`` at points ``p`` ``(N, 3)`` (metres, < 0 inside).

    Solids: cranium and lower-face ellipsoids, elliptic neck cylinder, jaw angles, chin, lips, nose
    (bridge, tip, alae, columella), ears; bumps: brow ridges, cheek bones, dents: temples, nasion,
    mouth corners, mentolabial sulcus; eye sockets carved and closed again by the eyelid shells
    (spheres of radius ``eye_radius + lid_thickness`` about the eyeball centres).
    """
    a = anatomy
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    cranium = _ellipsoid(p, (0.0, 0.027, -0.009), (0.0745, 0.088, 0.094))
    face = _ellipsoid(p, (0.0, -0.043, 0.018), (0.054, 0.074, 0.066))
    f = _smin(cranium, face, 0.02)
    # neck: elliptic cylinder below the skull, leaning slightly forward towards the chest
    zc = -0.016 + 0.12 * (-0.06 - y).clip(0, None)
    neck_r = np.hypot(x / 0.054, (z - zc) / 0.057)
    neck = _smax((neck_r - 1.0) * 0.054, y + 0.02, 0.02)
    f = _smin(f, neck, 0.025)
    for c in _both((0.046, -0.068, -0.004)):  # jaw angles (gonion) and ramus
        f = _smin(f, _ellipsoid(p, c, (0.011, 0.024, 0.024)), 0.012)
    f = _smin(f, _ellipsoid(p, (0.0, -0.099, 0.064), (0.019, 0.014, 0.014)), 0.016)  # chin
    f = _smin(f, lips_sdf(p, a), 0.004)
    f = _smin(f, nose_sdf(p, a), 0.005)
    for side in (0, 1):
        f = _smin(f, ear_sdf(p, side, a), 0.006)
    # bumps (> 0 pushes the surface out) and dents
    bump = np.zeros(len(p))
    for c in _both((0.029, 0.018, 0.081)):  # brow ridges
        bump += 0.0045 * gauss(p, c, (0.016, 0.006, 0.012))
    bump += 0.0022 * gauss(p, (0.0, 0.015, 0.085), (0.008, 0.006, 0.01))  # glabella
    for c in _both((0.047, -0.016, 0.058)):  # cheek bones
        bump += 0.0045 * gauss(p, c, (0.012, 0.009, 0.013))
    for c in _both((0.03, -0.04, 0.07)):  # cheeks
        bump += 0.003 * gauss(p, c, (0.012, 0.014, 0.012))
    for c in _both((0.066, 0.032, 0.042)):  # temples
        bump -= 0.003 * gauss(p, c, (0.008, 0.014, 0.014))
    bump -= 0.004 * gauss(p, (0.0, 0.003, 0.082), (0.008, 0.005, 0.012))  # nasion
    for c in _both((a.mouth_half_width + 0.002, a.mouth_y, 0.076)):  # mouth corners
        bump -= 0.0025 * gauss(p, c, (0.004, 0.004, 0.008))
    bump -= 0.0025 * gauss(p, (0.0, -0.087, 0.082), (0.014, 0.0035, 0.012))  # mentolabial sulcus
    for c in _both((0.0048, -0.056, 0.086)):  # philtrum columns and the groove between them
        bump += 0.0009 * gauss(p, c, (0.0022, 0.0045, 0.01))
    for c in _both((0.0068, -0.0435, 0.093)):  # nostrils
        bump -= 0.0022 * gauss(p, c, (0.0032, 0.0022, 0.0045))
    f = f - bump
    # eye sockets: carve, then close with the lid shells
    for e in eye_centres(a):  # shifted towards the nose, so the inner corner is not a deep pocket
        socket = _ellipsoid(p, e + np.array([-0.002 * np.sign(e[0]), 0.001, 0.012]), (0.02, 0.014, 0.012))
        f = _smax(f, -socket, 0.01)
    for e in eye_centres(a):
        lid = np.linalg.norm(p - e, axis=1) - (a.eye_radius + a.lid_thickness)
        f = _smin(f, lid, 0.006)
    return f


def cast_rays(directions: np.ndarray, anatomy: Anatomy, centre=STAR_CENTRE,
              r_max: float = 0.32, tol: float = 2e-6) -> np.ndarray:
    """Outermost zero of :func:`head_sdf` along rays ``centre + r d``; returns ``r`` ``(N,)`` (metres).

    ``centre`` is ``(3,)`` or one origin per ray ``(N, 3)`` (it must lie inside the head). Sphere tracing
    inwards from ``r_max`` (steps of 0.6 f, safe for the mildly non-Euclidean implicit) down to 4 mm from
    the surface, then a 2 mm march to the first inside sample, then bisection to ``tol``.
    """
    d = np.asarray(directions, dtype=np.float64)
    n = len(d)
    origin = np.broadcast_to(np.asarray(centre, dtype=np.float64), (n, 3))
    r = np.full(n, float(r_max))
    lo = np.full(n, np.nan)  # inside radius
    hi = np.full(n, float(r_max))  # outside radius
    active = np.arange(n)
    for _ in range(200):  # sphere tracing while far away
        if not len(active):
            break
        vals = head_sdf(origin[active] + r[active, None] * d[active], anatomy)
        inside = vals < 0
        lo[active[inside]] = r[active[inside]]
        hi[active[~inside]] = r[active[~inside]]
        far = vals > 0.004
        r[active[far]] -= 0.6 * vals[far]
        active = active[far]
    active = np.flatnonzero(np.isnan(lo))
    step = 0.002
    while len(active):  # fine march inwards to the first inside sample
        r_next = hi[active] - step
        if (r_next <= 0).any():
            raise RuntimeError("a ray never entered the head; its origin must lie inside")
        inside = head_sdf(origin[active] + r_next[:, None] * d[active], anatomy) < 0
        lo[active[inside]] = r_next[inside]
        hi[active[~inside]] = r_next[~inside]
        active = active[~inside]
    for _ in range(int(np.ceil(np.log2(np.max(hi - lo) / tol)))):
        mid = 0.5 * (lo + hi)
        inside = head_sdf(origin + mid[:, None] * d, anatomy) < 0
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    return 0.5 * (lo + hi)


def sdf_normals(p: np.ndarray, anatomy: Anatomy, h: float = 2e-4) -> np.ndarray:
    """Unit outward normals ``(N, 3)`` of the implicit head at ``p``: central differences of :func:`head_sdf`.

    Smooth in space, so the two copies of a mouth-line vertex get the same normal.
    """
    g = np.stack([head_sdf(p + h * e, anatomy) - head_sdf(p - h * e, anatomy) for e in np.eye(3)], 1)
    return _normalize(g)


def surface_points(directions: np.ndarray, anatomy: Anatomy) -> np.ndarray:
    """Head surface points ``(N, 3)`` hit by the rays ``STAR_CENTRE + r d``."""
    return STAR_CENTRE + cast_rays(directions, anatomy)[:, None] * directions


def fibonacci_sphere(n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 3)`` near-uniform unit vectors (golden-angle spiral, randomly rotated about y)."""
    i = np.arange(n) + 0.5
    y = 1.0 - 2.0 * i / n
    phi = np.pi * (3.0 - np.sqrt(5.0)) * i + rng.uniform(0, 2 * np.pi)
    s = np.sqrt(1.0 - y * y)
    return np.stack([s * np.cos(phi), y, s * np.sin(phi)], 1)


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# --------------------------------------------------------------------------------------------------
# Eye openings, mouth line, neck cut
# --------------------------------------------------------------------------------------------------


def eye_opening_angles(psi: np.ndarray, anatomy: Anatomy) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper lid margin elevations (radians) at lateral angle ``psi`` (radians) about the eye.

    ``psi`` is measured about the eye centre from the gaze axis (+z), positive towards the temple; the
    opening is the almond :math:`\\epsilon_l(\\psi) < \\epsilon < \\epsilon_u(\\psi)`, ``|psi| < psi_c``,
    its outer corner slightly higher than the inner one (canthal tilt).
    """
    pc = np.deg2rad(anatomy.eye_corner_deg)
    t = np.clip(psi / pc, -1.0, 1.0)
    tilt = np.deg2rad(3.0) * t
    up = np.deg2rad(anatomy.eye_upper_deg) * (1 - t * t) ** 0.75 * (1 - 0.18 * t) + tilt
    low = -np.deg2rad(anatomy.eye_lower_deg) * (1 - t * t) ** 0.9 * (1 + 0.1 * t) + tilt
    return low, up


def eye_local_angles(p: np.ndarray, side: int, anatomy: Anatomy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(psi, eps, dist)`` of points about eye ``side`` (0 left, 1 right): lateral angle, elevation, radius."""
    e = eye_centres(anatomy)[side]
    q = p - e
    dist = np.linalg.norm(q, axis=-1)
    psi = np.arctan2(q[:, 0] * EYE_SIDES[side], q[:, 2])
    eps = np.arcsin(np.clip(q[:, 1] / np.maximum(dist, 1e-12), -1, 1))
    return psi, eps, dist


def inside_eye_opening(p: np.ndarray, anatomy: Anatomy, margin: float = 0.0) -> np.ndarray:
    """``(N,)`` bool: surface points lying in an eye opening (on a lid shell, inside the almond).

    ``margin`` (radians) grows the almond.
    """
    out = np.zeros(len(p), dtype=bool)
    pc = np.deg2rad(anatomy.eye_corner_deg)
    for side in (0, 1):
        psi, eps, dist = eye_local_angles(p, side, anatomy)
        low, up = eye_opening_angles(psi, anatomy)
        out |= (np.abs(psi) < pc + margin) & (eps > low - margin) & (eps < up + margin) & (
            dist < anatomy.eye_radius + anatomy.lid_thickness + 0.004)
    return out


def eye_opening_outline(side: int, n: int, anatomy: Anatomy) -> np.ndarray:
    """``(n, 3)`` points on the lid margin of eye ``side``: index 0 the inner corner, then the upper lid to
    the outer corner (index ``n // 2``), then the lower lid back; cosine spacing, denser at the corners."""
    pc = np.deg2rad(anatomy.eye_corner_deg)
    n_up = n // 2
    n_low = n - n_up
    t_up = -np.cos(np.linspace(0, np.pi, n_up, endpoint=False))  # -1 (inner) .. <1
    t_low = np.cos(np.linspace(0, np.pi, n_low, endpoint=False))  # 1 (outer) .. >-1
    psi = np.concatenate([t_up, t_low]) * pc
    low, up = eye_opening_angles(psi, anatomy)
    eps = np.concatenate([up[:n_up], low[n_up:]])
    eps[0] = 0.5 * (low[0] + up[0])
    eps[n_up] = 0.5 * (low[n_up] + up[n_up])
    s = EYE_SIDES[side]
    u = np.stack([s * np.sin(psi) * np.cos(eps), np.sin(eps), np.cos(psi) * np.cos(eps)], 1)
    on_lid = eye_centres(anatomy)[side] + (anatomy.eye_radius + anatomy.lid_thickness) * u
    return surface_points(_normalize(on_lid - STAR_CENTRE), anatomy)  # the visible surface (corners)


def mouth_line_y(x: np.ndarray, anatomy: Anatomy) -> np.ndarray:
    """Height (metres) of the mouth line (stomion curve) at lateral position ``x``."""
    t = np.clip(np.abs(x) / anatomy.mouth_half_width, 0, 1)
    return anatomy.mouth_y + 0.0012 * t ** 2


def mouth_line_points(n: int, anatomy: Anatomy) -> np.ndarray:
    """``(n, 3)`` surface points along the mouth line from the right corner (-x) to the left (+x)."""
    x = anatomy.mouth_half_width * np.linspace(-1.0, 1.0, n)
    y = mouth_line_y(x, anatomy)
    # the surface point in the lip groove: horizontal rays at the line's height from inside the mouth
    origin = np.stack([0.5 * x, y, np.full(n, 0.03)], 1)
    d = _normalize(np.stack([x - origin[:, 0], np.zeros(n), 0.08 - origin[:, 2]], 1))
    return origin + cast_rays(d, anatomy, origin, r_max=0.1)[:, None] * d


def neck_cut_points(n: int, anatomy: Anatomy) -> np.ndarray:
    """``(n, 3)`` points where the horizontal plane ``y = neck_cut_y`` meets the neck surface."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.stack([np.sin(ang), np.zeros(n), np.cos(ang)], 1)
    # bisection on the horizontal radius so that the point lies on the surface
    lo, hi = np.zeros(n), np.full(n, 0.15)
    base = np.array([0.0, anatomy.neck_cut_y, -0.01])
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        inside = head_sdf(base + mid[:, None] * ring, anatomy) < 0
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    return base + 0.5 * (lo + hi)[:, None] * ring


# --------------------------------------------------------------------------------------------------
# Sampling and triangulation
# --------------------------------------------------------------------------------------------------


def face_density(p: np.ndarray, anatomy: Anatomy) -> np.ndarray:
    """Relative target edge length ``(N,)`` in (0, 1]: small on the face and ears, 1 on the scalp and neck."""
    face = gauss(p, (0.0, -0.03, 0.09), (0.045, 0.05, 0.05))
    eyes = sum(gauss(p, e + np.array([0, 0, 0.01]), (0.016, 0.011, 0.02)) for e in eye_centres(anatomy))
    mouth = gauss(p, (0.0, anatomy.mouth_y, 0.085), (0.024, 0.01, 0.02))
    nose = gauss(p, (0.0, -0.03, 0.1), (0.012, 0.014, 0.02))
    ears = sum(gauss(p, ear_centre(s, anatomy), (0.012, 0.03, 0.018)) for s in (0, 1))
    return 1.0 / (1.0 + 1.2 * face + 0.7 * np.minimum(eyes + mouth + nose, 1.0) + 0.8 * ears)


def farthest_point_sampling(points: np.ndarray, n: int, spacing: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Greedy weighted farthest-point sampling.

    Args:
        points: ``(N, 3)`` candidates; spacing: ``(N,)`` relative edge length at each candidate;
        fixed: ``(M, 3)`` points already chosen (boundaries).
        n: number of candidates to choose.

    Returns:
        ``(n,)`` candidate indices; each new point maximises :math:`d(p) = \\min_j |p - q_j| / s(p)`.
        Only candidates within :math:`d_{max} \\max s` of a new point can get closer, so each step updates
        a k-d-tree ball instead of all candidates.
    """
    d = cKDTree(fixed).query(points)[0] / spacing if len(fixed) else np.full(len(points), np.inf)
    tree = cKDTree(points)
    s_max = float(spacing.max())
    chosen = np.empty(n, dtype=np.int64)
    for k in range(n):
        i = int(np.argmax(d))
        chosen[k] = i
        radius = d[i] * s_max if np.isfinite(d[i]) else np.inf
        near = np.asarray(tree.query_ball_point(points[i], radius)) if np.isfinite(radius) else np.arange(len(d))
        d[near] = np.minimum(d[near], np.linalg.norm(points[near] - points[i], axis=1) / spacing[near])
    return chosen


def stereographic(directions: np.ndarray) -> np.ndarray:
    """Stereographic projection ``(N, 2)`` of unit vectors from the bottom pole ``(0, -1, 0)``.

    :math:`(d_x, d_z) / (1 + d_y)`: circles on the sphere map to circles, so the planar Delaunay
    triangulation of the projected points is the spherical one (the bottom pole lies in the neck hole).
    """
    return directions[:, [0, 2]] / (1.0 + directions[:, 1:2])


def _points_in_polygon(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule: ``(N,)`` bool for 2D ``pts`` inside the closed polygon ``poly`` ``(M, 2)``."""
    x, y = pts[:, 0:1], pts[:, 1:2]
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    crosses = ((y0 > y) != (y1 > y)) & (x < x0 + (y - y0) * (x1 - x0) / np.where(y1 == y0, 1e-30, y1 - y0))
    return crosses.sum(axis=1) % 2 == 1


@dataclass
class HeadSurface:
    """The meshed head surface (without eyeballs).

    Attributes:
        vertices: ``(V, 3)`` metres.  faces: ``(F, 3)`` int64, outward (counter-clockwise seen from outside).
        eye_outline: ``(2, n_eye)`` vertex indices of the lid margins (row 0 left eye, 1 right eye),
            index 0 at the inner corner, then the upper lid towards the outer corner, then the lower lid.
        mouth_upper, mouth_lower: ``(n_mouth,)`` vertex indices of the mouth line from the right corner
            (-x) to the left one (+x) on the upper and lower lip; the corners are shared.
        neck_ring: ``(n_neck,)`` vertex indices of the open neck boundary.
    """

    vertices: np.ndarray
    faces: np.ndarray
    eye_outline: np.ndarray
    mouth_upper: np.ndarray
    mouth_lower: np.ndarray
    neck_ring: np.ndarray
    meta: dict = field(default_factory=dict)


class MeshingError(RuntimeError):
    """The triangulation did not reproduce a boundary polyline (retried with other samples)."""


def make_head_surface(n_vertices: int, anatomy: Anatomy, seed: int = 0, attempts: int = 6) -> HeadSurface:
    """Mesh the implicit head with exactly ``n_vertices`` vertices (eyeballs excluded).

    Boundaries are laid out first (eye openings, mouth line, neck cut) with spacings matched to the
    sampling density, the rest is chosen by :func:`farthest_point_sampling` among ~8x as many surface
    points, triangulated by :func:`stereographic` Delaunay; triangles inside the eye openings and below
    the neck ring are dropped and the mouth line is split into an upper and a lower lip.
    """
    if n_vertices < 400:
        raise ValueError(f"n_vertices must be >= 400 for a recognisable head, got {n_vertices}")
    for attempt in range(attempts):  # a rare sliver breaks a boundary: resample deterministically
        try:
            return _mesh_head(n_vertices, anatomy, np.random.default_rng([seed, attempt]))
        except MeshingError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _mesh_head(n_vertices: int, anatomy: Anatomy, rng: np.random.Generator) -> HeadSurface:
    """One attempt of :func:`make_head_surface` with the candidate samples drawn from ``rng``."""
    # edge length ~ s0 * face_density (measured relation of the weighted farthest-point sampling)
    s0 = 0.36 / np.sqrt(n_vertices)
    eye_len = _polyline_length(eye_opening_outline(0, 64, anatomy), closed=True)
    s_eye = s0 * face_density(eye_opening_outline(0, 16, anatomy), anatomy).mean()
    n_eye = 2 * int(np.clip(round(eye_len / s_eye / 2), 5, 40))
    s_mouth = s0 * face_density(mouth_line_points(9, anatomy), anatomy).mean()
    n_mouth = int(np.clip(round(2 * anatomy.mouth_half_width / s_mouth), 5, 41)) | 1
    neck_len = _polyline_length(neck_cut_points(64, anatomy), closed=True)
    n_neck = int(np.clip(round(neck_len / s0), 12, 120))
    eyes = [eye_opening_outline(s, n_eye, anatomy) for s in (0, 1)]
    mouth = mouth_line_points(n_mouth, anatomy)
    neck = neck_cut_points(n_neck, anatomy)
    fixed = np.concatenate(eyes + [mouth, neck])
    n_slit = n_mouth - 2  # interior mouth-line vertices get a lower-lip twin
    n_free = n_vertices - len(fixed) - n_slit
    if n_free < 100:
        raise ValueError(f"n_vertices={n_vertices} leaves too few free vertices")
    cand_dir = fibonacci_sphere(max(6 * n_vertices, 6000), rng)
    cand_dir = cand_dir[cand_dir[:, 1] > -0.995]
    cand = surface_points(cand_dir, anatomy)
    spacing = face_density(cand, anatomy)
    # keep candidates off the boundaries, so that boundary edges are Delaunay edges
    # (in 3D and in the projection plane, where the lip crease and the lid corners are foreshortened)
    clear = np.full(len(cand), np.inf)
    cand_uv = _lift(stereographic(_normalize(cand - STAR_CENTRE)))
    for line, closed in [(eyes[0], True), (eyes[1], True), (mouth, False)]:
        clear = np.minimum(clear, _distance_to_polyline(cand, line, closed) / (s0 * spacing))
        line_uv = _lift(stereographic(_normalize(line - STAR_CENTRE)))
        step = np.linalg.norm(np.diff(line_uv, axis=0), axis=1).mean()
        clear = np.minimum(clear, _distance_to_polyline(cand_uv, line_uv, closed) / step)
    keep = (clear > 0.7) & (cand[:, 1] > anatomy.neck_cut_y + 0.6 * s0) & ~inside_eye_opening(cand, anatomy)
    cand, spacing = cand[keep], spacing[keep]
    chosen = farthest_point_sampling(cand, n_free, spacing, fixed)
    pts = np.concatenate([fixed, cand[chosen]])
    dirs = _normalize(pts - STAR_CENTRE)
    uv = stereographic(dirs)
    tri = Delaunay(uv).simplices.astype(np.int64)
    # orient counter-clockwise in the plane
    a, b, c = uv[tri[:, 0]], uv[tri[:, 1]], uv[tri[:, 2]]
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    tri[cross < 0] = tri[cross < 0][:, [0, 2, 1]]
    centroid_uv = (a + b + c) / 3.0
    i_eye = np.arange(2 * n_eye).reshape(2, n_eye)
    i_mouth = 2 * n_eye + np.arange(n_mouth)
    i_neck = 2 * n_eye + n_mouth + np.arange(n_neck)
    drop = ~_points_in_polygon(centroid_uv, uv[i_neck])
    for s in (0, 1):
        drop |= _points_in_polygon(centroid_uv, uv[i_eye[s]])
    tri = tri[~drop]
    # the planar CCW orientation is inward or outward for all faces alike: make it outward
    v = pts
    n = np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]])
    if np.sum(np.einsum("ij,ij->i", n, v[tri].mean(1) - STAR_CENTRE)) < 0:
        tri = tri[:, [0, 2, 1]]
    # split the mouth line: faces below the line use twins of the interior mouth-line vertices
    interior = i_mouth[1:-1]
    twins = len(v) + np.arange(len(interior))
    v = np.concatenate([v, v[interior]])
    cen = v[tri].mean(1)
    below = cen[:, 1] < np.interp(cen[:, 0], v[i_mouth, 0], v[i_mouth, 1])
    remap = np.arange(len(v))
    remap[interior] = twins
    uses = np.isin(tri, interior).any(1) & below
    tri[uses] = remap[tri[uses]]
    mouth_lower = i_mouth.copy()
    mouth_lower[1:-1] = twins
    _check_boundary_edges(tri, [np.append(i_eye[0], i_eye[0][0]), np.append(i_eye[1], i_eye[1][0]),
                                np.append(i_neck, i_neck[0]), i_mouth, mouth_lower])
    # the projection-plane Delaunay is not Delaunay on the surface where rays graze it: flip, relax, flip
    movable = np.ones(len(v), dtype=bool)
    movable[: len(fixed)] = False
    movable[twins] = False
    tri = delaunay_flips(v, tri, anatomy)
    for _ in range(2):
        v = relax_tangentially(v, tri, movable, anatomy)
        tri = delaunay_flips(v, tri, anatomy)
    return HeadSurface(vertices=v, faces=tri, eye_outline=i_eye, mouth_upper=i_mouth, mouth_lower=mouth_lower,
                       neck_ring=i_neck, meta={"edge_scale": s0})


def _lift(uv: np.ndarray) -> np.ndarray:
    """2D points ``(N, 2)`` as 3D points ``(N, 3)`` with z = 0 (for the 3D polyline helpers)."""
    return np.concatenate([uv, np.zeros((len(uv), 1))], 1)


def _unit_face_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    return _normalize(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]))


def _inverted(v: np.ndarray, f: np.ndarray, anatomy: Anatomy) -> np.ndarray:
    """``(F,)`` bool: faces whose normal points against the implicit surface's normal at their centroid."""
    return np.einsum("ij,ij->i", _unit_face_normals(v, f), sdf_normals(v[f].mean(1), anatomy)) < 0


def delaunay_flips(vertices: np.ndarray, faces: np.ndarray, anatomy: Anatomy,
                   max_passes: int = 20) -> np.ndarray:
    """Flip interior edges towards a surface Delaunay triangulation without folds.

    An edge shared by triangles :math:`(a, b, c)` and :math:`(b, a, d)` is flipped to :math:`(c, d)` when
    the angles opposite it sum to more than :math:`\\pi` or one of the triangles is folded (its normal
    against the implicit surface's), provided both new triangles face along the surface normal,
    :math:`(c, d)` is not an edge yet and no vertex drops to degree 3. Boundary edges have one triangle
    and never flip, so the holes, the mouth slit and the neck stay.

    Returns:
        ``(F, 3)`` faces, same orientation convention.
    """
    v = vertices
    f = faces.copy()
    n_v = len(v)
    for _ in range(max_passes):
        e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        opp = np.concatenate([f[:, 2], f[:, 0], f[:, 1]])
        fid = np.tile(np.arange(len(f)), 3)
        key = e[:, 0] * n_v + e[:, 1]
        twin_key = e[:, 1] * n_v + e[:, 0]
        order = np.argsort(key)
        pos = np.minimum(np.searchsorted(key[order], twin_key), len(key) - 1)
        has_twin = key[order][pos] == twin_key
        twin = np.where(has_twin, order[pos], -1)
        sel = np.flatnonzero(has_twin & (e[:, 0] < e[:, 1]))
        a, b = e[sel, 0], e[sel, 1]
        c, d = opp[sel], opp[twin[sel]]

        def angle(p, q, r):  # angle at p in triangle p q r
            u, w = v[q] - v[p], v[r] - v[p]
            cos = np.einsum("ij,ij->i", u, w) / (np.linalg.norm(u, axis=1) * np.linalg.norm(w, axis=1))
            return np.arccos(np.clip(cos, -1, 1))

        excess = angle(c, a, b) + angle(d, a, b) - np.pi
        folded = _inverted(v, f, anatomy)
        bad_old = folded[fid[sel]] | folded[fid[twin[sel]]]
        cand = np.flatnonzero((excess > 1e-6) | bad_old)
        if not len(cand):
            break
        new1 = np.stack([c[cand], a[cand], d[cand]], 1)
        new2 = np.stack([d[cand], b[cand], c[cand]], 1)
        ok = ~_inverted(v, new1, anatomy) & ~_inverted(v, new2, anatomy)
        cand = cand[ok]
        cand = cand[np.lexsort((-excess[cand], ~bad_old[cand]))]  # folds first, then the worst angles
        degree = np.bincount(e[:, 0], minlength=n_v)
        edges = set(zip(*np.sort(e, 1).T.tolist()))
        touched = np.zeros(len(f), dtype=bool)
        flipped = 0
        for k in cand:
            t1, t2 = fid[sel[k]], fid[twin[sel[k]]]
            if touched[t1] or touched[t2]:
                continue
            ak, bk, ck, dk = int(a[k]), int(b[k]), int(c[k]), int(d[k])
            if (min(ck, dk), max(ck, dk)) in edges or degree[ak] <= 3 or degree[bk] <= 3:
                continue
            f[t1], f[t2] = (ck, ak, dk), (dk, bk, ck)
            touched[[t1, t2]] = True
            edges.discard((min(ak, bk), max(ak, bk)))
            edges.add((min(ck, dk), max(ck, dk)))
            degree[[ak, bk]] -= 1
            degree[[ck, dk]] += 1
            flipped += 1
        if not flipped:
            break
    return f


def relax_tangentially(vertices: np.ndarray, faces: np.ndarray, movable: np.ndarray, anatomy: Anatomy,
                       strength: float = 0.5) -> np.ndarray:
    """One step of tangential umbrella smoothing, then back onto the implicit surface.

    :math:`p \\leftarrow p + \\lambda (I - n n^T)(\\bar p_{N(p)} - p)` for ``movable`` vertices, then each
    moved point is re-cast along its direction from :data:`STAR_CENTRE`. Evens out triangle shapes
    without changing the surface.
    """
    v = vertices.copy()
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    n_v = len(v)
    count = np.bincount(e[:, 0], minlength=n_v).astype(float)
    mean = np.stack([np.bincount(e[:, 0], weights=v[e[:, 1], k], minlength=n_v) for k in range(3)], 1)
    mean /= np.maximum(count, 1)[:, None]
    idx = np.flatnonzero(movable & (count > 0))
    nrm = sdf_normals(v[idx], anatomy)
    delta = mean[idx] - v[idx]
    delta -= np.einsum("ij,ij->i", delta, nrm)[:, None] * nrm
    moved = v[idx] + strength * delta
    dirs = _normalize(moved - STAR_CENTRE)
    v[idx] = STAR_CENTRE + cast_rays(dirs, anatomy)[:, None] * dirs
    before = _inverted(vertices, faces, anatomy)
    for _ in range(5):  # undo moves that fold a triangle
        worse = _inverted(v, faces, anatomy) & ~before
        if not worse.any():
            break
        back = np.unique(faces[worse])
        v[back] = vertices[back]
    return v


def _polyline_length(line: np.ndarray, closed: bool) -> float:
    seg = np.diff(np.concatenate([line, line[:1]]) if closed else line, axis=0)
    return float(np.linalg.norm(seg, axis=1).sum())


def _distance_to_polyline(p: np.ndarray, line: np.ndarray, closed: bool, upsample: int = 12) -> np.ndarray:
    """``(N,)`` distance from points to a polyline (densely resampled)."""
    pts = np.concatenate([line, line[:1]]) if closed else line
    t = np.linspace(0, 1, upsample, endpoint=False)[None, :, None]
    dense = (pts[:-1, None] * (1 - t) + pts[1:, None] * t).reshape(-1, 3)
    return cKDTree(np.concatenate([dense, pts[-1:]])).query(p)[0]


def _check_boundary_edges(faces: np.ndarray, chains: list) -> None:
    """Raise if an expected boundary polyline is not made of mesh edges (a meshing failure)."""
    edges = {tuple(sorted(e)) for e in np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])}
    for chain in chains:
        missing = [(int(a), int(b)) for a, b in zip(chain[:-1], chain[1:]) if tuple(sorted((a, b))) not in edges]
        if missing:
            raise MeshingError(f"meshing failed: boundary edges {missing[:4]} missing (of {len(chain) - 1})")


# --------------------------------------------------------------------------------------------------
# Eyeballs
# --------------------------------------------------------------------------------------------------


def make_eyeball(centre, radius: float, n_rings: int, n_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Latitude/longitude sphere with its poles on the gaze axis (+z); outward faces.

    Returns:
        vertices ``(2 + n_rings * n_segments, 3)`` (vertex 0 = front pole = pupil centre, 1 = back pole),
        faces ``(2 * n_segments * n_rings, 3)`` int64.
    """
    theta = np.linspace(0, np.pi, n_rings + 2)[1:-1]  # from the front pole
    phi = np.linspace(0, 2 * np.pi, n_segments, endpoint=False)
    t, ph = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.cos(ph), np.sin(t) * np.sin(ph), np.cos(t)], -1).reshape(-1, 3)
    v = np.concatenate([[[0, 0, 1.0], [0, 0, -1.0]], ring]) * radius + np.asarray(centre)
    idx = 2 + np.arange(n_rings * n_segments).reshape(n_rings, n_segments)
    nxt = np.roll(idx, -1, axis=1)
    faces = [np.stack([np.zeros(n_segments, int), idx[0], nxt[0]], 1)]
    for r in range(n_rings - 1):
        faces.append(np.stack([idx[r], idx[r + 1], nxt[r + 1]], 1))
        faces.append(np.stack([idx[r], nxt[r + 1], nxt[r]], 1))
    faces.append(np.stack([np.ones(n_segments, int), nxt[-1], idx[-1]], 1))
    f = np.concatenate(faces).astype(np.int64)
    # orientation check: outward
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    if np.sum(np.einsum("ij,ij->i", n, v[f].mean(1) - centre)) < 0:
        f = f[:, [0, 2, 1]]
    return v, f
