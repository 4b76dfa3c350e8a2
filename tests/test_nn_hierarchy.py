"""facecourse.nn.hierarchy, the COMA hierarchy: level sizes, D selects, U barycentric, disk cache.

Decimation itself (facecourse.mesh.sampling) is tested in test_mesh_sampling.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from facecourse.mesh import decimate
from facecourse.nn import build_hierarchy, hierarchy_cache_path
from facecourse.mesh.topology import topology_hash


pytestmark = pytest.mark.usefixtures("data_dir")  # $FACECOURSE_DATA in tmp_path (conftest.py)


def flame_sized_mesh():
    """A closed 5023-vertex mesh (FLAME's vertex count) made by decimating an icosphere."""
    m = trimesh.creation.icosphere(5, radius=0.1)
    kept, faces = decimate(m.vertices, m.faces, 5023)
    return m.vertices[kept], faces


def test_flame_vertex_counts():
    v, f = flame_sized_mesh()
    h = build_hierarchy(v, f)
    assert h.sizes == [5023, 1256, 314, 79, 20]  # COMA's FLAME hierarchy
    assert h.n_levels == 4


def test_down_and_up_matrices():
    m = trimesh.creation.icosphere(4, radius=0.1)
    h = build_hierarchy(m.vertices, m.faces, factors=(4, 4))
    for level, (d, u) in enumerate(zip(h.down, h.up)):
        fine, coarse = h.vertices[level], h.vertices[level + 1]
        assert d.shape == (len(coarse), len(fine)) and u.shape == (len(fine), len(coarse))
        # D selects: one 1 per row, distinct columns, and it maps the fine template to the coarse one
        assert np.all(d.getnnz(axis=1) == 1) and np.all(d.data == 1.0)
        assert len(np.unique(d.indices)) == len(coarse)
        np.testing.assert_array_equal(d @ fine, coarse)
        # U: non-negative barycentric rows (<= 3 entries) summing to 1
        assert u.data.min() >= 0 and np.all(u.getnnz(axis=1) <= 3)
        np.testing.assert_allclose(np.asarray(u.sum(axis=1)).ravel(), 1.0, atol=1e-12)
        # a kept vertex lies on the coarse surface at its own corner: its row is one-hot there
        np.testing.assert_allclose(u[d.indices].toarray(),
                                   np.eye(len(coarse)), atol=1e-9)
        # up-sampling the coarse template lands on the coarse surface, close to the fine template
        edge = np.linalg.norm(coarse[h.faces[level + 1][:, 0]] - coarse[h.faces[level + 1][:, 1]], axis=1).mean()
        assert np.abs(u @ coarse - fine).max() < edge
        # every coarse face indexes valid vertices and is non-degenerate
        cf = h.faces[level + 1]
        assert cf.max() < len(coarse) and np.all((cf[:, 0] != cf[:, 1]) & (cf[:, 1] != cf[:, 2]))


def test_up_matrix_is_closest_point_barycentric():
    """Compare U's interpolated points with trimesh's independent closest-point query."""
    m = trimesh.creation.icosphere(3, radius=0.1)
    h = build_hierarchy(m.vertices, m.faces, factors=(4,))
    coarse = trimesh.Trimesh(h.vertices[1], h.faces[1], process=False)
    closest, _, _ = trimesh.proximity.closest_point(coarse, h.vertices[0])
    np.testing.assert_allclose(h.up[0] @ h.vertices[1], closest, atol=1e-9)


def test_cache_round_trip():
    m = trimesh.creation.icosphere(3)
    path = hierarchy_cache_path(m.vertices, m.faces, (4, 4))
    assert not path.exists()
    a = build_hierarchy(m.vertices, m.faces, factors=(4, 4))
    assert path.is_file()
    b = build_hierarchy(m.vertices, m.faces, factors=(4, 4))
    assert a.topology == b.topology == topology_hash(m.faces, len(m.vertices))
    for x, y in zip(a.down + a.up, b.down + b.up):
        assert (x != y).nnz == 0
    for x, y in zip(a.faces + a.vertices, b.faces + b.vertices):
        np.testing.assert_array_equal(x, y)
    assert hierarchy_cache_path(m.vertices, m.faces, (4,)) != path  # config is part of the key


def test_bad_input():
    m = trimesh.creation.icosphere(1)
    with pytest.raises(ValueError, match="factors"):
        build_hierarchy(m.vertices, m.faces, factors=(1,))
