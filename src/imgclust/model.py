"""The small typed core that every stage passes on.

Frozen dataclasses, each serialisable to JSON. Row order never drifts from image ids:
``Features`` and ``Clustering`` check that their arrays have one row per id.
"""
from __future__ import annotations

from array import array
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Sequence, overload

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


class ImageRecords(Sequence[ImageRecord]):
    """The records of many images, held compactly: ids, sizes and mode codes in arrays, the
    path of each computed when asked for (about 100 bytes an image instead of 400 for a list of
    :class:`ImageRecord`). A read-only sequence of :class:`ImageRecord`.

    Parameters
    ----------
    path_of : callable, optional
        Image id -> absolute path (a folder source's ``describe``); ``None``: no paths.

    Examples
    --------
    >>> recs = ImageRecords(lambda i: "/data/" + i)
    >>> recs.append("a.png", 4, 3, "RGB")
    >>> recs[0]
    ImageRecord(id='a.png', path='/data/a.png', width=4, height=3, mode='RGB')
    """

    def __init__(self, path_of: Callable[[str], str] | None = None) -> None:
        self._path_of = path_of
        self.ids: list[str] = []
        self._w = array("q")
        self._h = array("q")
        self._m = array("H")
        self._modes: list[str] = []
        self._code: dict[str, int] = {}

    def append(self, image_id: str, width: int, height: int, mode: str) -> None:
        """Add one image's record."""
        c = self._code.get(mode)
        if c is None:
            c = self._code[mode] = len(self._modes)
            self._modes.append(mode)
        self.ids.append(image_id)
        self._w.append(width)
        self._h.append(height)
        self._m.append(c)

    def __len__(self) -> int:
        return len(self.ids)

    def _record(self, j: int) -> ImageRecord:
        i = self.ids[j]
        return ImageRecord(id=i, path=self._path_of(i) if self._path_of else None,
                           width=self._w[j], height=self._h[j], mode=self._modes[self._m[j]])

    @overload
    def __getitem__(self, j: int) -> ImageRecord: ...

    @overload
    def __getitem__(self, j: slice) -> "ImageRecords": ...

    def __getitem__(self, j: int | slice) -> "ImageRecord | ImageRecords":
        if isinstance(j, slice):
            out = ImageRecords(self._path_of)
            out.ids, out._w, out._h, out._m = self.ids[j], self._w[j], self._h[j], self._m[j]
            out._modes, out._code = self._modes, self._code
            return out
        n = len(self.ids)
        if not -n <= j < n:
            raise IndexError(f"record {j} of {n}")
        return self._record(j % n)

    def __iter__(self) -> Iterator[ImageRecord]:
        for j in range(len(self.ids)):
            yield self._record(j)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ImageRecords({len(self)} images)"


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
