"""The small typed core that every stage passes on.

Frozen dataclasses, each serialisable to JSON. Row order never drifts from image ids:
``Features`` and ``Clustering`` check that their arrays have one row per id.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ImageRecord:
    """One readable image of a source.

    Parameters
    ----------
    id : str
        Path relative to the source folder, or the array index as a string.
    path : str or None
        Absolute path of the file; ``None`` for images held in an array.
    width, height : int
        Size in pixels as stored (before any resizing).
    mode : str
        Pillow mode of the stored image (``"RGB"``, ``"L"``, ``"P"``…).
    """

    id: str
    path: str | None
    width: int
    height: int
    mode: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoadFailure:
    """A file that was skipped, and why."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Features:
    """A feature matrix with one row per image id.

    Parameters
    ----------
    ids : tuple of str
        Image ids, in row order.
    X : ndarray of shape (n_images, n_features)
    steps : tuple of str
        The feature steps that produced ``X`` (e.g. ``("pixels:size=8", "pca:n_components=50")``).
    """

    ids: tuple[str, ...]
    X: np.ndarray
    steps: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.X.ndim != 2:
            raise ValueError(f"Features.X must be 2-D, got shape {self.X.shape}")
        if len(self.ids) != self.X.shape[0]:
            raise ValueError(f"{len(self.ids)} ids but X has {self.X.shape[0]} rows")


@dataclass(frozen=True)
class KSelection:
    """How the number of clusters (or DBSCAN's eps) was chosen.

    Parameters
    ----------
    criterion : str
        A name of :mod:`imgclust.cluster.criteria`: a criterion that chose k (``"silhouette"``,
        ``"elbow"``, ``"bic"``, ``"graph"``…) or a record of how k came about (``"given"``,
        ``"eps"``, ``"upper-bound"``, ``"distinct"``: fewer distinct images than k, ``"none"``:
        methods such as HDBSCAN that find the number themselves).
    chosen : int or float or None
        The chosen k (or eps for DBSCAN's sweep).
    table : list of dict
        One row per candidate tried, with every score computed for it.
    note : str or None
        What was sampled when there were too many images to fit every one
        (:func:`imgclust.cluster.large.fit_large`).
    """

    criterion: str
    chosen: int | float | None
    table: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Clustering:
    """Cluster assignments with one entry per image id (``-1`` is noise)."""

    ids: tuple[str, ...]
    labels: np.ndarray
    method: str
    params: dict[str, Any]
    distance: np.ndarray
    representatives: dict[int, int]
    centers: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.labels) or len(self.ids) != len(self.distance):
            raise ValueError(
                f"{len(self.ids)} ids, {len(self.labels)} labels, {len(self.distance)} distances"
            )

    @property
    def n_clusters(self) -> int:
        return int(len(set(self.labels.tolist()) - {-1}))

    def sizes(self) -> dict[int, int]:
        values, counts = np.unique(self.labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}
