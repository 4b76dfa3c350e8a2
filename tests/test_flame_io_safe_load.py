"""Safe loading: malicious pickles are refused before anything runs; chumpy/FLAME 2020/2023-style files load."""

from __future__ import annotations

import builtins
import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch
from helpers import tiny_model, write_tiny_model_dir

from facecourse.flame import FLAME, io as fio


class _SystemCall:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Eval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",)


class _Exec:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("payload,glob", [(_SystemCall, "system"), (_Eval, "eval"), (_Exec, "exec")])
def test_malicious_model_pickle_is_refused_and_nothing_runs(tmp_path, payload, glob):
    marker = tmp_path / "pwned"
    arrays = tiny_model()
    arrays["v_template"] = payload(marker)  # hidden inside an otherwise valid model dict
    path = tmp_path / "generic_model.pkl"
    with open(path, "wb") as fh:
        pickle.dump(arrays, fh, protocol=2)
    with pytest.raises(fio.UnsafePickleError) as err:
        fio.load_model(path)
    assert str(path) in str(err.value) and glob in str(err.value)
    assert not marker.exists(), "the payload ran"
    with pytest.raises(fio.UnsafePickleError):
        FLAME.from_file(path)
    assert not marker.exists()


def test_malicious_npy_and_masks_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "m"
    folder.mkdir()
    write_tiny_model_dir(folder)
    np.save(folder / fio.DECA_EMBEDDING, {"static_lmk_faces_idx": _SystemCall(marker)}, allow_pickle=True)
    with pytest.raises(fio.UnsafePickleError, match="landmark_embedding.npy"):
        FLAME.from_file(folder / "generic_model.pkl")
    with open(folder / fio.MASKS_FILE, "wb") as fh:
        pickle.dump({"face": _Eval(marker)}, fh)
    with pytest.raises(fio.UnsafePickleError, match="eval"):
        fio.load_masks(folder)
    with open(folder / fio.RINGNET_STATIC, "wb") as fh:
        pickle.dump({"lmk_face_idx": _Exec(marker)}, fh, protocol=0)
    with pytest.raises(fio.UnsafePickleError, match="exec"):
        fio.safe_load_pickle(folder / fio.RINGNET_STATIC)
    assert not marker.exists()


def test_other_classes_are_refused(tmp_path):
    path = tmp_path / "x.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"a": torch.nn.Linear(2, 2)}, fh)  # harmless, but not plain data
    with pytest.raises(fio.UnsafePickleError, match="torch"):
        fio.safe_load_pickle(path)


def _fake_chumpy():
    """Modules ``chumpy``, ``chumpy.ch``, ``chumpy.reordering`` with classes that pickle like chumpy's.

    chumpy's ``Ch.__getstate__`` returns its ``__dict__`` without the weak caches: a free ``Ch`` holds its
    array under ``x``, a ``Select`` node holds its operand under ``a`` and ``idxs`` / ``preserve_shape``.
    """
    ch_mod, reo_mod, root = types.ModuleType("chumpy.ch"), types.ModuleType("chumpy.reordering"), \
        types.ModuleType("chumpy")

    class Ch:
        def __init__(self, x):
            self.x = np.asarray(x, dtype=np.float64)
            self._dirty_vars = {"x"}
            self._itr = None
            self._depends_on_deps = {}
            self._make_dense = self._make_sparse = False

        def __getstate__(self):
            return dict(self.__dict__)

    class Select:
        def __init__(self, a, idxs, preserve_shape=False):
            self.a, self.idxs, self.preserve_shape = a, np.asarray(idxs), preserve_shape
            self._dirty_vars = set()

        def __getstate__(self):
            return dict(self.__dict__)

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    Select.__module__, Select.__qualname__ = "chumpy.reordering", "Select"
    ch_mod.Ch, reo_mod.Select = Ch, Select
    root.ch, root.reordering = ch_mod, reo_mod
    return {"chumpy": root, "chumpy.ch": ch_mod, "chumpy.reordering": reo_mod}, Ch, Select


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_chumpy_model_loads_as_plain_arrays(tmp_path, monkeypatch, protocol):
    """A FLAME 2020-style pickle (chumpy Ch values, old scipy module name) loads without chumpy."""
    arrays = tiny_model()
    modules, Ch, Select = _fake_chumpy()
    with monkeypatch.context() as m:  # chumpy exists only while writing
        for name, mod in modules.items():
            m.setitem(sys.modules, name, mod)
        chumpy_arrays = dict(arrays, shapedirs=Ch(arrays["shapedirs"]), v_template=Ch(arrays["v_template"]),
                             J=Select(Ch(arrays["J"]), np.arange(15).reshape(5, 3), preserve_shape=True),
                             J_regressor=scipy.sparse.csc_matrix(arrays["J_regressor"]))
        raw = pickle.dumps(chumpy_arrays, protocol=protocol)
    assert "chumpy" not in sys.modules or sys.modules["chumpy"] is not modules["chumpy"]
    if protocol < 4:  # files from Python 2 era scipy name the module scipy.sparse.csc
        raw = raw.replace(b"scipy.sparse._csc\n", b"scipy.sparse.csc\n")
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(raw)
    loaded = fio.load_model(path)
    assert type(loaded["shapedirs"]) is np.ndarray
    np.testing.assert_array_equal(loaded["shapedirs"], arrays["shapedirs"])
    np.testing.assert_array_equal(loaded["v_template"], arrays["v_template"])
    np.testing.assert_array_equal(loaded["J"], arrays["J"])
    np.testing.assert_array_equal(loaded["J_regressor"], arrays["J_regressor"].toarray())
    assert "chumpy" not in sys.modules or sys.modules["chumpy"] is not modules["chumpy"]


def test_flame2023_style_file(tmp_path):
    """FLAME 2023 (and 2023 Open) pickles: same keys, written by Python 3 (protocol 4), uint32 kintree_table,
    extra entries; loaded as the official keys."""
    arrays = tiny_model()
    table = np.asarray(arrays["kintree_table"]).astype(np.int64)
    table[table < 0] = fio.ROOT_PARENT_UINT32
    data = dict(arrays, kintree_table=table.astype(np.uint32), f=arrays["f"].astype(np.uint32),
                J_regressor=scipy.sparse.csc_matrix(arrays["J_regressor"]), bs_style="lbs", bs_type="lrotmin",
                weights_prior=np.asarray(arrays["weights"]))
    folder = tmp_path / "FLAME2023"
    folder.mkdir()
    with open(folder / "flame2023.pkl", "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    (tmp_path / "ref").mkdir()
    e = write_tiny_model_dir(tmp_path / "ref")  # the same model in our layout, with its embedding
    (folder / fio.DECA_EMBEDDING).write_bytes((e.parent / fio.DECA_EMBEDDING).read_bytes())
    loaded = fio.load_model(folder / "flame2023.pkl")
    assert loaded["kintree_table"][0].tolist() == [-1, 0, 1, 1, 1]
    assert loaded["bs_style"] == "lbs"
    flame = FLAME.from_file(folder / "flame2023.pkl", n_shape=6, n_exp=4, dtype=torch.float64)
    ref = FLAME.from_file(e, n_shape=6, n_exp=4, dtype=torch.float64)
    shape = torch.randn(2, 6, dtype=torch.float64)
    torch.testing.assert_close(flame(shape=shape).vertices, ref(shape=shape).vertices)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_plain_data_of_every_protocol_loads(tmp_path, protocol):
    from collections import OrderedDict

    data = {"scalar": np.float64(1.5), "int": np.int32(3), "ordered": OrderedDict(x=1), "set": {1, 2},
            "bytes": b"\x00\xff", "big_endian": np.arange(3).astype(">f4"), "fortran": np.asfortranarray(
                np.arange(6.0).reshape(2, 3)), "coo": scipy.sparse.coo_matrix(np.eye(3)), "text": "lbs"}
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    back = fio.safe_load_pickle(path)
    assert back.keys() == data.keys()
    for key in ("scalar", "int", "ordered", "set", "bytes", "text"):
        assert back[key] == data[key] and type(back[key]) is type(data[key]), key
    np.testing.assert_array_equal(back["big_endian"], data["big_endian"])
    np.testing.assert_array_equal(back["fortran"], data["fortran"])
    np.testing.assert_array_equal(back["coo"].toarray(), np.eye(3))


def test_malicious_file_at_the_default_model_path(tmp_path, monkeypatch):
    """The issue's scenario: a hostile generic_model.pkl where the real FLAME 2020 goes."""
    from facecourse.flame import default_model_path

    monkeypatch.setenv("FACECOURSE_DATA", str(tmp_path))
    real = tmp_path / "FLAME2020"
    real.mkdir()
    write_tiny_model_dir(real)  # a valid embedding and masks beside it
    marker = tmp_path / "pwned"
    with open(real / "generic_model.pkl", "wb") as fh:
        pickle.dump({"v_template": _SystemCall(marker)}, fh, protocol=2)
    path = default_model_path("small")
    assert path == real / "generic_model.pkl"
    with pytest.raises(fio.UnsafePickleError, match="system"):
        FLAME.from_file(path)
    assert not marker.exists()
