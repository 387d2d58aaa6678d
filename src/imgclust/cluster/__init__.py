"""Clustering a feature matrix by a registered method, choosing k when asked."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from imgclust.cluster import criteria as criteria_
from imgclust.cluster import registry
from imgclust.errors import ConfigError
from imgclust.model import KSelection
from imgclust.registry import parse_spec

#: k values tried by ``k="auto"`` unless a range is given
DEFAULT_K_RANGE = (2, 15)


def make_estimator(spec: str, random_state: int | None = 0, **overrides: Any) -> Any:
    """Build an unfitted clusterer from a spec such as ``"gmm:covariance_type=diag"``."""
    registry.load_builtins()
    est = registry.create(spec, **overrides)
    if random_state is not None and "random_state" in est.get_params(deep=False):
        if est.get_params(deep=False)["random_state"] is None:
            est.set_params(random_state=random_state)
    return est


def fit_clusters(X: np.ndarray, method: str = "kmeans", k: int | str = "auto",
                 criterion: str | None = None, k_range: tuple[int, int] = DEFAULT_K_RANGE,
                 random_state: int = 0, progress: Callable[[Any], Any] | None = None
                 ) -> tuple[np.ndarray, KSelection, Any]:
    """Cluster ``X`` with ``method``; with ``k="auto"`` sweep ``k_range`` and choose.

    Parameters
    ----------
    X : ndarray of shape (n_images, n_features)
    method : str
        A registered name with optional parameters (``"agglomerative:linkage=average"``).
    k : int or "auto"
        Number of clusters; ignored (with a note in the selection) by methods that find it.
    criterion : str or None
        How ``auto`` chooses: a criterion of :mod:`imgclust.cluster.criteria` valid for the
        method (default: the method's first). Those of kind ``sweep`` (silhouette, elbow, bic,
        aic) pick a k of the sweep; those of kind ``graph`` (graph, modularity, eigengap):
        ``knn-spectral`` chooses k on its own nearest-neighbour graph in one fit. ``density``:
        k is the number of groups HDBSCAN finds, and k-means or a mixture starts from their
        means (:func:`~imgclust.cluster.select_k.density_k`); with fewer than two groups it
        falls back to the method's first sweep criterion.
    k_range : (int, int)
        Inclusive range of k tried by ``auto``.

    Notes
    -----
    k never exceeds the number of distinct rows of ``X``: there is no honest way to split
    identical images. When every row is the same, the result is one cluster (criterion
    ``"distinct"``, with a ``note`` in the table); a given k, or the top of ``k_range``, above
    the number of distinct rows is lowered to it, with a ``note`` on the chosen row.

    Returns
    -------
    labels : ndarray of shape (n_images,)
        Raw labels from the estimator (-1 for noise).
    selection : KSelection
    estimator : fitted estimator
    """
    # imported here: the CLI imports the criteria (this package) without loading scikit-learn
    from imgclust.cluster.select_k import density_k, sweep_eps, sweep_k

    registry.load_builtins()
    name, _ = parse_spec(method)
    ent = registry.entry(name)
    n = X.shape[0]
    k_param = ent.meta.get("k_param")
    criteria = criteria_.for_method(ent.meta)
    if k != "auto" and not isinstance(k, (int, np.integer)):
        raise ConfigError(f"k={k!r} must be 'auto' or a positive integer")
    distinct = n_distinct(X, max(k_range[1], k if k != "auto" else 0) + 1)
    if distinct == 1 and (k_param is not None or ent.meta.get("sweep") == "eps"):
        return _one_cluster(X, method, k_param, random_state)
    if k_param is None or ent.meta.get("sweep") is None:
        given = parse_spec(method)[1]
        if ent.meta.get("sweep") == "eps" and "eps" not in given and "_pos" not in given:
            # DBSCAN has no k: whatever k says, eps is swept unless the user set it
            min_samples = given.get("min_samples", 5)
            eps, table, est, labels = sweep_eps(
                X, lambda e: make_estimator(method, random_state, eps=e), min_samples=min_samples,
                random_state=random_state)
            return labels, KSelection("eps", eps, table), est
        overrides: dict[str, Any] = {}
        if k_param is not None:  # bgmm: k (or the top of the range) is an upper bound
            overrides[k_param] = _check_k(k if k != "auto" else k_range[1], n)
        est = make_estimator(method, random_state, **overrides)
        labels = np.asarray(est.fit_predict(X))
        crit = "upper-bound" if k_param is not None else "none"
        return labels, KSelection(crit, overrides.get(k_param) if k_param else None, []), est
    if k != "auto":
        kk = _check_k(k, n)
        if kk > distinct:
            est = make_estimator(method, random_state, **{k_param: distinct})
            note = (f"k={kk} was asked, but the {n} images have only {distinct} distinct feature "
                    f"rows: k = {distinct}")
            return np.asarray(est.fit_predict(X)), KSelection("distinct", distinct, [
                {"k": distinct, "requested": kk, "distinct_rows": distinct, "chosen": True,
                 "note": note}]), est
        est = make_estimator(method, random_state, **{k_param: kk})
        return np.asarray(est.fit_predict(X)), KSelection("given", int(k), []), est
    capped = distinct <= k_range[1]
    if capped:  # no more clusters than distinct rows (and the sweep still has a k to try)
        k_range = (min(k_range[0], distinct), distinct)
    cap_note = (f"k was tried up to {distinct}: the {n} images have only {distinct} distinct "
                "feature rows") if capped else None
    crit = criterion or criteria[0]
    if crit not in criteria:
        raise ConfigError(f"criterion={crit!r} does not apply to {name!r}; valid: {', '.join(criteria)}")
    kind = criteria_.get(crit).kind if criteria_.get(crit) else "sweep"
    if kind == "graph":  # knn-spectral chooses k on its own graph
        lo, hi = _k_bounds(k_range, n)
        est = make_estimator(method, random_state, **{k_param: "auto"}, k_rule=crit,
                             min_clusters=lo, max_clusters=hi)
        labels = np.asarray(est.fit_predict(X))
        return labels, KSelection(crit, int(est.n_clusters_), _noted(est.k_table_, cap_note)), est
    density_row = None
    if kind == "density":
        found, means, density_row = density_k(X)
        if 2 <= found < n:
            density_row["chosen"] = True
            est = make_estimator(method, random_state, **{k_param: found})
            params = est.get_params(deep=False)
            if "init" in params and "n_init" in params:  # k-means: start from the groups
                est.set_params(init=means, n_init=1)
            elif "means_init" in params:  # Gaussian mixtures
                est.set_params(means_init=means)
            return np.asarray(est.fit_predict(X)), KSelection("density", found, [density_row]), est
        density_row["chosen"] = False
        crit = next(c for c in criteria if criteria_.get(c) and criteria_.get(c).kind == "sweep")
    lo, hi = _k_bounds(k_range, n)
    chosen, table, est, labels = sweep_k(
        X, lambda kk: make_estimator(method, random_state, **{k_param: kk}), range(lo, hi + 1),
        crit, random_state=random_state, progress=progress)
    if density_row is not None:  # density found fewer than two groups: say so in the table
        density_row.pop("k")  # not a point of the k sweep
        table.insert(0, {"criterion": "density", **density_row})
    return labels, KSelection(crit, chosen, _noted(table, cap_note)), est


def n_distinct(X: np.ndarray, at_most: int) -> int:
    """The number of distinct rows of ``X``, counted up to ``at_most``.

    Rows are compared exactly (``-0.0`` equals ``0.0``); counting stops at ``at_most``, so on
    ordinary data only the first few rows are read.
    """
    seen: set[bytes] = set()
    for row in np.asarray(X):
        seen.add((row + 0.0).tobytes())
        if len(seen) >= at_most:
            break
    return len(seen)


def _one_cluster(X: np.ndarray, method: str, k_param: str | None, random_state: int
                 ) -> tuple[np.ndarray, KSelection, Any]:
    """Every row of ``X`` is the same: the method's fit with one cluster, and a note."""
    est = make_estimator(method, random_state, **({k_param: 1} if k_param else {}))
    labels = np.asarray(est.fit_predict(X))
    note = (f"all {len(X)} images have the same features: one cluster (no number of clusters "
            "can be chosen among identical images)")
    return labels, KSelection("distinct", 1, [
        {"k": 1, "distinct_rows": 1, "chosen": True, "note": note}]), est


def _noted(table: list[dict[str, Any]], note: str | None) -> list[dict[str, Any]]:
    """The sweep table with ``note`` on its chosen row."""
    if note:
        for row in table:
            if row.get("chosen"):
                row["note"] = note
    return table


def _k_bounds(k_range: tuple[int, int], n: int) -> tuple[int, int]:
    lo, hi = k_range
    hi = min(hi, n - 1)
    if lo < 2 or hi < lo:
        raise ConfigError(f"k range {k_range} is empty for {n} images (need 2 <= low <= high < n)")
    return lo, hi


def _check_k(k: int, n: int) -> int:
    if k < 1:
        raise ConfigError(f"k={k} must be at least 1")
    if k > n:
        raise ConfigError(f"k={k} is more than the {n} images read")
    return int(k)


def order_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0, 1, … from largest to smallest (ties: first seen); -1 stays."""
    labels = np.asarray(labels)
    uniq = [c for c in np.unique(labels) if c >= 0]
    first = {c: int(np.argmax(labels == c)) for c in uniq}
    order = sorted(uniq, key=lambda c: (-(labels == c).sum(), first[c]))
    mapping = {c: i for i, c in enumerate(order)}
    return np.array([mapping.get(c, -1) for c in labels], dtype=np.int64)


def describe(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Centres (mean of members), each image's distance to its own centre (noise: to the
    nearest centre), and the representative (closest member) of each cluster.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
    distance : ndarray of shape (n_images,)
    representatives : dict cluster -> row index
    """
    ks = sorted(c for c in np.unique(labels) if c >= 0)
    if not ks:
        return np.zeros((0, X.shape[1])), np.full(len(X), np.nan), {}
    from imgclust.io import on_disk

    if on_disk(X) is not None:
        centers, distance = _describe_blocks(X, labels, ks)
        return centers, distance, _representatives(labels, ks, distance)
    centers = np.stack([X[labels == c].mean(axis=0) for c in ks])
    distance = np.empty(len(X))
    for i, c in enumerate(ks):
        m = labels == c
        distance[m] = np.linalg.norm(X[m] - centers[i], axis=1)
    noise = labels < 0
    if noise.any():
        d = np.linalg.norm(X[noise][:, None, :] - centers[None], axis=2) if noise.sum() * len(ks) < 5e7 \
            else np.full((noise.sum(), 1), np.nan)
        distance[noise] = d.min(axis=1)
    return centers, distance, _representatives(labels, ks, distance)


def _representatives(labels: np.ndarray, ks: list[int], distance: np.ndarray) -> dict[int, int]:
    reps = {}
    for c in ks:
        idx = np.flatnonzero(labels == c)
        reps[int(c)] = int(idx[np.argmin(distance[idx])])
    return reps


def _describe_blocks(X: np.ndarray, labels: np.ndarray, ks: list[int]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`describe`'s centres and distances in two passes over a matrix on disk, a block
    at a time (one-hot sparse products for the sums; no copy of a cluster's rows)."""
    from scipy import sparse
    from scipy.spatial.distance import cdist

    from imgclust.io import row_blocks

    lookup = np.full(int(max(ks)) + 2, -1, dtype=np.int64)  # label -> centre index, noise -1
    lookup[np.asarray(ks)] = np.arange(len(ks))
    idx = np.where(labels >= 0, lookup[np.maximum(labels, 0)], -1)
    sums = np.zeros((len(ks), X.shape[1]))
    for s, b in row_blocks(X):
        li = idx[s:s + len(b)]
        m = np.flatnonzero(li >= 0)
        onehot = sparse.csr_matrix((np.ones(len(m)), (li[m], m)), shape=(len(ks), len(b)))
        sums += onehot @ b.astype(np.float64)
    centers = (sums / np.bincount(idx[idx >= 0], minlength=len(ks))[:, None]).astype(X.dtype)
    distance = np.empty(len(X))
    for s, b in row_blocks(X):
        li = idx[s:s + len(b)]
        d = np.linalg.norm(b - centers[np.maximum(li, 0)], axis=1)
        noise = li < 0
        if noise.any():
            d[noise] = cdist(b[noise], centers).min(axis=1)
        distance[s:s + len(b)] = d
    return centers, distance
