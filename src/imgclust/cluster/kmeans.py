"""k-means: scikit-learn's KMeans and MiniBatchKMeans, and faiss' k-means for millions."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from imgclust.cluster.registry import CLUSTERERS
from imgclust.errors import MissingExtraError

CLUSTERERS.add(
    "kmeans", KMeans, primary="n_clusters", k_param="n_clusters",
    # scales: each of its iterations costs n x k distances, computed in chunks (no n x n)
    criteria=("silhouette", "elbow", "density"), sweep="k", scales=True,
    # one k-means++ start (scikit-learn's n_init="auto") is noticeably less stable on image
    # features than the best of ten
    defaults={"n_init": 10},
    about="k-means: k centres, each image in the cluster of the nearest.\n\n"
          "k-means (scikit-learn): k cluster centres, each image in the cluster of the nearest "
          "centre, the centres moved until the summed squared distances (inertia) stop "
          "falling; the best of n_init=10 starts is kept. Suits compact, similar-sized groups.")
CLUSTERERS.add(
    "minibatch-kmeans", MiniBatchKMeans, primary="n_clusters", k_param="n_clusters",
    criteria=("silhouette", "elbow", "density"), sweep="k", defaults={"n_init": 3}, scales=True,
    about="k-means on small batches: bounded memory for large sets.\n\n"
          "Mini-batch k-means (scikit-learn): k-means that moves its centres from small random "
          "batches of images (batch_size) instead of all of them at each step: bounded memory "
          "and faster on large sets, slightly less exact; best of n_init=3 starts.")


class FaissKMeans(ClusterMixin, BaseEstimator):
    """k-means by faiss (``faiss.Kmeans``): for hundreds of thousands to millions of images.

    Lloyd's iterations on faiss' multithreaded BLAS, from ``n_init`` starts (the lowest
    training objective kept), each seeded by k-means++ on a sample of 16 rows a centre; as
    faiss does, each start trains on at most
    ``max_points_per_centroid * n_clusters`` images drawn at random (all of them below that),
    then every image is assigned to its nearest centre. No matrix of pairwise distances.

    Parameters
    ----------
    n_clusters : int, default=8
    init : {"k-means++", "random"} or ndarray of shape (n_clusters, n_features), default="k-means++"
        Starting centres: scikit-learn's k-means++ on a sample, faiss' k random rows, or the
        centres given (then every start begins there).
    n_init : int, default=1
        Starts.
    max_iter : int, default=25
        Iterations per start (faiss' ``niter``).
    max_points_per_centroid : int, default=256
        faiss' cap on the training sample per centre.
    random_state : int, optional

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features), float32
    labels_ : ndarray of shape (n_images,)
    inertia_ : float
        Sum of squared distances of every image to its centre.
    n_iter_ : int
        Iterations run per start (faiss has no early stop).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.concatenate([np.zeros((20, 2)), np.ones((20, 2)) * 5]).astype("float32")
    >>> len(set(FaissKMeans(2, random_state=0).fit(X).labels_))  # doctest: +SKIP
    2
    """

    def __init__(self, n_clusters: int = 8, init: str = "k-means++", n_init: int = 1,
                 max_iter: int = 25, max_points_per_centroid: int = 256,
                 random_state: int | None = None) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.max_points_per_centroid = max_points_per_centroid
        self.random_state = random_state

    def _validate_params_(self) -> None:
        for name in ("n_clusters", "n_init", "max_iter", "max_points_per_centroid"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}={v!r} must be a positive integer")
        if isinstance(self.init, str):
            if self.init not in ("k-means++", "random"):
                raise ValueError(f"init={self.init!r}; valid: k-means++, random, or an array of "
                                 "starting centres")
        elif np.ndim(self.init) != 2 or len(self.init) != self.n_clusters:
            raise ValueError(f"init: an array of starting centres must have shape "
                             f"(n_clusters={self.n_clusters}, n_features), got {np.shape(self.init)}")
        check_random_state(self.random_state)

    def fit(self, X: Any, y: Any = None) -> "FaissKMeans":
        """Train the centres and assign every row of ``X`` (shape (n_images, n_features))."""
        self._validate_params_()
        faiss = _faiss()
        X = validate_data(self, X, dtype=[np.float32, np.float64])
        X = np.ascontiguousarray(X, dtype=np.float32)
        n, d = X.shape
        k = int(self.n_clusters)
        if n < k:
            raise ValueError(f"n_samples={n} should be >= n_clusters={k} "
                             "(fewer images than clusters)")
        rs = check_random_state(self.random_state)
        best: tuple[float, np.ndarray] | None = None
        for _ in range(int(self.n_init)):
            seed = int(rs.randint(2**31 - 1))
            km = faiss.Kmeans(d, k, niter=int(self.max_iter), nredo=1, seed=seed,
                              max_points_per_centroid=int(self.max_points_per_centroid),
                              min_points_per_centroid=1, verbose=False)
            if not isinstance(self.init, str):  # given centres (the density criterion's)
                start = np.ascontiguousarray(self.init, dtype=np.float32)
                if start.shape[1] != d:
                    raise ValueError(f"init has {start.shape[1]} features, X has {d}")
                km.train(X, init_centroids=start)
            elif self.init == "k-means++":
                km.train(X, init_centroids=_plusplus(X, k, seed))
            else:
                km.train(X)
            obj = float(km.obj[-1]) if len(km.obj) else float("inf")
            if best is None or obj < best[0]:
                best = (obj, np.array(km.centroids, dtype=np.float32).reshape(k, d))
        self.cluster_centers_ = best[1]
        self.n_iter_ = int(self.max_iter)  # faiss runs every iteration (no tolerance)
        dist, self.labels_ = self._assign(X)
        self.inertia_ = float(dist.sum(dtype=np.float64))
        return self

    def _assign(self, X: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        index = faiss.IndexFlatL2(self.cluster_centers_.shape[1])
        index.add(self.cluster_centers_)
        dist = np.empty(len(X), dtype=np.float32)
        labels = np.empty(len(X), dtype=np.int64)
        for s in range(0, len(X), chunk):
            D, idx = index.search(np.ascontiguousarray(X[s:s + chunk], dtype=np.float32), 1)
            dist[s:s + chunk], labels[s:s + chunk] = D[:, 0], idx[:, 0]
        return np.maximum(dist, 0), labels

    def predict(self, X: Any) -> np.ndarray:
        """The nearest centre of each row of ``X``."""
        check_is_fitted(self, "cluster_centers_")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return self._assign(X)[1]

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).labels_


def _plusplus(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means++ starting centres (scikit-learn's) from a random sample of 16 rows a centre.

    faiss' own start, k random rows, left twice the ideal inertia on 1M rows around 1,000
    centres (bench/scale.py); k-means++ from a 16k sample came within 6 % of it at 200k x 300
    for the same CPU time.
    """
    from sklearn.cluster import kmeans_plusplus

    m = min(len(X), 16 * k)
    rows = np.random.default_rng(seed).choice(len(X), m, replace=False) if m < len(X) \
        else np.arange(len(X))
    centres, _ = kmeans_plusplus(X[rows], k, random_state=seed)
    return np.ascontiguousarray(centres, dtype=np.float32)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is in the default install
        raise MissingExtraError("the faiss-kmeans method", "faiss") from None
    return faiss


CLUSTERERS.add(
    "faiss-kmeans", FaissKMeans, primary="n_clusters", k_param="n_clusters",
    criteria=("silhouette", "elbow", "density"), sweep="k", scales=True,
    # one random start fell into a local minimum on 4 plain blobs (ARI 0.63): best of three
    defaults={"n_init": 3},
    about="k-means by faiss: millions of images, multithreaded.\n\n"
          "k-means (faiss): Lloyd's iterations on faiss' multithreaded kernels, each start "
          "trained on at most 256 images per centre drawn at random, from k-means++ starts "
          "(best of n_init=3), then every image "
          "assigned to its nearest centre. For hundreds of thousands of images and more; "
          "scikit-learn's kmeans is more exact below that.")


class DaskKMeans(ClusterMixin, BaseEstimator):
    """k-means by dask-ml (``dask_ml.cluster.KMeans``: k-means|| start, Lloyd's iterations) on
    a Dask array: for features that do not fit in one machine's memory.

    Each iteration reads the matrix block by block (on a Dask cluster, on its workers: with
    ``imgclust run --scheduler``, the run folder on a shared path), so no process holds it
    whole. Uses Dask's current scheduler: a ``distributed.Client`` when one is active, else
    threads in this process.

    Parameters
    ----------
    n_clusters : int
    max_iter : int
        Lloyd iterations at most (dask-ml stops earlier at ``tol``).
    tol : float
    oversampling_factor : float
        k-means||' points drawn per round, as a multiple of ``n_clusters``.
    block_rows : int
        Rows in one Dask block.
    random_state : int, RandomState or None

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_images,)
    inertia_ : float

    Examples
    --------
    >>> km = DaskKMeans(n_clusters=10).fit(X)  # doctest: +SKIP
    """

    def __init__(self, n_clusters: int = 8, max_iter: int = 100, tol: float = 1e-4,
                 oversampling_factor: float = 2.0, block_rows: int = 65536,
                 random_state: Any = None) -> None:
        self.n_clusters = n_clusters
        self.max_iter = max_iter
        self.tol = tol
        self.oversampling_factor = oversampling_factor
        self.block_rows = block_rows
        self.random_state = random_state

    def _validate_params_(self) -> None:
        import importlib.util

        for name, v, lo in (("n_clusters", self.n_clusters, 1), ("max_iter", self.max_iter, 1),
                            ("block_rows", self.block_rows, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name}={v!r} must be an integer >= {lo}")
        for name, v in (("tol", self.tol), ("oversampling_factor", self.oversampling_factor)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ValueError(f"{name}={v!r} must be a number > 0")
        if importlib.util.find_spec("dask_ml") is None:
            raise MissingExtraError("the dask-kmeans method", "dask-ml")

    def _fit_dask(self, D: Any, n: int) -> "DaskKMeans":
        self._validate_params_()
        from dask_ml.cluster import KMeans as DKMeans

        if n < int(self.n_clusters):
            raise ValueError(f"n_samples={n} should be >= n_clusters={self.n_clusters} "
                             "(fewer images than clusters)")
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        km = DKMeans(n_clusters=int(self.n_clusters), max_iter=int(self.max_iter),
                     tol=float(self.tol), oversampling_factor=float(self.oversampling_factor),
                     random_state=seed)
        km.fit(D)
        self.cluster_centers_ = np.asarray(km.cluster_centers_, dtype=np.float32)
        self.n_features_in_ = int(self.cluster_centers_.shape[1])
        self.n_iter_ = int(getattr(km, "n_iter_", self.max_iter))
        self.labels_ = np.asarray(km.labels_.compute() if hasattr(km.labels_, "compute")
                                  else km.labels_)
        self.inertia_ = float(km.inertia_)
        return self

    def fit(self, X: Any, y: Any = None) -> "DaskKMeans":
        """Fit on an in-memory matrix of shape (n_images, n_features), cut into Dask blocks."""
        import dask.array as da

        X = validate_data(self, X, dtype=[np.float32, np.float64])
        X = np.ascontiguousarray(X, dtype=np.float32)
        return self._fit_dask(da.from_array(X, chunks=(int(self.block_rows), X.shape[1])),
                              len(X))

    def fit_blocks(self, X: np.ndarray) -> np.ndarray:
        """Fit on a matrix on disk (:func:`imgclust.io.on_disk`), every block read with plain
        reads by the task that needs it; returns every row's label."""
        import dask
        import dask.array as da

        from imgclust.io import on_disk, read_rows

        where = on_disk(X)
        if where is None:
            return self.fit(X).labels_
        n, dim = X.shape
        step = int(self.block_rows)
        parts = [da.from_delayed(dask.delayed(read_rows)(where[0], where[1], X.dtype, dim,
                                                         np.arange(s, min(n, s + step))),
                                 shape=(min(n, s + step) - s, dim), dtype=X.dtype)
                 for s in range(0, n, step)]
        return self._fit_dask(da.concatenate(parts, axis=0), n).labels_

    def predict(self, X: Any) -> np.ndarray:
        """The nearest centre of each row of ``X``."""
        check_is_fitted(self, "cluster_centers_")
        from sklearn.metrics import pairwise_distances_argmin

        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return pairwise_distances_argmin(np.asarray(X, dtype=np.float32), self.cluster_centers_)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).labels_


CLUSTERERS.add(
    "dask-kmeans", DaskKMeans, primary="n_clusters", k_param="n_clusters",
    criteria=("silhouette", "elbow", "density"), sweep="k", scales=True, extra="dask-ml",
    about="k-means by dask-ml: features too large for one machine's memory.\n\n"
          "k-means (dask-ml): a k-means|| start and Lloyd's iterations on a Dask array, read "
          "block by block at each iteration, on a Dask cluster when one is connected; for "
          "features that do not fit in memory. Needs pip install \"imgclust[dask-ml]\".")
