"""Plain helper functions shared by the tests (fixtures built on them live in ``conftest.py``).

Tests import them with ``from helpers import ...``: ``tests/`` has no ``__init__.py``, so pytest puts it on
``sys.path`` when it loads ``tests/conftest.py`` (rootdir conftest, default "prepend" import mode).
No test module imports another ``test_*`` module (``tests/test_conftest_rules.py`` checks it).
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import scipy.sparse
import trimesh

from facecourse.flame import io as fio

# ------------------------------------------------------------------------------------- tiny FLAME model


def tiny_model(seed: int = 0, n_shape: int = 6, n_exp: int = 4) -> dict:
    """A small FLAME-layout model on an icosphere 'head' (tests only): 5 joints, smooth skinning weights.

    Root at the centre, neck below, jaw in front-below, eyes in front-above; shapedirs = n_shape shape
    components then n_exp expression components (zero beyond) in 300 + 100 slots like the official file.
    """
    rng = np.random.default_rng(seed)
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.1)
    v = np.asarray(sphere.vertices, dtype=np.float64)
    f = np.asarray(sphere.faces, dtype=np.int64)
    n_v = len(v)
    joints = np.array([[0, 0, 0], [0, -0.08, -0.01], [0, -0.03, 0.02], [0.035, 0.03, 0.07], [-0.035, 0.03, 0.07]])
    # skinning: neck region below, jaw lower front, eyes small front-upper patches, rest root
    w = np.zeros((n_v, 5))
    w[:, 0] = 1.0
    below = np.clip((-v[:, 1] - 0.05) / 0.03, 0, 1)
    jaw = np.clip((-v[:, 1] - 0.0) / 0.03, 0, 1) * (v[:, 2] > 0.02) * (1 - below)
    eye_l = np.linalg.norm(v - joints[3] - [0, 0, 0.02], axis=1) < 0.025
    eye_r = np.linalg.norm(v - joints[4] - [0, 0, 0.02], axis=1) < 0.025
    w[:, 1] = below
    w[:, 2] = jaw
    w[:, 0] = 1 - below - jaw
    for j, m in ((3, eye_l), (4, eye_r)):
        w[m] = 0
        w[m, j] = 1
    shapedirs = np.zeros((n_v, 3, 400))
    shapedirs[:, :, :n_shape] = rng.normal(scale=2e-3, size=(n_v, 3, n_shape))
    shapedirs[:, :, 300:300 + n_exp] = rng.normal(scale=2e-3, size=(n_v, 3, n_exp))
    posedirs = rng.normal(scale=1e-3, size=(n_v, 3, 36))
    # joint regressor: each joint = mean of its 4 nearest vertices shifted so that J_regressor @ v == J
    reg = np.zeros((5, n_v))
    for j in range(5):
        near = np.argsort(np.linalg.norm(v - joints[j], axis=1))[:4]
        reg[j, near] = 0.25
    v_template = v.copy()
    j_template = reg @ v_template
    return dict(v_template=v_template, f=f, shapedirs=shapedirs, posedirs=posedirs,
                J_regressor=scipy.sparse.csc_matrix(reg), weights=w,
                kintree_table=np.array([[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]]), J=j_template)


def tiny_embedding(seed=1):
    """Random landmark-embedding arrays (static 51, dynamic 79 x 17, full 68) on faces < 300 (tests only)."""
    rng = np.random.default_rng(seed)
    bary = lambda *s: rng.dirichlet(np.ones(3), size=s)  # noqa: E731
    return dict(static_faces=rng.integers(0, 300, 51), static_bary=bary(51),
                dynamic_faces=rng.integers(0, 300, (79, 17)), dynamic_bary=bary(79, 17),
                full_faces=rng.integers(0, 300, 68), full_bary=bary(68))


def write_tiny_model_dir(folder, seed: int = 0):
    """Write the tiny model, a DECA landmark embedding on its faces and masks into ``folder`` (tests only)."""
    arrays = tiny_model(seed)
    n_f = len(arrays["f"])
    e = tiny_embedding(seed + 1)
    e = {k: (v % n_f if "faces" in k else v) for k, v in e.items()}
    fio.save_model(folder / "generic_model.pkl", arrays)
    fio.save_deca_landmark_embedding(folder / fio.DECA_EMBEDDING, **e)
    fio.save_masks(folder / fio.MASKS_FILE, {"face": np.arange(10)})
    return folder / "generic_model.pkl"


# ------------------------------------------------------------------------------------------- toy head

TOY_AXES = np.array([75.0, 100.0, 90.0])
TOY_LM_XY = np.array([[-45.0, 25], [-15, 25], [15, 25], [45, 25], [0, -20], [-25, -45], [25, -45]])


def _bump(d):
    return 12.0 * np.exp(-((d[:, 0] / 0.25) ** 2 + ((d[:, 1] + 0.1) / 0.3) ** 2)) * (d[:, 2] > 0)


def toy_head(subdivisions=3, axes=TOY_AXES):
    """``(vertices mm, faces, NoW-7-like landmarks mm)`` of an ellipsoid head with a nose bump."""
    m = trimesh.creation.icosphere(subdivisions=subdivisions)
    d = np.asarray(m.vertices)
    v = d * axes + _bump(d)[:, None] * np.array([0, 0, 1.0])
    dl = np.column_stack([TOY_LM_XY[:, 0] / axes[0], TOY_LM_XY[:, 1] / axes[1], np.zeros(7)])
    dl[:, 2] = np.sqrt(1 - dl[:, 0] ** 2 - dl[:, 1] ** 2)
    lm = dl * axes + _bump(dl)[:, None] * np.array([0, 0, 1.0])
    return v, np.asarray(m.faces), lm


def make_toy_now_dataset(root, subjects=("SUBJ_A", "SUBJ_B")):
    """A NoW-layout folder (scans, .pp landmarks, validation list) of toy heads; returns its images."""
    from facecourse.mesh import save_mesh
    from facecourse.now import NowImage, write_image_list, write_pp
    from facecourse.now.synthetic import scan_from_head

    rng = np.random.default_rng(0)
    images = []
    for k, subject in enumerate(subjects):
        v, f, lm = toy_head(3, TOY_AXES * (1 + 0.05 * k))
        sv, sf, slm, _ = scan_from_head(v, f, lm, rng)
        save_mesh(root / "scans" / subject / f"{subject}.obj", sv, sf)
        write_pp(root / "scans_lmks_onlypp" / subject / f"{subject}.pp", slm)
        images += [NowImage(subject, c, f"IMG_{i}.jpg") for i, c in
                   enumerate(["multiview_neutral", "multiview_expressions", "multiview_occlusions", "selfie"])]
    write_image_list(root / "imagepathsvalidation.txt", images)
    return images


# ---------------------------------------------------------------------------------------------- archives


def make_zip(members: dict[str, bytes]) -> bytes:
    """The bytes of a zip archive holding ``members`` (name -> content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def deformed_spheres(n: int, seed: int = 0, subdivisions: int = 3):
    """A 10 cm sphere (head-sized, metres) and ``n`` smooth random deformations of it (~1 cm): random linear maps
    of the position plus a random bump along the normal. Returns ``(template (V, 3), faces (F, 3), (n, V, 3))``."""
    import torch

    m = trimesh.creation.icosphere(subdivisions, radius=0.1)
    v = torch.as_tensor(m.vertices, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    coeff = torch.randn(n, 3, 3, generator=g) * 0.05
    bump = torch.randn(n, 1, 3, generator=g)
    normals = v / v.norm(dim=1, keepdim=True)
    x = v + v @ coeff + 0.01 * torch.tanh((normals * bump).sum(-1, keepdim=True) * 2) * normals
    return m.vertices, m.faces, x
