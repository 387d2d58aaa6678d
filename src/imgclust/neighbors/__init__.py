"""One interface for k-nearest-neighbour search: scikit-learn exact, faiss where installed.

Assign, outliers, duplicates, label propagation and the k-NN graphs all search through
:func:`make_index`, so a faster backend helps every one of them at once.

Examples
--------
>>> import numpy as np
>>> idx = make_index(np.eye(3, dtype=np.float32))
>>> d, i = idx.search(np.eye(3, dtype=np.float32), k=1)
>>> i[:, 0].tolist()
[0, 1, 2]
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from imgclust.errors import ConfigError

#: backends by name; "auto" takes faiss when it is installed and the data are large
BACKENDS = ("auto", "sklearn", "faiss")
#: below this many indexed rows "auto" uses scikit-learn (exact and fast enough; no extra)
FAISS_FROM = 20_000


class NeighborIndex(Protocol):
    """A fitted index over the rows of a matrix (Euclidean distance)."""

    n: int

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest indexed rows of each query row.

        Returns
        -------
        distances : ndarray of shape (n_queries, k), ascending (Euclidean, not squared)
        indices : ndarray of shape (n_queries, k), row numbers into the indexed matrix
        """
        ...


class SklearnIndex:
    """Exact search with scikit-learn's ``NearestNeighbors`` (tree or brute force as it sees fit)."""

    def __init__(self, X: np.ndarray) -> None:
        from sklearn.neighbors import NearestNeighbors

        self.n = int(X.shape[0])
        self._nn = NearestNeighbors().fit(X)

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(int(k), self.n)
        d, i = self._nn.kneighbors(np.asarray(Q), n_neighbors=k)
        return d.astype(np.float32), i.astype(np.int64)


class FaissIndex:
    """Exact search with faiss' flat L2 index (``pip install "imgclust[faiss]"``)."""

    def __init__(self, X: np.ndarray) -> None:
        import faiss

        X = np.ascontiguousarray(X, dtype=np.float32)
        self.n = int(X.shape[0])
        self._index = faiss.IndexFlatL2(X.shape[1])
        self._index.add(X)

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(int(k), self.n)
        d2, i = self._index.search(np.ascontiguousarray(Q, dtype=np.float32), k)
        return np.sqrt(np.maximum(d2, 0)).astype(np.float32), i.astype(np.int64)


def faiss_available() -> bool:
    """Whether the faiss backend can be used."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def make_index(X: np.ndarray, backend: str = "auto") -> NeighborIndex:
    """Build a k-NN index over the rows of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    backend : {"auto", "sklearn", "faiss"}
        ``auto``: faiss when installed and ``n_rows >= FAISS_FROM``, else scikit-learn.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"neighbour backend {backend!r}; valid: {', '.join(BACKENDS)}")
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ConfigError(f"a neighbour index needs a non-empty 2-D matrix, got shape {X.shape}")
    if backend == "faiss" or (backend == "auto" and X.shape[0] >= FAISS_FROM and faiss_available()):
        if not faiss_available():
            from imgclust.errors import MissingExtraError

            raise MissingExtraError("the faiss neighbour backend", "faiss")
        return FaissIndex(X)
    return SklearnIndex(X)


def self_knn(index: NeighborIndex, X: np.ndarray, k: int, batch: int = 8192
             ) -> tuple[np.ndarray, np.ndarray]:
    """Each indexed row's ``k`` nearest *other* rows (itself left out), searched in batches.

    ``X`` must be the matrix the index was built on. Where duplicates make the row itself not
    come first, the first column whose index equals the row is the one dropped.
    """
    n = X.shape[0]
    k = min(int(k), n - 1)
    D = np.empty((n, k), dtype=np.float32)
    I = np.empty((n, k), dtype=np.int64)  # noqa: E741
    for s in range(0, n, batch):
        d, i = index.search(X[s:s + batch], k + 1)
        rows = np.arange(s, min(s + batch, n))[:, None]
        is_self = i == rows
        # drop the self column where found, else the last (farthest) one
        drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
        keep = np.ones_like(i, dtype=bool)
        keep[np.arange(len(i)), drop] = False
        D[s:s + batch] = d[keep].reshape(len(i), k)
        I[s:s + batch] = i[keep].reshape(len(i), k)
    return D, I
