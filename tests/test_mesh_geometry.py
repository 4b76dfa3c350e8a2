"""facecourse.mesh.geometry: normals, areas, barycentric coordinates and the batched similarity fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from facecourse.mesh import barycentric_coordinates, face_areas, face_normals, vertex_normals


def test_normals_and_areas_match_trimesh():
    m = trimesh.creation.icosphere(2)
    v = torch.tensor(m.vertices)[None].repeat(2, 1, 1)
    np.testing.assert_allclose(face_normals(v, m.faces)[1].numpy(), m.face_normals, atol=1e-10)
    np.testing.assert_allclose(face_areas(v, m.faces)[0].numpy(), m.area_faces, atol=1e-12)
    vn = vertex_normals(v, m.faces)[0].numpy()
    assert (np.sum(vn * m.vertices / np.linalg.norm(m.vertices, axis=1, keepdims=True), axis=1) > 0.99).all()


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
