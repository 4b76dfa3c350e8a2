r"""The ``FLAME`` module: a thin ``nn.Module`` shell around :func:`facecourse.flame.lbs.lbs` and landmarks.

.. math::

    M(\beta, \psi, \theta) = W\big(\bar T + B_S(\beta) + B_E(\psi) + B_P(\theta),\ J(\beta, \psi),\
    \theta,\ \mathcal W\big)

FLAME model space: metres, +x = subject's left, +y up, +z out of the face. Joints: 0 global (root),
1 neck, 2 jaw, 3 left eye, 4 right eye; ``eye_pose`` is ``(B, 6)`` = left eye axis-angle then right eye.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facecourse.flame.io import (EXPRESSION_SPACE_DIM, JOINT_NAMES, MODEL_FILE, SHAPE_SPACE_DIM,
                                 find_landmark_embedding, load_model)
from facecourse.flame.landmarks import N_CONTOUR_ROWS, NOW7_IBUG, flame_landmarks
from facecourse.flame.lbs import lbs

@dataclass
class FLAMEOutput:
    """Result of :meth:`FLAME.forward` (all in metres, batch first).

    Attributes:
        vertices: ``(B, V, 3)``.
        landmarks: ``(B, 68, 3)`` iBUG-68 (17 dynamic contour points, then the 51 static ones).
        landmarks_now7: ``(B, 7, 3)`` NoW landmarks (iBUG 36, 39, 42, 45, 33, 48, 54).
        joints: ``(B, 5, 3)`` posed joints (global, neck, jaw, left eye, right eye).
        contour_row: ``(B,)`` long, the row of the dynamic contour table used.
    """

    vertices: torch.Tensor
    landmarks: torch.Tensor
    landmarks_now7: torch.Tensor
    joints: torch.Tensor
    contour_row: torch.Tensor


class FLAME(nn.Module):
    """FLAME head model with ``n_shape`` identity and ``n_exp`` expression components.

    Build with :meth:`from_file` (safe loading; landmark embedding read from beside the pickle) or from
    arrays with the constructor. All buffers follow ``.to(device/dtype)``.
    """

    def __init__(self, model: dict, embedding: dict, n_shape: int = 100, n_exp: int = 50,
                 dtype: torch.dtype = torch.float32):
        """
        Args:
            model: arrays as returned by :func:`facecourse.flame.load_model`.
            embedding: as returned by :func:`facecourse.flame.io.find_landmark_embedding`.
            n_shape: identity components used (<= 300). n_exp: expression components used (<= K - 300).
            dtype: float dtype of the buffers.
        """
        super().__init__()
        k = model["shapedirs"].shape[-1]
        if not 0 <= n_shape <= min(SHAPE_SPACE_DIM, k):
            raise ValueError(f"n_shape must be in [0, {min(SHAPE_SPACE_DIM, k)}], got {n_shape}")
        if not 0 <= n_exp <= max(k - SHAPE_SPACE_DIM, 0):
            raise ValueError(f"n_exp must be in [0, {max(k - SHAPE_SPACE_DIM, 0)}] for shapedirs with {k} "
                             f"components, got {n_exp}")
        self.n_shape, self.n_exp = n_shape, n_exp
        sd = model["shapedirs"]
        dirs = np.concatenate([sd[..., :n_shape], sd[..., SHAPE_SPACE_DIM:SHAPE_SPACE_DIM + n_exp]], axis=-1)
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype)  # noqa: E731
        self.register_buffer("v_template", t(model["v_template"]))
        self.register_buffer("shapedirs", t(dirs))
        self.register_buffer("posedirs", t(model["posedirs"]))
        self.register_buffer("J_regressor", t(model["J_regressor"]))
        self.register_buffer("lbs_weights", t(model["weights"]))
        self.register_buffer("parents", torch.as_tensor(model["kintree_table"][0], dtype=torch.long))
        self.register_buffer("faces", torch.as_tensor(np.asarray(model["f"]), dtype=torch.long))
        self.register_buffer("static_faces", torch.as_tensor(embedding["static_faces"], dtype=torch.long))
        self.register_buffer("static_bary", t(embedding["static_bary"]))
        self.register_buffer("dynamic_faces", torch.as_tensor(embedding["dynamic_faces"], dtype=torch.long))
        self.register_buffer("dynamic_bary", t(embedding["dynamic_bary"]))
        self.register_buffer("now7_index", torch.as_tensor(NOW7_IBUG, dtype=torch.long))  # landmarks are iBUG-68
        if self.dynamic_faces.shape[0] != N_CONTOUR_ROWS:
            raise ValueError(f"dynamic landmark table must have {N_CONTOUR_ROWS} rows, got "
                             f"{self.dynamic_faces.shape[0]}")
        n_f = self.faces.shape[0]
        for name in ("static_faces", "dynamic_faces"):
            idx = getattr(self, name)
            if idx.numel() and (idx.min() < 0 or idx.max() >= n_f):
                raise ValueError(f"landmark embedding '{name}' indexes faces outside [0, {n_f})")
        self.source = str(model.get("_source", ""))

    @classmethod
    def from_file(cls, path: str | os.PathLike, n_shape: int = 100, n_exp: int = 50,
                  dtype: torch.dtype = torch.float32, landmark_dir: str | os.PathLike | None = None) -> "FLAME":
        """Load a FLAME pickle safely and the landmark embedding beside it (DECA first, then RingNet).

        Args:
            path: ``generic_model.pkl`` (real or synthetic) or its folder.
            n_shape, n_exp: numbers of components used.
            dtype: buffer dtype.
            landmark_dir: folder of the landmark embedding if not beside the pickle.
        """
        path = Path(path)
        model_file = path / MODEL_FILE if path.is_dir() else path
        model = load_model(model_file)
        embedding = find_landmark_embedding(landmark_dir if landmark_dir is not None else model_file.parent)
        model["_source"] = model_file
        return cls(model, embedding, n_shape=n_shape, n_exp=n_exp, dtype=dtype)

    def extra_repr(self) -> str:
        return (f"n_vertices={self.n_vertices}, n_faces={self.faces.shape[0]}, n_shape={self.n_shape}, "
                f"n_exp={self.n_exp}, source={self.source!r}")

    @property
    def n_vertices(self) -> int:
        """Number of vertices ``V``."""
        return self.v_template.shape[0]

    def _param(self, x, width: int, name: str, b: int, exact: bool = True):
        if x is None:
            return self.v_template.new_zeros(b, width)
        if x.ndim != 2 or x.shape[0] != b or x.shape[1] > width or (exact and x.shape[1] != width):
            expected = f"(B={b}, {width})" if exact else f"(B={b}, k <= {width})"
            raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()):  # a NaN pose would index the contour table at -2^63
            rows = torch.nonzero(~torch.isfinite(x))[:, 0].unique().tolist()
            raise ValueError(f"{name} contains NaN or inf (batch element(s) {rows[:5]})")
        x = x.to(self.v_template.dtype)
        return x if x.shape[1] == width else torch.nn.functional.pad(x, (0, width - x.shape[1]))

    def forward(self, shape=None, expression=None, global_pose=None, neck_pose=None, jaw_pose=None,
                eye_pose=None, translation=None, batch_size: int | None = None) -> FLAMEOutput:
        """Posed head.

        Args (each a tensor or ``None`` = zeros; ``B`` taken from the first given, else ``batch_size`` or 1):
            shape: ``(B, k <= n_shape)``; expression: ``(B, k <= n_exp)`` (missing trailing components = 0).
            global_pose, neck_pose, jaw_pose: ``(B, 3)`` axis-angle (radians); eye_pose: ``(B, 6)``
            (left eye, right eye); translation: ``(B, 3)`` metres, added to every output point.

        Returns:
            :class:`FLAMEOutput`.

        Raises:
            ValueError: naming the parameter whose shape is wrong or that holds NaN / inf.
        """
        given = [x for x in (shape, expression, global_pose, neck_pose, jaw_pose, eye_pose, translation)
                 if x is not None]
        b = given[0].shape[0] if given else (batch_size or 1)
        if batch_size is not None and b != batch_size:
            raise ValueError(f"batch_size={batch_size} but the inputs have batch {b}")
        coeff = torch.cat([self._param(shape, self.n_shape, "shape", b, exact=False),
                           self._param(expression, self.n_exp, "expression", b, exact=False)], dim=1)
        pose = torch.cat([self._param(global_pose, 3, "global_pose", b), self._param(neck_pose, 3, "neck_pose", b),
                          self._param(jaw_pose, 3, "jaw_pose", b), self._param(eye_pose, 6, "eye_pose", b)], dim=1)
        vertices, joints, rot_mats = lbs(coeff, pose, self.v_template, self.shapedirs, self.posedirs,
                                         self.J_regressor, self.parents, self.lbs_weights)
        landmarks, row = flame_landmarks(vertices, self.faces, rot_mats, self.static_faces, self.static_bary,
                                         self.dynamic_faces, self.dynamic_bary)
        if translation is not None:
            t = self._param(translation, 3, "translation", b)[:, None]
            vertices, joints, landmarks = vertices + t, joints + t, landmarks + t
        return FLAMEOutput(vertices=vertices, landmarks=landmarks, landmarks_now7=landmarks[:, self.now7_index],
                           joints=joints, contour_row=row)


__all__ = ["EXPRESSION_SPACE_DIM", "FLAME", "FLAMEOutput", "JOINT_NAMES", "SHAPE_SPACE_DIM"]
