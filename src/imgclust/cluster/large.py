"""Clustering many images: methods that cannot scale fit on a sample and assign the rest.

Above :data:`SAMPLE_MAX` images, :func:`fit_large` keeps every cost below a matrix of all
pairs: the k sweep (whose criteria, silhouette above all, compare pairs) runs on a random
sample; a method registered with ``scales=True`` (k-means, mini-batch k-means, faiss-kmeans)
then fits every image with the chosen k; any other (agglomerative, spectral, mixtures,
HDBSCAN…) fits the sample only, and every other image takes the cluster of its nearest sampled
image (faiss or scikit-learn k-NN, :mod:`imgclust.neighbors`), noise included. A note says which.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from imgclust.cluster import DEFAULT_K_RANGE, fit_clusters, make_estimator, registry
from imgclust.model import KSelection
from imgclust.registry import parse_spec

#: above this many images the sweep, and the methods that cannot scale, run on a sample
SAMPLE_MAX = 20_000


def sample_rows(n: int, size: int, random_state: int = 0) -> np.ndarray:
    """``size`` row indices of ``n`` drawn without replacement, sorted (all when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size, replace=False))


def assign_nearest(X_fit: np.ndarray, labels_fit: np.ndarray, X: np.ndarray,
                   batch: int = 65536) -> np.ndarray:
    """The label of each row of ``X``'s nearest row of ``X_fit`` (searched in batches)."""
    from imgclust.neighbors import make_index

    index = make_index(X_fit)
    out = np.empty(len(X), dtype=np.asarray(labels_fit).dtype)
    for s in range(0, len(X), batch):
        _, i = index.search(X[s:s + batch], 1)
        out[s:s + batch] = np.asarray(labels_fit)[i[:, 0]]
    return out


def fit_large(X: np.ndarray, method: str = "kmeans", k: int | str = "auto",
              criterion: str | None = None, k_range: tuple[int, int] = DEFAULT_K_RANGE,
              random_state: int = 0, progress: Callable[[Any], Any] | None = None,
              sample_max: int = SAMPLE_MAX) -> tuple[np.ndarray, KSelection, Any, str | None]:
    """:func:`~imgclust.cluster.fit_clusters`, with no cost that grows as n² above
    ``sample_max`` images.

    Parameters
    ----------
    X : ndarray of shape (n_images, n_features)
    method, k, criterion, k_range, random_state, progress
        As :func:`~imgclust.cluster.fit_clusters`.
    sample_max : int
        Images the sweep and the methods that cannot scale are fitted on.

    Returns
    -------
    labels : ndarray of shape (n_images,)
    selection : KSelection
    estimator : fitted estimator (on every image, or on the sample)
    note : str or None
        What was sampled, for the summary; ``None`` when nothing was.

    Examples
    --------
    >>> labels, sel, est, note = fit_large(X, "agglomerative", k=10)  # doctest: +SKIP
    >>> note  # doctest: +SKIP
    'agglomerative cannot scale to 1,000,000 images: fitted on a random sample of 20,000 ...'
    """
    n = X.shape[0]
    if n <= sample_max:
        return (*fit_clusters(X, method, k, criterion, k_range, random_state, progress), None)
    registry.load_builtins()
    name, _ = parse_spec(method)
    ent = registry.entry(name)
    idx = sample_rows(n, sample_max, random_state)
    Xs = np.ascontiguousarray(X[idx])
    k_param = ent.meta.get("k_param")
    if ent.meta.get("scales") and k_param is not None:
        if k == "auto":
            _, sel, _ = fit_clusters(Xs, method, k, criterion, k_range, random_state, progress)
            note = (f"k was chosen on a random sample of {sample_max:,} of the {n:,} images "
                    f"(criterion {sel.criterion}); {name} then fitted every image with k = "
                    f"{sel.chosen}")
            kk = int(sel.chosen)
        else:
            sel, kk, note = KSelection("given", int(k), []), int(k), None
        est = make_estimator(method, random_state, **{k_param: kk})
        return np.asarray(est.fit_predict(X)), sel, est, note
    labels_s, sel, est = fit_clusters(Xs, method, k, criterion, k_range, random_state, progress)
    labels = np.empty(n, dtype=np.asarray(labels_s).dtype)
    labels[idx] = labels_s
    rest = np.ones(n, dtype=bool)
    rest[idx] = False
    labels[rest] = assign_nearest(Xs, labels_s, X[rest])
    note = (f"{name} cannot scale to {n:,} images: fitted on a random sample of "
            f"{sample_max:,}; every other image took the cluster of its nearest sampled image")
    return labels, sel, est, note
