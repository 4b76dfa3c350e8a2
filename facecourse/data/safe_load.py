"""Safe loading of files from outside (foundation layer): pickles and ``.npy`` object arrays through a restricted
unpickler whose allow-list holds numpy, ``scipy.sparse`` and plain builtins only, with chumpy objects (as the
FLAME pickles hold them) rebuilt from their pickled state as arrays -- no chumpy installed, nothing executed.

Any other global (``os.system``, ``eval``, ``builtins.exec``, ...) raises :class:`UnsafePickleError` naming the
file and the global before anything from the file runs. Used by the FLAME readers (:mod:`facecourse.flame.io`),
the weight loader (:mod:`facecourse.nn.backbones`) and the installer's content check
(:func:`check_file_content`).
"""

from __future__ import annotations

import _compat_pickle
import importlib
import os
import pickle
from pathlib import Path

import numpy as np
import scipy.sparse


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle referenced a global outside the allow-list; nothing from it was executed."""


# --------------------------------------------------------------------------------------------------
# Restricted unpickling
# --------------------------------------------------------------------------------------------------

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy", "ndarray"), ("numpy", "dtype"),
}
_SPARSE_CLASSES = {"csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array"}
_BUILTINS = {"object", "set", "frozenset", "slice", "complex", "bytearray", "list", "dict", "tuple",
             "int", "float", "str", "bytes", "bool"}
_OTHER_GLOBALS = {("_codecs", "encode"), ("copyreg", "_reconstructor"), ("collections", "OrderedDict")}


class ChumpyState:
    """Stand-in for a pickled chumpy object (any ``chumpy.*`` class): keeps its state, runs nothing.

    Each ``chumpy.<module>.<Name>`` global becomes a subclass of this (:func:`_chumpy_class`), so both ways a
    pickle rebuilds an object (``cls.__new__`` for protocol 2, ``copyreg._reconstructor`` for Python 2
    protocol 0/1) produce a :class:`ChumpyState`. :func:`_resolve_chumpy` turns it into a numpy array
    afterwards: a free variable ``Ch`` keeps its value under ``x``; a few reordering/arithmetic nodes are
    evaluated from their operands.
    """

    chumpy_class = "chumpy"

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slots state)
            state = {**(state[0] or {}), **(state[1] or {})}
        self.state = dict(state) if isinstance(state, dict) else {"x": state}

    def __repr__(self) -> str:
        return f"ChumpyState({self.chumpy_class}, keys={sorted(getattr(self, 'state', {}))})"


_CHUMPY_CLASSES: dict = {}


def _chumpy_class(module: str, name: str) -> type:
    """The :class:`ChumpyState` subclass standing in for ``module.name`` (one per name)."""
    key = f"{module}.{name}"
    if key not in _CHUMPY_CLASSES:
        _CHUMPY_CLASSES[key] = type(name, (ChumpyState,), {"chumpy_class": key})
    return _CHUMPY_CLASSES[key]


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler with an allow-list of globals; chumpy classes become :class:`ChumpyState`.

    Allowed: numpy array/dtype/scalar reconstruction, ``scipy.sparse`` csc/csr/coo matrices and arrays,
    ``copyreg._reconstructor`` (Python 2 object pickles), ``_codecs.encode`` (bytes in protocol 2),
    ``collections.OrderedDict`` and plain builtin types. Any other global raises
    :class:`UnsafePickleError` naming the file and the global.
    """

    def __init__(self, file, source: str = "<pickle>", **kwargs):
        kwargs.setdefault("encoding", "latin1")
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module: str, name: str):
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if module == "chumpy" or module.startswith("chumpy."):
            return _chumpy_class(module, name)
        if module.startswith("numpy._core."):
            module = "numpy.core." + module[len("numpy._core."):]
        if (module, name) in _NUMPY_GLOBALS:
            if module.startswith("numpy.core.") and hasattr(np, "_core"):
                module = "numpy._core." + module[len("numpy.core."):]
            return getattr(importlib.import_module(module), name)
        if (module == "scipy.sparse" or module.startswith("scipy.sparse.")) and name in _SPARSE_CLASSES:
            return getattr(scipy.sparse, name)
        if module == "builtins" and name in _BUILTINS:
            return getattr(__import__("builtins"), name)
        if (module, name) in _OTHER_GLOBALS:
            return getattr(importlib.import_module(module), name)
        raise UnsafePickleError(
            f"{self.source}: refusing to load global '{module}.{name}' — it is not on the allow-list of "
            "plain data (numpy arrays, scipy.sparse matrices, chumpy state, builtin containers). The file "
            "may be malicious or not a FLAME asset; nothing from it was executed."
        )


def _select(a, state):
    out = np.asarray(a).ravel()[np.asarray(state["idxs"]).ravel()]
    return out.reshape(np.asarray(state["idxs"]).shape) if state.get("preserve_shape") else out


_CHUMPY_OPS = {
    "Select": _select,
    "Reshape": lambda a, s: np.reshape(a, s["newshape"]),
    "transpose": lambda a, s: np.transpose(a, s.get("axes")),
    "Permute": lambda a, s: np.transpose(a, s.get("axes")),
    "Transpose": lambda a, s: np.transpose(a, s.get("axes")),
    "Ravel": lambda a, s: np.ravel(a),
}
_CHUMPY_BINARY = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
                  "MatVecMult": lambda m, v: np.asarray(m @ np.ravel(v)), "dot": np.dot}


def _resolve_chumpy(obj, source: str):
    """Replace :class:`ChumpyState` objects (recursively in containers) by numpy arrays."""
    if isinstance(obj, ChumpyState):
        state, cls = getattr(obj, "state", {}), obj.chumpy_class.rsplit(".", 1)[-1]
        if "x" in state:  # a free variable Ch (or subclass): its value
            return np.asarray(_resolve_chumpy(state["x"], source))
        if cls in _CHUMPY_OPS and "a" in state:
            return _CHUMPY_OPS[cls](_resolve_chumpy(state["a"], source), state)
        if cls in _CHUMPY_BINARY and {"a", "b"} <= set(state):
            return _CHUMPY_BINARY[cls](_resolve_chumpy(state["a"], source), _resolve_chumpy(state["b"], source))
        if cls in _CHUMPY_BINARY and {"mtx", "vec"} <= set(state):
            return _CHUMPY_BINARY[cls](_resolve_chumpy(state["mtx"], source),
                                       _resolve_chumpy(state["vec"], source))
        raise ValueError(f"{source}: cannot rebuild chumpy object {obj.chumpy_class} with state keys "
                         f"{sorted(state)} as a plain array")
    if isinstance(obj, dict):
        return type(obj)((k, _resolve_chumpy(v, source)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_resolve_chumpy(v, source) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve_chumpy(v, source) for v in obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        flat = [_resolve_chumpy(v, source) for v in obj.ravel()]
        if obj.ndim == 0:
            return flat[0]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(obj.shape)
    if scipy.sparse.issparse(obj):
        return _rebuild_sparse(obj)
    return obj


def _rebuild_sparse(m):
    """Rebuild an unpickled sparse matrix from its stored fields (pickles of old scipy name them differently)."""
    d = m.__dict__
    shape = tuple(int(s) for s in (d.get("_shape") or d.get("shape")))
    if "indptr" in d:
        cls = scipy.sparse.csr_matrix if d.get("format", m.format) == "csr" else scipy.sparse.csc_matrix
        return cls((np.asarray(d["data"]), np.asarray(d["indices"]), np.asarray(d["indptr"])), shape=shape)
    row = d.get("row", d.get("coords", (None, None))[0])
    col = d.get("col", d.get("coords", (None, None))[1])
    return scipy.sparse.coo_matrix((np.asarray(d["data"]), (np.asarray(row), np.asarray(col))), shape=shape)


def existing_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path; ``FileNotFoundError`` naming it when it is not a file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path


def safe_load_pickle(path: str | os.PathLike):
    """Load a pickle through :class:`RestrictedUnpickler` (latin1, Python-2 compatible); chumpy -> arrays.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafePickleError: the pickle references a global outside the allow-list (nothing was executed).
    """
    path = existing_file(path)
    with open(path, "rb") as fh:
        obj = RestrictedUnpickler(fh, source=str(path)).load()
    return _resolve_chumpy(obj, str(path))


def safe_load_npy(path: str | os.PathLike):
    """Load an ``.npy`` file; object arrays (pickled dicts) go through :class:`RestrictedUnpickler`.

    A 0-d object array (what ``np.save(path, some_dict)`` writes) is returned as the object itself.
    """
    path = existing_file(path)
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"{path}: unsupported .npy format version {version}")
        if not dtype.hasobject:
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
        obj = RestrictedUnpickler(fh, source=str(path)).load()
    obj = _resolve_chumpy(obj, str(path))
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.ndim == 0:
        return obj[()]
    return obj


def _check_npz(path: Path) -> None:
    with np.load(path, allow_pickle=False) as archive:
        for name in archive.files:
            archive[name]


def _check_mesh(path: Path) -> None:
    import trimesh  # lazy for start-up cost only (trimesh pulls in many modules); no cycle

    mesh = trimesh.load(path, process=False, force="mesh")
    if len(getattr(mesh, "vertices", ())) == 0:
        raise ValueError("holds no vertices")


#: Readers of :func:`check_file_content`, by file suffix: the project's safe loaders, or a structural read.
CONTENT_READERS = {".pkl": safe_load_pickle, ".npy": safe_load_npy, ".npz": _check_npz, ".obj": _check_mesh,
                   ".ply": _check_mesh}


def check_file_content(path: str | os.PathLike) -> Path:
    """Open ``path`` with the reader of its suffix (:data:`CONTENT_READERS`; other suffixes are not checked) and
    refuse a file that reader cannot read: a text file named ``generic_model.pkl``, a truncated ``.npy``, a
    pickle with a global outside the allow-list.

    Raises:
        ValueError: naming the file and what went wrong (:class:`UnsafePickleError`, a subclass of
            ``pickle.UnpicklingError``, is re-raised as it is).
    """
    path = existing_file(path)
    reader = CONTENT_READERS.get(path.suffix.lower())
    if reader is None:
        return path
    try:
        reader(path)
    except UnsafePickleError:
        raise
    except Exception as exc:  # noqa: BLE001 -- any reader failure means the file is not what its name says
        raise ValueError(f"{path.name} is not a readable {path.suffix} file ({type(exc).__name__}: {exc})") from None
    return path
