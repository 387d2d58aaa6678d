"""Scores of a clustering: against labels (Hungarian accuracy, NMI, ARI, purity, confusion
matrix) and internal ones (silhouette, Davies-Bouldin, Calinski-Harabasz)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import (adjusted_rand_score, calinski_harabasz_score,
                             davies_bouldin_score, normalized_mutual_info_score)
from sklearn.metrics.cluster import contingency_matrix

from imgclust.cluster.select_k import safe_silhouette


def _encode(y: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    classes, codes = np.unique(np.asarray(y), return_inverse=True)
    return codes, list(classes)


def hungarian_match(y_true: Sequence[Any], y_pred: Sequence[Any]) -> dict[Any, Any]:
    """The one-to-one cluster -> class mapping that maximises agreement (scipy's
    ``linear_sum_assignment`` on the contingency table). Unmatched clusters map to ``None``."""
    t, classes = _encode(y_true)
    p, clusters = _encode(y_pred)
    cm = contingency_matrix(t, p)  # classes x clusters
    rows, cols = linear_sum_assignment(cm, maximize=True)
    mapping: dict[Any, Any] = {c: None for c in clusters}
    for r, c in zip(rows, cols):
        mapping[clusters[c]] = classes[r]
    return mapping


def hungarian_accuracy(y_true: Sequence[Any], y_pred: Sequence[Any]) -> float:
    """Clustering accuracy: the share of images whose cluster maps to their class under the best
    one-to-one matching. Noise (-1) counts as its own cluster, so it can match at most one class.

    Examples
    --------
    >>> hungarian_accuracy([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    """
    t, _ = _encode(y_true)
    p, _ = _encode(y_pred)
    cm = contingency_matrix(t, p)
    rows, cols = linear_sum_assignment(cm, maximize=True)
    return float(cm[rows, cols].sum() / len(t))


def purity(y_true: Sequence[Any], y_pred: Sequence[Any]) -> float:
    """Share of images that belong to the majority class of their cluster."""
    cm = contingency_matrix(_encode(y_true)[0], _encode(y_pred)[0])
    return float(cm.max(axis=0).sum() / cm.sum())


def confusion(y_true: Sequence[Any], y_pred: Sequence[Any]) -> dict[str, Any]:
    """Clusters x classes counts, rows ordered so that matched pairs sit on the diagonal."""
    t, classes = _encode(y_true)
    p, clusters = _encode(y_pred)
    cm = contingency_matrix(t, p).T  # clusters x classes
    rows, cols = linear_sum_assignment(cm, maximize=True)
    order = list(rows[np.argsort(cols)]) + [r for r in range(len(clusters)) if r not in set(rows)]
    return {"clusters": [_py(clusters[r]) for r in order], "classes": [_py(c) for c in classes],
            "matrix": cm[order].tolist()}


def external_scores(y_true: Sequence[Any], y_pred: Sequence[Any]) -> dict[str, Any]:
    """``acc``, ``nmi``, ``ari``, ``purity`` and the matched ``confusion`` matrix."""
    return {
        "acc": hungarian_accuracy(y_true, y_pred),
        "nmi": float(normalized_mutual_info_score(y_true, y_pred)),
        "ari": float(adjusted_rand_score(y_true, y_pred)),
        "purity": purity(y_true, y_pred),
        "confusion": confusion(y_true, y_pred),
    }


def internal_scores(X: np.ndarray, labels: np.ndarray, random_state: int = 0) -> dict[str, Any]:
    """Silhouette (sampled above a few thousand images), Davies-Bouldin and Calinski-Harabasz on
    the non-noise images; ``None`` where a score is undefined (fewer than two clusters)."""
    mask = labels >= 0
    n_lab = len(np.unique(labels[mask]))
    ok = 2 <= n_lab < mask.sum()
    from imgclust.io import on_disk

    if on_disk(X) is not None:  # on disk: both scores from one describe, a block at a time
        db, ch = _db_ch_blocks(X, labels) if ok else (None, None)
        return {"silhouette": safe_silhouette(X, labels, random_state),
                "davies_bouldin": db, "calinski_harabasz": ch,
                "noise_share": float((~mask).mean())}
    Xm, lm = (X, labels) if mask.all() else (X[mask], labels[mask])  # no copy without noise
    return {
        "silhouette": safe_silhouette(X, labels, random_state),
        "davies_bouldin": float(davies_bouldin_score(Xm, lm)) if ok else None,
        "calinski_harabasz": _calinski_harabasz(Xm, lm) if ok else None,
        "noise_share": float((~mask).mean()),
    }


def _db_ch_blocks(X: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Davies-Bouldin and Calinski-Harabasz as scikit-learn defines them (non-noise images),
    from each cluster's centre, size and members' distances to it
    (:func:`imgclust.cluster.describe`, which reads a matrix on disk a block at a time):
    scikit-learn's own scores need the rows of each cluster in memory."""
    from scipy.spatial.distance import cdist

    from imgclust.cluster import describe

    mask = labels >= 0
    centers, distance, _ = describe(X, labels)
    centers = centers.astype(np.float64)
    lab = labels[mask]
    ks, inv = np.unique(lab, return_inverse=True)
    counts = np.bincount(inv, minlength=len(ks)).astype(np.float64)
    d = distance[mask]
    # Davies-Bouldin: mean over clusters of the worst (s_i + s_j) / d(c_i, c_j)
    intra = np.bincount(inv, weights=d, minlength=len(ks)) / counts
    cd = cdist(centers, centers)
    if np.allclose(intra, 0) or np.allclose(cd, 0):
        db = 0.0
    else:
        cd[cd == 0] = np.inf
        db = float(np.mean(np.max((intra[:, None] + intra[None, :]) / cd, axis=1)))
    # Calinski-Harabasz: between- over within-cluster dispersion, each over its freedom
    mean = (counts[:, None] * centers).sum(axis=0) / counts.sum()
    extra = float((counts * ((centers - mean) ** 2).sum(axis=1)).sum())
    within = float((d ** 2).sum())
    n, k = float(mask.sum()), float(len(ks))
    ch = 1.0 if within == 0.0 else extra * (n - k) / (within * (k - 1.0))
    return db, ch


def _calinski_harabasz(X: np.ndarray, labels: np.ndarray) -> float:
    """scikit-learn's ``calinski_harabasz_score`` (same float64 arithmetic), one cluster's rows
    converted at a time instead of a float64 copy of the whole matrix."""
    ks, labels = np.unique(labels, return_inverse=True)
    n, n_labels = len(X), len(ks)
    mean = np.mean(X, axis=0, dtype=np.float64)
    extra, intra = 0.0, 0.0
    for k in range(n_labels):
        ck = X[labels == k].astype(np.float64)
        mk = np.mean(ck, axis=0)
        extra += ck.shape[0] * np.sum((mk - mean) ** 2)
        intra += np.sum((ck - mk) ** 2)
    return float(1.0 if intra == 0.0 else extra * (n - n_labels) / (intra * (n_labels - 1.0)))


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
