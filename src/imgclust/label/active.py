"""Active learning: which images to label next.

First one representative of every cluster that has no label yet (the member nearest the
cluster's centre, largest cluster first), so the first labels cover the whole collection;
then the images whose label is least certain: the smallest margin between the two most
probable classes, from ``LabelSpreading`` over the kNN graph (default) or from a logistic
regression trained on the labels so far, spread over the uncertain region (see
:data:`DIVERSITY`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from imgclust.errors import ConfigError

MODELS = ("spread", "logreg")
#: the uncertain picks come from this many times as many least-certain candidates; on digits
#: 20 labels (10 representatives + 10 picks) gave 0.98 with it, 0.95 with plain margins
#: (test accuracy after spreading; bench/label_bench.py)
DIVERSITY = 20


@dataclass(frozen=True)
class Suggestion:
    """One image to label next.

    Attributes
    ----------
    index : int
        Row number of the image.
    cluster : int
    reason : {"representative", "uncertain", "far"}
        ``far``: no margin yet (fewer than two classes labelled): the image farthest from
        every labelled one.
    margin : float or None
        Top-two probability margin (``uncertain`` only; 0 = a coin toss).
    """

    index: int
    cluster: int
    reason: str
    margin: float | None = None


def class_probabilities(X: np.ndarray, labels: Mapping[int, str], model: str = "spread",
                        n_neighbors: int = 10, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Probability of each class for every image, array (n_images, n_classes), and the classes."""
    classes = sorted(set(labels.values()))
    rows = np.fromiter(labels, dtype=np.int64)
    if model == "spread":
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.semi_supervised import LabelSpreading

        y = np.full(X.shape[0], -1)
        y[rows] = [classes.index(labels[int(i)]) for i in rows]
        k = max(1, min(n_neighbors, X.shape[0] - 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # components without any label
            warnings.simplefilter("ignore", ConvergenceWarning)
            dist = LabelSpreading(kernel="knn", n_neighbors=k, max_iter=1000).fit(
                X, y).label_distributions_
        return np.nan_to_num(dist, nan=0.0), classes
    if model == "logreg":
        from imgclust.label.train import make_classifier

        clf = make_classifier(seed).fit(X[rows], [labels[int(i)] for i in rows])
        return clf.predict_proba(X), list(clf.classes_)
    raise ConfigError(f"active-learning model {model!r}; valid: {', '.join(MODELS)}")


def next_to_label(X: np.ndarray, clusters: np.ndarray, labels_so_far: Mapping[int, str],
                  n: int = 20, *, model: str = "spread", exclude: Iterable[int] = (),
                  diversity: int = DIVERSITY, seed: int = 0) -> list[Suggestion]:
    """The ``n`` images to label next, in order.

    Parameters
    ----------
    X : array of shape (n_images, n_features)
    clusters : array of shape (n_images,)
        Cluster of each image (-1 noise: never a representative).
    labels_so_far : mapping of row number to label
    n : int
    model : {"spread", "logreg"}
        What gives the class probabilities whose margin ranks the uncertain images.
    exclude : iterable of int
        Rows never to suggest (e.g. marked not of interest).
    diversity : int
        The uncertain picks are spread over the ``diversity * slots`` least certain images
        (1: simply the smallest margins).
    seed : int

    Returns
    -------
    list of Suggestion
        Representatives of unlabelled clusters first, then the least certain images.

    Examples
    --------
    >>> X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    >>> [s.index for s in next_to_label(X, np.array([0, 0, 0, 1, 1, 1]), {}, n=2)]
    [1, 4]
    """
    X = np.asarray(X, dtype=np.float64)
    clusters = np.asarray(clusters, dtype=np.int64)
    if X.ndim != 2 or clusters.shape != (X.shape[0],):
        raise ConfigError(f"features of shape {X.shape} and clusters of shape {clusters.shape} "
                          "do not match")
    if n < 1:
        raise ConfigError(f"n={n} must be at least 1")
    if model not in MODELS:
        raise ConfigError(f"active-learning model {model!r}; valid: {', '.join(MODELS)}")
    blocked = set(int(i) for i in labels_so_far) | set(int(i) for i in exclude)
    out: list[Suggestion] = []
    # 1. a representative of each cluster that has no label, largest cluster first
    ids, sizes = np.unique(clusters[clusters >= 0], return_counts=True)
    for c in ids[np.argsort(-sizes, kind="stable")]:
        members = np.flatnonzero(clusters == c)
        if any(int(i) in labels_so_far for i in members):
            continue
        free = np.array([i for i in members if int(i) not in blocked])
        if len(free) == 0:
            continue
        centre = X[members].mean(axis=0)
        best = int(free[np.argmin(np.linalg.norm(X[free] - centre, axis=1))])
        out.append(Suggestion(best, int(c), "representative"))
        blocked.add(best)
        if len(out) == n:
            return out
    candidates = np.array([i for i in range(X.shape[0]) if i not in blocked], dtype=np.int64)
    if len(candidates) == 0:
        return out
    # 2. the least certain images, by the margin of the top two class probabilities, spread
    #    over the uncertain region: the diversity x m smallest margins fall into m k-means
    #    groups, and each group gives its member nearest its centre (cluster-margin sampling,
    #    Citovsky et al. 2021); plain margin picks near-copies of one confusion
    if len(set(labels_so_far.values())) >= 2:
        proba, _ = class_probabilities(X, labels_so_far, model, seed=seed)
        top2 = -np.sort(-proba[candidates], axis=1)[:, :2]
        margin = top2[:, 0] - top2[:, 1]
        m = min(n - len(out), len(candidates))
        pool = np.argsort(margin, kind="stable")[: max(m, int(diversity) * m)]
        picks = pool[:m]
        if len(pool) > m:
            from sklearn.cluster import KMeans

            km = KMeans(m, n_init=3, random_state=seed).fit(X[candidates[pool]])
            picks = []
            for g in range(m):
                members = pool[km.labels_ == g]
                if len(members):
                    d = np.linalg.norm(X[candidates[members]] - km.cluster_centers_[g], axis=1)
                    picks.append(int(members[np.argmin(d)]))
            picks = sorted(picks, key=lambda j: (margin[j], j))
        for j in picks:
            i = int(candidates[j])
            out.append(Suggestion(i, int(clusters[i]), "uncertain", float(margin[j])))
        return out
    # fewer than two classes: no margin yet; the images farthest from every chosen one
    chosen = [int(i) for i in labels_so_far] + [s.index for s in out]
    if chosen:
        from sklearn.metrics import pairwise_distances_argmin_min

        d = pairwise_distances_argmin_min(X[candidates], X[chosen])[1]
    else:
        d = np.linalg.norm(X[candidates] - X.mean(axis=0), axis=1)
    while len(out) < n and len(candidates):
        j = int(np.argmax(d))
        i = int(candidates[j])
        out.append(Suggestion(i, int(clusters[i]), "far"))
        d = np.minimum(d, np.linalg.norm(X[candidates] - X[i], axis=1))
        d[j] = -np.inf
        if np.all(np.isinf(d)):
            break
    return out


def suggest_run(run_dir: str | Path, n: int = 20, model: str = "spread"
                ) -> list[dict[str, Any]]:
    """:func:`next_to_label` on a run's features, clusters and given labels.

    Returns
    -------
    list of dict
        ``id``, ``cluster``, ``reason``, ``margin`` for each suggestion, in order.
    """
    from imgclust.errors import RunDirError
    from imgclust.label.store import LabelStore

    store = LabelStore(run_dir)
    if store.run.X is None:
        raise RunDirError(f"{store.run_dir}: features.npy is missing; suggestions need it")
    given = {store.index[i]: lab for i, lab in store.given_labels().items()}
    exclude = [store.index[i] for i in store.not_of_interest()]
    sug = next_to_label(store.run.X, store.current_clusters(), given, n, model=model,
                        exclude=exclude)
    return [{"id": store.ids[s.index], "cluster": s.cluster, "reason": s.reason,
             "margin": s.margin} for s in sug]
