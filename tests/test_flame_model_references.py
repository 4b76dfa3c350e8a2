"""The FLAME module on the synthetic FLAME-format head, against independent references.

scipy Rotation for rigid motions, libigl for point-to-surface distances, masks for regions, the geometry of
the rotated mesh for the dynamic contour, and smplx's FLAME class for the whole forward pass.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import igl
import torch
from scipy.spatial.transform import Rotation

from facecourse.flame import FLAME, load_masks, load_model, save_model, synthetic_model_path
from facecourse.flame import io as fio

N_SHAPE, N_EXP = 20, 10


@pytest.fixture(scope="module", params=["small", "full"])
def path(request):
    """Both synthetic sizes: the CI one (~1.5k vertices) and the FLAME-size one (5023 vertices)."""
    return synthetic_model_path(request.param)


@pytest.fixture(scope="module")
def flame(path):
    return FLAME.from_file(path, n_shape=N_SHAPE, n_exp=N_EXP, dtype=torch.float64)


@pytest.fixture(scope="module")
def masks(path):
    return load_masks(path.parent)


def _rand(b, k, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, k, generator=g, dtype=torch.float64) * scale


def test_zero_parameters_give_the_template(flame, path):
    out = flame()
    np.testing.assert_allclose(out.vertices[0].numpy(), load_model(path)["v_template"], atol=1e-12)
    assert out.vertices.shape == (1, flame.n_vertices, 3) and out.joints.shape == (1, 5, 3)


def test_global_rotation_is_rigid_about_the_root(flame):
    shape, expr = _rand(1, N_SHAPE), _rand(1, N_EXP, seed=1)
    rest = flame(shape=shape, expression=expr)
    rotvec = np.array([0.3, -0.6, 0.2])
    out = flame(shape=shape, expression=expr, global_pose=torch.tensor(rotvec)[None])
    root = rest.joints[0, 0].numpy()
    rot = Rotation.from_rotvec(rotvec)
    np.testing.assert_allclose(out.vertices[0].numpy(), rot.apply(rest.vertices[0].numpy() - root) + root,
                               atol=1e-10)
    np.testing.assert_allclose(out.joints[0].numpy(), rot.apply(rest.joints[0].numpy() - root) + root, atol=1e-10)


def test_jaw_opens_the_mouth_and_leaves_the_cranium(flame, masks):
    rest = flame()
    out = flame(jaw_pose=torch.tensor([[0.3, 0.0, 0.0]], dtype=torch.float64))
    move = (out.vertices - rest.vertices)[0].norm(dim=-1).numpy()
    chin_drop = (rest.landmarks[0, 8, 1] - out.landmarks[0, 8, 1]).item()
    lower_lip_drop = (rest.landmarks[0, 57, 1] - out.landmarks[0, 57, 1]).item()
    upper_lip_drop = (rest.landmarks[0, 51, 1] - out.landmarks[0, 51, 1]).item()
    assert chin_drop > 0.005 and lower_lip_drop > 0.005, (chin_drop, lower_lip_drop)
    assert abs(upper_lip_drop) < 0.5 * lower_lip_drop, "the upper lip should stay while the lower lip drops"
    # the cranium: everything above the eyes (geometry, not a mask: FLAME's scalp mask reaches below the ears);
    # skinning leaves it exactly, pose correctives may touch it by far less than a millimetre
    cranium = flame.v_template[:, 1].numpy() > rest.joints[0, 3, 1].item()
    assert cranium.sum() > flame.n_vertices // 5
    assert move[cranium].max() < 1e-4 and move[cranium].max() < 0.01 * chin_drop, "the jaw moved the cranium"
    assert move[masks["forehead"]].max() < 1e-4


def _eye_pose(eye, rotvec):
    pose = torch.zeros(1, 6, dtype=torch.float64)
    pose[0, 3 * eye:3 * eye + 3] = torch.tensor(rotvec)
    return pose


@pytest.mark.parametrize("eye", [0, 1])
def test_eye_turn_moves_only_that_eyeball(flame, masks, eye):
    """A horizontal eye turn (about y) moves exactly the eyeball, rigidly about its joint, and nothing else."""
    rotvec = np.array([0.0, 0.4, 0.0])
    rest, out = flame(), flame(eye_pose=_eye_pose(eye, rotvec))
    inside = masks[("left_eyeball", "right_eyeball")[eye]]
    outside = np.setdiff1d(np.arange(flame.n_vertices), inside)
    np.testing.assert_allclose(out.vertices[0, outside].numpy(), rest.vertices[0, outside].numpy(), atol=1e-9)
    centre = rest.joints[0, 3 + eye].numpy()
    expect = Rotation.from_rotvec(rotvec).apply(rest.vertices[0, inside].numpy() - centre) + centre
    np.testing.assert_allclose(out.vertices[0, inside].numpy(), expect, atol=1e-9)
    assert np.abs(out.vertices[0, inside].numpy() - rest.vertices[0, inside].numpy()).max() > 1e-3


@pytest.mark.parametrize("eye", [0, 1])
def test_eye_pitch_rotates_the_eyeball_and_at_most_its_lids(flame, masks, eye):
    """Looking up/down: the eyeball rotates rigidly; pose correctives may let that eye's lids follow, nothing
    outside that eye's region moves."""
    rotvec = np.array([0.25, 0.2, 0.0])
    rest, out = flame(), flame(eye_pose=_eye_pose(eye, rotvec))
    ball = masks[("left_eyeball", "right_eyeball")[eye]]
    region = np.union1d(ball, masks[("left_eye_region", "right_eye_region")[eye]])
    outside = np.setdiff1d(np.arange(flame.n_vertices), region)
    np.testing.assert_allclose(out.vertices[0, outside].numpy(), rest.vertices[0, outside].numpy(), atol=1e-9)
    centre = rest.joints[0, 3 + eye].numpy()
    expect = Rotation.from_rotvec(rotvec).apply(rest.vertices[0, ball].numpy() - centre) + centre
    np.testing.assert_allclose(out.vertices[0, ball].numpy(), expect, atol=1e-9)


def test_eye_joints_sit_in_the_eyeballs(flame, masks):
    """The eye joints are the centres the eyeballs rotate about; +x is the subject's left."""
    v = flame.v_template.numpy()
    joints = flame().joints[0].numpy()
    for j, name in ((3, "left_eyeball"), (4, "right_eyeball")):
        ball = v[masks[name]]
        np.testing.assert_allclose(joints[j], ball.mean(axis=0), atol=2e-3)
    assert joints[3, 0] > 0 > joints[4, 0]


def test_landmarks_lie_on_the_surface_and_follow_it(flame, path):
    params = dict(shape=_rand(3, N_SHAPE), expression=_rand(3, N_EXP, seed=2),
                  jaw_pose=torch.tensor([[0.1, 0, 0], [0.2, 0.02, 0], [0.0, 0, 0]], dtype=torch.float64),
                  global_pose=torch.tensor([[0, 0.4, 0], [0.1, -0.3, 0], [0, 0, 0]], dtype=torch.float64))
    out = flame(**params)
    faces = flame.faces.numpy()
    emb = np.load(path.parent / fio.DECA_EMBEDDING, allow_pickle=True)[()]  # our own trusted file
    for b in range(3):
        # exact point-to-mesh distance (libigl; trimesh's closest point is off by microns near edges)
        sq, _, _ = igl.point_mesh_squared_distance(out.landmarks[b].numpy(), out.vertices[b].numpy(), faces)
        assert np.sqrt(sq).max() < 1e-9
        v = out.vertices[b].numpy()
        static = (v[faces[emb["static_lmk_faces_idx"]]] * emb["static_lmk_bary_coords"][..., None]).sum(1)
        np.testing.assert_allclose(out.landmarks[b, 17:].numpy(), static, atol=1e-12)
        row = int(out.contour_row[b])
        dyn = (v[faces[emb["dynamic_lmk_faces_idx"][row]]] * emb["dynamic_lmk_bary_coords"][row][..., None]).sum(1)
        np.testing.assert_allclose(out.landmarks[b, :17].numpy(), dyn, atol=1e-12)
    np.testing.assert_allclose(out.landmarks_now7.numpy(), out.landmarks[:, [36, 39, 42, 45, 33, 48, 54]].numpy())


def _silhouette_gap(vertices, region, points, side):
    """Per contour point: how far inside the outline of ``region`` (max of side*x at its height) it lies."""
    v = vertices[region]
    gaps = []
    for p in points:
        slab = v[np.abs(v[:, 1] - p[1]) < 0.004]
        gaps.append((side * slab[:, 0]).max() - side * p[0])
    return np.array(gaps)


@pytest.mark.parametrize("yaw_deg", [-35, -20, 20, 35])
def test_dynamic_contour_follows_the_visible_outline(flame, masks, yaw_deg):
    """Turning the head by +yaw (face towards +x) hides the +x cheek behind the outline: the contour points on
    that side must lie on the face's silhouette (extreme x at their height), and closer to it than the
    contour of the opposite yaw would."""
    yaw = np.deg2rad(yaw_deg)
    pose = torch.tensor([[0.0, yaw, 0.0]], dtype=torch.float64)
    out = flame(global_pose=pose)
    v = out.vertices[0].numpy()
    side = np.sign(yaw_deg)
    row = int(out.contour_row[0])
    from facecourse.flame.landmarks import contour_row_for_yaw

    assert row == int(contour_row_for_yaw(torch.tensor(float(yaw_deg))))
    wrong = int(contour_row_for_yaw(torch.tensor(float(-yaw_deg))))
    faces = flame.faces
    from facecourse.flame.landmarks import barycentric_points

    def contour(r):
        return barycentric_points(out.vertices, faces, flame.dynamic_faces[r][None], flame.dynamic_bary[r][None])[0]

    rest_x = barycentric_points(flame.v_template[None], faces, flame.dynamic_faces[row][None],
                                flame.dynamic_bary[row][None])[0, :, 0].numpy()
    far = side * rest_x > 0.02  # points on the side turning away (not the chin)
    assert far.sum() >= 4
    region = masks["face"]
    gap_right = _silhouette_gap(v, region, contour(row).numpy()[far], side)
    gap_wrong = _silhouette_gap(v, region, contour(wrong).numpy()[far], side)
    assert np.median(gap_right) < 0.004, gap_right
    assert np.median(gap_right) < np.median(gap_wrong), (gap_right, gap_wrong)


def test_neck_rotation_counts_for_the_contour(flame):
    yaw = torch.tensor([[0.0, np.deg2rad(15), 0.0]], dtype=torch.float64)
    both = flame(global_pose=yaw, neck_pose=yaw)
    assert int(both.contour_row[0]) == 39 + 30


def test_gradients_reach_every_input(flame):
    inputs = dict(shape=_rand(2, N_SHAPE), expression=_rand(2, N_EXP), global_pose=_rand(2, 3, 0.2),
                  neck_pose=_rand(2, 3, 0.2), jaw_pose=_rand(2, 3, 0.1), eye_pose=_rand(2, 6, 0.2),
                  translation=_rand(2, 3, 0.1))
    for t in inputs.values():
        t.requires_grad_()
    out = flame(**inputs)
    (out.vertices.square().sum() + out.landmarks.square().sum() + out.joints.square().sum()).backward()
    for name, t in inputs.items():
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0, name


def test_gradcheck_small_pose(flame):
    def f(pose):
        return flame(global_pose=pose[:, :3], jaw_pose=pose[:, 3:]).landmarks

    pose = (_rand(1, 6, 0.1)).requires_grad_()
    assert torch.autograd.gradcheck(f, (pose,), eps=1e-6, atol=1e-6)


def test_batch_equals_singles_and_float32_agrees(flame, path):
    params = dict(shape=_rand(4, N_SHAPE), expression=_rand(4, N_EXP, seed=3), global_pose=_rand(4, 3, 0.3),
                  neck_pose=_rand(4, 3, 0.1), jaw_pose=_rand(4, 3, 0.1), eye_pose=_rand(4, 6, 0.1))
    batch = flame(**params)
    for i in range(4):
        single = flame(**{k: v[i:i + 1] for k, v in params.items()})
        torch.testing.assert_close(single.vertices[0], batch.vertices[i])
        torch.testing.assert_close(single.landmarks[0], batch.landmarks[i])
    flame32 = FLAME.from_file(path, n_shape=N_SHAPE, n_exp=N_EXP, dtype=torch.float32)
    out32 = flame32(**{k: v.float() for k, v in params.items()})
    assert out32.vertices.dtype == torch.float32
    assert (out32.vertices.double() - batch.vertices).abs().max() < 1e-5  # 10 micrometres
    assert (out32.landmarks.double() - batch.landmarks).abs().max() < 1e-5


def test_write_load_round_trip_gives_same_vertices(flame, path, tmp_path):
    save_model(tmp_path / "generic_model.pkl", load_model(path))
    shutil.copy(path.parent / fio.DECA_EMBEDDING, tmp_path / fio.DECA_EMBEDDING)
    again = FLAME.from_file(tmp_path / "generic_model.pkl", n_shape=N_SHAPE, n_exp=N_EXP, dtype=torch.float64)
    params = dict(shape=_rand(2, N_SHAPE), expression=_rand(2, N_EXP), jaw_pose=_rand(2, 3, 0.1))
    torch.testing.assert_close(again(**params).vertices, flame(**params).vertices, rtol=0, atol=0)


def test_ringnet_and_deca_embeddings_agree(path):
    deca = fio.load_deca_landmark_embedding(path.parent / fio.DECA_EMBEDDING)
    ringnet = fio.load_ringnet_landmark_embedding(path.parent)
    for key in ("static_faces", "static_bary", "dynamic_faces", "dynamic_bary"):
        np.testing.assert_array_equal(deca[key], ringnet[key])
    np.testing.assert_array_equal(deca["full_faces"][17:], deca["static_faces"])


def test_smplx_flame_agrees(flame, path, tmp_path):
    smplx = pytest.importorskip("smplx")
    shutil.copy(path, tmp_path / "FLAME_NEUTRAL.pkl")
    for name in (fio.RINGNET_STATIC, fio.RINGNET_DYNAMIC):
        shutil.copy(path.parent / name, tmp_path / name)
    b = 3
    ref = smplx.FLAME(model_path=str(tmp_path), num_betas=N_SHAPE, num_expression_coeffs=N_EXP,
                      use_face_contour=True, batch_size=b, dtype=torch.float64)
    shape, expr = _rand(b, N_SHAPE), _rand(b, N_EXP, seed=4)
    glob = torch.tensor([[0, 0.5, 0], [0.1, -0.4, 0.05], [0, 0, 0]], dtype=torch.float64)
    jaw, eyes = _rand(b, 3, 0.1, seed=5), _rand(b, 6, 0.1, seed=6)
    # smplx's FLAME takes the contour yaw from the global rotation only (its NECK_IDX is 0): neck stays zero
    theirs = ref(betas=shape, expression=expr, global_orient=glob, jaw_pose=jaw, leye_pose=eyes[:, :3],
                 reye_pose=eyes[:, 3:], neck_pose=torch.zeros(b, 3, dtype=torch.float64))
    ours = flame(shape=shape, expression=expr, global_pose=glob, jaw_pose=jaw, eye_pose=eyes)
    torch.testing.assert_close(ours.vertices, theirs.vertices, rtol=0, atol=1e-7)
    torch.testing.assert_close(ours.joints, theirs.joints[:, :5], rtol=0, atol=1e-7)
    # smplx appends the 51 static landmarks, then the 17 contour points
    torch.testing.assert_close(ours.landmarks[:, 17:], theirs.joints[:, 5:56], rtol=0, atol=1e-7)
    torch.testing.assert_close(ours.landmarks[:, :17], theirs.joints[:, 56:73], rtol=0, atol=1e-7)
