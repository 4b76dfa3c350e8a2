"""Triangle meshes: I/O, topology (edges, adjacency, topology hash), geometry (normals, areas, barycentric
coordinates, similarity Procrustes) and COMA's down/up-sampling operators.

Conventions: vertices ``(B, V, 3)`` or ``(V, 3)`` float, faces ``(F, 3)`` int64, counter-clockwise
winding seen from outside (normals point out of the head).
"""

from facecourse.mesh.geometry import (
    barycentric_coordinates, face_areas, face_normals, similarity_procrustes, vertex_normals,
)
from facecourse.mesh.io import load_mesh, save_mesh
from facecourse.mesh.sampling import decimate, downsample_matrix, upsample_matrix
from facecourse.mesh.topology import adjacency_matrix, as_faces, edges_from_faces, topology_hash, vertex_degrees

__all__ = [
    "adjacency_matrix",
    "as_faces",
    "barycentric_coordinates",
    "decimate",
    "downsample_matrix",
    "edges_from_faces",
    "face_areas",
    "face_normals",
    "load_mesh",
    "save_mesh",
    "similarity_procrustes",
    "topology_hash",
    "upsample_matrix",
    "vertex_degrees",
    "vertex_normals",
]
