"""facecourse.mesh.sampling: decimation to a vertex count (the COMA hierarchy's operators are tested through
facecourse.nn.hierarchy in test_nn_hierarchy.py)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from facecourse.mesh import decimate


def test_decimate_bad_input():
    m = trimesh.creation.icosphere(1)
    with pytest.raises(ValueError, match="n_target"):
        decimate(m.vertices, m.faces, len(m.vertices))


def test_small_closed_parts_get_the_closest_reachable_count():
    """A coarse level with eyeball-like closed parts: collapses remove whole parts at once, so the exact count
    may be out of reach; decimation still returns a valid selection with the closest count."""
    import trimesh

    parts = [trimesh.creation.icosphere(1), trimesh.creation.icosphere(0).apply_translation([3, 0, 0]),
             trimesh.creation.icosphere(0).apply_translation([-3, 0, 0])]
    mesh = trimesh.util.concatenate(parts)
    for n_target in range(4, 20):
        kept, coarse_faces = decimate(mesh.vertices, mesh.faces, n_target)
        assert abs(len(kept) - n_target) <= 3
        assert len(np.unique(kept)) == len(kept) and kept.max() < len(mesh.vertices)
        assert coarse_faces.min() >= 0 and coarse_faces.max() < len(kept)
        assert set(np.unique(coarse_faces)) == set(range(len(kept)))
