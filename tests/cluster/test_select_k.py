"""Choosing k: the knee rule, the sweep tables, silhouette edge cases."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from imgclust.cluster.select_k import knee, safe_silhouette, sweep_k, within_ss
from imgclust.errors import ConfigError


def test_knee_of_a_hand_made_curve():
    # steep drop until x=3, then flat: the knee is x=3 (index 2)
    assert knee([1, 2, 3, 4, 5, 6, 7, 8], [100, 50, 20, 15, 12, 10, 9, 8]) == 2
    # the knee moves with the bend
    assert knee([1, 2, 3, 4, 5, 6], [100, 90, 80, 20, 18, 17]) == 3
    # unevenly spaced x are scaled, not counted by index
    assert knee([2, 3, 4, 10, 20], [10.0, 5.0, 1.0, 0.9, 0.8]) == 2
    # fewer than three points: the lowest
    assert knee([2, 3], [5.0, 4.0]) == 1


def test_within_ss_matches_kmeans_inertia():
    X, _ = make_blobs(n_samples=60, centers=3, random_state=1)
    km = KMeans(3, n_init=3, random_state=0).fit(X)
    assert within_ss(X, km.labels_) == pytest.approx(km.inertia_, rel=1e-6)
    # noise is left out
    assert within_ss(X, np.where(np.arange(60) < 5, -1, km.labels_)) < km.inertia_


def test_safe_silhouette_is_none_when_undefined():
    X = np.arange(10, dtype=float).reshape(5, 2)
    assert safe_silhouette(X, np.zeros(5, int)) is None          # one cluster
    assert safe_silhouette(X, np.arange(5)) is None              # every point its own cluster
    assert safe_silhouette(X, np.array([-1, -1, -1, 0, 0])) is None  # one cluster besides noise
    assert safe_silhouette(X, np.array([0, 0, 1, 1, 1])) > 0


def test_sweep_k_table_and_choice():
    X, _ = make_blobs(n_samples=80, centers=[[0, 0], [10, 0], [0, 10], [10, 10]], random_state=0)
    seen = []

    def progress(it):
        seen.append(list(it))
        return seen[-1]

    k, table, est, labels = sweep_k(X, lambda k: KMeans(k, n_init=3, random_state=0), range(2, 7),
                                    "silhouette", progress=progress)
    assert k == 4 and est.n_clusters == 4 and len(np.unique(labels)) == 4
    assert seen == [[2, 3, 4, 5, 6]]
    assert [r["k"] for r in table] == [2, 3, 4, 5, 6]
    assert all({"k", "inertia", "silhouette", "clusters_found", "chosen"} <= set(r) for r in table)
    assert max(table, key=lambda r: r["silhouette"])["k"] == 4
    inertia = [r["inertia"] for r in table]
    assert inertia == sorted(inertia, reverse=True)
    assert sweep_k(X, lambda k: KMeans(k, n_init=3, random_state=0), range(2, 7), "elbow")[0] == 4
    with pytest.raises(ConfigError, match="needs a mixture model"):
        sweep_k(X, lambda k: KMeans(k, n_init=1), range(2, 4), "bic")
    with pytest.raises(ConfigError, match="criterion='best'"):
        sweep_k(X, lambda k: KMeans(k), range(2, 4), "best")
