"""Spherical-harmonics (SH) Lambertian shading with 9 coefficients per colour channel, as DECA uses.

Under distant lighting with radiance :math:`L(\\omega) = \\sum_{lm} L_{lm} Y_{lm}(\\omega)`, the irradiance
of a convex Lambertian surface with unit normal :math:`n` is (Ramamoorthi & Hanrahan 2001)

.. math::
    E(n) = \\int_{S^2} L(\\omega) \\max(0, n\\cdot\\omega)\\, d\\omega
         = \\sum_{l \\le 2} \\sum_m A_l L_{lm} Y_{lm}(n),
    \\qquad A_0 = \\pi,\\; A_1 = \\tfrac{2\\pi}{3},\\; A_2 = \\tfrac{\\pi}{4},

exactly for radiance of bands :math:`l \\le 2` (higher bands of the clamped cosine are small). The 9
basis functions :math:`H_k(n) = A_l Y_{lm}(n)` in DECA's order are

.. math::
    H(n) = \\bigl[c_0,\\; c_1 n_x,\\; c_1 n_y,\\; c_1 n_z,\\; c_2 n_x n_y,\\; c_2 n_x n_z,\\; c_2 n_y n_z,\\;
    c_3 (n_x^2 - n_y^2),\\; c_4 (3 n_z^2 - 1)\\bigr]

with the constants :data:`SH_CONSTANTS` of REFERENCE.md: :math:`c_k = A_l \\times` the normalisation of
:math:`Y_{lm}`, except that DECA leaves :math:`A_0 = \\pi` out of band 0 (:math:`c_0 = 1/\\sqrt{4\\pi}`).
We keep DECA's constants so that lighting codes are interchangeable; a radiance coefficient
:math:`L_{00}` therefore enters as :math:`\\pi L_{00}`. The shading of a pixel with albedo :math:`\\rho`
is :math:`\\rho \\odot \\sum_k H_k(n) L_k`
with lighting ``(B, 9, 3)``.

Normals are in the view frame (:mod:`facecourse.render.camera`: +x image right, +y up, +z towards the
camera), so e.g. a positive coefficient 3 (:math:`n_z`) lights the face from the camera.
"""

from __future__ import annotations

import math

import torch

#: DECA's SH constants, one per basis function (REFERENCE.md).
SH_CONSTANTS = (
    1 / math.sqrt(4 * math.pi),
    (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi)),
    (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi)),
    (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi)),
    (math.pi / 4) * 3 * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * 3 * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * 3 * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * (3 / 2) * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * (1 / 2) * math.sqrt(5 / (4 * math.pi)),
)
#: :math:`A_l` per basis function (band 0 scaled by :math:`1/\\pi` as in DECA, see the module docstring).
SH_BAND_FACTORS = (1.0,) + (2 * math.pi / 3,) * 3 + (math.pi / 4,) * 5


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """The 9 SH irradiance basis functions :math:`H_k(n)` of unit normals.

    Args:
        normals: ``(..., 3)`` unit vectors (view frame).

    Returns:
        ``(..., 9)``.
    """
    if normals.shape[-1] != 3:
        raise ValueError(f"normals must have a last dimension of 3, got {tuple(normals.shape)}")
    nx, ny, nz = normals.unbind(-1)
    raw = torch.stack([torch.ones_like(nx), nx, ny, nz, nx * ny, nx * nz, ny * nz, nx * nx - ny * ny,
                       3 * nz * nz - 1], dim=-1)
    return raw * raw.new_tensor(SH_CONSTANTS)


def sh_shading(normals: torch.Tensor, lighting: torch.Tensor) -> torch.Tensor:
    """Irradiance :math:`\\sum_k H_k(n) L_{k,c}` per colour channel.

    Args:
        normals: ``(B, ..., 3)`` unit normals (view frame), e.g. ``(B, H, W, 3)`` or ``(B, V, 3)``.
        lighting: ``(B, 9, 3)`` SH coefficients per RGB channel.

    Returns:
        ``(B, ..., 3)`` shading (multiply by the albedo to get the colour).
    """
    if lighting.ndim != 3 or lighting.shape[1:] != (9, 3):
        raise ValueError(f"lighting must have shape (B, 9, 3), got {tuple(lighting.shape)}")
    if normals.shape[0] != lighting.shape[0]:
        raise ValueError(f"normals and lighting batch sizes differ: {normals.shape[0]} vs {lighting.shape[0]}")
    basis = sh_basis(normals)  # (B, ..., 9)
    b = basis.shape[0]
    out = basis.reshape(b, -1, 9) @ lighting.to(basis.dtype)
    return out.reshape(*basis.shape[:-1], 3)


def directional_sh(direction: torch.Tensor, intensity: torch.Tensor | float = 1.0,
                   ambient: torch.Tensor | float = 0.0) -> torch.Tensor:
    """SH lighting ``(B, 9, 3)`` approximating a distant light from ``direction`` plus an ambient term.

    The radiance of a unit-power light from :math:`d` has coefficients :math:`L_{lm} = Y_{lm}(d)`, so
    with our basis the coefficients are :math:`H_k(d)/ A_k^2` scaled by the intensity; the irradiance then
    approximates :math:`\\text{intensity}\\cdot\\max(0, n \\cdot d) + \\text{ambient}`.

    Args:
        direction: ``(B, 3)`` direction towards the light (view frame, normalised inside).
        intensity: scalar or ``(B, 3)`` RGB.
        ambient: scalar or ``(B, 3)`` RGB added as a constant irradiance.
    """
    d = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    y = sh_basis(d) / d.new_tensor(SH_BAND_FACTORS)  # Y_lm(d)
    coeffs = y * d.new_tensor([math.pi] + [1.0] * 8)  # band 0: H_0 = Y_00 lacks A_0 = pi
    inten = torch.as_tensor(intensity, dtype=d.dtype, device=d.device)
    amb = torch.as_tensor(ambient, dtype=d.dtype, device=d.device)
    light = coeffs[..., None] * inten.reshape(-1, 1, 3 if inten.numel() > 1 else 1)
    light = light.expand(d.shape[0], 9, 3).clone()
    light[:, 0] = light[:, 0] + amb.reshape(-1, 3 if amb.numel() > 1 else 1) / SH_CONSTANTS[0]
    return light
