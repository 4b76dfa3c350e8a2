"""FLAME file formats: writers produce the official layouts; readers load them safely (no code runs)."""

from __future__ import annotations

import io
import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
from helpers import tiny_embedding, tiny_model

from facecourse.flame import io as fio


class _Restricted(pickle.Unpickler):
    """Independent strict check that a written file holds only plain numpy/scipy/builtin data."""

    def find_class(self, module, name):
        assert module.split(".")[0] in {"numpy", "scipy", "_codecs", "copyreg", "builtins"}, (module, name)
        return super().find_class(module, name)


def test_save_model_official_layout(tmp_path):
    arrays = tiny_model()
    path = fio.save_model(tmp_path / "generic_model.pkl", arrays)
    raw = open(path, "rb").read()
    assert raw[:2] == b"\x80\x02", "pickle protocol 2"
    data = _Restricted(io.BytesIO(raw), encoding="latin1").load()
    assert set(fio.MODEL_KEYS) <= set(data)
    assert isinstance(data["J_regressor"], scipy.sparse.csc_matrix)
    assert data["kintree_table"].dtype == np.int64
    assert data["kintree_table"][0].tolist() == [4294967295, 0, 1, 1, 1]
    for key in ("v_template", "shapedirs", "posedirs", "weights", "J"):
        assert type(data[key]) is np.ndarray and data[key].dtype == np.float64
    assert not list(tmp_path.glob("*.tmp*")), "atomic writer left a temporary file"


def test_model_round_trip(tmp_path):
    arrays = tiny_model()
    loaded = fio.load_model(fio.save_model(tmp_path / "generic_model.pkl", arrays))
    for key in ("v_template", "shapedirs", "posedirs", "weights", "J"):
        np.testing.assert_array_equal(loaded[key], arrays[key])
    np.testing.assert_array_equal(loaded["f"], arrays["f"])
    assert loaded["f"].dtype == np.int64
    np.testing.assert_array_equal(loaded["J_regressor"], arrays["J_regressor"].toarray())
    assert loaded["kintree_table"][0].tolist() == [-1, 0, 1, 1, 1]
    assert fio.load_model(tmp_path)["v_template"].shape == arrays["v_template"].shape  # folder form


def test_save_model_rejects_bad_shapes(tmp_path):
    arrays = tiny_model()
    arrays["weights"] = arrays["weights"][:, :4]
    with pytest.raises(ValueError, match="weights"):
        fio.save_model(tmp_path / "m.pkl", arrays)
    del arrays["J"]
    with pytest.raises(KeyError, match="J"):
        fio.save_model(tmp_path / "m.pkl", arrays)
    assert not list(tmp_path.iterdir())


def test_deca_embedding_round_trip(tmp_path):
    e = tiny_embedding()
    path = fio.save_deca_landmark_embedding(tmp_path / "landmark_embedding.npy", **e)
    raw = np.load(path, allow_pickle=True)[()]  # official reader's way, on our own trusted file
    assert raw["full_lmk_faces_idx"].shape == (1, 68) and raw["full_lmk_bary_coords"].shape == (1, 68, 3)
    assert raw["dynamic_lmk_faces_idx"].shape == (79, 17)
    back = fio.load_deca_landmark_embedding(path)
    for key, value in e.items():
        np.testing.assert_array_equal(back[key], value)


def test_ringnet_embedding_round_trip(tmp_path):
    e = tiny_embedding()
    fio.save_ringnet_landmark_embedding(tmp_path, e["static_faces"], e["static_bary"], e["dynamic_faces"],
                                        e["dynamic_bary"])
    static = pickle.load(open(tmp_path / fio.RINGNET_STATIC, "rb"), encoding="latin1")
    assert static["lmk_face_idx"].dtype == np.uint32
    dynamic = np.load(tmp_path / fio.RINGNET_DYNAMIC, allow_pickle=True)[()]
    assert dynamic["lmk_face_idx"].shape == (79, 17) and dynamic["lmk_b_coords"].shape == (79, 17, 3)
    back = fio.load_ringnet_landmark_embedding(tmp_path)
    for key in ("static_faces", "static_bary", "dynamic_faces", "dynamic_bary"):
        np.testing.assert_array_equal(back[key], e[key])
    assert fio.find_landmark_embedding(tmp_path)["source"] == fio.RINGNET_STATIC
    fio.save_deca_landmark_embedding(tmp_path / fio.DECA_EMBEDDING, **e)
    assert fio.find_landmark_embedding(tmp_path)["source"] == fio.DECA_EMBEDDING  # DECA first


def test_embedding_missing_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="landmark_embedding.npy"):
        fio.find_landmark_embedding(tmp_path)


def test_masks_round_trip(tmp_path):
    masks = {name: np.arange(i, i + 5) for i, name in enumerate(fio.MASK_NAMES)}
    fio.save_masks(tmp_path / fio.MASKS_FILE, masks)
    back = fio.load_masks(tmp_path)
    assert set(back) == set(fio.MASK_NAMES)
    for name in masks:
        np.testing.assert_array_equal(back[name], masks[name])
    with pytest.raises(ValueError, match="face"):
        fio.save_masks(tmp_path / "bad.pkl", {"face": np.zeros((2, 2), dtype=int)})


@pytest.mark.parametrize("layout", ["list", "object"])
def test_ringnet_dynamic_rows_stored_as_a_list(tmp_path, layout):
    e = tiny_embedding()
    fio.save_ringnet_landmark_embedding(tmp_path, e["static_faces"], e["static_bary"], e["dynamic_faces"],
                                        e["dynamic_bary"])
    rows = [r for r in e["dynamic_faces"]], [r for r in e["dynamic_bary"]]
    if layout == "object":
        rows = tuple(np.array(list(r) + [None], dtype=object)[:-1] for r in rows)
    np.save(tmp_path / fio.RINGNET_DYNAMIC, {"lmk_face_idx": rows[0], "lmk_b_coords": rows[1]}, allow_pickle=True)
    back = fio.load_ringnet_landmark_embedding(tmp_path)
    np.testing.assert_array_equal(back["dynamic_faces"], e["dynamic_faces"])
    np.testing.assert_array_equal(back["dynamic_bary"], e["dynamic_bary"])
