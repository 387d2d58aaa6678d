"""Outlier scores: which images fit the collection least, and by which measure.

Seven detectors, each giving every image a score (higher = more outlying); the default set is
``pca``, ``centre``, ``lof`` (on the features), ``stats`` and ``orient`` (on the images' own
grey levels, which a brightness-invariant feature such as HOG cannot see):

``gmm``
    Negative log density under a Gaussian mixture (diagonal covariances) fitted in a PCA space
    of at most :data:`GMM_DIMS` dimensions. One component per cluster when labels are given,
    else the number of components with the lowest BIC over 1..10. Not in the default set: it
    added false alarms to the combination (see below).
``pca``
    Reconstruction error after PCA keeping 90 % of the variance.
``centre``
    Distance to the image's own cluster centre, relative to that cluster's spread
    (median and median absolute deviation of its members' distances). Needs labels.
``lof``
    Local outlier factor (scikit-learn's ``LocalOutlierFactor``) of the k-nearest-neighbour
    graph, which is searched through :mod:`imgclust.neighbors` (faiss where installed; no N x N
    matrix is ever built). k is the number of images flagged, within 20..100.
``knn``
    Mean distance to the k nearest other images (not in the default set: LOF did better).
``stats``
    The largest two-sided robust z-score of the grey-level statistics of
    :func:`image_statistics` (median, spread, darkest and brightest levels): a darkened, washed
    out or inverted image. Needs ``image_stats``.
``orient``
    ``log(d / min_t d_t)``: how much closer an image's thumbnail, rotated by 90 degrees either
    way or mirrored, lies to its nearest neighbours than the image itself does (a picture the
    wrong way round). Thumbnails are compared by shape only (each centred and scaled to unit
    length) among :data:`ORIENT_NEIGHBORS` neighbours. Needs ``thumbs`` (:func:`grey_thumbnails`).

A group of similar outliers (twenty inverted images, say) masks itself: it gets its own mixture
component or cluster, its own principal direction, and its members are each other's
neighbours. Two rules work against that. A cluster or mixture component holding fewer than
``contamination`` of the images is treated as an outlier group (its members are measured against
the other clusters / components). And the detectors can be fitted twice (``refit=1``): after
the first pass the top ``contamination`` share is left out of every fit and of the neighbour
index, and all images are scored again against what remains (it lifted ``zmax`` from 0.84 to
0.87 on digits; with ``tail``, the default, one pass did better: 0.95 against 0.93).

The default combination (``combine="tail"``) is the largest of the detectors' robust z-scores
(median and MAD over the fitted images), each first divided by its own 99th percentile over the
fitted images (in the first pass, when the outliers are still among them, the
``1 - contamination`` quantile): LOF's z-scores have a heavy tail and ``orient``'s a light one,
and the raw maximum (``combine="zmax"``) let LOF's false alarms outrank every turned image. An
image is flagged when any one detector finds it far out, and the reason names those that did.
``combine="rank"`` averages the detectors' rank percentiles instead (it averages a single
detector's alarm away).

Measured (bench/detect_bench.py, BENCHMARKS.md, issue 14, "fresh-seed check") with 5 %
planted anomalies (rotated, mirrored, darkened, inverted), precision among the top 5 %, seeds
1-5 (the orient settings were chosen on seed 0): digits 0.949 on pixel features and 0.938 on
the HOG glyph features, MNIST-10k pixels 0.846 (0.838..0.856; with orient's former 100
neighbours on unnormalised thumbnails: 0.801, 0.790..0.810): every darkened and inverted digit
is found, and about 70 % of the rotated and mirrored ones; the rest are outranked by the
feature detectors' false alarms (unusual handwriting).

Examples
--------
>>> import numpy as np
>>> X = np.random.default_rng(0).normal(size=(200, 5))
>>> X[7] += 12
>>> res = outlier_scores(X, contamination=0.01)
>>> int(res.ranking()[0]), res.reason[7], res.methods
(7, 'lof', ('pca', 'lof'))
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from imgclust.errors import ConfigError
from imgclust.neighbors import make_index

#: every detector, in the order of the output columns
METHODS = ("gmm", "pca", "centre", "lof", "knn", "stats", "orient")
#: the detectors run by default (``centre`` needs labels, ``stats`` the images' statistics,
#: ``orient`` their grey thumbnails)
DEFAULT_METHODS = ("pca", "centre", "lof", "stats", "orient")
#: the columns of :func:`image_statistics`
STATS = ("median", "std", "dark", "bright")
#: smallest spread of a statistic, as a share of the collection's grey-level range
STATS_MIN_SPREAD = 0.05
#: side of the grey thumbnails of :func:`grey_thumbnails` (the ``orient`` detector's pixels)
THUMB_SIDE = 16
#: the transforms the ``orient`` detector tries: rotations by 90 degrees either way, mirrors
ORIENT_TRANSFORMS = ("rot90", "rot270", "mirror", "flip")
#: neighbours of the ``orient`` detector (at most; the others' k can be 100): whether a turned
#: thumbnail looks like some images is a local question. With shape-only thumbnails, chosen on
#: seed 0 (MNIST-10k 0.808 -> 0.852, digits 0.967 -> 0.956), seeds 1-5: BENCHMARKS.md,
#: "Issue 14, fresh-seed check"
ORIENT_NEIGHBORS = 20
#: each detector's robust z-score is divided by its own ``TAIL_QUANTILE`` percentile over the
#: fitted images before the maximum is taken (so that a detector with heavy tails, LOF, does
#: not drown one with light tails, orient)
TAIL_QUANTILE = 99.0
#: how the detectors' scores are combined
COMBINE = ("tail", "zmax", "rank")
#: dimensions of the PCA space the Gaussian mixture is fitted in
GMM_DIMS = 10
#: components tried by BIC when no labels are given
GMM_MAX_COMPONENTS = 10
#: at most this many images are used to fit PCA and the mixture (all are scored)
FIT_SAMPLE = 20_000
#: a cluster needs this many fitted members to have a spread of its own
MIN_CLUSTER = 5
#: MAD -> standard deviation for normal data
_MAD_SCALE = 1.4826


@dataclass(frozen=True)
class OutlierResult:
    """Scores of one outlier search, rows in the order of the input matrix.

    Attributes
    ----------
    score : ndarray of shape (n_images,)
        Combined score, higher = more outlying.
    flagged : ndarray of bool, shape (n_images,)
        The top ``contamination`` share by ``score``.
    reason : tuple of str
        For a flagged image the detectors that flagged it, strongest first, joined by ``+``
        (``"lof+pca"``), ``stats`` with the statistic furthest out (``"stats:bright"``) and
        ``orient`` with the turn that fits better (``"orient:rot90"``); ``""`` for the others.
    method_scores : dict of str to ndarray
        Each detector's own score (higher = more outlying): negative log density, residual
        norm, MAD-scaled centre distance, mean k-NN distance.
    method_z : dict of str to ndarray
        The same as robust z-scores (median and MAD of the images the detectors were fitted on).
    threshold : float
        Lowest combined score among the flagged images.
    contamination : float
    combine : str
    info : dict
        What each detector chose (mixture components, PCA dimensions, k), and the detectors
        left out with the reason (``info["skipped"]``).
    """

    score: np.ndarray
    flagged: np.ndarray
    reason: tuple[str, ...]
    method_scores: dict[str, np.ndarray]
    method_z: dict[str, np.ndarray]
    threshold: float
    contamination: float
    combine: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def methods(self) -> tuple[str, ...]:
        """The detectors that were run."""
        return tuple(self.method_scores)

    def ranking(self) -> np.ndarray:
        """Row numbers from the most to the least outlying (ties keep input order)."""
        return np.argsort(-self.score, kind="stable")


def robust_z(s: np.ndarray, ref: np.ndarray | None = None, min_scale: float = 0.0
             ) -> np.ndarray:
    """``(s - median) / (1.4826 MAD)``, both taken over ``s[ref]`` (all of ``s`` by default).

    Where the MAD is zero (more than half the scores equal) the interquartile range, then the
    standard deviation stands in; the scale is at least ``min_scale``; a constant score with no
    ``min_scale`` gives zeros.
    """
    r = s if ref is None else s[ref]
    med = float(np.median(r))
    scale = _MAD_SCALE * float(np.median(np.abs(r - med)))
    if not scale > 0:
        q1, q3 = np.percentile(r, [25, 75])
        scale = float(q3 - q1) / 1.349
    if not scale > 0:
        scale = float(np.std(r))
    scale = max(scale, min_scale)
    if not scale > 0:
        return np.zeros_like(s, dtype=np.float64)
    return (s - med) / scale


def _min_scale(method: str, s: np.ndarray, ref: np.ndarray) -> float:
    """The smallest spread that counts for a detector: LOF is a ratio around 1 and distances
    are relative to their median, so a spread under 5 % of it is noise (three equal groups of
    eight images gave LOFs of 0.999..1.002, and z-scores of 8 without this floor)."""
    if method == "lof":
        return 0.05
    if method in ("pca", "knn"):
        return 0.05 * abs(float(np.median(s[ref])))
    return 0.0


def _sample(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    return rows if len(rows) <= limit else np.sort(rng.choice(rows, limit, replace=False))


def _big_clusters(labels: np.ndarray, fit: np.ndarray, min_size: float) -> np.ndarray:
    """Cluster ids (>= 0) with at least ``min_size`` fitted members."""
    ids, counts = np.unique(labels[fit & (labels >= 0)], return_counts=True)
    return ids[counts >= min_size]


def _score_gmm(X: np.ndarray, fit: np.ndarray, labels: np.ndarray | None, contamination: float,
               rng: np.random.Generator, random_state: int) -> tuple[np.ndarray, dict[str, Any]]:
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    rows = _sample(np.flatnonzero(fit), FIT_SAMPLE, rng)
    dims = max(1, min(GMM_DIMS, X.shape[1], len(rows) - 1))
    pca = PCA(n_components=dims, random_state=random_state).fit(X[rows])
    Z = pca.transform(X)
    scale = float(Z[rows].std()) or 1.0
    Z /= scale  # reg_covar is then relative to the data's spread
    means_init = None
    if labels is not None:
        big = _big_clusters(labels, fit, max(MIN_CLUSTER, contamination * fit.sum()))
        if len(big):
            means_init = np.stack([Z[fit & (labels == c)].mean(axis=0) for c in big])
    if means_init is not None:
        k, how = len(means_init), "one per cluster"
    else:
        sub = _sample(rows, 2000, rng)
        bics = []
        for kk in range(1, min(GMM_MAX_COMPONENTS, len(sub) // 10) + 1):
            g = GaussianMixture(kk, covariance_type="diag", reg_covar=1e-3,
                                random_state=random_state).fit(Z[sub])
            bics.append(g.bic(Z[sub]))
        k, how = int(np.argmin(bics)) + 1 if bics else 1, "BIC over 1..10"
    gmm = GaussianMixture(k, covariance_type="diag", reg_covar=1e-3, means_init=means_init,
                          random_state=random_state).fit(Z[rows])
    logp = gmm.score_samples(Z)
    # components smaller than the outlier share are outlier groups: leave them out of the density
    keep = gmm.weights_ >= contamination
    if keep.any() and not keep.all():
        resp = gmm.predict_proba(Z)[:, keep].sum(axis=1)
        logp = logp + np.log(np.maximum(resp, 1e-300))
    return -logp, {"n_components": k, "components_from": how, "dims": dims,
                   "components_left_out": int((~keep).sum()) if keep.any() else 0}


def _score_pca(X: np.ndarray, fit: np.ndarray, rng: np.random.Generator, random_state: int
               ) -> tuple[np.ndarray, dict[str, Any]]:
    from sklearn.decomposition import PCA

    rows = _sample(np.flatnonzero(fit), FIT_SAMPLE, rng)
    if X.shape[1] < 2 or len(rows) < 3:
        return np.zeros(len(X)), {"dims": X.shape[1], "note": "too few features to reduce"}
    pca = PCA(n_components=0.9, random_state=random_state).fit(X[rows])
    err = np.empty(len(X))
    for s in range(0, len(X), 8192):
        B = X[s:s + 8192]
        err[s:s + 8192] = np.linalg.norm(B - pca.inverse_transform(pca.transform(B)), axis=1)
    return err, {"dims": int(pca.n_components_)}


def _score_centre(X: np.ndarray, fit: np.ndarray, labels: np.ndarray, contamination: float
                  ) -> tuple[np.ndarray, dict[str, Any]]:
    from scipy.spatial.distance import cdist

    big = _big_clusters(labels, fit, max(MIN_CLUSTER, contamination * fit.sum()))
    if len(big) == 0:  # no cluster large enough: one cluster of everything
        labels, big = np.zeros(len(X), dtype=np.int64), np.array([0])
    centres = np.stack([X[fit & (labels == c)].mean(axis=0) for c in big])
    pos = {int(c): j for j, c in enumerate(big)}
    own = np.array([pos.get(int(c), -1) for c in labels])
    assign = own.copy()
    dist = np.empty(len(X))
    for s in range(0, len(X), 4096):
        B = X[s:s + 4096]
        D = cdist(B, centres)
        a = own[s:s + 4096]
        # noise and small-cluster members: measured against the nearest large cluster
        a = np.where(a >= 0, a, D.argmin(axis=1))
        assign[s:s + 4096] = a
        dist[s:s + 4096] = D[np.arange(len(B)), a]
    score = np.zeros(len(X))
    for j in range(len(big)):
        ref = fit & (own == j)
        m = assign == j
        score[m] = robust_z(dist[m], ref[m]) if ref.any() else 0.0
    return score, {"clusters": int(len(big)),
                   "rescored": int((own < 0).sum())}


def _neighbours(X: np.ndarray, fit: np.ndarray, k: int, backend: str,
                queries: np.ndarray | None = None, index: Any = None
                ) -> tuple[np.ndarray, np.ndarray, str]:
    """Each row's ``k`` nearest fitted rows other than itself: (distances, positions among the
    fitted rows), through the neighbour layer in batches. ``queries`` (rows as in ``X``)
    searches other vectors of the same images (row i still never finds itself)."""
    rows = np.flatnonzero(fit)
    if index is None:
        index = make_index(X[rows], backend=backend)
    Q = X if queries is None else queries
    position = np.full(len(X), -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    D = np.empty((len(X), k), dtype=np.float64)
    I = np.empty((len(X), k), dtype=np.int64)  # noqa: E741
    for s in range(0, len(X), 8192):
        d, i = index.search(Q[s:s + 8192], k + 1)
        is_self = i == position[s:s + 8192, None]
        # drop the row itself where it is in the index, else the farthest of the k + 1
        drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
        keep = np.ones_like(d, dtype=bool)
        keep[np.arange(len(d)), drop] = False
        D[s:s + 8192] = d[keep].reshape(len(d), k)
        I[s:s + 8192] = i[keep].reshape(len(d), k)
    return D, I, type(index).__name__


def auto_neighbors(n: int, contamination: float) -> int:
    """k of the neighbour detectors for ``n_neighbors="auto"``: the number of images flagged,
    within 20..100. A group of alike outliers smaller than k is still measured against the
    images around it (with k = 10, twenty inverted digits were each other's neighbours and went
    unflagged)."""
    return int(min(100, max(20, n_flagged(n, contamination))))


def _score_knn(X: np.ndarray, fit: np.ndarray, k: int, backend: str
               ) -> tuple[np.ndarray, dict[str, Any]]:
    D, _, used = _neighbours(X, fit, k, backend)
    return D.mean(axis=1), {"n_neighbors": k, "backend": used}


def _score_lof(X: np.ndarray, fit: np.ndarray, k: int, backend: str
               ) -> tuple[np.ndarray, dict[str, Any]]:
    """scikit-learn's LocalOutlierFactor on the k-NN graph of the neighbour layer
    (``metric="precomputed"``): fitted rows get their LOF, the others the novelty score."""
    from scipy.sparse import csr_matrix
    from sklearn.neighbors import LocalOutlierFactor

    D, I, used = _neighbours(X, fit, k, backend)
    rows = np.flatnonzero(fit)
    nf = len(rows)
    # the training graph holds each fitted row itself at distance 0, as scikit-learn expects
    Df = np.hstack([np.zeros((nf, 1)), D[rows]])
    If = np.hstack([np.arange(nf)[:, None], I[rows]])
    graph = csr_matrix((Df.ravel(), If.ravel(), np.arange(0, nf * (k + 1) + 1, k + 1)),
                       shape=(nf, nf))
    lof = LocalOutlierFactor(n_neighbors=k, metric="precomputed", novelty=True).fit(graph)
    score = np.empty(len(X))
    score[rows] = -lof.negative_outlier_factor_
    rest = np.flatnonzero(~fit)
    if len(rest):
        q = csr_matrix((D[rest].ravel(), I[rest].ravel(), np.arange(0, len(rest) * k + 1, k)),
                       shape=(len(rest), nf))
        score[rest] = -lof.score_samples(q)
    return score, {"n_neighbors": k, "backend": used}


def image_statistics(images: Iterable[Any]) -> np.ndarray:
    """Low-level statistics of each image's grey levels, the columns of :data:`STATS`.

    ``median`` (the background's level, on most images), ``std`` (contrast), ``dark`` and
    ``bright`` (the 0.5th and 99.5th percentiles: the darkest and brightest levels, a few
    pixels aside). Features such as HOG are normalised per block, so a darkened or inverted
    image looks normal in them; these statistics see it.

    Parameters
    ----------
    images : iterable of PIL images or arrays of shape (h, w) or (h, w, channels)
        PIL images are read as 8-bit grey; arrays are averaged over their channels and used on
        their own scale (give every image on one scale).

    Returns
    -------
    ndarray of shape (n_images, 4)
    """
    out = []
    for im in images:
        if hasattr(im, "convert"):  # PIL: 8-bit grey (alpha and palettes resolved by Pillow)
            a = np.asarray(im.convert("L"), dtype=np.float64)
        else:
            a = np.asarray(im, dtype=np.float64)
            if a.ndim == 3:
                a = a.mean(axis=2)
        a = a.ravel()
        if a.size == 0:
            out.append([0.0, 0.0, 0.0, 0.0])
            continue
        lo, med, hi = np.percentile(a, [0.5, 50, 99.5])
        out.append([med, a.std(), lo, hi])
    return np.asarray(out, dtype=np.float64).reshape(-1, len(STATS))


def grey_thumbnails(images: Iterable[Any], side: int = THUMB_SIDE) -> np.ndarray:
    """Each image as a ``side`` x ``side`` grey thumbnail (the ``orient`` detector's pixels).

    Parameters
    ----------
    images : iterable of PIL images or 2-D / 3-D arrays
        Arrays are averaged over their channels and used on their own scale (give every image
        on one scale); the aspect ratio is not kept.
    side : int

    Returns
    -------
    ndarray of shape (n_images, side, side), float32
    """
    from PIL import Image

    out = []
    for im in images:
        if hasattr(im, "convert"):
            a = np.asarray(im.convert("L"), dtype=np.float32)
        else:
            a = np.asarray(im, dtype=np.float32)
            if a.ndim == 3:
                a = a.mean(axis=2)
        if a.shape != (side, side):
            a = np.asarray(Image.fromarray(a, mode="F").resize((side, side),
                                                              Image.Resampling.BILINEAR))
        out.append(a)
    return np.asarray(out, dtype=np.float32).reshape(-1, side, side)


def _transform(T: np.ndarray, name: str) -> np.ndarray:
    return {"rot90": lambda: np.rot90(T, 1, axes=(1, 2)),
            "rot270": lambda: np.rot90(T, 3, axes=(1, 2)),
            "mirror": lambda: T[:, :, ::-1], "flip": lambda: T[:, ::-1, :]}[name]()


def _score_orient(T: np.ndarray, fit: np.ndarray, k: int, backend: str
                  ) -> tuple[np.ndarray, dict[str, Any]]:
    """How much closer an image's rotated or mirrored thumbnail lies to the collection than the
    image itself: ``log(d / min_t d_t)``, ``d`` the mean distance to the
    ``min(k, ORIENT_NEIGHBORS)`` nearest fitted thumbnails (never the image's own), each
    thumbnail centred and scaled to unit length (its shape, not its brightness or contrast).
    Above 0: a turned version fits better."""
    k = max(1, min(k, ORIENT_NEIGHBORS))
    T = T - T.mean(axis=(1, 2), keepdims=True)
    T = T / np.maximum(np.sqrt((T ** 2).sum(axis=(1, 2), keepdims=True)), 1e-12)
    P = T.reshape(len(T), -1).astype(np.float32)
    rows = np.flatnonzero(fit)
    index = make_index(P[rows], backend=backend)
    D, _, used = _neighbours(P, fit, k, backend, index=index)
    d0 = D.mean(axis=1)
    dt = np.stack([_neighbours(P, fit, k, backend, index=index,
                               queries=np.ascontiguousarray(_transform(T, t)).reshape(len(T), -1)
                               )[0].mean(axis=1) for t in ORIENT_TRANSFORMS])
    tiny = 1e-12 + 1e-9 * float(np.median(d0))
    score = np.log((d0 + tiny) / (dt.min(axis=0) + tiny))
    return score, {"n_neighbors": k, "backend": used, "side": int(T.shape[1]),
                   "best": [ORIENT_TRANSFORMS[j] for j in dt.argmin(axis=0)]}


def _score_stats(S: np.ndarray, fit: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """The largest two-sided robust z-score of the image statistics (already a z-score: it is
    not standardised again). Spreads under 1 % of the collection's range count as 1 %."""
    rng_ = float(np.percentile(S[fit, 3], 99) - np.percentile(S[fit, 2], 1)) or 1.0
    Z = np.stack([np.abs(robust_z(S[:, j], fit, STATS_MIN_SPREAD * rng_))
                  for j in range(S.shape[1])])
    which = Z.argmax(axis=0)
    return Z.max(axis=0), {"statistics": list(STATS),
                           "strongest": [STATS[j] for j in which]}


def _check(X: Any, labels: Any, methods: Sequence[str], contamination: float, combine: str
           ) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    X = np.asarray(X)
    if X.dtype != np.float32:  # float32 features (a run's features.npy) are not copied wider
        X = X.astype(np.float64)
    if X.ndim != 2:
        raise ConfigError(f"outlier scores need a 2-D feature matrix, got shape {X.shape}")
    if X.shape[0] < 10:
        raise ConfigError(f"outlier scores need at least 10 images, got {X.shape[0]}")
    if not np.isfinite(X).all():
        raise ConfigError(f"the feature matrix holds {int((~np.isfinite(X)).sum())} "
                          "non-finite values")
    if not 0 < contamination <= 0.5:
        raise ConfigError(f"contamination={contamination} must be in (0, 0.5]")
    if combine not in COMBINE:
        raise ConfigError(f"combine={combine!r}; valid: {', '.join(COMBINE)}")
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(f"outlier methods {unknown or methods}; valid: {', '.join(METHODS)}")
    if labels is not None:
        labels = np.asarray(labels).astype(np.int64)
        if labels.shape != (X.shape[0],):
            raise ConfigError(f"{labels.shape[0] if labels.ndim else 0} labels for "
                              f"{X.shape[0]} images")
    return X, labels, methods


def outlier_scores(X: np.ndarray, labels: np.ndarray | None = None,
                   methods: Sequence[str] = DEFAULT_METHODS, contamination: float = 0.04,
                   random_state: int = 0, *, combine: str = "tail",
                   n_neighbors: int | str = "auto",
                   refit: int = 0, backend: str = "auto",
                   image_stats: np.ndarray | None = None,
                   thumbs: np.ndarray | None = None) -> OutlierResult:
    """Score every image by how little it fits the others; flag the top ``contamination`` share.

    Parameters
    ----------
    X : array-like of shape (n_images, n_features)
        Features of the images (a run's ``features.npy``).
    labels : array-like of shape (n_images,), optional
        Cluster of each image (``-1`` noise). Needed by ``centre``, which is left out without
        it; ``gmm`` then chooses its components by BIC.
    methods : sequence of {"gmm", "pca", "centre", "lof", "knn"}
    contamination : float in (0, 0.5]
        Share of images flagged.
    random_state : int
    combine : {"tail", "zmax", "rank"}
        ``tail``: the largest of the detectors' robust z-scores, each divided by its own
        :data:`TAIL_QUANTILE` percentile; ``zmax``: the largest robust z-score; ``rank``: the
        mean of the detectors' rank percentiles.
    n_neighbors : int or "auto"
        k of the ``lof`` and ``knn`` detectors; ``auto``: :func:`auto_neighbors` (the number
        of images flagged, within 20..100).
    refit : int
        Extra passes with the flagged images left out of every fit (0, the default: one pass;
        with the ``tail`` combination one pass was as good or better on digits and MNIST-10k,
        and the refit helps ``zmax``).
    backend : {"auto", "sklearn", "faiss"}
        Neighbour search of the ``lof`` and ``knn`` detectors.
    image_stats : array-like of shape (n_images, 4), optional
        :func:`image_statistics` of the images (rows as in ``X``). Needed by ``stats``, which
        is left out without it.
    thumbs : array-like of shape (n_images, side, side), optional
        :func:`grey_thumbnails` of the images. Needed by ``orient``, left out without it.

    Returns
    -------
    OutlierResult

    Raises
    ------
    ConfigError
        Fewer than 10 images, non-finite features, an unknown method or combination,
        ``contamination`` outside (0, 0.5], labels of the wrong length.
    """
    X, labels, methods = _check(X, labels, methods, contamination, combine)
    skipped: dict[str, str] = {}
    if labels is None and "centre" in methods:
        methods.remove("centre")
        skipped["centre"] = "needs cluster labels"
        if not methods:
            raise ConfigError("the centre detector needs cluster labels; none were given")
    S = None
    if image_stats is not None:
        S = np.asarray(image_stats, dtype=np.float64)
        if S.ndim != 2 or S.shape[0] != X.shape[0] or not np.isfinite(S).all():
            raise ConfigError(f"image_stats of shape {S.shape} must be finite, one row per "
                              f"image ({X.shape[0]})")
    elif "stats" in methods:
        methods.remove("stats")
        skipped["stats"] = "needs the images' statistics"
    T = None
    if thumbs is not None:
        T = np.asarray(thumbs, dtype=np.float32)
        if T.ndim != 3 or T.shape[0] != X.shape[0] or T.shape[1] != T.shape[2] \
                or not np.isfinite(T).all():
            raise ConfigError(f"thumbs of shape {T.shape} must be finite square thumbnails, "
                              f"one per image ({X.shape[0]})")
    elif "orient" in methods:
        methods.remove("orient")
        skipped["orient"] = "needs the images' thumbnails"
    if not methods:
        why = "; ".join(f"{m} {w}" for m, w in skipped.items())
        raise ConfigError(f"no detector can run: {why}")
    n = X.shape[0]
    n_flag = n_flagged(n, contamination)
    if n_neighbors == "auto":
        k = auto_neighbors(n, contamination)
    elif isinstance(n_neighbors, (int, np.integer)) and n_neighbors >= 1:
        k = int(n_neighbors)
    else:
        raise ConfigError(f"n_neighbors={n_neighbors!r} must be a positive integer or 'auto'")
    k = max(1, min(k, n - n_flag - 1))  # the refit leaves n - n_flag images in the index
    fit = np.ones(n, dtype=bool)
    for step in range(int(refit) + 1):
        rng = np.random.default_rng(random_state)
        raw: dict[str, np.ndarray] = {}
        info: dict[str, Any] = {}
        for m in methods:
            if m == "gmm":
                raw[m], info[m] = _score_gmm(X, fit, labels, contamination, rng, random_state)
            elif m == "pca":
                raw[m], info[m] = _score_pca(X, fit, rng, random_state)
            elif m == "centre":
                assert labels is not None
                raw[m], info[m] = _score_centre(X, fit, labels, contamination)
            elif m == "lof":
                raw[m], info[m] = _score_lof(X, fit, k, backend)
            elif m == "stats":
                assert S is not None
                raw[m], info[m] = _score_stats(S, fit)
            elif m == "orient":
                assert T is not None
                raw[m], info[m] = _score_orient(T, fit, k, backend)
            else:
                raw[m], info[m] = _score_knn(X, fit, k, backend)
        # the statistics' score is already a robust z-score
        z = {m: s if m == "stats" else robust_z(s, fit, _min_scale(m, s, fit))
             for m, s in raw.items()}
        # first pass: every image is fitted, up to ``contamination`` of them outliers, so the
        # tail is taken below that share; the refits take TAIL_QUANTILE of the images kept
        q = TAIL_QUANTILE if step else min(TAIL_QUANTILE, 100 * (1 - contamination))
        Zm = _scaled(z, methods, fit, combine, q)
        if combine in ("zmax", "tail"):
            score = Zm.max(axis=0)
        else:
            from scipy.stats import rankdata

            score = np.mean([rankdata(s) / n for s in raw.values()], axis=0)
        order = np.argsort(-score, kind="stable")
        fit = np.ones(n, dtype=bool)
        fit[order[:n_flag]] = False
    flagged = ~fit
    threshold = float(score[order[n_flag - 1]])
    reason = _reasons(methods, raw, Zm, flagged, threshold, combine, contamination)
    # which statistic, which turn: "stats:bright", "orient:rot90"
    detail = {m: info[m][key] for m, key in (("stats", "strongest"), ("orient", "best"))
              if m in info}
    if detail:
        reason = tuple("+".join(f"{p}:{detail[p][i]}" if p in detail else p
                                for p in r.split("+")) if r else r
                       for i, r in enumerate(reason))
    info["skipped"] = skipped
    info["refit"] = int(refit)
    return OutlierResult(score=score, flagged=flagged, reason=reason, method_scores=raw,
                         method_z=z, threshold=threshold, contamination=contamination,
                         combine=combine, info=info)


def _scaled(z: dict[str, np.ndarray], methods: list[str], fit: np.ndarray, combine: str,
            quantile: float) -> np.ndarray:
    """The detectors' z-scores as combined: for ``tail`` each divided by its own ``quantile``
    percentile over the fitted images (by 1 where that is not positive)."""
    Zm = np.stack([z[m] for m in methods])
    if combine == "tail":
        q = np.percentile(Zm[:, fit], quantile, axis=1)
        Zm = Zm / np.where(q > 1e-9, q, 1.0)[:, None]
    return Zm


def _reasons(methods: list[str], raw: dict[str, np.ndarray], Zm: np.ndarray,
             flagged: np.ndarray, threshold: float, combine: str, contamination: float
             ) -> tuple[str, ...]:
    """Per flagged image the detectors over the line, strongest first."""
    if combine in ("zmax", "tail"):
        over = Zm >= threshold
    else:  # each detector's own top share
        n = Zm.shape[1]
        cut = n_flagged(n, contamination)
        over = np.zeros_like(Zm, dtype=bool)
        for j, m in enumerate(methods):
            over[j, np.argsort(-raw[m], kind="stable")[:cut]] = True
    out = []
    for i in range(Zm.shape[1]):
        if not flagged[i]:
            out.append("")
            continue
        js = np.flatnonzero(over[:, i])
        if len(js) == 0:
            js = np.array([int(Zm[:, i].argmax())])
        js = js[np.argsort(-Zm[js, i], kind="stable")]
        out.append("+".join(methods[j] for j in js))
    return tuple(out)


def n_flagged(n: int, contamination: float) -> int:
    """How many of ``n`` images a ``contamination`` share flags (at least one)."""
    return max(1, int(math.floor(contamination * n + 0.5)))
