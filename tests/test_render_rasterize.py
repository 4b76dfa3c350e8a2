"""Built-in rasteriser: visibility against a ray-casting oracle, barycentrics, gradients, perspective."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from facecourse.render import (
    PerspectiveCamera,
    frontal_rotation,
    interpolate,
    ndc_to_pixels,
    pixel_centers,
    pixels_to_ndc,
    rasterize,
    weak_perspective,
)


def _two_spheres():
    """A bumpy sphere partly hidden behind a smaller sphere in front of it (tests the z-buffer)."""
    rng = np.random.default_rng(0)
    a = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    a.vertices += rng.normal(scale=0.02, size=a.vertices.shape)
    b = trimesh.creation.icosphere(subdivisions=2, radius=0.25)
    b.vertices += np.array([0.2, 0.15, 0.6])
    return trimesh.util.concatenate([a, b])


def test_pixel_convention_roundtrip():
    size = (5, 7)
    centres = pixel_centers(size, dtype=torch.float64)
    assert torch.allclose(centres[0, 0], torch.tensor([1 / 7 - 1, 1 / 5 - 1], dtype=torch.float64))
    pix = ndc_to_pixels(centres, size)
    ys, xs = torch.meshgrid(torch.arange(5.0), torch.arange(7.0), indexing="ij")
    assert torch.allclose(pix, torch.stack([xs, ys], -1).double())
    assert torch.allclose(pixels_to_ndc(pix, size), centres)


def test_weak_perspective_axes():
    """Model +x (subject's left) goes to the image right, model +y (up) to the image top (v < 0)."""
    pts = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]])
    uvd = weak_perspective(pts, torch.tensor([[0.5, 0.0, 0.0]]))
    assert uvd[0, 0, 0] > 0 and uvd[0, 1, 1] < 0 and uvd[0, 2, 2] < 0  # +z is nearer: smaller depth


def test_face_index_matches_ray_casting_oracle():
    mesh = _two_spheres()
    size, cam = 40, torch.tensor([[1.2, -0.05, 0.02]], dtype=torch.float64)
    v = torch.tensor(mesh.vertices)[None]
    f = torch.tensor(mesh.faces, dtype=torch.long)
    frag = rasterize(weak_perspective(v, cam), f, size)
    # Oracle: one orthographic ray per pixel centre, along -z from in front of the mesh.
    uv = pixel_centers((size, size), dtype=torch.float64).reshape(-1, 2).numpy()
    s, tx, ty = cam[0].numpy()
    origins = np.stack([uv[:, 0] / s - tx, -uv[:, 1] / s - ty, np.full(len(uv), 10.0)], axis=1)
    dirs = np.tile([0.0, 0.0, -1.0], (len(uv), 1))
    hit = trimesh.ray.ray_triangle.RayMeshIntersector(mesh).intersects_first(origins, dirs)
    ours = frag.pix_to_face[0].reshape(-1).numpy()
    assert (ours >= 0).sum() > 300 and (ours[hit == -1] == -1).all()
    same = ours == hit
    # Disagreements may only happen for pixel centres on a shared edge (either face is right).
    bary = frag.bary[0].reshape(-1, 3).numpy()
    assert (~same).mean() < 0.01
    assert (bary[~same].min(axis=1) < 1e-6).all()
    # The front sphere hides part of the back one: some pixels must show faces of the second mesh.
    assert (ours >= len(trimesh.creation.icosphere(subdivisions=2).faces)).sum() > 50


def test_barycentrics_sum_to_one_and_reproduce_pixel_centres():
    mesh = _two_spheres()
    v = torch.tensor(mesh.vertices)[None].repeat(2, 1, 1)
    v[1] = v[1] * 0.7
    f = torch.tensor(mesh.faces, dtype=torch.long)
    size = (24, 32)
    screen = weak_perspective(v, torch.tensor([[1.1, 0.0, 0.0], [1.3, 0.1, 0.0]], dtype=torch.float64))
    frag = rasterize(screen, f, size)
    m = frag.mask
    assert torch.allclose(frag.bary.sum(-1)[m], torch.ones(int(m.sum()), dtype=torch.float64))
    assert (frag.bary[m] >= -1e-9).all()
    pix = ndc_to_pixels(screen, size)
    p = interpolate(pix[..., :2], f, frag)
    ys, xs = torch.meshgrid(torch.arange(24.0), torch.arange(32.0), indexing="ij")
    target = torch.stack([xs, ys], -1).double().expand(2, -1, -1, -1)
    assert torch.allclose(p[m], target[m], atol=1e-9)
    assert (frag.pix_to_face[~m] == -1).all() and (frag.bary[~m] == 0).all()


def test_chunked_visibility_equals_single_chunk():
    mesh = _two_spheres()
    v = torch.tensor(mesh.vertices, dtype=torch.float32)[None]
    f = torch.tensor(mesh.faces, dtype=torch.long)
    screen = weak_perspective(v, torch.tensor([[1.2, 0.0, 0.0]]))
    a = rasterize(screen, f, 48, max_candidates=64)
    b = rasterize(screen, f, 48, max_candidates=1 << 24)
    assert torch.equal(a.pix_to_face, b.pix_to_face)


def test_gradcheck_interpolated_attributes():
    rng = np.random.default_rng(1)
    verts = torch.tensor([[-0.8, -0.7, 0.1], [0.75, -0.6, 0.0], [0.05, 0.8, 0.2], [0.9, 0.7, -0.3]],
                         dtype=torch.float64)
    verts = (verts + torch.tensor(rng.normal(scale=0.03, size=(4, 3)))).requires_grad_()
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
    colours = torch.tensor(rng.uniform(size=(1, 4, 3)))
    cam = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)

    def image(v):
        screen = weak_perspective(v[None], cam)
        frag = rasterize(screen, faces, 9)
        attrs = [interpolate(colours, faces, frag), interpolate(v[None], faces, frag), frag.zbuf[..., None]]
        return torch.cat(attrs, -1)

    assert torch.autograd.gradcheck(image, (verts,), eps=1e-6, atol=1e-6)


def test_perspective_correct_interpolation_reprojects():
    """With perspective-correct barycentrics the interpolated 3D point projects onto the pixel centre."""
    plane = trimesh.creation.box(extents=(0.4, 0.3, 0.2))
    v = torch.tensor(plane.vertices)[None]
    rot = torch.tensor(trimesh.transformations.rotation_matrix(0.6, [0.3, 1, 0.2])[:3, :3])[None]
    v = v @ rot.transpose(1, 2)
    f = torch.tensor(plane.faces, dtype=torch.long)
    cam = PerspectiveCamera(frontal_rotation(1, dtype=torch.float64), torch.tensor([[0.0, 0.0, 0.6]],
                            dtype=torch.float64), focal=1.5)
    screen = cam.project(v)
    frag = rasterize(screen, f, 32, perspective_correct=True)
    m = frag.mask
    pts = interpolate(v, f, frag)
    proj = cam.project(pts.reshape(1, -1, 3)).reshape(1, 32, 32, 3)
    centres = pixel_centers((32, 32), dtype=torch.float64)[None]
    assert m.sum() > 100
    assert torch.allclose(proj[..., :2][m], centres.expand(1, -1, -1, -1)[m], atol=1e-9)
    assert torch.allclose(frag.zbuf[m], proj[..., 2][m], atol=1e-9)
    # The z-buffer keeps the nearest of front and back faces: the box's back faces never win.
    far = rasterize(screen, f, 32, perspective_correct=True, cull_backfaces=True)
    assert torch.equal(far.pix_to_face, frag.pix_to_face)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="faces"):
        rasterize(torch.zeros(1, 3, 3), torch.zeros(1, 3, dtype=torch.int32), 8)
    with pytest.raises(ValueError, match="screen"):
        rasterize(torch.zeros(3, 3), torch.zeros(1, 3, dtype=torch.long), 8)
