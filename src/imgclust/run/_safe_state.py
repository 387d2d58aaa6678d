"""A data-only serialisation of fitted estimators: JSON for the structure, ``.npy`` arrays for
the numbers, in one ``.npz`` file. Loading builds objects of allowed classes with
``cls.__new__`` and their saved ``__dict__``; nothing in the file is ever executed.

Written by hand, not with skops: ``import skops.io`` imports every scikit-learn module (and
torch, through scikit-learn's array-API layer) to list its trusted types — 5 s of CPU in every
process (measured: 7.2 s against 2.1 s for the scikit-learn modules a run uses), more than the
whole of ``imgclust recluster`` should take. The rule is the same as skops': only data (numbers,
strings, arrays, sparse matrices) and instances of allowed estimator classes are written; a
function, a lambda or any other object makes saving fail rather than pickle it.

Allowed classes: subclasses of scikit-learn's ``BaseEstimator`` defined in ``sklearn.*`` or
``imgclust.*`` modules (checked after importing that module, which is installed code, never
code from the file), and numpy's scalar types.
"""
from __future__ import annotations

import importlib
import io
import json
import math
import os
import zipfile
from pathlib import Path, PurePath
from typing import Any

import numpy as np

#: prefixes of the modules whose estimator classes may be rebuilt
ALLOWED_MODULES = ("sklearn.", "imgclust.")


class UnsafeStateError(ValueError):
    """An object that this format does not write or read (with the reason)."""


def _cls_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _allowed_class(name: str) -> type:
    mod, _, qual = name.partition(":")
    if not mod.startswith(ALLOWED_MODULES) or not qual or "." in qual:
        raise UnsafeStateError(f"class {name!r} is not allowed (only scikit-learn's and "
                               "imgclust's estimators)")
    try:
        cls = getattr(importlib.import_module(mod), qual)
    except (ImportError, AttributeError) as exc:
        raise UnsafeStateError(f"class {name!r} cannot be found ({exc})") from None
    from sklearn.base import BaseEstimator

    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        raise UnsafeStateError(f"{name!r} is not a scikit-learn estimator class")
    return cls


class _Writer:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, a: np.ndarray) -> str:
        if a.dtype.hasobject:
            raise UnsafeStateError(f"an object array (dtype {a.dtype}) cannot be saved")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = a
        return key

    def enc(self, o: Any, where: str) -> Any:
        from scipy import sparse

        if o is None or isinstance(o, (bool, str)):
            return o
        if isinstance(o, int) and not isinstance(o, bool):
            return o
        if isinstance(o, float):
            return o if math.isfinite(o) else {"t": "float", "v": repr(o)}
        if isinstance(o, PurePath):  # e.g. the CNN's cached ONNX file
            return {"t": "path", "v": os.fspath(o)}
        if isinstance(o, np.ndarray):
            return {"t": "nd", "k": self.array(o)}
        if isinstance(o, np.generic):
            return {"t": "np", "k": self.array(np.asarray(o))}
        if isinstance(o, np.dtype):
            if o.hasobject:
                raise UnsafeStateError(f"{where}: object dtype")
            return {"t": "dtype", "k": self.array(np.zeros(0, dtype=o))}
        if isinstance(o, type) and issubclass(o, np.generic):
            return {"t": "nptype", "v": np.dtype(o).str}
        if isinstance(o, (list, tuple)):
            return {"t": type(o).__name__, "v": [self.enc(x, f"{where}[{i}]")
                                                 for i, x in enumerate(o)]}
        if isinstance(o, dict):
            if all(isinstance(k, str) for k in o):
                return {"t": "dict", "v": {k: self.enc(v, f"{where}.{k}") for k, v in o.items()}}
            return {"t": "items", "v": [[self.enc(k, where), self.enc(v, f"{where}[{k!r}]")]
                                        for k, v in o.items()]}
        if sparse.issparse(o):
            m = o.tocsr()
            return {"t": "csr", "array": isinstance(o, sparse.sparray), "shape": list(m.shape),
                    "data": self.array(m.data), "indices": self.array(m.indices),
                    "indptr": self.array(m.indptr)}
        from sklearn.base import BaseEstimator

        if isinstance(o, BaseEstimator) and type(o).__module__.startswith(ALLOWED_MODULES):
            state = o.__getstate__() if hasattr(o, "__getstate__") else o.__dict__
            if not isinstance(state, dict):
                raise UnsafeStateError(f"{where}: {type(o).__name__} has a non-dict state")
            return {"t": "obj", "cls": _cls_name(type(o)), "state": self.enc(state, where)}
        raise UnsafeStateError(f"{where}: {type(o).__module__}.{type(o).__qualname__} is not "
                               "data nor an allowed estimator")


def dumps(obj: Any) -> bytes:
    """Serialise ``obj`` (data and allowed estimators only) to bytes.

    Raises
    ------
    UnsafeStateError
        Something in ``obj`` is neither data nor an allowed estimator.
    """
    w = _Writer()
    tree = w.enc(obj, "model")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("tree.json", json.dumps(tree))
        for key, a in w.arrays.items():
            b = io.BytesIO()
            np.save(b, a, allow_pickle=False)
            z.writestr(f"{key}.npy", b.getvalue())
    return buf.getvalue()


def loads(data: bytes) -> Any:
    """Rebuild what :func:`dumps` wrote; refuses any class that is not allowed.

    Raises
    ------
    UnsafeStateError
        A damaged file, an unknown node, or a class that is not allowed.
    """
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        tree = json.loads(z.read("tree.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise UnsafeStateError(f"damaged model file ({exc})") from None

    def arr(key: Any) -> np.ndarray:
        if not isinstance(key, str) or not key.startswith("a") or not key[1:].isdigit():
            raise UnsafeStateError(f"bad array key {key!r}")
        try:
            return np.load(io.BytesIO(z.read(f"{key}.npy")), allow_pickle=False)
        except (KeyError, ValueError, OSError) as exc:
            raise UnsafeStateError(f"array {key}: {exc}") from None

    def dec(n: Any) -> Any:
        if n is None or isinstance(n, (bool, int, float, str)):
            return n
        if isinstance(n, list):  # never written bare; refuse rather than guess
            raise UnsafeStateError("malformed node (bare list)")
        if not isinstance(n, dict):
            raise UnsafeStateError(f"malformed node {type(n).__name__}")
        t = n.get("t")
        if t == "float":
            if n.get("v") not in ("inf", "-inf", "nan"):
                raise UnsafeStateError(f"bad float {n.get('v')!r}")
            return float(n["v"])
        if t == "path":
            return Path(str(n["v"]))
        if t == "nd":
            return arr(n["k"])
        if t == "np":
            return arr(n["k"])[()]
        if t == "dtype":
            return arr(n["k"]).dtype
        if t == "nptype":
            return np.dtype(str(n["v"])).type
        if t in ("list", "tuple"):
            items = [dec(x) for x in n["v"]]
            return items if t == "list" else tuple(items)
        if t == "dict":
            return {str(k): dec(v) for k, v in n["v"].items()}
        if t == "items":
            return {dec(k): dec(v) for k, v in n["v"]}
        if t == "csr":
            from scipy import sparse

            make = sparse.csr_array if n.get("array") else sparse.csr_matrix
            return make((arr(n["data"]), arr(n["indices"]), arr(n["indptr"])),
                        shape=tuple(int(s) for s in n["shape"]))
        if t == "obj":
            cls = _allowed_class(str(n.get("cls")))
            state = dec(n.get("state"))
            if not isinstance(state, dict):
                raise UnsafeStateError(f"{n.get('cls')}: state is not a dict")
            obj = cls.__new__(cls)  # no __init__, no __setstate__: the state is only data
            obj.__dict__.update(state)
            return obj
        raise UnsafeStateError(f"unknown node type {t!r}")

    return dec(tree)
