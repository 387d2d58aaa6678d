"""The log-elbow criterion (issue 12): the knee of log inertia counted from one cluster."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from imgclust.cluster import criteria
from imgclust.cluster.select_k import sweep_k
from imgclust.cluster.registry import CLUSTERERS, load_builtins


def _kmeans(k):
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=4, random_state=0)


def far_group(seed=0):
    """Four near groups and one far away: silhouette's k = 2 trap."""
    rng = np.random.default_rng(seed)
    C = np.array([[0, 0], [4, 0], [0, 4], [4, 4], [60, 60]], float)
    return np.concatenate([rng.normal(c, 0.6, (60, 2)) for c in C])


@pytest.mark.parametrize("centers", [2, 3, 4, 6, 8])
def test_log_elbow_finds_the_blobs_where_elbow_cannot_find_two(centers):
    X, _ = make_blobs(300, centers=centers, n_features=10, cluster_std=1.5, random_state=0)
    k, table, _, labels = sweep_k(X, _kmeans, range(2, 16), "log-elbow")
    assert k == centers and len(set(labels)) == centers
    assert all("total_ss" in r and "inertia" in r for r in table)
    if centers == 2:  # the plain elbow's curve starts at k = 2, so it cannot answer 2
        assert sweep_k(X, _kmeans, range(2, 16), "elbow")[0] > 2


def test_one_far_group_does_not_pull_k_to_two():
    X = far_group()
    assert sweep_k(X, _kmeans, range(2, 16), "silhouette")[0] == 2
    assert sweep_k(X, _kmeans, range(2, 16), "log-elbow")[0] == 5


def test_pick_edge_cases():
    c = criteria.get("log-elbow")
    assert c.kind == "sweep" and c.applies({"sweep": "k"}) and not c.applies({"sweep": None})
    assert c.pick([]) is None
    assert c.pick([{"k": 2, "inertia": 1.0}]) is None  # no total_ss column
    assert c.pick([{"k": 2, "inertia": 0.0, "total_ss": 0.0}]) is None  # identical images
    # a knee at k = 1 (no structure): the smallest k tried
    flat = [{"k": k, "inertia": 100.0 - k, "total_ss": 100.0} for k in range(3, 8)]
    assert c.pick(flat) == 3
    # perfect clusters (inertia 0 from k = 3 on) do not break the log
    rows = [{"k": 2, "inertia": 50.0, "total_ss": 200.0}] + [
        {"k": k, "inertia": 0.0, "total_ss": 200.0} for k in range(3, 9)]
    assert c.pick(rows) == 3


def test_log_elbow_is_valid_for_kmeans_and_has_a_sentence():
    load_builtins()
    assert "log-elbow" in criteria.for_method(CLUSTERERS.entry("kmeans").meta)
    assert "log-elbow" in criteria.selectable()
    o = criteria.Outcome(chosen=5, n_clusters=5, method="kmeans", row={"inertia": 12.5},
                         ks=list(range(2, 16)))
    s = criteria.get("log-elbow").sentence(o)
    assert s.startswith("k = 5 was chosen among k = 2…15 by the elbow of the log-inertia curve")
