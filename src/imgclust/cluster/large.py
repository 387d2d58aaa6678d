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
from imgclust.io import on_disk, row_blocks, take_rows
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
    """The label of each row of ``X``'s nearest row of ``X_fit`` (searched in batches; a
    matrix on disk read a block at a time, :func:`imgclust.io.row_blocks`)."""
    from imgclust.neighbors import make_index

    index = make_index(X_fit)
    labels_fit = np.asarray(labels_fit)
    out = np.empty(len(X), dtype=labels_fit.dtype)
    for s, b in row_blocks(X, block_bytes=batch * X.shape[1] * X.dtype.itemsize):
        _, i = index.search(np.ascontiguousarray(b), 1)
        out[s:s + len(b)] = labels_fit[i[:, 0]]
    return out


def predict_blocks(est: Any, X: np.ndarray) -> np.ndarray:
    """``est.predict`` of every row of ``X``, a block at a time."""
    out = np.empty(len(X), dtype=np.int64)
    for s, b in row_blocks(X):
        out[s:s + len(b)] = est.predict(b)
    return out


def _mixed_blocks(X: np.ndarray, rng: np.random.Generator, unit_bytes: int = 1 << 20,
                  group: int = 8):
    """Rows of ``X`` in a random order that reads the file in large pieces: ``group`` random
    contiguous pieces of ``unit_bytes`` at a time, their rows shuffled together (a folder's
    files come sorted by class; a pass in file order would show the centres one class after
    another)."""
    from imgclust.io import read_rows

    n, dim = X.shape
    per = max(1, unit_bytes // max(1, dim * X.dtype.itemsize))
    starts = rng.permutation(np.arange(0, n, per))
    where = on_disk(X)
    for g in range(0, len(starts), group):
        rows = np.concatenate([np.arange(s, min(n, s + per)) for s in starts[g:g + group]])
        rows = rng.permutation(rows)
        yield (read_rows(where[0], where[1], X.dtype, dim, rows) if where is not None
               else np.asarray(X[rows]))


def fit_on_disk(est: Any, X: np.ndarray, random_state: int = 0, sample_max: int = SAMPLE_MAX,
                epochs: int = 1) -> tuple[np.ndarray, str]:
    """Fit a scalable clusterer on a matrix on disk without holding it, and label every row.

    scikit-learn's ``MiniBatchKMeans`` starts from Lloyd's k-means on a random sample, then
    takes ``epochs`` passes of ``partial_fit`` over every row in steps of about 8 MiB of rows
    (a few random pieces of the file, shuffled together); faiss-kmeans trains on the random
    sample faiss itself would draw (``max_points_per_centroid`` rows a centre); an estimator
    with its own out-of-core fit (``fit_blocks``: dask-kmeans) is given the matrix; any other
    (k-means) fits a random sample of at most :data:`imgclust.io.FIT_SAMPLE_BYTES`. Every row
    then takes its nearest centre, a block at a time.

    Returns
    -------
    labels : ndarray of shape (n_images,)
    how : str
        What was fitted on what, for the summary's note.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans

    from imgclust.cluster.kmeans import FaissKMeans
    from imgclust.io import FIT_SAMPLE_BYTES

    n, dim = X.shape
    k = int(getattr(est, "n_clusters", 1))
    rng = np.random.default_rng(random_state)
    if hasattr(est, "fit_blocks"):
        labels = np.asarray(est.fit_blocks(X))
        return labels, f"{type(est).__name__} read the {n:,} images from disk a block at a time"
    if isinstance(est, MiniBatchKMeans):
        m = min(n, max(sample_max, 10 * k))
        # the start: Lloyd's k-means on the sample (k-means++ seeding). Then each step of
        # partial_fit takes a few MiB of rows (not batch_size): from fresh counts, steps of
        # about one row a centre put each centre on a single image (1M x 128, k = 1000:
        # inertia 18.5 M at the start, 59.6 M after 50 such steps, 17.3 M after one pass in
        # 8 MiB steps; scikit-learn's in-memory fit 17.7 M; bench/scale.py kmeans)
        start = KMeans(k, n_init=1, max_iter=50, random_state=random_state).fit(
            take_rows(X, sample_rows(n, m, random_state)))
        est.set_params(init=start.cluster_centers_, n_init=1, compute_labels=False)
        per = max(1, (1 << 20) // max(1, dim * X.dtype.itemsize))
        group = max(8, -(-2 * k // per))  # at least two rows a centre in every step
        for _ in range(max(1, int(epochs))):
            for rows in _mixed_blocks(X, rng, group=group):
                if len(rows) >= k:  # partial_fit refuses fewer rows than centres
                    est.partial_fit(rows)
        labels = predict_blocks(est, X)
        return labels, (f"mini-batch k-means started from k-means on {m:,} sampled images, "
                        f"then {max(1, int(epochs))} pass(es) over all {n:,} read from disk "
                        f"in steps of {per * group:,} images")
    if isinstance(est, FaissKMeans):
        m = min(n, k * int(est.max_points_per_centroid))
        how = (f"faiss-kmeans trained on {m:,} sampled images (faiss' own sample of "
               f"{int(est.max_points_per_centroid)} a centre)")
    else:
        m = min(n, max(sample_max, FIT_SAMPLE_BYTES // max(1, dim * X.dtype.itemsize)))
        how = f"{type(est).__name__} fitted on {m:,} sampled images of the {n:,} (on disk)"
    est.fit(take_rows(X, sample_rows(n, m, random_state)))
    labels = predict_blocks(est, X)
    if isinstance(est, FaissKMeans):  # every row's, as fit() on all of them gives
        est.labels_ = labels
    return labels, how + "; every image then took its nearest centre"


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
        if on_disk(X) is not None:  # a few wide rows: held for the fit
            X = take_rows(X, np.arange(n))
        return (*fit_clusters(X, method, k, criterion, k_range, random_state, progress), None)
    registry.load_builtins()
    name, _ = parse_spec(method)
    ent = registry.entry(name)
    idx = sample_rows(n, sample_max, random_state)
    Xs = np.ascontiguousarray(take_rows(X, idx))
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
        if on_disk(X) is not None:  # too large to hold: fitted and labelled a block at a time
            labels, how = fit_on_disk(est, X, random_state, sample_max)
            return labels, sel, est, f"{note}; {how}" if note else how
        return np.asarray(est.fit_predict(X)), sel, est, note
    labels_s, sel, est = fit_clusters(Xs, method, k, criterion, k_range, random_state, progress)
    labels = np.empty(n, dtype=np.asarray(labels_s).dtype)
    labels[idx] = labels_s
    rest = np.ones(n, dtype=bool)
    rest[idx] = False
    labels[rest] = assign_nearest(Xs, labels_s, X)[rest]  # a block at a time, no copy of X
    note = (f"{name} cannot scale to {n:,} images: fitted on a random sample of "
            f"{sample_max:,}; every other image took the cluster of its nearest sampled image")
    return labels, sel, est, note
