import numpy as np
import pytest
import torch
import trimesh

from facecourse.mesh import (
    adjacency_matrix, barycentric_coordinates, edges_from_faces, face_areas, face_normals, load_mesh, save_mesh, vertex_degrees,
    vertex_normals,
)


def test_edges_and_adjacency_of_an_icosphere():
    m = trimesh.creation.icosphere(2)
    e = edges_from_faces(m.faces)
    assert len(e) == len(m.edges_unique)  # Euler: E = 3F/2 on a closed mesh
    assert (e[:, 0] < e[:, 1]).all()
    a = adjacency_matrix(m.faces)
    assert (a != a.T).nnz == 0 and a.diagonal().sum() == 0
    assert set(vertex_degrees(m.faces)) == {5, 6}


def test_bad_faces_are_named():
    with pytest.raises(ValueError, match="faces"):
        edges_from_faces(np.zeros((3, 4), dtype=int))


def test_normals_and_areas_match_trimesh():
    m = trimesh.creation.icosphere(2)
    v = torch.tensor(m.vertices)[None].repeat(2, 1, 1)
    np.testing.assert_allclose(face_normals(v, m.faces)[1].numpy(), m.face_normals, atol=1e-10)
    np.testing.assert_allclose(face_areas(v, m.faces)[0].numpy(), m.area_faces, atol=1e-12)
    vn = vertex_normals(v, m.faces)[0].numpy()
    assert (np.sum(vn * m.vertices / np.linalg.norm(m.vertices, axis=1, keepdims=True), axis=1) > 0.99).all()


def test_mesh_round_trip(tmp_path):
    m = trimesh.creation.icosphere(1)
    for suffix in (".obj", ".ply"):
        p = save_mesh(tmp_path / f"m{suffix}", m.vertices, m.faces)
        v, f = load_mesh(p)
        np.testing.assert_allclose(v, m.vertices, atol=1e-6)
        np.testing.assert_array_equal(f, m.faces)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp files left"
    with pytest.raises(ValueError, match="faces must be an integer array"):
        save_mesh(tmp_path / "bad.obj", m.vertices, m.faces + 0.5)
    assert not (tmp_path / "bad.obj").exists()



def test_barycentric_coordinates_analytic_outside_and_degenerate():
    a, b, c = np.array([[0.0, 0, 0]]), np.array([[2.0, 0, 0]]), np.array([[0.0, 4, 0]])
    p = np.array([[0.5, 1.0, 0.7], [4.0, 0.0, 0.0]])  # the first above the plane (projected), the second outside
    w = barycentric_coordinates(p, *(np.repeat(q, 2, 0) for q in (a, b, c)))
    np.testing.assert_allclose(w, [[0.5, 0.25, 0.25], [-1.0, 2.0, 0.0]], atol=1e-12)
    # degenerate triangles (a point, a segment): the corner nearest the point
    deg = barycentric_coordinates(np.array([[0.9, 0, 0], [0.1, 0, 0]]), np.zeros((2, 3)),
                                  np.array([[1.0, 0, 0], [0.0, 0, 0]]), np.array([[2.0, 0, 0], [0.0, 0, 0]]))
    np.testing.assert_array_equal(deg, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="b must have shape"):
        barycentric_coordinates(p, np.zeros((2, 3)), np.zeros((3, 3)), np.zeros((2, 3)))


def test_as_faces_validates_and_converts():
    from facecourse.mesh import as_faces

    f = as_faces(torch.tensor([[0, 1, 2], [2, 1, 3]], dtype=torch.int32), n_vertices=4)
    assert f.dtype == np.int64 and f.flags.c_contiguous and f.tolist() == [[0, 1, 2], [2, 1, 3]]
    with pytest.raises(ValueError, match=r"outside \[0, 4\): range \[0, 4\]"):
        as_faces([[0, 1, 4]], n_vertices=4)
    with pytest.raises(ValueError, match=r"outside \[0\): range \[-1, 2\]"):
        as_faces([[0, -1, 2]])
    with pytest.raises(ValueError, match="integer array"):
        as_faces(np.array([[0.0, 1.0, 2.0]]))


def test_similarity_procrustes_recovers_a_known_similarity_in_a_batch():
    from scipy.spatial.transform import Rotation

    from facecourse.mesh import similarity_procrustes

    rng = np.random.default_rng(0)
    p = torch.from_numpy(rng.normal(size=(2, 30, 3)))
    rot = torch.from_numpy(Rotation.random(2, random_state=1).as_matrix())
    s_true, t_true = torch.tensor([0.7, 2.5], dtype=torch.float64), torch.from_numpy(rng.normal(size=(2, 3)))
    q = s_true[:, None, None] * p @ rot.transpose(1, 2) + t_true[:, None]
    s, r, t = similarity_procrustes(p, q)
    torch.testing.assert_close(s, s_true)
    torch.testing.assert_close(r, rot)
    torch.testing.assert_close(t, t_true)
    mirrored = q * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)  # best fit would need a reflection
    _, r, _ = similarity_procrustes(p, mirrored)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(2, dtype=torch.float64))
    s, _, _ = similarity_procrustes(p, q, scale=1.0)
    torch.testing.assert_close(s, torch.ones(2, dtype=torch.float64))
