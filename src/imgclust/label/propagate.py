"""Label propagation: from the few images a person labelled to the rest.

Three modes, each a function of the features, the clusters and the given labels:

``cluster``
    Every cluster that holds labelled images gets its majority label. Confidence = the share
    of the cluster's labels that agree with it × how central the image is in its cluster
    (``1 - q/2``, ``q`` the image's rank by distance to the centre, 0 nearest, 1 farthest):
    a cluster's errors sit on its rim, so the centre gets the whole share and the rim half.
``nearest:P%``
    The same, for only the P % members of each cluster nearest its centre.
``spread``
    scikit-learn's ``LabelSpreading`` on a k-nearest-neighbour graph (``kernel="knn"``,
    ``n_neighbors=10``): labels flow along the graph, across cluster borders, and the clusters
    are not used. Confidence = the largest entry of ``label_distributions_``.

Noise (cluster -1) gets no label from ``cluster`` or ``nearest``.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from imgclust.errors import ConfigError

MODES = ("cluster", "nearest:P%", "spread")
#: neighbours of each image in the ``spread`` graph
SPREAD_NEIGHBORS = 10


@dataclass(frozen=True)
class Propagation:
    """Labels for every image.

    Attributes
    ----------
    labels : ndarray of object, shape (n_images,)
        The label (str), or None where the mode gives none. Labelled images keep their own.
    confidence : ndarray of float, shape (n_images,)
        In [0, 1]; 1 for labelled images, nan where ``labels`` is None.
    mode : str
    """

    labels: np.ndarray
    confidence: np.ndarray
    mode: str


def parse_mode(mode: str) -> tuple[str, float | None]:
    """``"cluster"``, ``"spread"`` or ``"nearest:P%"`` -> (name, P / 100)."""
    if mode in ("cluster", "spread"):
        return mode, None
    m = re.fullmatch(r"nearest:(\d+(?:\.\d+)?)%?", mode)
    if m:
        share = float(m.group(1)) / 100
        if not 0 < share <= 1:
            raise ConfigError(f"propagation mode {mode!r}: the share must be in (0, 100] %")
        return "nearest", share
    raise ConfigError(f"propagation mode {mode!r}; valid: cluster, nearest:P% (e.g. "
                      "nearest:20%), spread")


def _check(X: np.ndarray, clusters: np.ndarray, given: Mapping[int, str]) -> tuple[np.ndarray,
                                                                                     np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    clusters = np.asarray(clusters, dtype=np.int64)
    if X.ndim != 2 or clusters.shape != (X.shape[0],):
        raise ConfigError(f"features of shape {X.shape} and clusters of shape {clusters.shape} "
                          "do not match")
    if not given:
        raise ConfigError("propagation needs at least one labelled image")
    bad = [i for i in given if not 0 <= int(i) < X.shape[0]]
    if bad:
        raise ConfigError(f"labelled rows {bad[:3]} are outside the {X.shape[0]} images")
    return X, clusters


def centrality(X: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Members sorted nearest-first to their mean, and each one's rank quantile (0 … 1)."""
    d = np.linalg.norm(X[members] - X[members].mean(axis=0), axis=1)
    order = members[np.argsort(d, kind="stable")]
    q = np.arange(len(order)) / max(len(order) - 1, 1)
    return order, q


def propagate(X: np.ndarray, clusters: np.ndarray, given: Mapping[int, str],
              mode: str = "cluster", *, n_neighbors: int = SPREAD_NEIGHBORS,
              alpha: float = 0.2) -> Propagation:
    """Propagate the ``given`` labels to the other images.

    Parameters
    ----------
    X : array of shape (n_images, n_features)
    clusters : array of shape (n_images,)
        Cluster of each image (-1 noise).
    given : mapping of row number to label
        The labels a person gave.
    mode : {"cluster", "nearest:P%", "spread"}
    n_neighbors, alpha : LabelSpreading's graph size and clamping (``spread`` only).

    Returns
    -------
    Propagation

    Examples
    --------
    >>> X = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> p = propagate(X, np.array([0, 0, 1, 1]), {0: "a", 3: "b"})
    >>> p.labels.tolist()
    ['a', 'a', 'b', 'b']
    """
    name, share = parse_mode(mode)
    X, clusters = _check(X, clusters, given)
    n = X.shape[0]
    labels = np.full(n, None, dtype=object)
    conf = np.full(n, np.nan)
    if name == "spread":
        labels, conf = _spread(X, given, n_neighbors, alpha)
    else:
        for c in np.unique(clusters):
            if c < 0:
                continue
            members = np.flatnonzero(clusters == c)
            votes = [given[int(i)] for i in members if int(i) in given]
            if not votes:
                continue
            values, counts = np.unique(np.array(votes, dtype=object), return_counts=True)
            top = int(np.argmax(counts))  # ties: the label first in sorted order
            agree = counts[top] / len(votes)
            order, q = centrality(X, members)
            keep = len(order) if share is None else max(1, math.ceil(share * len(order)))
            labels[order[:keep]] = values[top]
            conf[order[:keep]] = agree * (1 - q[:keep] / 2)
    for i, lab in given.items():  # a person's label stays as given
        labels[int(i)] = lab
        conf[int(i)] = 1.0
    return Propagation(labels, conf, mode)


def _spread(X: np.ndarray, given: Mapping[int, str], n_neighbors: int, alpha: float
            ) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.semi_supervised import LabelSpreading

    classes = sorted(set(given.values()))
    code = {c: k for k, c in enumerate(classes)}
    y = np.full(X.shape[0], -1)
    for i, lab in given.items():
        y[int(i)] = code[lab]
    k = max(1, min(int(n_neighbors), X.shape[0] - 1))
    model = LabelSpreading(kernel="knn", n_neighbors=k, alpha=alpha, max_iter=1000)
    with warnings.catch_warnings():
        # an image in a graph component without any label has no distribution (0/0)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    dist = np.nan_to_num(model.label_distributions_, nan=0.0)
    reached = dist.sum(axis=1) > 0
    labels = np.full(X.shape[0], None, dtype=object)
    labels[reached] = np.array(classes, dtype=object)[dist[reached].argmax(axis=1)]
    conf = np.where(reached, dist.max(axis=1), np.nan)
    return labels, conf


def propagate_run(run_dir: str | Path, mode: str = "cluster") -> dict[str, Any]:
    """Propagate a run's given labels and record the result as one batch of ``propagated`` labels.

    Images with a label a person gave, or marked not of interest, are left alone. An image
    that an earlier propagation labelled and this one does not loses that label (undoing this
    batch brings it back).

    Returns
    -------
    dict
        ``batch`` (None when nothing changed), ``mode``, ``labelled`` (images with a
        propagated label now), ``changed``, ``cleared``, ``by_label`` (counts).
    """
    from imgclust.label.store import LabelStore

    parse_mode(mode)
    store = LabelStore(run_dir)
    if store.run.X is None:
        from imgclust.errors import RunDirError

        raise RunDirError(f"{store.run_dir}: features.npy is missing; propagation needs it")
    given = {store.index[i]: lab for i, lab in store.given_labels().items()}
    if not given:
        raise ConfigError(f"{store.run_dir}: no labels yet; label a few images first "
                          "(imgclust label next / import)")
    prop = propagate(store.run.X, store.current_clusters(), given, mode)
    skip = store.not_of_interest()
    current = store.current_labels()
    changes: dict[str, str | None] = {}
    confs: dict[str, float] = {}
    by_label: dict[str, int] = {}
    for n, image_id in enumerate(store.ids):
        if n in given or image_id in skip:
            continue
        lab, conf = prop.labels[n], prop.confidence[n]
        old = current.get(image_id)
        if lab is None:
            if old is not None and old[1] == "propagated":
                changes[image_id] = None
            continue
        by_label[lab] = by_label.get(lab, 0) + 1
        conf = round(float(conf), 6)
        if old is None or old[:2] != (lab, "propagated") or old[2] != conf:
            changes[image_id] = lab
            confs[image_id] = conf
    batch = (store.label_each(changes, "propagated", confs, op_name="propagate")
             if changes else None)
    return {"batch": batch, "mode": mode, "labelled": sum(by_label.values()),
            "changed": sum(v is not None for v in changes.values()),
            "cleared": sum(v is None for v in changes.values()),
            "by_label": dict(sorted(by_label.items()))}
