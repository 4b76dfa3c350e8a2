r"""Linear blend skinning (LBS) for FLAME, as small pure functions.

The FLAME forward pass, step by step (each step one function below):

1. **Blend shapes** (:func:`blend_shapes`): :math:`T_S = \bar T + \sum_k \beta_k S_k + \sum_k \psi_k E_k`,
   a linear combination of per-vertex displacement fields added to the template.
2. **Joint regression** (:func:`vertices2joints`): :math:`J = \mathcal{J} T_S`, joints as fixed linear
   combinations of the shaped vertices, so they move with the identity.
3. **Rotations** (:func:`rodrigues`): each joint's axis-angle :math:`\omega` becomes
   :math:`R = I + \frac{\sin\theta}{\theta} K + \frac{1-\cos\theta}{\theta^2} K^2`, :math:`\theta=\|\omega\|`,
   :math:`K = [\omega]_\times`.
4. **Pose correctives** (:func:`pose_feature`, :func:`pose_offsets`): :math:`T_P = T_S + \sum_{j\ge1}
   \operatorname{vec}(R_j - I)\,P`, small learned corrections driven by the non-root rotations.
5. **Kinematic chain** (:func:`batch_rigid_transform`): world transforms :math:`G_j = G_{p(j)} \begin{bmatrix}
   R_j & J_j - J_{p(j)} \\ 0 & 1\end{bmatrix}`, then made relative to the rest pose:
   :math:`A_j = G_j \begin{bmatrix} I & -J_j \\ 0 & 1 \end{bmatrix}`.
6. **Skinning** (:func:`skin`): :math:`v_i = \sum_j w_{ij} A_j \begin{bmatrix} t_i \\ 1 \end{bmatrix}`.

:func:`lbs` chains them. Shapes use ``B`` batch, ``V`` vertices, ``J`` joints, ``K`` blend shapes.
"""

from __future__ import annotations

import torch


def skew(vectors: torch.Tensor) -> torch.Tensor:
    r"""Cross-product matrices :math:`[\omega]_\times` with :math:`[\omega]_\times x = \omega \times x`.

    Args:
        vectors: ``(..., 3)``.

    Returns:
        ``(..., 3, 3)``.
    """
    x, y, z = vectors.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*vectors.shape, 3)


def rodrigues(rot_vecs: torch.Tensor) -> torch.Tensor:
    r"""Rotation matrices from axis-angle vectors (Rodrigues' formula).

    :math:`R = I + a K + b K^2` with :math:`K = [\omega]_\times`, :math:`\theta = \|\omega\|`,
    :math:`a = \sin\theta/\theta`, :math:`b = (1-\cos\theta)/\theta^2`. Near :math:`\theta=0` the Taylor
    series :math:`a \approx 1-\theta^2/6`, :math:`b \approx 1/2-\theta^2/24` is used, so the result and its
    gradient are exact and finite at zero (no epsilon added to the angle).

    Args:
        rot_vecs: ``(..., 3)`` axis-angle in radians (axis times angle).

    Returns:
        ``(..., 3, 3)`` rotation matrices, same dtype/device.
    """
    if rot_vecs.shape[-1] != 3:
        raise ValueError(f"rot_vecs must have shape (..., 3), got {tuple(rot_vecs.shape)}")
    theta2 = (rot_vecs * rot_vecs).sum(-1)
    small = theta2 < 1e-6
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    theta = torch.sqrt(safe2)
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / safe2)
    k = skew(rot_vecs)
    eye = torch.eye(3, dtype=rot_vecs.dtype, device=rot_vecs.device).expand_as(k)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


#: smplx / DECA name of :func:`rodrigues` for ``(N, 3)`` inputs.
batch_rodrigues = rodrigues


def blend_shapes(coefficients: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    r"""Per-vertex displacements :math:`\sum_k c_k D_k`.

    Args:
        coefficients: ``(B, K)`` (shape :math:`\beta` and/or expression :math:`\psi`).
        directions: ``(V, 3, K)`` blend shapes (``shapedirs`` layout).

    Returns:
        ``(B, V, 3)`` displacements in the unit of ``directions`` (metres for FLAME).
    """
    if coefficients.shape[-1] != directions.shape[-1]:
        raise ValueError(f"coefficients have {coefficients.shape[-1]} components but directions "
                         f"{tuple(directions.shape)} have {directions.shape[-1]}")
    v, c, k = directions.shape
    return (coefficients @ directions.reshape(v * c, k).T).reshape(-1, v, c)


def blend_shape_variance(directions: torch.Tensor) -> torch.Tensor:
    r"""Fraction of the model's total vertex variance each blend shape explains.

    With coefficients drawn independently from :math:`\mathcal N(0, 1)` (how FLAME's PCA coefficients are
    scaled), the offset :math:`\sum_k c_k D_k` has total variance
    :math:`\operatorname{tr}\operatorname{Cov} = \sum_k \|D_k\|^2`, so component :math:`k` explains
    :math:`\|D_k\|^2 / \sum_j \|D_j\|^2` (for PCA directions :math:`D_k = \sigma_k u_k` this is
    :math:`\sigma_k^2 / \sum_j \sigma_j^2`). All-zero directions give zeros.

    Args:
        directions: ``(V, 3, K)`` blend shapes (``shapedirs`` layout).

    Returns:
        ``(K,)`` fractions summing to 1 (or all zero).
    """
    energy = directions.square().sum(dim=(0, 1))
    total = energy.sum()
    return energy / total if total > 0 else energy


def vertices2joints(j_regressor: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    r"""Joint locations :math:`J = \mathcal{J} V` regressed from vertices.

    Args:
        j_regressor: ``(J, V)`` dense.
        vertices: ``(B, V, 3)``.

    Returns:
        ``(B, J, 3)``.
    """
    return torch.matmul(j_regressor, vertices)


def pose_feature(rot_mats: torch.Tensor) -> torch.Tensor:
    r"""Pose-corrective feature :math:`\operatorname{vec}(R_j - I)` of the non-root joints.

    Args:
        rot_mats: ``(B, J, 3, 3)``.

    Returns:
        ``(B, 9 (J - 1))``, row-major per joint (the order ``posedirs`` was trained with).
    """
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
    return (rot_mats[:, 1:] - eye).reshape(rot_mats.shape[0], -1)


def pose_offsets(rot_mats: torch.Tensor, posedirs: torch.Tensor) -> torch.Tensor:
    """Pose-corrective displacements: :func:`pose_feature` times ``posedirs``.

    Args:
        rot_mats: ``(B, J, 3, 3)``.
        posedirs: ``(V, 3, 9 (J - 1))`` (official layout).

    Returns:
        ``(B, V, 3)``.
    """
    return blend_shapes(pose_feature(rot_mats), posedirs)


def batch_rigid_transform(rot_mats: torch.Tensor, joints: torch.Tensor, parents: torch.Tensor):
    r"""Chain local joint rotations along the kinematic tree.

    Args:
        rot_mats: ``(B, J, 3, 3)`` local rotations (relative to the parent).
        joints: ``(B, J, 3)`` rest-pose joint locations.
        parents: ``(J,)`` long, ``parents[0] = -1`` and ``parents[j] < j``.

    Returns:
        ``posed_joints`` ``(B, J, 3)``: world joint locations :math:`G_j [0,0,0,1]^T`;
        ``rel_transforms`` ``(B, J, 4, 4)``: :math:`A_j = G_j \begin{bmatrix} I & -J_j\\0&1\end{bmatrix}`,
        mapping rest-pose points to posed points for a vertex fully bound to joint ``j``.
    """
    parents = [int(p) for p in parents]
    if parents[0] != -1 or any(not 0 <= p < j for j, p in enumerate(parents) if j > 0):
        raise ValueError(f"parents must start with -1 and list each joint after its parent, got {parents}")
    rel_joints = joints.clone()
    rel_joints[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    b, n = joints.shape[:2]
    local = torch.zeros(b, n, 4, 4, dtype=joints.dtype, device=joints.device)
    local[..., :3, :3] = rot_mats
    local[..., :3, 3] = rel_joints
    local[..., 3, 3] = 1
    chain = [local[:, 0]]
    for j in range(1, n):
        chain.append(chain[parents[j]] @ local[:, j])
    world = torch.stack(chain, dim=1)
    posed_joints = world[..., :3, 3]
    rel = world.clone()
    rel[..., :3, 3] = world[..., :3, 3] - (world[..., :3, :3] @ joints[..., None])[..., 0]
    return posed_joints, rel


def skin(vertices: torch.Tensor, weights: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    r"""Linear blend skinning :math:`v_i = \sum_j w_{ij} A_j [t_i; 1]`.

    Args:
        vertices: ``(B, V, 3)`` rest-pose (shaped + pose-corrected) vertices.
        weights: ``(V, J)`` skinning weights (rows sum to 1).
        transforms: ``(B, J, 4, 4)`` from :func:`batch_rigid_transform`.

    Returns:
        ``(B, V, 3)`` posed vertices.
    """
    b, j = transforms.shape[:2]
    blended = torch.matmul(weights, transforms.reshape(b, j, 16)).reshape(b, -1, 4, 4)  # (B, V, 4, 4)
    return (blended[..., :3, :3] @ vertices[..., None])[..., 0] + blended[..., :3, 3]


def lbs(coefficients: torch.Tensor, pose: torch.Tensor, v_template: torch.Tensor, shapedirs: torch.Tensor,
        posedirs: torch.Tensor, j_regressor: torch.Tensor, parents: torch.Tensor, weights: torch.Tensor):
    r"""The whole FLAME/SMPL forward pass (module docstring steps 1–6).

    Args:
        coefficients: ``(B, K)`` shape then expression coefficients.
        pose: ``(B, 3 J)`` axis-angle per joint (FLAME: global, neck, jaw, left eye, right eye).
        v_template: ``(V, 3)``; shapedirs: ``(V, 3, K)``; posedirs: ``(V, 3, 9 (J-1))``;
        j_regressor: ``(J, V)``; parents: ``(J,)``; weights: ``(V, J)``.

    Returns:
        ``vertices`` ``(B, V, 3)``, ``joints`` ``(B, J, 3)`` (posed), ``rot_mats`` ``(B, J, 3, 3)`` (local).
    """
    b = coefficients.shape[0]
    v_shaped = v_template + blend_shapes(coefficients, shapedirs)
    joints = vertices2joints(j_regressor, v_shaped)
    rot_mats = rodrigues(pose.reshape(b, -1, 3))
    v_posed = v_shaped + pose_offsets(rot_mats, posedirs)
    posed_joints, transforms = batch_rigid_transform(rot_mats, joints, parents)
    return skin(v_posed, weights, transforms), posed_joints, rot_mats


__all__ = ["batch_rigid_transform", "batch_rodrigues", "blend_shape_variance", "blend_shapes", "lbs",
           "pose_feature", "pose_offsets", "rodrigues", "skew", "skin", "vertices2joints"]
