"""The synthetic FLAME-format model: the course's embedded default, written in the official file formats.

Real FLAME needs a licence, so the course ships a generator: a human head at real size (see
:mod:`facecourse.flame.synthetic_geometry` for the surface), with the arrays FLAME has —

* ``v_template`` :math:`\\bar T \\in \\mathbb R^{V\\times 3}` (metres) and ``f`` (triangles),
* ``shapedirs`` :math:`S \\in \\mathbb R^{V\\times 3\\times 400}`: 300 identity then 100 expression
  directions; a head is :math:`T(\\beta, \\psi) = \\bar T + \\sum_k \\beta_k S_k + \\sum_l \\psi_l E_l`.
  Identity directions are plausible variations (head size, width, length, face height, jaw, nose, cheek
  bones, brows, chin, ...) scaled so that a unit coefficient is one standard deviation and **sorted by
  decreasing norm** like a PCA basis; expression directions are mouth open, smile, brows up, eye closure,
  pucker, .... Directions beyond the defined ones are zero.
* ``posedirs`` (V, 3, 36): pose correctives :math:`P_n` driven by :math:`\\operatorname{vec}(R_j - I)` of
  the neck, jaw and eye joints (cheeks thin when the jaw opens, upper lids follow the gaze, ...).
* ``J_regressor`` (5, V) sparse, rows convex weights: joints = :math:`\\mathcal J\\, T`;
  ``kintree_table`` parents [-1, 0, 1, 1, 1] for [global, neck, jaw, left eye, right eye];
  ``weights`` (V, 5) skinning weights, rows summing to 1 (eyeballs rigid on their eye joint, lower lip,
  chin and jaw on the jaw joint with a smooth fall-off over the cheeks, head on the neck joint).
* landmark embeddings (DECA and RingNet formats): 51 static iBUG points and, for each of the 79 yaw rows
  (:func:`facecourse.flame.landmarks.yaw_for_contour_row`), 17 jaw-line points on the silhouette of the
  head turned by that yaw; ``FLAME_masks.pkl`` vertex regions.

Entry point: :func:`build_synthetic_flame`. Everything else is a pure function returning arrays.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse
from scipy.optimize import nnls

from facecourse.data.atomic import staging_dir
import facecourse.flame.io as flame_io
import facecourse.flame.landmarks as flame_landmarks
import facecourse.flame.synthetic_geometry as geo
from facecourse.flame.io import (DECA_EMBEDDING, EXPRESSION_SPACE_DIM, MASK_NAMES, MASKS_FILE, MODEL_FILE,
                                 RINGNET_DYNAMIC, RINGNET_STATIC, SHAPE_SPACE_DIM, save_deca_landmark_embedding,
                                 save_masks, save_model, save_ringnet_landmark_embedding)
from facecourse.flame.landmarks import N_CONTOUR_ROWS, yaw_for_contour_row
from facecourse.flame.synthetic_geometry import Anatomy, gauss
from facecourse.mesh import geometry as mesh_geometry
from facecourse.mesh.geometry import barycentric_coordinates

#: Parent of each joint of :data:`facecourse.flame.io.JOINT_NAMES` (-1 = root).
PARENTS = (-1, 0, 1, 1, 1)
#: Vertex budget of each size: head surface vertices and eyeball (rings, segments); "full" totals FLAME's 5023.
#: Its keys are the sizes of the synthetic model (:data:`SIZES`, re-exported by :mod:`facecourse.flame.paths`).
VERTEX_BUDGETS = {
    "small": {"head": 1500, "eye_rings": 9, "eye_segments": 14},
    "full": {"head": 5023 - 2 * (2 + 14 * 20), "eye_rings": 14, "eye_segments": 20},
}
#: Sizes of the synthetic model: ``"small"`` (CI and notebooks) and ``"full"`` (FLAME's 5023 vertices).
SIZES = tuple(VERTEX_BUDGETS)


def check_size(size: str) -> str:
    """``size`` unchanged when it is one of :data:`SIZES`; otherwise a ``ValueError`` naming it."""
    if size not in VERTEX_BUDGETS:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    return size
#: Number of identity directions the synthetic model defines (the rest of the 300 are zero).
N_SHAPE_DEFINED = 100


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _both(p, centre, sigma) -> np.ndarray:
    """Sum of a Gaussian and its mirror image in x."""
    c = np.asarray(centre, dtype=np.float64)
    return gauss(p, c, sigma) + gauss(p, c * np.array([-1.0, 1.0, 1.0]), sigma)


# --------------------------------------------------------------------------------------------------
# Mesh
# --------------------------------------------------------------------------------------------------


@dataclass
class HeadMesh:
    """Template mesh of the synthetic head.

    Attributes:
        vertices: ``(V, 3)`` metres: head surface first, then the left and the right eyeball.
        faces: ``(F, 3)`` int64, outward.
        normals: ``(V, 3)`` smooth unit normals (implicit-surface gradient; sphere normals on eyeballs).
        n_head: number of head-surface vertices.
        left_eyeball, right_eyeball: ``(n_eye,)`` vertex indices (left = +x = subject's left).
        eye_outline: ``(2, n)`` lid-margin vertices, row 0 left eye; index 0 inner corner, then upper lid.
        mouth_upper, mouth_lower: mouth-line vertices on the upper / lower lip, right corner (-x) first.
        neck_ring: vertices of the open neck boundary.
    """

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    n_head: int
    left_eyeball: np.ndarray
    right_eyeball: np.ndarray
    eye_outline: np.ndarray
    mouth_upper: np.ndarray
    mouth_lower: np.ndarray
    neck_ring: np.ndarray

    @property
    def eyeballs(self) -> tuple[np.ndarray, np.ndarray]:
        return self.left_eyeball, self.right_eyeball


def make_head_mesh(size: str = "small", seed: int = 0, anatomy: Anatomy = Anatomy()) -> HeadMesh:
    """Template mesh: one connected head surface (open at the neck, slit mouth, eye holes) + two eyeballs."""
    cfg = VERTEX_BUDGETS[check_size(size)]
    head = geo.make_head_surface(cfg["head"], anatomy, seed)
    verts, faces, normals = [head.vertices], [head.faces], [geo.sdf_normals(head.vertices, anatomy)]
    offset, eyes = len(head.vertices), []
    for e in geo.eye_centres(anatomy):
        v, f = geo.make_eyeball(e, anatomy.eye_radius, cfg["eye_rings"], cfg["eye_segments"])
        verts.append(v)
        faces.append(f + offset)
        normals.append((v - e) / anatomy.eye_radius)
        eyes.append(offset + np.arange(len(v)))
        offset += len(v)
    return HeadMesh(vertices=np.concatenate(verts), faces=np.concatenate(faces), normals=np.concatenate(normals),
                    n_head=len(head.vertices), left_eyeball=eyes[0], right_eyeball=eyes[1],
                    eye_outline=head.eye_outline, mouth_upper=head.mouth_upper, mouth_lower=head.mouth_lower,
                    neck_ring=head.neck_ring)


# --------------------------------------------------------------------------------------------------
# Regions (soft, per vertex) shared by skinning, blend shapes and masks
# --------------------------------------------------------------------------------------------------


def jaw_line_y(z: np.ndarray) -> np.ndarray:
    """Height (metres) of the lower border of the jaw / the top of the neck at depth ``z`` (profile curve).

    From under the chin (``z >= 0.06``: -0.118) back to the jaw angle (``z = -0.005``: -0.09) and the
    nape (``z <= -0.08``: -0.072).
    """
    return np.interp(z, [-0.08, -0.005, 0.06], [-0.072, -0.09, -0.118])


def mouth_plane_y(p: np.ndarray, mesh: HeadMesh, anatomy: Anatomy) -> np.ndarray:
    """Height of the line separating the lower (jaw) from the upper face at each point ``(N,)``.

    Between the mouth corners it is the mouth line; beyond them the plane through the jaw joint's x axis
    and the mouth corner.
    """
    mv = mesh.vertices[mesh.mouth_upper]
    j = np.asarray(anatomy.jaw_joint)
    corner = mv[-1]
    slope = (corner[1] - j[1]) / (corner[2] - j[2])
    lateral = j[1] + (p[:, 2] - j[2]) * slope
    inside = np.abs(p[:, 0]) <= corner[0]
    return np.where(inside, np.interp(p[:, 0], mv[:, 0], mv[:, 1]), lateral)


def jaw_weights(mesh: HeadMesh, anatomy: Anatomy) -> np.ndarray:
    """Skinning weight ``(V,)`` of the jaw joint.

    1 below the mouth line between the corners (the lower-lip copies of the mouth-line vertices are 1,
    the upper-lip copies 0), a smooth fall-off over the cheeks widening laterally, fading to 0 behind the
    jaw joint, towards the ears and below the jaw line (neck). Eyeballs 0.
    """
    p = mesh.vertices
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    j = np.asarray(anatomy.jaw_joint)
    below = mouth_plane_y(p, mesh, anatomy) - y
    band = 0.002 + 0.03 * _smoothstep((np.abs(x) - anatomy.mouth_half_width + 0.003) / 0.025)
    w = _smoothstep(0.5 + below / band)
    w *= _smoothstep((z - (j[2] - 0.012)) / 0.022)  # nothing behind the joint
    w *= _smoothstep((y - jaw_line_y(z) + 0.03) / 0.03)  # fades into the neck below the jaw line
    for side in (0, 1):
        w *= _smoothstep((np.linalg.norm(p - geo.ear_centre(side, anatomy), axis=1) - 0.026) / 0.012)
    w[mesh.mouth_upper[1:-1]] = 0.0
    w[mesh.mouth_lower[1:-1]] = 1.0
    w[mesh.n_head:] = 0.0
    return w


def root_weights(mesh: HeadMesh, anatomy: Anatomy) -> np.ndarray:
    """Skinning weight ``(V,)`` of the global (root) joint: 1 at the neck cut, 0 from 6 cm above it."""
    w = _smoothstep((anatomy.neck_cut_y + 0.06 - mesh.vertices[:, 1]) / 0.06)
    w[mesh.n_head:] = 0.0
    return w


def make_skinning(mesh: HeadMesh, anatomy: Anatomy = Anatomy()) -> np.ndarray:
    """Linear-blend-skinning weights ``(V, 5)`` for [global, neck, jaw, left eye, right eye]; rows sum to 1.

    Eyeballs follow their eye joint only; the lower face the jaw (:func:`jaw_weights`); the neck blends
    from the root (at the cut) to the neck joint, which carries the rest of the head.
    """
    n = len(mesh.vertices)
    w = np.zeros((n, 5))
    w[:, 0] = root_weights(mesh, anatomy)
    w[:, 2] = jaw_weights(mesh, anatomy) * (1.0 - w[:, 0])
    w[:, 1] = 1.0 - w[:, 0] - w[:, 2]
    w[mesh.n_head:] = 0.0
    w[mesh.left_eyeball, 3] = 1.0
    w[mesh.right_eyeball, 4] = 1.0
    return w


def _convex_weights(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to 1 with :math:`\\sum_i w_i p_i \\approx` ``target`` (small, spread)."""
    n = len(points)
    big = 1e3
    a = np.concatenate([points.T * big, np.ones((1, n)) * big, 1e-2 * np.eye(n)])
    b = np.concatenate([np.asarray(target) * big, [big], np.zeros(n)])
    w, _ = nnls(a, b, maxiter=50 * n)
    return w / w.sum()


def make_joint_regressor(mesh: HeadMesh, anatomy: Anatomy = Anatomy()) -> scipy.sparse.csc_matrix:
    """Joint regressor ``(5, V)`` (sparse, non-negative rows summing to 1); joints = regressor @ vertices.

    Global: the mean of the neck-cut ring. Neck: convex weights on the neck/skull-base band around
    ``anatomy.neck_joint``. Jaw: convex weights on skin patches in front of both ears around
    ``anatomy.jaw_joint`` (the temporomandibular joints). Eyes: the mean of each eyeball's vertices, i.e.
    its centre, so eye rotations turn the eyeballs in place.
    """
    v = mesh.vertices
    head = np.arange(mesh.n_head)
    rows = []
    ring = mesh.neck_ring
    rows.append((ring, np.full(len(ring), 1.0 / len(ring))))
    nj = np.asarray(anatomy.neck_joint)
    ears = np.min([np.linalg.norm(v[head] - geo.ear_centre(s, anatomy), axis=1) for s in (0, 1)], axis=0)
    band = head[(np.abs(v[head, 1] - nj[1]) < 0.015) & (v[head, 2] < 0.02) & (ears > 0.04)]
    rows.append((band, _convex_weights(v[band], nj)))
    jj = np.asarray(anatomy.jaw_joint)
    tmj = [np.linalg.norm(v[head] - (jj + np.array([s * 0.068, 0.0, 0.006])), axis=1) for s in (1.0, -1.0)]
    patch = head[(np.minimum(*tmj) < 0.026) & (ears > 0.024)]
    rows.append((patch, _convex_weights(v[patch], jj)))
    for eye in mesh.eyeballs:
        rows.append((eye, np.full(len(eye), 1.0 / len(eye))))
    r = np.concatenate([np.full(len(i), k) for k, (i, _) in enumerate(rows)])
    c = np.concatenate([i for i, _ in rows])
    d = np.concatenate([w for _, w in rows])
    return scipy.sparse.csc_matrix((d, (r, c)), shape=(5, len(v)))


# --------------------------------------------------------------------------------------------------
# Blend shapes
# --------------------------------------------------------------------------------------------------


def _rigid_eyes(fields: np.ndarray, field_at_eyes: np.ndarray, mesh: HeadMesh, anatomy: Anatomy) -> np.ndarray:
    """Make displacement fields ``(V, 3, K)`` rigid on the eyeballs and near-rigid on the lids around them.

    ``field_at_eyes`` ``(2, 3, K)`` are the fields at the eyeball centres: eyeballs translate by them, lid
    vertices blend towards them (Gaussian, 12 mm), so no identity pushes an eyeball through its lids.
    """
    out = fields.copy()
    p = mesh.vertices
    for k, (e, idx) in enumerate(zip(geo.eye_centres(anatomy), mesh.eyeballs)):
        m = np.exp(-0.5 * (np.linalg.norm(p - e, axis=1) / 0.012) ** 2)[:, None, None]
        m[mesh.n_head:] = 0.0
        out = (1.0 - m) * out + m * field_at_eyes[k][None]
        out[idx] = field_at_eyes[k][None]
    return out


def _shape_fields(p: np.ndarray, n: np.ndarray, a: Anatomy) -> list[tuple[str, np.ndarray]]:
    """Named identity displacement fields at points ``p`` with normals ``n``: ``[(name, (N, 3))]`` in metres
    for one standard deviation."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    zero = np.zeros_like(x)
    sx = np.sign(x)
    face = _smoothstep((z - 0.0) / 0.05)  # the front of the head
    lower = _smoothstep((0.0 - y) / 0.04) * _smoothstep((y - a.neck_cut_y - 0.05) / 0.04)  # not the neck bottom
    neck = _smoothstep((jaw_line_y(z) - y) / 0.03)
    nose_root = np.array([0.0, 0.004, 0.08])
    nose = _smoothstep(-geo.nose_sdf(p, a) / 0.004 + 0.5) * _smoothstep((0.006 - y) / 0.004)
    lips = _smoothstep(-geo.lips_sdf(p, a) / 0.003 + 0.5)
    mouth = gauss(p, (0.0, a.mouth_y, 0.08), (0.03, 0.012, 0.02))
    ears = [_smoothstep(-geo.ear_sdf(p, s, a) / 0.004 + 0.5) for s in (0, 1)]
    out = [
        ("head size", 0.03 * (p - np.array([0.0, -0.02, 0.0])) * (1 - 0.7 * neck)[:, None]),
        ("head width", np.stack([0.045 * x * (1 - neck), zero, zero], 1)),
        ("head length", np.stack([zero, 0.01 * np.clip(y, 0, None), 0.045 * np.minimum(z + 0.01, 0.0)], 1)
         * (1 - neck)[:, None]),
        ("face height", np.stack([zero, 0.05 * np.minimum(y + 0.01, 0.0) * face * (1 - neck), zero], 1)),
        ("jaw width", 0.0032 * np.stack([sx, zero, zero], 1)
         * _both(p, (0.047, -0.07, 0.0), (0.015, 0.025, 0.035))[:, None]),
        ("nose size", 0.09 * (p - nose_root) * nose[:, None]),
        ("cheek bones", 0.0026 * n * _both(p, (0.048, -0.015, 0.055), (0.013, 0.012, 0.016))[:, None]),
        ("brow ridge", 0.0022 * n * _both(p, (0.028, 0.018, 0.08), (0.02, 0.008, 0.015))[:, None]),
        ("chin", np.stack([zero, -0.001 * np.ones_like(x), 0.003 * np.ones_like(x)], 1)
         * gauss(p, (0.0, -0.1, 0.07), (0.018, 0.014, 0.03))[:, None]),
        ("forehead slope", np.stack([zero, zero, -0.05 * np.clip(y - 0.02, 0, 0.06)], 1) * face[:, None]),
        ("face fullness", 0.0022 * n * (_both(p, (0.042, -0.05, 0.05), (0.018, 0.022, 0.025))
                                         + gauss(p, (0.0, -0.12, 0.03), (0.03, 0.012, 0.025)))[:, None]),
        ("eye spacing", 0.0014 * np.stack([sx, zero, zero], 1)
         * _both(p, (0.032, 0.0, 0.066), (0.012, 0.012, 0.02))[:, None]),
        ("lip fullness", 0.0011 * n * lips[:, None]),
        ("nose width", np.stack([0.1 * x, zero, zero], 1) * (nose * _smoothstep((-0.015 - y) / 0.015))[:, None]),
        ("ear size", sum(0.09 * (p - geo.ear_centre(s, a) + np.array([(0.008 if s == 1 else -0.008), 0, 0]))
                         * ears[s][:, None] for s in (0, 1))),
        ("neck thickness", 0.004 * np.stack([x / 0.05, zero, (z + 0.015) / 0.055], 1)
         * _smoothstep((-0.1 - y) / 0.04)[:, None]),
        ("crown height", np.stack([zero, 0.004 * _smoothstep((y - 0.03) / 0.08), zero], 1)),
        ("nose bridge", np.stack([zero, zero, 0.0016 * np.ones_like(x)], 1)
         * (nose * gauss(p, (0.0, -0.012, 0.09), (0.01, 0.015, 0.03)))[:, None]),
        ("mouth width", np.stack([0.07 * x * mouth, zero, zero], 1)),
        ("chin height", np.stack([zero, -0.0025 * np.ones_like(x), zero], 1)
         * (_smoothstep((a.mouth_y - 0.01 - y) / 0.02) * face * (1 - neck))[:, None]),
        ("lower face asymmetry", np.stack([0.0012 * lower * face, zero, zero], 1)),
    ]
    return out


def _random_smooth_fields(p: np.ndarray, n: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``(N, 3, k)`` random smooth identity fields (tails of the spectrum): each a sum of 4 Gaussian
    bumps of radius 15-40 mm centred on the surface, moving mostly along the normal, mirror-symmetric
    with probability 0.7; unit RMS."""
    head = p[np.linalg.norm(n, axis=1) > 0]
    out = np.zeros((len(p), 3, k))
    for i in range(k):
        field = np.zeros((len(p), 3))
        sym = rng.random() < 0.7
        for _ in range(4):
            c = head[rng.integers(len(head))]
            sigma = rng.uniform(0.015, 0.04)
            amp = rng.normal() * n + 0.3 * rng.normal(size=3)
            g = np.exp(-0.5 * (np.linalg.norm(p - c, axis=1) / sigma) ** 2)[:, None]
            field += amp * g
            if sym:
                cm = c * np.array([-1.0, 1.0, 1.0])
                gm = np.exp(-0.5 * (np.linalg.norm(p - cm, axis=1) / sigma) ** 2)[:, None]
                field += amp * gm
        out[:, :, i] = field / np.sqrt((field ** 2).sum(1).mean())
    return out


def make_shape_basis(mesh: HeadMesh, anatomy: Anatomy = Anatomy(), seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Identity directions ``(V, 3, 300)`` (metres per standard deviation) and their names.

    The named fields of :func:`_shape_fields` (eyeballs rigid) are sorted by decreasing Frobenius norm,
    as a PCA orders by variance; then seeded random smooth fields continue the spectrum with geometrically
    decreasing norms up to :data:`N_SHAPE_DEFINED`; the rest are zero.
    """
    named = _shape_fields(mesh.vertices, mesh.normals, anatomy)
    eyes = geo.eye_centres(anatomy)
    at_eyes = _shape_fields(eyes, np.tile([0.0, 0.0, 1.0], (2, 1)), anatomy)
    fields = np.stack([f for _, f in named], -1)
    fields = _rigid_eyes(fields, np.stack([f for _, f in at_eyes], -1), mesh, anatomy)
    norms = np.linalg.norm(fields.reshape(-1, fields.shape[-1]), axis=0)
    order = np.argsort(-norms, kind="stable")
    fields, names = fields[..., order], [named[i][0] for i in order]
    rng = np.random.default_rng(seed)
    n_rand = N_SHAPE_DEFINED - fields.shape[-1]
    rand = _random_smooth_fields(mesh.vertices, np.where(np.arange(len(mesh.vertices))[:, None] < mesh.n_head,
                                                         mesh.normals, 0.0), n_rand, rng)
    rand_eyes = np.stack([rand[idx].mean(0) for idx in mesh.eyeballs])
    rand = _rigid_eyes(rand, rand_eyes, mesh, anatomy)
    rms = np.sqrt((rand ** 2).sum(1).mean(0))
    target = norms[order][-1] * 0.93 ** np.arange(1, n_rand + 1) / np.sqrt(len(mesh.vertices))
    rand = rand / rms * target
    out = np.zeros((len(mesh.vertices), 3, SHAPE_SPACE_DIM))
    out[..., :N_SHAPE_DEFINED] = np.concatenate([fields, rand], -1)
    return out, names + [f"random {i}" for i in range(n_rand)]


def _rotation_x(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def lid_weights(mesh: HeadMesh, anatomy: Anatomy, upper: bool) -> np.ndarray:
    """Per-vertex weight ``(V,)`` of the upper (or lower) eyelids: 1 at the margin, 0 at the brow / cheek.

    Also returns 0 near the eye corners, which stay in place when the lids close.
    """
    p = mesh.vertices
    w = np.zeros(len(p))
    pc = np.deg2rad(anatomy.eye_corner_deg)
    for side in (0, 1):
        psi, eps, dist = geo.eye_local_angles(p, side, anatomy)
        low, up = geo.eye_opening_angles(psi, anatomy)
        if upper:
            t = 1.0 - np.clip(eps - up, 0, None) / np.deg2rad(38.0)
            side_w = _smoothstep(t) * (eps >= up - np.deg2rad(2.0))  # margin vertices sit on the almond
        else:
            t = 1.0 - np.clip(low - eps, 0, None) / np.deg2rad(30.0)
            side_w = _smoothstep(t) * (eps <= low + np.deg2rad(2.0))
        side_w *= _smoothstep((1.0 - np.abs(psi) / (pc * 1.05)) / 0.5)
        side_w *= _smoothstep((anatomy.eye_radius + 0.012 - dist) / 0.006)
        w = np.maximum(w, side_w)
    w[mesh.n_head:] = 0.0
    return w


def _lid_closure(mesh: HeadMesh, anatomy: Anatomy, fraction_upper: float, fraction_lower: float,
                 sides=(0, 1)) -> np.ndarray:
    """Displacement ``(V, 3)`` that rotates the lids about the eye centres until they meet (fractions of
    the opening covered by the upper / lower lid); the chord of the rotation, a linear blend shape."""
    p = mesh.vertices
    d = np.zeros_like(p)
    wu, wl = lid_weights(mesh, anatomy, True), lid_weights(mesh, anatomy, False)
    for side in sides:
        e = geo.eye_centres(anatomy)[side]
        psi = geo.eye_local_angles(p, side, anatomy)[0]
        low, up = geo.eye_opening_angles(psi, anatomy)
        near = np.linalg.norm(p - e, axis=1) < anatomy.eye_radius + 0.02
        for w, angle in ((wu, fraction_upper * (up - low)), (wl, -fraction_lower * (up - low))):
            a = np.where(near, w * angle, 0.0)
            rotated = np.einsum("nij,nj->ni", _rotation_x(a), p - e) + e
            d += rotated - p
    return d


def _expression_fields(mesh: HeadMesh, anatomy: Anatomy) -> list[tuple[str, np.ndarray]]:
    """Named expression displacement fields ``[(name, (V, 3))]`` (metres for a unit coefficient)."""
    a = anatomy
    p, n = mesh.vertices, mesh.normals
    x = p[:, 0]
    zero, one = np.zeros_like(x), np.ones_like(x)
    sx = np.sign(x)
    jaw = jaw_weights(mesh, anatomy)
    j = np.asarray(a.jaw_joint)
    corners = _both(p, (a.mouth_half_width, a.mouth_y, 0.075), (0.01, 0.009, 0.02))
    lips = _smoothstep(-geo.lips_sdf(p, a) / 0.003 + 0.5)
    mouth = gauss(p, (0.0, a.mouth_y, 0.08), (0.022, 0.012, 0.02))
    brows = _both(p, (0.03, 0.022, 0.078), (0.02, 0.012, 0.02))
    inner_brows = _both(p, (0.014, 0.018, 0.082), (0.009, 0.009, 0.02))
    cheeks = _both(p, (0.04, -0.045, 0.055), (0.016, 0.016, 0.02))
    lower_lid = lid_weights(mesh, anatomy, False)
    head = (np.arange(len(p)) < mesh.n_head).astype(float)
    out = [
        ("mouth open", jaw[:, None] * (np.einsum("ij,nj->ni", _rotation_x(np.array(0.075)), p - j) + j - p)),
        ("smile", np.stack([0.003 * sx, 0.0032 * one, -0.0022 * one], 1) * corners[:, None]
         + np.stack([zero, 0.0015 * one, 0.0008 * one], 1) * cheeks[:, None]
         + np.stack([zero, 0.0008 * one, zero], 1) * lower_lid[:, None]),
        ("brows up", np.stack([zero, 0.0035 * one, 0.0004 * one], 1) * brows[:, None]
         + np.stack([zero, 0.0015 * one, zero], 1) * gauss(p, (0.0, 0.05, 0.08), (0.05, 0.02, 0.03))[:, None]),
        ("eye closure", _lid_closure(mesh, anatomy, 0.45, 0.15)),
        ("pucker", np.stack([-0.0045 * x / a.mouth_half_width, zero, 0.0035 * one], 1) * (mouth * lips)[:, None]
         + np.stack([-0.002 * sx, zero, 0.001 * one], 1) * corners[:, None]),
        ("frown", np.stack([-0.0015 * sx, -0.0025 * one, 0.0008 * one], 1) * inner_brows[:, None]),
        ("mouth corners down", np.stack([0.0008 * sx, -0.003 * one, zero], 1) * corners[:, None]),
        ("lip stretch", np.stack([0.0035 * sx, -0.0005 * one, -0.0015 * one], 1) * corners[:, None]),
        ("cheek puff", 0.0035 * n * (cheeks * head)[:, None]),
        ("wink left", _lid_closure(mesh, anatomy, 0.45, 0.15, sides=(0,))
         - 0.3 * _lid_closure(mesh, anatomy, 0.45, 0.15, sides=(1,))),
        ("upper lip raise", np.stack([zero, 0.0025 * one, 0.0005 * one], 1)
         * (gauss(p, (0.0, a.mouth_y + 0.01, 0.085), (0.016, 0.008, 0.02)) * (1 - jaw))[:, None]
         + np.stack([zero, 0.0012 * one, zero], 1) * _both(p, (0.012, -0.036, 0.09), (0.008, 0.008, 0.02))[:, None]),
        ("lips pressed", np.stack([zero, -0.0012 * (1 - 2 * jaw), -0.0012 * one], 1) * (lips * mouth)[:, None]),
        ("mouth sideways", np.stack([0.003 * one, zero, zero], 1) * (mouth * lips + 0.5 * corners)[:, None]),
        ("jaw forward", np.stack([zero, zero, 0.0015 * one], 1) * jaw[:, None]),
        ("brows squeeze", np.stack([-0.002 * sx, zero, 0.0005 * one], 1) * inner_brows[:, None]),
        ("nose wrinkle", np.stack([zero, 0.0015 * one, zero], 1)
         * gauss(p, (0.0, -0.015, 0.09), (0.02, 0.02, 0.03))[:, None]),
    ]
    for _, f in out:
        f[mesh.n_head:] = 0.0
    return out


def make_expression_basis(mesh: HeadMesh, anatomy: Anatomy = Anatomy()) -> tuple[np.ndarray, list[str]]:
    """Expression directions ``(V, 3, 100)`` (metres per unit coefficient) and their names.

    Named expressions (mouth open, smile, brows up, eye closure, pucker, ...) sorted by decreasing norm;
    the remaining directions are zero. Eyeballs never move (the eye joints turn them).
    """
    named = _expression_fields(mesh, anatomy)
    fields = np.stack([f for _, f in named], -1)
    order = np.argsort(-np.linalg.norm(fields.reshape(-1, fields.shape[-1]), axis=0), kind="stable")
    out = np.zeros((len(mesh.vertices), 3, EXPRESSION_SPACE_DIM))
    out[..., :len(named)] = fields[..., order]
    return out, [named[i][0] for i in order]


def _feature_index(joint: int, row: int, col: int) -> int:
    """Index in the 36 pose features of element ``(row, col)`` of :math:`R_j - I` (joint 1..4)."""
    return 9 * (joint - 1) + 3 * row + col


def make_posedirs(mesh: HeadMesh, anatomy: Anatomy = Anatomy()) -> np.ndarray:
    """Pose correctives ``(V, 3, 36)``: offsets per element of :math:`\\operatorname{vec}(R_j - I)`, j = 1..4.

    * jaw (rotation about x by :math:`\\theta`, :math:`(R-I)_{21} = \\sin\\theta`): the cheeks thin and
      the mouth corners move in as the mouth opens;
    * neck (flexion, :math:`(R-I)_{21}`): skin under the chin bunches forward; turn
      (:math:`(R-I)_{02} = \\sin\\theta` about y): the neck skin twists partly along;
    * eyes (pitch, :math:`(R-I)_{12} = -\\sin\\theta`): the lids follow the gaze up and down.
    """
    p = mesh.vertices
    v = len(p)
    x, z = p[:, 0], p[:, 2]
    pd = np.zeros((v, 3, 36))
    a = anatomy
    corners = _both(p, (a.mouth_half_width, a.mouth_y, 0.075), (0.01, 0.01, 0.02))
    cheeks = _both(p, (0.045, -0.05, 0.05), (0.014, 0.02, 0.025))
    k = _feature_index(2, 2, 1)
    pd[:, 0, k] = -np.sign(x) * (0.004 * cheeks + 0.004 * corners)
    pd[:, 2, k] = -0.002 * corners
    k = _feature_index(1, 2, 1)
    under_chin = gauss(p, (0.0, -0.125, 0.035), (0.03, 0.015, 0.025))
    pd[:, 2, k] = 0.008 * under_chin
    pd[:, 1, k] = -0.004 * under_chin
    nj = np.asarray(a.neck_joint)
    neck_band = gauss(p, (0.0, -0.11, 0.0), (0.08, 0.035, 0.08)) * (1.0 - root_weights(mesh, a))
    k = _feature_index(1, 0, 2)
    pd[:, 0, k] = 0.3 * neck_band * (z - nj[2])
    pd[:, 2, k] = -0.3 * neck_band * (x - nj[0])
    for joint, side in ((3, 0), (4, 1)):
        k = _feature_index(joint, 1, 2)
        sel = geo.eye_local_angles(p, side, a)[2] < a.eye_radius + 0.02
        pd[:, 1, k] = sel * (0.005 * lid_weights(mesh, a, True) + 0.003 * lid_weights(mesh, a, False))
    pd[mesh.n_head:] = 0.0
    return pd


# --------------------------------------------------------------------------------------------------
# Landmarks
# --------------------------------------------------------------------------------------------------


def _closest_on_faces(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                      face_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closest surface point among the faces ``face_ids``: (face index ``(L,)``, barycentrics ``(L, 3)``
    clipped to >= 0 and renormalised, so each is a convex combination: a point on its face)."""
    import igl

    sub = faces[face_ids]
    _, idx, closest = igl.point_mesh_squared_distance(points, vertices, sub)
    tri = vertices[sub[idx]]
    b = np.clip(barycentric_coordinates(closest, tri[:, 0], tri[:, 1], tri[:, 2]), 0.0, None)
    return face_ids[idx], b / b.sum(1, keepdims=True)


def _front_points(xy: np.ndarray, anatomy: Anatomy) -> np.ndarray:
    """Implicit-surface points seen from the front at ``(x, y)`` ``(L, 2)``: rays along +z from inside."""
    origin = np.concatenate([xy, np.full((len(xy), 1), -0.02)], 1)
    d = np.tile([0.0, 0.0, 1.0], (len(xy), 1))
    return origin + geo.cast_rays(d, anatomy, origin, r_max=0.16)[:, None] * d


def static_landmark_targets(mesh: HeadMesh, anatomy: Anatomy = Anatomy()) -> np.ndarray:
    """3D positions ``(51, 3)`` of iBUG landmarks 17..67 on the template (before snapping to faces).

    Brows along the brow ridges, nose bridge to tip, nostril base, eye corners and lid points on the lid
    margins (37/38 and 43/44 a third of the way along the upper lid, 40/41 and 46/47 on the lower lid),
    outer lip contour, inner lip points on the mouth line. iBUG "right" features are on the subject's
    right (-x).
    """
    a = anatomy
    pts = np.zeros((68, 3))
    bx = np.array([0.050, 0.042, 0.033, 0.024, 0.014])  # right brow from outer (17) to inner (21)
    by = 0.021 + np.array([-0.002, 0.002, 0.0035, 0.003, 0.001])
    brow = np.concatenate([np.stack([-bx, by], 1), np.stack([bx[::-1], by[::-1]], 1)])
    pts[17:27] = _front_points(brow, a)
    pts[27:31] = _front_points(np.array([[0.0, 0.004], [0.0, -0.008], [0.0, -0.02], [0.0, -0.033]]), a)
    nost = np.array([[-0.012, -0.041], [-0.006, -0.0445], [0.0, -0.046], [0.006, -0.0445], [0.012, -0.041]])
    pts[31:36] = _front_points(nost, a)
    e = geo.eye_centres(a)
    r = a.eye_radius + a.lid_thickness
    pc = np.deg2rad(a.eye_corner_deg)

    def lid(side, psi, upper):
        low, up = geo.eye_opening_angles(np.array([psi]), a)
        eps = (up if upper else low)[0] if abs(psi) < pc else 0.5 * (low[0] + up[0])
        s = geo.EYE_SIDES[side]
        return e[side] + r * np.array([s * np.sin(psi) * np.cos(eps), np.sin(eps), np.cos(psi) * np.cos(eps)])

    third = pc / 3.0
    # right eye (side 1): 36 outer corner, 37 38 upper lid towards the nose, 39 inner, 40 41 lower lid back
    pts[36:42] = [lid(1, pc, True), lid(1, third, True), lid(1, -third, True), lid(1, -pc, True),
                  lid(1, -third, False), lid(1, third, False)]
    # left eye (side 0): 42 inner corner, 43 44 upper lid outwards, 45 outer, 46 47 lower lid back
    pts[42:48] = [lid(0, -pc, True), lid(0, -third, True), lid(0, third, True), lid(0, pc, True),
                  lid(0, third, False), lid(0, -third, False)]
    m = a.mouth_y
    corner = mesh.vertices[mesh.mouth_upper[[0, -1]]]
    ux = np.array([-0.017, -0.007, 0.0, 0.007, 0.017])
    uy = m + np.array([0.0085, 0.0125, 0.011, 0.0125, 0.0085])
    lx = np.array([0.015, 0.007, 0.0, -0.007, -0.015])
    ly = m - np.array([0.0115, 0.0145, 0.015, 0.0145, 0.0115])
    pts[48] = corner[0]
    pts[49:54] = _front_points(np.stack([ux, uy], 1), a)
    pts[54] = corner[1]
    pts[55:60] = _front_points(np.stack([lx, ly], 1), a)
    mv = mesh.vertices[mesh.mouth_upper]
    inner_x = np.array([-0.011, 0.0, 0.011])
    inner = np.stack([inner_x, np.interp(inner_x, mv[:, 0], mv[:, 1]), np.interp(inner_x, mv[:, 0], mv[:, 2])], 1)
    pts[60], pts[64] = corner[0], corner[1]
    pts[61:64] = inner
    pts[65:68] = inner[::-1]
    return pts[17:]


def make_static_landmarks(mesh: HeadMesh, anatomy: Anatomy = Anatomy()) -> tuple[np.ndarray, np.ndarray]:
    """Static iBUG landmarks 17..67 on the head surface: face indices ``(51,)`` and barycentrics ``(51, 3)``.

    Each target of :func:`static_landmark_targets` is snapped to the closest point of the head surface;
    the upper inner-lip points (61-63) only to faces of the upper lip and the lower ones (65-67) only to
    faces of the lower lip, so they part when the mouth opens.
    """
    targets = static_landmark_targets(mesh, anatomy)
    f = mesh.faces
    head_faces = np.flatnonzero((f < mesh.n_head).all(1))
    upper = np.flatnonzero(np.isin(f, mesh.mouth_upper[1:-1]).any(1))
    lower = np.flatnonzero(np.isin(f, mesh.mouth_lower[1:-1]).any(1))
    faces = np.zeros(51, dtype=np.int64)
    bary = np.zeros((51, 3))
    groups = {"upper": [61 - 17, 62 - 17, 63 - 17], "lower": [65 - 17, 66 - 17, 67 - 17]}
    rest = np.setdiff1d(np.arange(51), groups["upper"] + groups["lower"])
    for ids, subset in ((rest, head_faces), (groups["upper"], upper), (groups["lower"], lower)):
        ids = np.asarray(ids)
        faces[ids], bary[ids] = _closest_on_faces(targets[ids], mesh.vertices, f, subset)
    return faces, bary


def _rotation_y(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def contour_region(mesh: HeadMesh, anatomy: Anatomy = Anatomy()) -> np.ndarray:
    """Faces ``(K,)`` that can carry the jaw-line contour: lower face in front of the ears, above the neck."""
    p = mesh.vertices
    ears = np.min([np.linalg.norm(p - geo.ear_centre(s, anatomy), axis=1) for s in (0, 1)], axis=0)
    ok = (p[:, 2] > -0.004) & (p[:, 1] < 0.02) & (p[:, 1] > jaw_line_y(p[:, 2]) - 0.004) & (ears > 0.022)
    ok[mesh.n_head:] = False
    return np.flatnonzero(ok[mesh.faces].all(1))


def _outline_hits(origin: np.ndarray, angles: np.ndarray, seg2d: np.ndarray):
    """Farthest crossing of 2D rays from ``origin`` (angles ``(R,)``) with segments ``(E, 2, 2)``.

    Returns (segment index ``(R,)``, parameter along the segment ``(R,)``, distance ``(R,)``).
    """
    u = np.stack([np.cos(angles), np.sin(angles)], 1)  # (R, 2)
    a, b = seg2d[:, 0], seg2d[:, 1]
    e = b - a  # (E, 2)
    ao = a - origin  # (E, 2)
    den = u[:, None, 0] * e[None, :, 1] - u[:, None, 1] * e[None, :, 0]  # cross(u, e)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (ao[None, :, 0] * e[None, :, 1] - ao[None, :, 1] * e[None, :, 0]) / den
        s = (ao[None, :, 0] * u[:, None, 1] - ao[None, :, 1] * u[:, None, 0]) / den
    valid = (np.abs(den) > 1e-15) & (s >= 0) & (s <= 1) & (t > 0)
    t = np.where(valid, t, -np.inf)
    best = np.argmax(t, axis=1)
    rows = np.arange(len(angles))
    if not np.isfinite(t[rows, best]).all():
        raise RuntimeError("a contour ray missed the face outline")
    return best, s[rows, best], t[rows, best]


def contour_for_yaw(mesh: HeadMesh, yaw_deg: float, region: np.ndarray, n_points: int = 17,
                    y_top: float = -0.004) -> tuple[np.ndarray, np.ndarray]:
    """The 17 jaw-line points of the head turned by ``yaw_deg`` about +y, seen by a frontal camera.

    The head is rotated, the front-facing faces of ``region`` projected orthographically (x, y); the
    outline of that projection (occluding contour or region border) is traced by rays from a point
    between the eyes and the nose; its part below ``y_top`` (just under the eye corners) runs from the
    subject's right (iBUG 0, image left) down round the chin to the left (iBUG 16), and 17 points are
    placed on it evenly by arc length.

    Returns:
        face indices ``(17,)`` and barycentrics ``(17, 3)`` (points lie on mesh edges).
    """
    rot = _rotation_y(yaw_deg)
    v = mesh.vertices @ rot.T
    f = mesh.faces[region]
    nrm = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    f = f[nrm[:, 2] > 0]
    fid = region[nrm[:, 2] > 0]
    # boundary edges of the front-facing region (each edge used once)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    owner = np.tile(np.arange(len(f)), 3)
    key = np.sort(edges, 1)
    _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    border = counts[inv.ravel()] == 1
    edges, owner = edges[border], owner[border]
    seg = v[edges][:, :, :2]
    origin = (np.array([0.0, -0.012, 0.07]) @ rot.T)[:2]
    angles = np.deg2rad(np.linspace(120.0, 420.0, 301))
    _, _, t = _outline_hits(origin, angles, seg)
    pts = origin + t[:, None] * np.stack([np.cos(angles), np.sin(angles)], 1)
    # the part of the outline below the eye corners, from the subject's right (image left) to the left
    below = pts[:, 1] <= y_top
    bottom = int(np.argmin(pts[:, 1]))
    lo = bottom - int(np.argmin(below[bottom::-1])) if not below[: bottom + 1].all() else 0
    hi = bottom + int(np.argmin(below[bottom:])) if not below[bottom:].all() else len(pts) - 1
    seg_pts = [pts[lo - 1] + (pts[lo] - pts[lo - 1]) * (y_top - pts[lo - 1, 1]) / (pts[lo, 1] - pts[lo - 1, 1])]
    seg_pts += list(pts[lo:hi])
    seg_pts.append(pts[hi - 1] + (pts[hi] - pts[hi - 1]) * (y_top - pts[hi - 1, 1]) / (pts[hi, 1] - pts[hi - 1, 1]))
    line = np.asarray(seg_pts)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
    targets = np.stack([np.interp(np.linspace(0, arc[-1], n_points), arc, line[:, k]) for k in (0, 1)], 1)
    d = targets - origin
    want = np.unwrap(np.arctan2(d[:, 1], d[:, 0]) % (2 * np.pi))
    idx, s, _ = _outline_hits(origin, want, seg)
    faces = fid[owner[idx]]
    bary = np.zeros((n_points, 3))
    tri = mesh.faces[faces]
    for k in range(n_points):
        a, b = edges[idx[k]]
        bary[k, np.flatnonzero(tri[k] == a)[0]] = 1.0 - s[k]
        bary[k, np.flatnonzero(tri[k] == b)[0]] = s[k]
    return faces, bary


def make_dynamic_contour(mesh: HeadMesh, anatomy: Anatomy = Anatomy()) -> tuple[np.ndarray, np.ndarray]:
    """Dynamic contour table: faces ``(79, 17)`` and barycentrics ``(79, 17, 3)``.

    Row ``r`` holds :func:`contour_for_yaw` at ``yaw_for_contour_row(r)`` degrees
    (:mod:`facecourse.flame.landmarks`).
    """
    region = contour_region(mesh, anatomy)
    faces = np.zeros((N_CONTOUR_ROWS, 17), dtype=np.int64)
    bary = np.zeros((N_CONTOUR_ROWS, 17, 3))
    for row in range(N_CONTOUR_ROWS):
        faces[row], bary[row] = contour_for_yaw(mesh, yaw_for_contour_row(row), region)
    return faces, bary


# --------------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------------


def make_masks(mesh: HeadMesh, anatomy: Anatomy = Anatomy()) -> dict[str, np.ndarray]:
    """Vertex regions with the official ``FLAME_masks.pkl`` names: name -> sorted int64 indices.

    ``left_*`` = subject's left (+x). ``boundary`` is the open neck ring; ``face`` the front of the head
    from the brows to the chin between the ears; ``scalp`` the hair-covered top and back.
    """
    a = anatomy
    p = mesh.vertices[: mesh.n_head]
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ear = [geo.ear_sdf(p, s, a) < 0.004 for s in (0, 1)]
    ears = ear[0] | ear[1]
    neck = y < jaw_line_y(z)
    eye_dist = [np.linalg.norm(p - e - np.array([0.0, 0.004, 0.008]), axis=1) for e in geo.eye_centres(a)]
    eye_region = [(d < 0.026) & ~ears for d in eye_dist]
    front = z > 0.01 + 0.25 * np.abs(x)
    face = front & (y < 0.045) & ~neck & ~ears & (z > -0.005)
    forehead = (y >= 0.03) & (y < 0.085) & (z > 0.035) & (np.abs(x) < 0.055) & ~ears
    scalp = ~face & ~neck & ~ears & ~forehead & ((y > 0.07) | (z < -0.01)) & (y > -0.06)
    nose = (geo.nose_sdf(p, a) < 0.0025) & (y > -0.049) & (y < 0.008)
    lips = (geo.lips_sdf(p, a) < 0.002) & (np.abs(x) < a.mouth_half_width + 0.004)
    masks = {
        "eye_region": np.flatnonzero(eye_region[0] | eye_region[1]),
        "neck": np.flatnonzero(neck),
        "left_eyeball": mesh.left_eyeball,
        "right_eyeball": mesh.right_eyeball,
        "right_ear": np.flatnonzero(ear[1]),
        "right_eye_region": np.flatnonzero(eye_region[1]),
        "forehead": np.flatnonzero(forehead),
        "lips": np.flatnonzero(lips),
        "nose": np.flatnonzero(nose),
        "scalp": np.flatnonzero(scalp),
        "boundary": np.sort(mesh.neck_ring),
        "face": np.flatnonzero(face),
        "left_ear": np.flatnonzero(ear[0]),
        "left_eye_region": np.flatnonzero(eye_region[0]),
    }
    assert tuple(masks) == MASK_NAMES
    return {k: np.asarray(v, dtype=np.int64) for k, v in masks.items()}


# --------------------------------------------------------------------------------------------------
# Model and files
# --------------------------------------------------------------------------------------------------


def make_synthetic_model(size: str = "small", seed: int = 0, anatomy: Anatomy = Anatomy()) -> dict:
    """All arrays of the synthetic model (official keys + landmarks + masks + component names).

    Returns:
        dict with ``v_template`` (V, 3), ``f`` (F, 3) int64, ``shapedirs`` (V, 3, 400), ``posedirs``
        (V, 3, 36), ``J_regressor`` (5, V) csc, ``weights`` (V, 5), ``kintree_table`` (2, 5) (root parent
        -1), ``J`` (5, 3); ``static_faces`` (51,), ``static_bary`` (51, 3), ``dynamic_faces`` (79, 17),
        ``dynamic_bary`` (79, 17, 3); ``masks``; ``shape_names``, ``expression_names``; ``mesh``.
    """
    mesh = make_head_mesh(size, seed, anatomy)
    shape, shape_names = make_shape_basis(mesh, anatomy, seed)
    expression, expression_names = make_expression_basis(mesh, anatomy)
    regressor = make_joint_regressor(mesh, anatomy)
    static_faces, static_bary = make_static_landmarks(mesh, anatomy)
    dynamic_faces, dynamic_bary = make_dynamic_contour(mesh, anatomy)
    return {
        "v_template": mesh.vertices,
        "f": mesh.faces,
        "shapedirs": np.concatenate([shape, expression], -1),
        "posedirs": make_posedirs(mesh, anatomy),
        "J_regressor": regressor,
        "weights": make_skinning(mesh, anatomy),
        "kintree_table": np.stack([np.array(PARENTS), np.arange(5)]).astype(np.int64),
        "J": np.asarray(regressor @ mesh.vertices),
        "static_faces": static_faces, "static_bary": static_bary,
        "dynamic_faces": dynamic_faces, "dynamic_bary": dynamic_bary,
        "masks": make_masks(mesh, anatomy),
        "shape_names": shape_names, "expression_names": expression_names,
        "mesh": mesh,
    }


#: Files of the synthetic model, in the order they are moved into place (the model last).
MODEL_FILES = (MASKS_FILE, DECA_EMBEDDING, RINGNET_STATIC, RINGNET_DYNAMIC, MODEL_FILE)


#: Stamp written beside the model: which generator code, size and seed made the files.
GENERATOR_STAMP = "synthetic_generator.json"


#: Source files whose code decides the content of the synthetic model: this module, the anatomy
#: (:mod:`synthetic_geometry`), the file writers (:mod:`facecourse.flame.io`), the contour-row convention
#: (:mod:`facecourse.flame.landmarks`) and the barycentric coordinates of the embeddings
#: (:mod:`facecourse.mesh.geometry`). A test keeps it equal to what this module imports.
GENERATOR_SOURCES = tuple(Path(m.__file__) for m in (sys.modules[__name__], geo, flame_io, flame_landmarks,
                                                     mesh_geometry))


def generator_digest() -> str:
    """SHA-256 of :data:`GENERATOR_SOURCES`: a cached synthetic model made by other code is stale and gets
    rebuilt."""
    digest = hashlib.sha256()
    for module_file in GENERATOR_SOURCES:
        digest.update(module_file.read_bytes())
    return digest.hexdigest()


def _stamp(size: str, seed: int) -> dict:
    return {"generator_sha256": generator_digest(), "size": size, "seed": int(seed)}


def is_current(out_dir: str | os.PathLike, size: str = "small", seed: int = 0) -> bool:
    """True when ``out_dir`` holds a complete synthetic model made by this generator with ``size`` and ``seed``."""
    out = Path(out_dir)
    try:
        stamp = json.loads((out / GENERATOR_STAMP).read_text())
    except (OSError, ValueError):
        return False
    return stamp == _stamp(size, seed) and (out / MODEL_FILE).is_file()


def build_synthetic_flame(out_dir: str | os.PathLike, size: str = "small", seed: int = 0) -> Path:
    """Write the synthetic model into ``out_dir`` in the official formats; returns the ``generic_model.pkl`` path.

    Files: ``FLAME_masks.pkl``, ``landmark_embedding.npy`` (DECA), ``flame_static_embedding.pkl`` +
    ``flame_dynamic_embedding.npy`` (RingNet) and ``generic_model.pkl``. Everything is generated in a
    temporary sibling folder first and then moved in file by file (``os.replace``), the model last, so a
    failed build leaves ``out_dir`` untouched and the model's presence means the set is complete. The
    content is a deterministic function of ``(size, seed)``: building again is harmless (idempotent).

    Args:
        out_dir: destination folder (created).
        size: ``"small"`` (1756 vertices, for CI and notebooks) or ``"full"`` (5023 vertices, FLAME's count).
        seed: seeds the vertex sampling and the tail of the identity spectrum.
    """
    check_size(size)
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    out = Path(out_dir)
    m = make_synthetic_model(size, int(seed))
    with staging_dir(out, "build") as tmp:
        save_masks(tmp / MASKS_FILE, m["masks"])
        full_faces = np.concatenate([m["dynamic_faces"][0], m["static_faces"]])
        full_bary = np.concatenate([m["dynamic_bary"][0], m["static_bary"]])
        save_deca_landmark_embedding(tmp / DECA_EMBEDDING, m["static_faces"], m["static_bary"],
                                     m["dynamic_faces"], m["dynamic_bary"], full_faces, full_bary)
        save_ringnet_landmark_embedding(tmp, m["static_faces"], m["static_bary"], m["dynamic_faces"],
                                        m["dynamic_bary"])
        arrays = {k: m[k] for k in ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights",
                                    "kintree_table", "J")}
        save_model(tmp / MODEL_FILE, arrays)
        (tmp / GENERATOR_STAMP).write_text(json.dumps(_stamp(size, seed)))
        out.mkdir(parents=True, exist_ok=True)
        (out / MODEL_FILE).unlink(missing_ok=True)  # absent model = incomplete set while replacing
        os.replace(tmp / GENERATOR_STAMP, out / GENERATOR_STAMP)
        for name in MODEL_FILES:  # generic_model.pkl last
            os.replace(tmp / name, out / name)
    return out / MODEL_FILE


__all__ = [
    "GENERATOR_SOURCES", "GENERATOR_STAMP", "SIZES", "check_size", "generator_digest", "is_current",
    "Anatomy", "HeadMesh", "MODEL_FILES", "PARENTS", "VERTEX_BUDGETS", "build_synthetic_flame",
    "contour_for_yaw", "contour_region", "jaw_weights", "make_dynamic_contour", "make_expression_basis",
    "make_head_mesh", "make_joint_regressor", "make_masks", "make_posedirs", "make_shape_basis",
    "make_skinning", "make_static_landmarks", "make_synthetic_model", "static_landmark_targets",
]
