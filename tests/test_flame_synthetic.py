"""The synthetic FLAME-format model: official layout, valid mesh, rigging, landmarks, masks, determinism."""

from __future__ import annotations

import filecmp
import pickle

import numpy as np
import pytest
import scipy.sparse
import torch
from scipy.sparse.csgraph import connected_components

from facecourse.flame.io import (MASK_NAMES, load_deca_landmark_embedding, load_masks, load_model,
                                 load_ringnet_landmark_embedding, safe_load_pickle)
from facecourse.flame.landmarks import yaw_for_contour_row
from facecourse.flame.synthetic import (GENERATOR_STAMP, MODEL_FILES, N_SHAPE_DEFINED, build_synthetic_flame,
                                        contour_region, is_current, jaw_weights, make_synthetic_model)
from facecourse.flame.synthetic_geometry import STAR_CENTRE, Anatomy, eye_centres
from facecourse.mesh import adjacency_matrix


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic_small")
    build_synthetic_flame(out, "small", seed=0)
    return out


@pytest.fixture(scope="module")
def model(small_dir):
    return load_model(small_dir / "generic_model.pkl")


@pytest.fixture(scope="module")
def arrays():
    """The in-memory model (with the mesh bookkeeping the files do not carry)."""
    return make_synthetic_model("small", 0)


@pytest.fixture(scope="module")
def full_arrays():
    return make_synthetic_model("full", 0)


@pytest.fixture(params=["small", "full"])
def any_arrays(request):
    return request.getfixturevalue("arrays" if request.param == "small" else "full_arrays")


def _edges(faces):
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def _face_normals(v, f):
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    return n


def _vertex_normals(v, f):
    n = np.zeros_like(v)
    fn = _face_normals(v, f)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------- layout


def test_stamp_says_which_generator_made_the_files(small_dir, tmp_path):
    import json
    import shutil

    assert is_current(small_dir, "small", 0)
    assert not is_current(small_dir, "full", 0) and not is_current(small_dir, "small", 1)
    copy = tmp_path / "copy"
    shutil.copytree(small_dir, copy)
    stamp = json.loads((copy / GENERATOR_STAMP).read_text())
    stamp["generator_sha256"] = "0" * 64  # as if made by an older version of the generator
    (copy / GENERATOR_STAMP).write_text(json.dumps(stamp))
    assert not is_current(copy, "small", 0)
    (small_dir / "generic_model.pkl").rename(tmp_path / "aside.pkl")
    try:
        assert not is_current(small_dir, "small", 0)  # an interrupted build is not current either
    finally:
        (tmp_path / "aside.pkl").rename(small_dir / "generic_model.pkl")


def test_files_and_official_layout(small_dir):
    assert sorted(p.name for p in small_dir.iterdir()) == sorted(MODEL_FILES + (GENERATOR_STAMP,))
    raw = safe_load_pickle(small_dir / "generic_model.pkl")
    v = raw["v_template"]
    n = v.shape[0]
    assert 1000 <= n <= 2000
    assert v.dtype == np.float64 and v.shape == (n, 3)
    assert raw["f"].dtype in (np.uint32, np.int64) and raw["f"].shape[1] == 3
    assert raw["shapedirs"].shape == (n, 3, 400) and raw["shapedirs"].dtype == np.float64
    assert raw["posedirs"].shape == (n, 3, 36)
    assert scipy.sparse.issparse(raw["J_regressor"]) and raw["J_regressor"].shape == (5, n)
    assert raw["weights"].shape == (n, 5)
    assert raw["J"].shape == (5, 3)
    np.testing.assert_array_equal(raw["kintree_table"], [[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]])
    # a plain pickle reader (as third-party FLAME loaders use) reads it without chumpy
    with open(small_dir / "generic_model.pkl", "rb") as fh:
        plain = pickle.load(fh, encoding="latin1")
    np.testing.assert_array_equal(plain["v_template"], v)


def test_real_head_size(model):
    v = model["v_template"]
    width = np.ptp(v[:, 0])  # ear to ear
    assert 0.15 < width < 0.2
    head = v[v[:, 1] > -0.1]
    assert 0.17 < np.ptp(head[:, 2]) < 0.23  # tip of the nose to the back of the head
    assert 0.2 < np.ptp(v[:, 1]) < 0.34  # crown to the neck cut


def test_full_size_has_flames_vertex_count(full_arrays):
    m = full_arrays
    assert m["v_template"].shape == (5023, 3)
    assert 9000 < len(m["f"]) < 10500
    np.testing.assert_allclose(m["J_regressor"] @ m["v_template"], m["J"], atol=1e-12)
    np.testing.assert_allclose(m["weights"].sum(1), 1.0, atol=1e-12)


def test_deterministic_and_idempotent(small_dir, tmp_path):
    build_synthetic_flame(tmp_path, "small", seed=0)
    for name in MODEL_FILES:
        assert filecmp.cmp(small_dir / name, tmp_path / name, shallow=False), name
    build_synthetic_flame(tmp_path, "small", seed=0)  # again, in place
    assert all(filecmp.cmp(small_dir / n, tmp_path / n, shallow=False) for n in MODEL_FILES)
    other = make_synthetic_model("small", seed=1)
    assert not np.array_equal(other["shapedirs"][..., N_SHAPE_DEFINED - 1],
                              load_model(small_dir)["shapedirs"][..., N_SHAPE_DEFINED - 1])


def test_failed_build_leaves_the_folder_untouched(tmp_path, monkeypatch):
    import facecourse.flame.synthetic as syn

    out = tmp_path / "model"
    build_synthetic_flame(out, "small")
    before = {n: (out / n).read_bytes() for n in MODEL_FILES}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(syn, "save_model", broken)
    with pytest.raises(OSError, match="disk full"):
        build_synthetic_flame(out, "small", seed=3)
    assert {n: (out / n).read_bytes() for n in MODEL_FILES} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folder left


def test_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        build_synthetic_flame("/tmp/never", "medium")
    with pytest.raises(ValueError, match="seed"):
        build_synthetic_flame("/tmp/never", "small", seed=-1)


def test_the_sizes_are_the_generators_own_table(monkeypatch):
    """flame.paths.SIZES is the generator's table, not a second list: a size added to VERTEX_BUDGETS is known."""
    import facecourse.flame.paths as paths
    import facecourse.flame.synthetic as synthetic

    assert paths.SIZES is synthetic.SIZES and synthetic.SIZES == tuple(synthetic.VERTEX_BUDGETS)
    monkeypatch.setitem(synthetic.VERTEX_BUDGETS, "tiny", synthetic.VERTEX_BUDGETS["small"])
    assert paths.check_size("tiny") == "tiny"
    with pytest.raises(ValueError, match="size must be one of"):
        paths.check_size("medium")


# ---------------------------------------------------------------------------------------------- mesh


def test_mesh_is_head_surface_plus_two_eyeballs(any_arrays):
    mesh = any_arrays["mesh"]
    v, f = mesh.vertices, mesh.faces
    n_comp, label = connected_components(adjacency_matrix(f, len(v)), directed=False)
    assert n_comp == 3
    assert len(set(label[:mesh.n_head])) == 1
    assert len(set(label[mesh.left_eyeball])) == 1 and len(set(label[mesh.right_eyeball])) == 1
    # no degenerate or duplicate triangles
    area = 0.5 * np.linalg.norm(_face_normals(v, f), axis=1)
    assert area.min() > 1e-9
    assert len(np.unique(np.sort(f, 1), axis=0)) == len(f)
    # manifold and consistently oriented: every directed edge once, every undirected edge at most twice
    e = _edges(f)
    assert len(np.unique(e, axis=0)) == len(e)
    und, counts = np.unique(np.sort(e, 1), axis=0, return_counts=True)
    assert counts.max() == 2
    # the head's boundary: the neck ring, two eye openings and the two lips of the mouth slit
    boundary = und[counts == 1]
    bverts = set(boundary.ravel())
    expected = (set(mesh.neck_ring) | set(mesh.eye_outline.ravel()) | set(mesh.mouth_upper)
                | set(mesh.mouth_lower))
    assert bverts == expected
    # eyeballs are closed
    assert not (bverts & (set(mesh.left_eyeball) | set(mesh.right_eyeball)))


def test_normals_point_outwards(any_arrays):
    mesh = any_arrays["mesh"]
    v, f = mesh.vertices, mesh.faces
    fn = _face_normals(v, f)
    head = (f < mesh.n_head).all(1)
    out = np.einsum("ij,ij->i", fn[head], v[f[head]].mean(1) - STAR_CENTRE)
    assert (out > 0).mean() > 0.97 and out.sum() > 0
    for idx, c in zip(mesh.eyeballs, eye_centres(Anatomy())):
        sel = np.isin(f, idx).all(1)
        assert (np.einsum("ij,ij->i", fn[sel], v[f[sel]].mean(1) - c) > 0).all()
    # no folded triangles: neighbours across every interior edge face roughly the same way
    unit = fn / np.linalg.norm(fn, axis=1, keepdims=True)
    e = _edges(f)
    fid = np.tile(np.arange(len(f)), 3)
    order = np.lexsort((e.max(1), e.min(1)))
    es, fs = np.sort(e, 1)[order], fid[order]
    pair = (es[1:] == es[:-1]).all(1)
    dots = np.einsum("ij,ij->i", unit[fs[:-1][pair]], unit[fs[1:][pair]])
    assert dots.min() > -0.7, dots.min()


def test_lips_are_separate_along_the_mouth_line(any_arrays):
    mesh = any_arrays["mesh"]
    up, low = mesh.mouth_upper, mesh.mouth_lower
    assert up[0] == low[0] and up[-1] == low[-1]  # shared corners
    assert not set(up[1:-1]) & set(low[1:-1])
    np.testing.assert_array_equal(mesh.vertices[up], mesh.vertices[low])  # closed at rest
    f = mesh.faces
    assert not np.isin(f, up[1:-1]).any(1)[np.isin(f, low[1:-1]).any(1)].any()


# ---------------------------------------------------------------------------------------------- rig


def test_joints_regressor_and_weights(model):
    v, jr, w = model["v_template"], model["J_regressor"], model["weights"]
    np.testing.assert_allclose(jr @ v, model["J"], atol=1e-12)
    assert (jr >= 0).all() and (w >= 0).all()
    np.testing.assert_allclose(jr.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-12)
    j = model["J"]
    a = Anatomy()
    np.testing.assert_allclose(j[3:], eye_centres(a), atol=1e-9)
    assert abs(j[2, 0]) < 2e-3 and abs(j[2, 1] - a.jaw_joint[1]) < 6e-3  # jaw joint between the ears
    assert j[0, 1] < j[1, 1] < j[2, 1] < j[3, 1]  # root below neck below jaw below eyes


def test_eyeballs_are_rigid_on_their_eye_joint(arrays, model):
    mesh, w = arrays["mesh"], model["weights"]
    np.testing.assert_array_equal(w[mesh.left_eyeball], np.eye(5)[[3] * len(mesh.left_eyeball)])
    np.testing.assert_array_equal(w[mesh.right_eyeball], np.eye(5)[[4] * len(mesh.right_eyeball)])
    assert (w[: mesh.n_head, 3:] == 0).all()
    for idx, c in zip(mesh.eyeballs, eye_centres(Anatomy())):
        r = np.linalg.norm(mesh.vertices[idx] - c, axis=1)
        np.testing.assert_allclose(r, Anatomy().eye_radius, rtol=1e-12)


def test_jaw_weights_split_the_lips_and_fall_off_smoothly(arrays):
    mesh = arrays["mesh"]
    w = jaw_weights(mesh, Anatomy())
    assert (w[mesh.mouth_lower[1:-1]] == 1).all() and (w[mesh.mouth_upper[1:-1]] == 0).all()
    v = mesh.vertices
    assert w[np.argmin(np.linalg.norm(v - [0, -0.1, 0.08], axis=1))] > 0.99  # chin
    assert w[v[:, 1] > 0.0].max() == 0  # nothing above the eyes
    assert (w[v[:, 2] < -0.03] == 0).all()  # nothing at the back
    # smooth over the cheek: some partial weights there
    cheek = (np.abs(v[:, 0]) > 0.035) & (v[:, 1] < -0.04) & (v[:, 2] > 0.0) & (np.arange(len(v)) < mesh.n_head)
    assert ((w[cheek] > 0.1) & (w[cheek] < 0.9)).sum() >= 3


def _flame(small_dir):
    from facecourse.flame.model import FLAME

    return FLAME.from_file(small_dir / "generic_model.pkl", n_shape=100, n_exp=50).double()


def test_jaw_opens_the_mouth_and_eyes_turn_only_eyeballs(small_dir, arrays):
    mesh = arrays["mesh"]
    flame = _flame(small_dir)
    rest = flame().vertices[0].numpy()
    opened = flame(jaw_pose=torch.tensor([[0.3, 0.0, 0.0]], dtype=torch.float64)).vertices[0].numpy()
    gap = opened[mesh.mouth_upper[1:-1], 1] - opened[mesh.mouth_lower[1:-1], 1]
    assert gap[len(gap) // 2] > 0.01  # the mouth opens by > 1 cm in the middle
    moved = np.linalg.norm(opened - rest, axis=1)
    # the upper lip only follows the pose correctives (corners drawn in), the lower lip the jaw
    assert moved[mesh.mouth_upper[1:-1]].max() < 0.2 * moved[mesh.mouth_lower[1:-1]].min()
    assert moved[rest[:, 1] > 0.0].max() < 1e-4  # cranium stays (correctives fade out within 0.1 mm)
    eyes = flame(eye_pose=torch.tensor([[0.3, 0.2, 0.0, 0.3, 0.2, 0.0]], dtype=torch.float64)).vertices[0].numpy()
    moved = np.linalg.norm(eyes - rest, axis=1) > 1e-9
    eyeballs = np.concatenate(mesh.eyeballs)
    assert moved[eyeballs].mean() > 0.9
    lids = np.flatnonzero(moved[: mesh.n_head])  # only the lids follow the gaze (pose correctives)
    assert np.isin(lids, np.flatnonzero(np.linalg.norm(rest[:, None] - eye_centres(Anatomy()), axis=2).min(1)
                                        < 0.035)).all()


# ---------------------------------------------------------------------------------------------- blend shapes


def test_shape_components_ordered_like_pca(arrays):
    sd = arrays["shapedirs"]
    norms = np.linalg.norm(sd.reshape(-1, 400), axis=0)
    shape = norms[:300]
    assert (np.diff(shape[:N_SHAPE_DEFINED]) <= 0).all() and (shape[:N_SHAPE_DEFINED] > 0).all()
    assert (shape[N_SHAPE_DEFINED:] == 0).all()
    exp = norms[300:]
    k = int((exp > 0).sum())
    assert k >= 10 and (exp[k:] == 0).all() and (np.diff(exp[:k]) <= 0).all()


def test_identity_extremes_stay_plausible(arrays):
    mesh = arrays["mesh"]
    sd = arrays["shapedirs"]
    for k in range(N_SHAPE_DEFINED):
        for s in (-3.0, 3.0):
            d = np.linalg.norm(s * sd[:, :, k], axis=1)
            assert d.max() < 0.02, (k, arrays["shape_names"][k])  # < 2 cm anywhere at 3 sd
    assert np.linalg.norm(3 * sd[:, :, 0], axis=1).max() > 0.005  # the first direction is a visible change
    # eyeballs translate rigidly with identity, and never with expression
    for idx in mesh.eyeballs:
        np.testing.assert_allclose(sd[idx, :, :300], np.broadcast_to(sd[idx[:1], :, :300], sd[idx, :, :300].shape),
                                   atol=1e-12)
        assert (sd[idx, :, 300:] == 0).all()


def test_pupils_are_visible_through_the_eye_openings(any_arrays):
    import trimesh

    mesh = any_arrays["mesh"]
    head = trimesh.Trimesh(mesh.vertices, mesh.faces[(mesh.faces < mesh.n_head).all(1)], process=False)
    for idx in mesh.eyeballs:
        ring = mesh.vertices[idx]
        front = ring[ring[:, 2] > ring[:, 2].max() - 0.02 * Anatomy().eye_radius]  # pupil (lids may cover iris)
        hits = head.ray.intersects_any(front + [0, 0, 1e-5], np.tile([0.0, 0.0, 1.0], (len(front), 1)))
        assert not hits.any()


def test_jaw_corrective_thins_the_cheeks(arrays):
    mesh, pd = arrays["mesh"], arrays["posedirs"]
    k = 9 * (2 - 1) + 3 * 2 + 1  # jaw joint, element (2, 1) of R - I = sin(opening angle)
    v = mesh.vertices
    cheek = (np.abs(v[:, 0]) > 0.03) & (v[:, 1] < -0.03) & (v[:, 1] > -0.07) & (v[:, 2] > 0.03)
    moved = np.abs(pd[:, 0, k]) > 1e-4
    assert (np.sign(pd[cheek & moved, 0, k]) == -np.sign(v[cheek & moved, 0])).all() and (cheek & moved).sum() > 5
    assert (pd[mesh.n_head:] == 0).all()
    assert np.abs(pd).max() < 0.02  # correctives are small (< 2 cm per unit of sin(angle))


def test_eye_closure_closes_the_lids(arrays):
    mesh = arrays["mesh"]
    k = arrays["expression_names"].index("eye closure")
    e = arrays["shapedirs"][:, :, 300 + k]
    v = mesh.vertices
    out = mesh.eye_outline[0]
    n = out.shape[0]
    up, low = out[n // 4], out[3 * n // 4]  # middle of the upper and the lower lid
    opening = v[up, 1] - v[low, 1]
    assert opening > 0.006
    scale = 1.0 / (0.45 + 0.15)
    closed = v + scale * e
    assert abs(closed[up, 1] - closed[low, 1]) < 0.25 * opening


# ---------------------------------------------------------------------------------------------- landmarks


def _landmarks(v, f, faces, bary):
    return np.einsum("...k,...kj->...j", bary, v[f[faces]])


def test_landmark_files_agree_and_are_valid(small_dir, model):
    deca = load_deca_landmark_embedding(small_dir / "landmark_embedding.npy")
    ring = load_ringnet_landmark_embedding(small_dir)
    for key in ("static_faces", "static_bary", "dynamic_faces", "dynamic_bary"):
        np.testing.assert_array_equal(deca[key], ring[key])
    np.testing.assert_array_equal(deca["full_faces"][17:], deca["static_faces"])
    np.testing.assert_array_equal(deca["full_faces"][:17], deca["dynamic_faces"][0])
    n_f = len(model["f"])
    for faces, bary in ((deca["static_faces"], deca["static_bary"]), (deca["dynamic_faces"], deca["dynamic_bary"])):
        assert faces.min() >= 0 and faces.max() < n_f
        assert (bary >= -1e-12).all()
        np.testing.assert_allclose(bary.sum(-1), 1.0, atol=1e-9)
    # on the head surface, never on an eyeball
    n_head = int(model["weights"][:, 3:].sum(1).astype(bool).argmax())
    assert (model["f"][deca["full_faces"]] < n_head).all()


def test_static_landmarks_sit_on_the_right_anatomy(small_dir, model):
    deca = load_deca_landmark_embedding(small_dir / "landmark_embedding.npy")
    v, f = model["v_template"], model["f"]
    lm = np.zeros((68, 3))
    lm[17:] = _landmarks(v, f, deca["static_faces"], deca["static_bary"])
    x, y, z = lm[:, 0], lm[:, 1], lm[:, 2]
    # iBUG "right" = subject's right = -x
    assert (x[17:22] < 0).all() and (x[22:27] > 0).all()
    assert x[36] < x[39] < 0 < x[42] < x[45]
    assert x[48] < x[54] and x[31] < x[33] < x[35]
    assert min(y[36], y[39], y[42], y[45]) > max(y[48], y[54]) + 0.04  # eyes well above the mouth
    assert y[17:27].min() > y[36:48].max()  # brows above the eyes
    assert y[27] > y[28] > y[29] > y[30] > y[33] > y[51] > y[57]  # nose bridge down to the lower lip
    assert y[62] > y[66] - 1e-9 and abs(y[62] - y[66]) < 1e-3  # inner lips meet at rest
    assert y[51] > y[62] > y[57]
    head = v[v[:, 1] > -0.1]
    assert z[30] > head[:, 2].max() - 0.004  # nose tip: the most forward region
    assert (z[37:39] > z[36]).all()  # upper lid in front of the outer corner
    nose_mid = 0.5 * (x[36] + x[45])
    assert abs(nose_mid) < 1e-3 and abs(x[30]) < 1e-3 and abs(x[33]) < 1e-3


def test_contour_goes_from_right_ear_via_chin_to_left_ear(small_dir, model):
    deca = load_deca_landmark_embedding(small_dir / "landmark_embedding.npy")
    v, f = model["v_template"], model["f"]
    c = _landmarks(v, f, deca["dynamic_faces"][0], deca["dynamic_bary"][0])
    assert c[0, 0] < -0.05 and c[16, 0] > 0.05  # ear to ear
    assert abs(c[8, 0]) < 0.006 and c[8, 1] == c[:, 1].min()  # chin at the bottom in the middle
    assert c[0, 1] > c[4, 1] > c[8, 1] < c[12, 1] < c[16, 1]
    np.testing.assert_allclose(c[::-1, 0], -c[:, 0], atol=0.01)  # frontal contour is symmetric
    spacing = np.linalg.norm(np.diff(c[:, :2], axis=0), axis=1)
    assert spacing.max() < 2.0 * spacing.min()  # evenly spaced along the outline


@pytest.mark.parametrize("row", [0, 20, 39, 45, 60, 78])
def test_dynamic_contour_is_on_the_silhouette(small_dir, model, arrays, row):
    deca = load_deca_landmark_embedding(small_dir / "landmark_embedding.npy")
    v, f = model["v_template"], model["f"]
    yaw = yaw_for_contour_row(row)
    t = np.deg2rad(yaw)
    rot = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])  # +y, right-handed
    vr = v @ rot.T
    pts = _landmarks(vr, f, deca["dynamic_faces"][row], deca["dynamic_bary"][row])
    normals = _vertex_normals(vr, f)
    n = _landmarks(normals, f, deca["dynamic_faces"][row], deca["dynamic_bary"][row])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    # positive yaw turns the face towards +x: the subject's left cheek (iBUG 11-15) becomes an occluding
    # contour with grazing normals; negative yaw: the right cheek (1-5)
    away = slice(11, 16) if yaw > 0 else slice(1, 6)
    if abs(yaw) >= 20:
        assert np.abs(n[away, 2]).max() < 0.5, n[away, 2]
    assert pts[0, 0] < pts[8, 0] < pts[16, 0]
    assert np.argmin(pts[:, 1]) in range(5, 12)
    # each point is the farthest point of the visible lower face along its ray from the face centre
    visible = np.zeros(len(f), dtype=bool)
    visible[contour_region(arrays["mesh"])] = True
    visible &= _face_normals(vr, f)[:, 2] > 0
    inner = np.setdiff1d(np.unique(f[visible]), np.unique(f[~visible]))  # every face around it visible
    cand = vr[inner]
    centre = (np.array([0.0, -0.012, 0.07]) @ rot.T)[:2]
    for p in pts:
        u = (p[:2] - centre) / np.linalg.norm(p[:2] - centre)
        near_ray = np.abs((cand[:, :2] - centre) @ np.array([-u[1], u[0]])) < 0.0007
        along = (cand[near_ray, :2] - centre) @ u
        assert along.max(initial=0.0) < (p[:2] - centre) @ u + 0.002


# ---------------------------------------------------------------------------------------------- masks


def test_masks(small_dir, arrays, model):
    masks = load_masks(small_dir)
    assert tuple(masks) == MASK_NAMES
    mesh = arrays["mesh"]
    v = model["v_template"]
    n = len(v)
    for name, idx in masks.items():
        assert len(idx) > 0 and idx.min() >= 0 and idx.max() < n, name
    np.testing.assert_array_equal(masks["left_eyeball"], mesh.left_eyeball)
    np.testing.assert_array_equal(masks["right_eyeball"], mesh.right_eyeball)
    np.testing.assert_array_equal(masks["boundary"], np.sort(mesh.neck_ring))
    assert (v[masks["left_ear"], 0] > 0.06).all() and (v[masks["right_ear"], 0] < -0.06).all()
    assert (v[masks["left_eye_region"], 0] > 0).all() and (v[masks["right_eye_region"], 0] < 0).all()
    assert v[masks["nose"], 2].mean() > v[masks["face"], 2].mean()
    assert v[masks["scalp"], 1].mean() > v[masks["face"], 1].mean()
    assert v[masks["neck"], 1].mean() < v[masks["lips"], 1].mean() < v[masks["nose"], 1].mean()
    assert v[masks["forehead"], 1].min() > v[masks["eye_region"], 1].mean()
    assert set(masks["lips"]) <= set(masks["face"]) and set(masks["nose"]) <= set(masks["face"])
