"""facecourse.mesh.topology: edges, adjacency, degrees, face validation and the topology hash."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from facecourse.mesh import adjacency_matrix, as_faces, edges_from_faces, vertex_degrees
from facecourse.mesh.topology import topology_hash


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


def test_as_faces_validates_and_converts():
    f = as_faces(torch.tensor([[0, 1, 2], [2, 1, 3]], dtype=torch.int32), n_vertices=4)
    assert f.dtype == np.int64 and f.flags.c_contiguous and f.tolist() == [[0, 1, 2], [2, 1, 3]]
    with pytest.raises(ValueError, match=r"outside \[0, 4\): range \[0, 4\]"):
        as_faces([[0, 1, 4]], n_vertices=4)
    with pytest.raises(ValueError, match=r"outside \[0\): range \[-1, 2\]"):
        as_faces([[0, -1, 2]])
    with pytest.raises(ValueError, match="integer array"):
        as_faces(np.array([[0.0, 1.0, 2.0]]))


def test_topology_hash():
    f = np.array([[0, 1, 2], [0, 2, 3]])
    assert topology_hash(f) == topology_hash(f.astype(np.int32))
    assert topology_hash(f) != topology_hash(f[:, [0, 2, 1]])
    assert topology_hash(f) != topology_hash(f, n_vertices=5)


def test_topology_hash_sees_faces_and_count():
    m = trimesh.creation.icosphere(1)
    h = topology_hash(m.faces, len(m.vertices))
    assert h != topology_hash(m.faces, len(m.vertices) + 1)
    assert h != topology_hash(m.faces[::-1], len(m.vertices))
