"""SH shading: basis normalisation, irradiance against numerical integration, a rendered sphere."""

from __future__ import annotations

import math

import numpy as np
import torch
import trimesh

from facecourse.render import WeakPerspectiveCamera, directional_sh, pixel_centers, render, sh_basis, sh_shading
from facecourse.render.shading import SH_BAND_FACTORS


def _sphere_directions(n: int = 40000) -> torch.Tensor:
    """Fibonacci lattice: nearly uniform unit vectors (equal-area quadrature weights 4 pi / n)."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = math.pi * (1 + 5**0.5) * i
    r = np.sqrt(1 - z * z)
    return torch.tensor(np.stack([r * np.cos(phi), r * np.sin(phi), z], 1))


def test_basis_over_band_factor_is_orthonormal():
    """H_k / A_l must be the real orthonormal spherical harmonics Y_lm (checks every constant)."""
    w = _sphere_directions()
    y = sh_basis(w) / torch.tensor(SH_BAND_FACTORS, dtype=torch.float64)
    gram = y.T @ y * (4 * math.pi / len(w))
    assert torch.allclose(gram, torch.eye(9, dtype=torch.float64), atol=2e-3)


def test_irradiance_matches_numerical_integral():
    """E(n) = int L(w) max(0, n.w) dw for band-limited radiance L = sum_k L_k Y_k."""
    w = _sphere_directions()
    y = sh_basis(w) / torch.tensor(SH_BAND_FACTORS, dtype=torch.float64)
    rng = np.random.default_rng(0)
    radiance = torch.tensor(rng.normal(size=(9, 3)))
    radiance[0] += 3.0
    normals = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(50, 3))), dim=-1)
    numeric = (torch.clamp(normals @ w.T, min=0) @ (y @ radiance)) * (4 * math.pi / len(w))
    lighting = radiance.clone()
    lighting[0] *= math.pi  # DECA's H_0 has no A_0 = pi (see facecourse.render.shading)
    ours = sh_shading(normals[None], lighting[None])[0]
    assert torch.allclose(ours, numeric, atol=5e-3)


def test_directional_light_approximates_clamped_cosine():
    d = torch.tensor([[0.3, 0.5, 0.8]], dtype=torch.float64)
    light = directional_sh(d, intensity=1.0, ambient=0.25)
    n = _sphere_directions(2000)
    exact = torch.clamp(n @ torch.nn.functional.normalize(d, dim=-1)[0], min=0) + 0.25
    approx = sh_shading(n[None], light)[0]
    assert torch.allclose(approx[:, 0], approx[:, 2])
    assert (approx[:, 0] - exact).abs().max() < 0.2  # the order-2 approximation's known error
    assert (approx[:, 0] - exact).abs().mean() < 0.05


def test_rendered_sphere_matches_closed_form():
    """A frontal sphere: the rendered shading at each pixel equals sum_k H_k(n(p)) L_k with the analytic
    normal n(p) = (u/s, -v/s, sqrt(1 - ...)) of the pixel centre (up to mesh faceting)."""
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    v = torch.tensor(mesh.vertices, dtype=torch.float64)[None]
    f = torch.tensor(mesh.faces, dtype=torch.long)
    s = 0.9
    light = directional_sh(torch.tensor([[-0.4, 0.6, 0.7]], dtype=torch.float64), torch.tensor([[1.0, 0.8, 0.6]]),
                           0.2).double()
    albedo = torch.full_like(v, 0.5)
    out = render(v, f, WeakPerspectiveCamera(torch.tensor([[s, 0.0, 0.0]], dtype=torch.float64)), 64,
                 albedo=albedo, lighting=light, backend="torch")
    uv = pixel_centers((64, 64), dtype=torch.float64)
    x, y = uv[..., 0] / s, -uv[..., 1] / s
    inside = (x**2 + y**2) < 0.95**2
    n = torch.stack([x, y, torch.sqrt(torch.clamp(1 - x**2 - y**2, min=0))], -1)
    expected = 0.5 * sh_shading(n[None], light)[0]
    got = out.image[0].permute(1, 2, 0)
    assert out.mask[0, 0][inside].all()
    assert (got[inside] - expected[inside]).abs().max() < 0.02
    assert out.image[0][:, ~out.mask[0, 0].bool()].abs().max() == 0


def test_vertex_shading_is_interpolated_vertex_irradiance_and_close_to_pixel_shading():
    from facecourse.mesh import vertex_normals
    from facecourse.render import interpolate, rasterize, weak_perspective

    mesh = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    v = torch.tensor(mesh.vertices, dtype=torch.float64)[None]
    f = torch.tensor(mesh.faces, dtype=torch.long)
    cam = torch.tensor([[0.9, 0.0, 0.0]], dtype=torch.float64)
    light = directional_sh(torch.tensor([[0.3, 0.5, 0.8]], dtype=torch.float64), 0.8, 0.3).double()
    args = dict(albedo=torch.full_like(v, 0.5), lighting=light, backend="torch")
    vert = render(v, f, WeakPerspectiveCamera(cam), 48, shading="vertex", **args)
    pix = render(v, f, WeakPerspectiveCamera(cam), 48, shading="pixel", **args)
    frag = rasterize(weak_perspective(v, cam), f, 48)
    expected = 0.5 * interpolate(sh_shading(vertex_normals(v, f), light), f, frag)
    assert torch.allclose(vert.image[0].permute(1, 2, 0), expected[0], atol=1e-12)
    m = vert.mask[0, 0].bool()
    assert (vert.image[0][:, m] - pix.image[0][:, m]).abs().max() < 0.02
