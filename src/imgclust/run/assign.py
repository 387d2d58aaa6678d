"""Assigning new images to the clusters of a finished run, or calling them ``unknown``.

A new image takes the cluster of its nearest images of the run (a distance-weighted vote of the
``n_neighbors`` nearest), so it is numbered exactly as ``clusters.csv`` is, whatever method made
the clusters (k-means, spectral, DBSCAN…). An image of the run itself finds itself at distance
0 and gets its own row's cluster back (noise stays noise).

It is ``unknown`` (cluster -1) when it lies farther from the run's images than they lie from
each other: its distance to its ``n_neighbors``-th nearest run image is above the ``quantile``
(default 0.95) of the same distance measured among the run's own images, leaving each one out
(seed 004's DBSCAN + k-NN rule, with the cut-off learned from the run instead of set by hand).

Measured on MNIST-10k's digits 0-4 (a run on 80 %; held-out 20 % of 0-4 vs unseen 5-9, seed 0,
BENCHMARKS.md §"Reopening a run"): share called unknown, held-out / unseen —
k = 5: q 0.95 3.5 % / 79.6 %, q 0.99 0.7 % / 41.7 %; k = 10: 3.4 % / 74.0 %, 0.9 % / 38.3 %;
k = 20: 3.2 % / 67.6 %, 0.7 % / 29.1 %. A LOF-like ratio (the distance over the neighbours' own)
and the PCA reconstruction error each separated worse (q 0.95: 2.5 % / 51 %; 7.3 % / 44 %).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgclust.errors import ConfigError
from imgclust.neighbors import make_index, self_knn

#: neighbours that vote, and whose farthest distance decides "unknown"
N_NEIGHBORS = 5
#: share of the run's own images that are inside the "known" cut-off
QUANTILE = 0.95
#: a query this close to a run image (relative to the typical neighbour distance) is that image
SAME_IMAGE = 1e-4


@dataclass(frozen=True)
class Assignment:
    """Clusters of new images, in the order they were given.

    Attributes
    ----------
    labels : ndarray of shape (n,)
        Cluster of each image, numbered as ``clusters.csv``; -1 for unknown (or noise).
    distance : ndarray of shape (n,)
        Distance to the nearest image of the run, in the assign space.
    unknown : ndarray of bool, shape (n,)
        Farther from the run's images than the cut-off.
    reason : list of str
        Why each image got its cluster (``nearest``, ``same image``, ``unknown: …``).
    """

    labels: np.ndarray
    distance: np.ndarray
    unknown: np.ndarray
    reason: list[str]


class NearestAssigner:
    """k-NN assignment with an "unknown" cut-off learned from the run's own images.

    Parameters
    ----------
    n_neighbors : int
    quantile : float in (0, 1]
        Share of the run's images (each measured against the others) inside the cut-off.
    backend : {"auto", "sklearn", "faiss"}

    Examples
    --------
    >>> X = np.r_[np.zeros((20, 2)), np.ones((20, 2)) * 5] + np.random.default_rng(0).normal(size=(40, 2)) * .1
    >>> a = NearestAssigner().fit(X, np.r_[np.zeros(20, int), np.ones(20, int)])
    >>> a.predict(np.array([[0, 0], [5, 5], [50, 50]])).labels.tolist()
    [0, 1, -1]
    """

    def __init__(self, n_neighbors: int = N_NEIGHBORS, quantile: float = QUANTILE,
                 backend: str = "auto") -> None:
        self.n_neighbors = n_neighbors
        self.quantile = quantile
        self.backend = backend

    def fit(self, X: np.ndarray, labels: np.ndarray) -> "NearestAssigner":
        """Index the run's images and learn the cut-off.

        Parameters
        ----------
        X : ndarray of shape (n_images, n_features)
            The run's images in the assign space.
        labels : ndarray of shape (n_images,)
            Their clusters as in ``clusters.csv``.
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        labels = np.asarray(labels, dtype=np.int64)
        if len(X) != len(labels):
            raise ConfigError(f"{len(X)} feature rows but {len(labels)} labels")
        if len(X) < 2:
            raise ConfigError(f"assigning needs a run of at least 2 images, got {len(X)}")
        if not 0 < self.quantile <= 1:
            raise ConfigError(f"quantile={self.quantile} must be in (0, 1]")
        if int(self.n_neighbors) < 1:
            raise ConfigError(f"n_neighbors={self.n_neighbors} must be at least 1")
        self.k_ = int(min(self.n_neighbors, len(X) - 1))
        self.X_, self.labels_ = X, labels
        self.index_ = make_index(X, self.backend)
        D, _ = self_knn(self.index_, X, self.k_)
        kth = D[:, -1]
        self.threshold_ = float(np.quantile(kth, self.quantile))
        scale = float(np.median(D[:, 0])) if len(D) else 0.0
        self.same_ = SAME_IMAGE * (scale if scale > 0 else 1.0)
        return self

    def predict(self, Q: np.ndarray) -> Assignment:
        """Clusters of the rows of ``Q`` (same space as ``fit``'s ``X``)."""
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        if Q.ndim != 2 or Q.shape[1] != self.X_.shape[1]:
            raise ConfigError(f"new images give {Q.shape[-1] if Q.ndim else 0} features per "
                              f"image; the run has {self.X_.shape[1]}")
        n = len(Q)
        if n == 0:
            return Assignment(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool), [])
        D, I = self.index_.search(Q, self.k_)  # noqa: E741
        labels = np.empty(n, dtype=np.int64)
        reason: list[str] = []
        unknown = D[:, -1] > self.threshold_
        for j in range(n):
            if D[j, 0] <= self.same_:
                labels[j] = self.labels_[I[j, 0]]
                reason.append("same image as a run image")
                unknown[j] = False
                continue
            if unknown[j]:
                labels[j] = -1
                reason.append(f"unknown: {self.k_}-th nearest run image at {D[j, -1]:.4g}, "
                              f"beyond the cut-off {self.threshold_:.4g} (the run's "
                              f"{self.quantile:.0%} quantile)")
                continue
            w = 1.0 / (D[j] + 1e-12)
            votes: dict[int, float] = {}
            for lab, wt in zip(self.labels_[I[j]].tolist(), w.tolist()):
                votes[lab] = votes.get(lab, 0.0) + wt
            labels[j] = max(votes.items(), key=lambda kv: kv[1])[0]
            reason.append("noise among its nearest run images" if labels[j] < 0
                          else f"nearest {self.k_} run images")
        return Assignment(labels, D[:, 0].astype(np.float64), unknown, reason)
