"""Datasets that ship inside installed packages (no download, ever)."""
from __future__ import annotations

import os
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
    """An ``.npz`` with ``images`` (N x H x W or N x H x W x C) and optional ``labels``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z.files:
                found = ", ".join(z.files) or "none"
                raise SourceError(f"{path}: no 'images' array (found: {found})")
            images = z["images"]
            labels = z["labels"] if "labels" in z.files else None
    except SourceError:
        raise
    except (OSError, ValueError) as exc:
        raise SourceError(f"{path}: cannot read as .npz: {exc}") from None
    if images.ndim not in (3, 4):
        raise SourceError(
            f"{path}: 'images' must be N x H x W or N x H x W x C, got {images.shape}")
    names = None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape[0] != images.shape[0]:
            raise SourceError(f"{path}: {labels.shape[0]} labels for {images.shape[0]} images")
        uniq = np.unique(labels)
        names = [str(u) for u in uniq]
        labels = np.searchsorted(uniq, labels)
    try:
        return ArraySource(os.path.abspath(path), images, labels, names)  # found from anywhere
    except ValueError as exc:
        raise SourceError(str(exc)) from None
