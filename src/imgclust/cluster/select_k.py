"""Choosing the number of clusters: the k sweep (each fit scored by every sweep criterion of
:mod:`imgclust.cluster.criteria`, one of which chooses), DBSCAN's eps sweep, and the density
criterion (the number of groups HDBSCAN finds). Every score of every candidate is kept for the
summary and the report.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from sklearn.cluster import HDBSCAN
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors

from imgclust.cluster import criteria
from imgclust.errors import ConfigError

#: silhouette is O(n^2); above this many points it is computed on a fixed random sample
SILHOUETTE_SAMPLE = 4000


def safe_silhouette(X: np.ndarray, labels: np.ndarray, random_state: int = 0) -> float | None:
    """Silhouette of the non-noise points, sampled for large n; ``None`` if undefined."""
    mask = labels >= 0
    labs = labels[mask]
    n_lab = len(np.unique(labs))
    if n_lab < 2 or n_lab >= mask.sum():
        return None
    from imgclust.io import on_disk, take_rows  # a matrix on disk: no pass over its map

    if mask.sum() > SILHOUETTE_SAMPLE:
        # the rows silhouette_score(X[mask], sample_size=...) would draw, taken without the
        # copy of every non-noise row
        from sklearn.utils import check_random_state

        pick = check_random_state(random_state).permutation(int(mask.sum()))[:SILHOUETTE_SAMPLE]
        rows = np.flatnonzero(mask)[pick]
        return float(silhouette_score(take_rows(X, rows), labels[rows]))
    whole = mask.all() and on_disk(X) is None  # in memory and no noise: no copy
    return float(silhouette_score(X if whole else take_rows(X, np.flatnonzero(mask)), labs))


def within_ss(X: np.ndarray, labels: np.ndarray) -> float:
    """Within-cluster sum of squares (k-means' inertia, for any labelling; noise left out)."""
    total = 0.0
    for c in np.unique(labels):
        if c < 0:
            continue
        m = X[labels == c]
        total += float(((m - m.mean(axis=0)) ** 2).sum())
    return total


def knee(xs: Sequence[float], ys: Sequence[float]) -> int:
    """Index of the knee of a decreasing curve: the point farthest below the chord joining the
    ends, on axes scaled to [0, 1] (the Kneedle rule; written here to avoid a dependency for
    ten lines).
    """
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if len(x) < 3:
        return int(np.argmin(y))
    xn = (x - x.min()) / (np.ptp(x) or 1.0)
    yn = (y - y.min()) / (np.ptp(y) or 1.0)
    chord = yn[0] + (yn[-1] - yn[0]) * xn
    return int(np.argmax(chord - yn))


def sweep_k(X: np.ndarray, make: Callable[[int], Any], k_values: Sequence[int], criterion: str,
            random_state: int = 0, progress: Callable[[Any], Any] | None = None
            ) -> tuple[int, list[dict[str, Any]], Any, np.ndarray]:
    """Fit once per k and choose k by ``criterion``.

    Parameters
    ----------
    X : ndarray of shape (n_images, n_features)
    make : callable
        ``make(k)`` returns an unfitted estimator with k clusters.
    k_values : sequence of int
    criterion : str
        A criterion of kind ``sweep`` (:mod:`imgclust.cluster.criteria`): silhouette, elbow,
        bic, aic, …
    progress : callable, optional
        Wraps the iterable of k values (a progress bar).

    Returns
    -------
    chosen_k, table, fitted estimator for chosen_k, its labels
        Each row holds every sweep criterion's scores (a mixture's BIC and AIC only for
        mixtures). Ties go to the smaller k. When the criterion can pick no k (silhouette is
        undefined for every k: each fit found one cluster, or one per image), the answer is
        one cluster (``make(1)``), with a note.
    """
    sweeps = criteria.names("sweep")
    crit = criteria.get(criterion)
    if crit is None or crit.kind != "sweep":
        raise ConfigError(f"criterion={criterion!r}; valid: {', '.join(sweeps)}")
    table: list[dict[str, Any]] = []
    fits: dict[int, tuple[Any, np.ndarray]] = {}
    it = progress(k_values) if progress else k_values
    for k in it:
        est = make(int(k))
        labels = np.asarray(est.fit_predict(X))
        row: dict[str, Any] = {"k": int(k), "clusters_found": int(len(set(labels.tolist()) - {-1}))}
        crit.check(est)
        for name in sweeps:
            row.update(criteria.get(name).columns(X, labels, est, random_state))
        table.append(row)
        # keep only what a criterion may pick, to bound memory: all labels are small
        fits[int(k)] = (est, labels)
    chosen = crit.pick(table)
    if chosen is None:  # e.g. every fit put all images in one cluster, or each in its own
        est = make(1)
        labels = np.asarray(est.fit_predict(X))
        for r in table:
            r["chosen"] = False
        table.append({"k": 1, "chosen": True, "note": (
            f"{criterion} is undefined for every k tried (each fit found one cluster, or one "
            "per image): one cluster")})
        return 1, table, est, labels
    for r in table:
        r["chosen"] = r["k"] == chosen
    est, labels = fits[chosen]
    return chosen, table, est, labels


#: the density criterion's smallest group, as a share of the images
DENSITY_MIN_SHARE = 0.02


def density_k(X: np.ndarray, min_share: float = DENSITY_MIN_SHARE, min_samples: int = 10
              ) -> tuple[int, np.ndarray, dict[str, Any]]:
    """The number of dense groups in ``X`` and their means (``criterion="density"``).

    HDBSCAN (scikit-learn) with a smallest cluster of ``min_share`` of the images finds the
    groups itself; its noise points then join the group of their nearest grouped neighbour, and
    the group means seed the clusterer that runs at that k. Meant for compact embeddings (UMAP),
    where silhouette tends to merge two touching groups: on deskewed MNIST-10k in UMAP space it
    finds 10 groups where silhouette picks 9 (bench/results/default.md).

    Returns
    -------
    k, means of shape (k, n_features), a table row (k, noise share, HDBSCAN's parameters)
    """
    n = len(X)
    mcs = int(min(n, max(5, round(min_share * n))))
    ms = int(min(min_samples, n - 1))
    labels = HDBSCAN(min_cluster_size=max(mcs, 2), min_samples=max(ms, 1), copy=True).fit_predict(X)
    k = int(labels.max()) + 1
    row = {"k": k, "clusters_found": k, "noise_share": float((labels < 0).mean()),
           "min_cluster_size": mcs, "min_samples": ms}
    if k >= 1 and (labels < 0).any():
        grouped = labels >= 0
        nearest = NearestNeighbors(n_neighbors=1).fit(X[grouped]).kneighbors(
            X[~grouped], return_distance=False)[:, 0]
        labels = labels.copy()
        labels[~grouped] = labels[grouped][nearest]
    means = np.stack([X[labels == c].mean(axis=0) for c in range(k)]) if k else X[:0]
    return k, means, row


def sweep_eps(X: np.ndarray, make: Callable[[float], Any], min_samples: int = 5,
              quantiles: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98),
              max_noise: float = 0.5, random_state: int = 0
              ) -> tuple[float, list[dict[str, Any]], Any, np.ndarray]:
    """DBSCAN's eps sweep over quantiles of the ``min_samples``-th neighbour distance.

    Each candidate records clusters found, noise share and silhouette (non-noise points). The
    chosen eps has the best silhouette among those with at least two clusters and a noise share
    of at most ``max_noise``; failing that, the one with the most clusters.
    """
    n_neighbors = min(min_samples, len(X) - 1)
    dist, _ = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(X).kneighbors(X)
    kd = dist[:, -1]
    candidates = sorted({float(np.quantile(kd, q)) for q in quantiles if np.quantile(kd, q) > 0})
    if not candidates:
        raise ConfigError("every image has identical neighbours; DBSCAN's eps cannot be chosen")
    table, fits = [], {}
    for eps in candidates:
        est = make(eps)
        labels = np.asarray(est.fit_predict(X))
        n_c = int(len(set(labels.tolist()) - {-1}))
        noise = float((labels < 0).mean())
        table.append({"eps": eps, "clusters_found": n_c, "noise_share": noise,
                      "silhouette": safe_silhouette(X, labels, random_state)})
        fits[eps] = (est, labels)
    ok = [r for r in table if r["clusters_found"] >= 2 and r["noise_share"] <= max_noise
          and r["silhouette"] is not None]
    best = max(ok, key=lambda r: r["silhouette"]) if ok else max(
        table, key=lambda r: (r["clusters_found"], -r["noise_share"]))
    for r in table:
        r["chosen"] = r["eps"] == best["eps"]
    est, labels = fits[best["eps"]]
    return best["eps"], table, est, labels
