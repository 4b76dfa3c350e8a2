"""FLAME landmarks: barycentric embeddings, the iBUG-68 set with its yaw-dependent contour, NoW-7.

A landmark is a fixed point on the surface: face index :math:`f` and barycentric weights
:math:`(b_0, b_1, b_2)`, so :math:`l = \\sum_k b_k\\, v_{F_{f,k}}` follows the mesh as it deforms.

iBUG-68 = 17 jaw-line ("contour") points + 51 inner points. The inner 51 are static; the contour is
*dynamic*: when the head turns, the visible outline of the cheek moves across the surface, so the embedding
holds one set of 17 contour points per integer yaw in degrees (79 rows, -39..39).

Row convention (smplx / FLAME_PyTorch, written once here): with the head yaw :math:`\\theta` in degrees
(rotation about the model's +y axis of the chain global -> neck, right-handed, so positive turns the face
towards the subject's left, +x), rounded and clamped to [-39, 39],

* :math:`\\theta \\le 0`: row :math:`-\\theta` (rows 0..39),
* :math:`\\theta > 0`: row :math:`39 + \\theta` (rows 40..78).

Which convention each embedding file needs (the ports disagree; the sign is fixed here by geometry):

* RingNet's ``flame_dynamic_embedding.npy``: read by FLAME_PyTorch and smplx with the row of
  :math:`-\\theta` (``clamp(-yaw)`` in their ``find_dynamic_lmk_idx_and_bcoords``), i.e. the convention
  above. This module reads it the same way.
* DECA's ``landmark_embedding.npy``: DECA's own FLAME class (``decalib/models/FLAME.py``) takes the row of
  :math:`+\\theta`: rows 0..39 for :math:`\\theta \\ge 0`, 40..78 for :math:`\\theta < 0` — the two
  halves swapped. This module reads both files with the convention above, so a DECA file is right here only if
  its table is in RingNet's row order (then DECA's own reader picks the wrong cheek); a table in DECA's
  order needs its rows 1..39 and 40..78 exchanged. Which one the published file holds cannot be checked
  without it: ``tests/test_flame_landmarks_contour.py`` decides for any real file present (it renders the
  turned head and requires the chosen contour on the outline the camera sees).
* The synthetic model's files (``data/synthetic/flame/<size>/``, both formats, the same table): generated
  in the convention above with :func:`yaw_for_contour_row`, and checked by the same geometric test.
"""

from __future__ import annotations

import torch

#: iBUG-68 indices of the 7 NoW landmarks: eye corners 36, 39, 42, 45; nose bottom 33; mouth corners 48, 54.
NOW7_IBUG = (36, 39, 42, 45, 33, 48, 54)
#: The same 7 points as indices into the 51 static landmarks (iBUG index - 17).
NOW7_STATIC51 = tuple(i - 17 for i in NOW7_IBUG)
#: Largest yaw (degrees) with its own contour row.
MAX_CONTOUR_YAW = 39
N_CONTOUR_ROWS = 2 * MAX_CONTOUR_YAW + 1


def yaw_degrees(rotation: torch.Tensor) -> torch.Tensor:
    """Yaw of rotation matrices about +y in degrees: :math:`\\operatorname{atan2}(-R_{20}, \\sqrt{R_{00}^2+R_{10}^2})`.

    Args:
        rotation: ``(..., 3, 3)``.

    Returns:
        ``(...)`` yaw in degrees (exact for pure y rotations, the pitch-robust Euler yaw otherwise).
    """
    sy = torch.sqrt(rotation[..., 0, 0] ** 2 + rotation[..., 1, 0] ** 2)
    return torch.rad2deg(torch.atan2(-rotation[..., 2, 0], sy))


def contour_row_for_yaw(yaw: torch.Tensor) -> torch.Tensor:
    """Row of the dynamic contour table for a head yaw (degrees), ``(...)`` long in [0, 78]."""
    y = torch.round(yaw).clamp(-MAX_CONTOUR_YAW, MAX_CONTOUR_YAW).long()
    return torch.where(y <= 0, -y, MAX_CONTOUR_YAW + y)


def yaw_for_contour_row(row: int) -> int:
    """Inverse of :func:`contour_row_for_yaw`: the yaw (degrees) that row ``row`` in [0, 78] is made for."""
    if not 0 <= row < N_CONTOUR_ROWS:
        raise ValueError(f"contour row must be in [0, {N_CONTOUR_ROWS - 1}], got {row}")
    return -row if row <= MAX_CONTOUR_YAW else row - MAX_CONTOUR_YAW


def barycentric_points(vertices: torch.Tensor, faces: torch.Tensor, face_idx: torch.Tensor,
                       bary: torch.Tensor) -> torch.Tensor:
    """Points given by faces and barycentric weights on a batched mesh.

    Args:
        vertices: ``(B, V, 3)``.
        faces: ``(F, 3)`` long.
        face_idx: ``(L,)`` or ``(B, L)`` long face indices.
        bary: ``(L, 3)`` or ``(B, L, 3)`` weights (rows sum to 1).

    Returns:
        ``(B, L, 3)``: :math:`l = \\sum_k b_k v_{F_{f,k}}`.
    """
    b = vertices.shape[0]
    face_idx = face_idx.expand(b, -1) if face_idx.ndim == 1 else face_idx
    bary = bary.expand(b, -1, -1) if bary.ndim == 2 else bary
    tri_vertex = faces[face_idx]  # (B, L, 3)
    pts = torch.gather(vertices, 1, tri_vertex.reshape(b, -1, 1).expand(-1, -1, 3)).reshape(b, -1, 3, 3)
    return (pts * bary.to(vertices.dtype)[..., None]).sum(dim=2)


def head_yaw(rot_mats: torch.Tensor) -> torch.Tensor:
    """Yaw (degrees) of the rotation chain global -> neck: :func:`yaw_degrees` of :math:`R_0 R_1`.

    Args:
        rot_mats: ``(B, J, 3, 3)`` local joint rotations (joint 0 global, 1 neck).

    Returns:
        ``(B,)`` degrees; positive turns the face towards the subject's left (+x).
    """
    return yaw_degrees(rot_mats[:, 0] @ rot_mats[:, 1])


def flame_landmarks(vertices: torch.Tensor, faces: torch.Tensor, rot_mats: torch.Tensor,
                    static_faces: torch.Tensor, static_bary: torch.Tensor, dynamic_faces: torch.Tensor,
                    dynamic_bary: torch.Tensor):
    """iBUG-68 landmarks with the yaw-dependent contour (row convention of :mod:`facecourse.flame.landmarks`).

    Args:
        vertices: ``(B, V, 3)`` posed vertices; faces: ``(F, 3)``.
        rot_mats: ``(B, J, 3, 3)`` local rotations (for the yaw of global -> neck).
        static_faces ``(51,)``, static_bary ``(51, 3)``, dynamic_faces ``(79, 17)``, dynamic_bary ``(79, 17, 3)``.

    Returns:
        ``landmarks`` ``(B, 68, 3)`` and the contour ``row`` ``(B,)``.
    """
    row = contour_row_for_yaw(head_yaw(rot_mats).detach())
    b = vertices.shape[0]
    face_idx = torch.cat([dynamic_faces[row], static_faces.expand(b, -1)], dim=1)
    bary = torch.cat([dynamic_bary[row], static_bary.expand(b, -1, -1)], dim=1)
    return barycentric_points(vertices, faces, face_idx, bary), row


__all__ = [
    "MAX_CONTOUR_YAW", "N_CONTOUR_ROWS", "NOW7_IBUG", "NOW7_STATIC51", "barycentric_points",
    "contour_row_for_yaw", "flame_landmarks", "head_yaw", "yaw_degrees", "yaw_for_contour_row",
]
