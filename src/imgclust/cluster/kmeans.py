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
