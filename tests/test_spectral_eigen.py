"""Eigenbasis: shift-invert Lanczos against dense eigh and closed forms, generalised problem, cache."""

import numpy as np
import pytest
import scipy.sparse as sp
import trimesh

import facecourse.spectral.eigen as eigen
from facecourse.mesh.topology import topology_hash
from facecourse.spectral import (
    cotangent_laplacian, eigenbasis, full_eigenpairs, largest_eigenvalue, laplacian_of, mass_matrix,
    normalized_laplacian, smallest_eigenpairs,
)


@pytest.fixture(scope="module")
def sphere():
    m = trimesh.creation.icosphere(3)
    return np.asarray(m.vertices), np.asarray(m.faces, dtype=np.int64)


@pytest.fixture()
def empty_cache(tmp_path, monkeypatch):
    """An empty eigenbasis cache: the data folder in ``tmp_path``, nothing in memory."""
    monkeypatch.setenv("FACECOURSE_DATA", str(tmp_path))
    monkeypatch.setattr(eigen, "_MEMORY", {})


def test_shift_invert_matches_dense_eigh(sphere):
    _, f = sphere
    lap = normalized_laplacian(f)
    w, u = smallest_eigenpairs(lap, 12)
    w_ref, u_ref = full_eigenpairs(lap)
    np.testing.assert_allclose(w, w_ref[:12], atol=1e-10)
    np.testing.assert_allclose(u.T @ u, np.eye(12), atol=1e-10)
    np.testing.assert_allclose(lap @ u, u * w, atol=1e-9)
    assert abs(w[0]) < 1e-10
    # same subspaces as dense eigh for every eigenvalue cluster (degenerate on a sphere)
    proj = u_ref[:, :12] @ u_ref[:, :12].T
    np.testing.assert_allclose(proj @ u, u, atol=1e-8)
    # fixed signs: the largest-magnitude entry of each vector is positive
    assert (u[np.argmax(np.abs(u), axis=0), np.arange(12)] > 0).all()


def test_generalised_cotangent_spectrum_of_the_unit_sphere(sphere):
    """Laplace-Beltrami on the unit sphere: eigenvalues l(l+1) with multiplicity 2l+1."""
    v, f = sphere
    lap, mass = laplacian_of("cotangent", f, v)
    w, u = smallest_eigenpairs(lap, 16, mass)
    expected = np.repeat([0, 2, 6, 12], [1, 3, 5, 7])
    np.testing.assert_allclose(w, expected, atol=0.06 * 12)
    np.testing.assert_allclose(w[:9], expected[:9], atol=0.05)
    np.testing.assert_allclose(u.T @ (mass[:, None] * u), np.eye(16), atol=1e-10)  # M-orthonormal
    np.testing.assert_allclose(u[:, 0] ** 2, np.full(len(v), 1 / mass.sum()), rtol=1e-8)  # constant mode
    # the degree-1 modes are the coordinate functions x, y, z (spherical harmonics l = 1)
    coords = v / np.linalg.norm(v, axis=1, keepdims=True)
    q, _ = np.linalg.qr(u[:, 1:4])
    assert np.linalg.norm(q @ (q.T @ coords) - coords) < 1e-3 * np.linalg.norm(coords)


def test_dense_and_lanczos_paths_agree(sphere):
    v, f = sphere
    a = eigenbasis(f, 40, kind="cotangent", vertices=v, cache=False, method="eigsh")
    b = eigenbasis(f, 40, kind="cotangent", vertices=v, cache=False, method="dense")
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=1e-9, atol=1e-9)
    proj = b.eigenvectors @ (b.eigenvectors.T * b.mass)  # M-orthogonal projector on the first 40 modes
    np.testing.assert_allclose(proj @ a.eigenvectors[:, :36], a.eigenvectors[:, :36], atol=1e-7)
    with pytest.raises(ValueError, match="method"):
        eigenbasis(f, 3, method="qr")


def test_largest_eigenvalue(sphere):
    v, f = sphere
    lap = normalized_laplacian(f)
    assert largest_eigenvalue(lap, tol=1e-10) == pytest.approx(full_eigenpairs(lap)[0][-1], rel=1e-8)
    cot, m = cotangent_laplacian(v, f), mass_matrix(v, f).diagonal()
    assert largest_eigenvalue(cot, m, tol=1e-10) == pytest.approx(full_eigenpairs(cot, m)[0][-1], rel=1e-8)


@pytest.mark.usefixtures("empty_cache")
def test_cache_memory_and_disk(sphere, tmp_path, monkeypatch):
    v, f = sphere
    first = eigenbasis(f, 10)
    files = list((tmp_path / "cache" / "spectral").iterdir())
    assert [p.name for p in files] == [f"normalized_{topology_hash(f)[:24]}_k10.npz"]

    def boom(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(eigen, "smallest_eigenpairs", boom)
    again = eigenbasis(f, 6)  # from memory
    np.testing.assert_array_equal(again.eigenvectors, first.eigenvectors[:, :6])
    monkeypatch.setattr(eigen, "_MEMORY", {})
    disk = eigenbasis(f, 8)  # from disk, larger stored k serves
    np.testing.assert_array_equal(disk.eigenvalues, first.eigenvalues[:8])
    assert disk.mass is None and disk.k == 8
    with pytest.raises(ValueError, match="read-only"):
        disk.eigenvectors[0, 0] = 1.0  # the cache cannot be corrupted in place
    with pytest.raises(AssertionError, match="recomputed"):
        eigenbasis(f, 12)  # more than stored: must compute
    with pytest.raises(AssertionError, match="recomputed"):
        eigenbasis(f[::-1], 4)  # another topology: another key
    with pytest.raises(AssertionError, match="recomputed"):
        eigenbasis(f, 4, kind="cotangent", vertices=1.01 * v)  # cotangent: geometry is part of the key
    assert not [p for p in (tmp_path / "cache" / "spectral").iterdir() if ".tmp" in p.name]


@pytest.mark.usefixtures("empty_cache")
def test_unreadable_cache_file_is_recomputed(sphere, tmp_path, monkeypatch):
    _, f = sphere
    path = tmp_path / "cache" / "spectral" / f"normalized_{topology_hash(f)[:24]}_k6.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz file")
    b = eigenbasis(f, 6)
    np.testing.assert_allclose(b.eigenvalues, smallest_eigenpairs(normalized_laplacian(f), 6)[0], atol=1e-12)
    monkeypatch.setattr(eigen, "_MEMORY", {})
    np.testing.assert_array_equal(eigenbasis(f, 6).eigenvalues, b.eigenvalues)  # the rewritten file loads


@pytest.mark.usefixtures("empty_cache")
def test_cached_cotangent_basis_keeps_the_mass(sphere, monkeypatch):
    v, f = sphere
    b = eigenbasis(f, 5, kind="cotangent", vertices=v)
    monkeypatch.setattr(eigen, "_MEMORY", {})
    c = eigenbasis(f, 5, kind="cotangent", vertices=v)
    np.testing.assert_array_equal(b.mass, c.mass)
    np.testing.assert_allclose(c.mass, mass_matrix(v, f).diagonal())


def test_bad_inputs_are_named(sphere):
    v, f = sphere
    lap = normalized_laplacian(f)
    with pytest.raises(ValueError, match="k must"):
        smallest_eigenpairs(lap, len(v))
    with pytest.raises(ValueError, match="sigma"):
        smallest_eigenpairs(lap, 3, sigma=0.1)
    with pytest.raises(ValueError, match="mass"):
        smallest_eigenpairs(lap, 3, mass=np.ones(3))
    with pytest.raises(ValueError, match="kind"):
        eigenbasis(f, 3, kind="heat")
    with pytest.raises(ValueError, match="vertices"):
        eigenbasis(f, 3, kind="cotangent")
    with pytest.raises(ValueError, match="k must"):
        eigenbasis(f, 3, cache=False).truncated(4)
    assert sp.issparse(lap)
