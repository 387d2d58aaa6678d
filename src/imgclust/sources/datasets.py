"""Datasets that ship inside installed packages (no download, ever)."""
from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from imgclust.errors import ConfigError, SourceError
from imgclust.sources.base import ArraySource


def _digits() -> ArraySource:
    from sklearn.datasets import load_digits

    d = load_digits()
    return ArraySource("dataset:digits", d.images.astype(np.float32), d.target,
                       [str(n) for n in d.target_names])


#: name -> loader; each returns an ArraySource with labels
DATASETS: dict[str, Callable[[], ArraySource]] = {"digits": _digits}


def load_dataset(name: str) -> ArraySource:
    """A bundled dataset by name (``digits``: scikit-learn's 1,797 8x8 digits with labels)."""
    try:
        return DATASETS[name]()
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r}; bundled: {', '.join(DATASETS)}") from None


def load_npz(path: str | Path) -> ArraySource:
    """An ``.npz`` with ``images`` (N x H x W or N x H x W x C) and optional ``labels`` (N,).

    Every way the file can be wrong is one :class:`SourceError` naming the file and what was
    found: not a zip written by ``numpy.savez`` (a renamed ``.npy``, text, an empty file), no
    ``images`` array, arrays of Python objects (never loaded: unpickling can run code), images
    that are not numbers or hold NaN/infinity, labels that are not one per image.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror}") from None
    if head.startswith(b"\x93NUMPY"):
        raise SourceError(f"{path}: a single .npy array, not an .npz archive; save it with "
                          "numpy.savez(path, images=array)")
    if not head.startswith(b"PK"):
        raise SourceError(f"{path}: not an .npz archive (the zip file numpy.savez writes)")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z.files:
                found = ", ".join(z.files) or "none"
                raise SourceError(f"{path}: no 'images' array (found: {found})")
            key = "images"
            images = z["images"]
            key = "labels"
            labels = z["labels"] if "labels" in z.files else None
    except SourceError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise SourceError(f"{path}: '{key}' holds Python objects (dtype=object), which "
                              "imgclust does not load (unpickling can run code); save numbers "
                              "or strings") from None
        raise SourceError(f"{path}: cannot read as .npz: {exc}") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise SourceError(f"{path}: cannot read as .npz (damaged?): {exc}") from None
    if images.ndim not in (3, 4):
        raise SourceError(
            f"{path}: 'images' must be N x H x W or N x H x W x C, got {images.shape}")
    names = None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise SourceError(f"{path}: 'labels' must hold one label per image, shape "
                              f"({images.shape[0]},); got shape {labels.shape}")
        if labels.dtype.kind not in "biufUS":
            raise SourceError(f"{path}: 'labels' of dtype {labels.dtype}; expected integers "
                              "or strings")
        if labels.dtype.kind == "f" and not np.isfinite(labels).all():
            raise SourceError(f"{path}: {int((~np.isfinite(labels)).sum())} labels are NaN "
                              "or infinite")
        if labels.shape[0] != images.shape[0]:
            raise SourceError(f"{path}: {labels.shape[0]} labels for {images.shape[0]} images")
        uniq = np.unique(labels)
        names = [str(u) for u in uniq]
        labels = np.searchsorted(uniq, labels)
    try:
        return ArraySource(os.path.abspath(path), images, labels, names)  # found from anywhere
    except ValueError as exc:
        raise SourceError(str(exc).replace(os.path.abspath(path), str(path), 1)) from None
