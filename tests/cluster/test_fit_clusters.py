"""Every registered clusterer on well-separated blobs with a known answer, through fit_clusters."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from imgclust.cluster import describe, fit_clusters, make_estimator, order_by_size, registry
from imgclust.errors import ConfigError

registry.load_builtins()

CENTERS = [[0, 0, 0, 0], [8, 8, 0, 0], [-8, 8, 0, 8]]
K_RANGE = (2, 6)
#: every k-taking method, the Gaussian mixtures with each covariance type
K_METHODS = ["kmeans", "minibatch-kmeans", "faiss-kmeans", "dask-kmeans", "agglomerative",
             "spectral",
             "knn-spectral",
             *(f"gmm:covariance_type={c}" for c in ("full", "tied", "diag", "spherical"))]
MIXTURES = ("gmm", "bgmm")

pytestmark = pytest.mark.filterwarnings(
    "ignore:Graph is not fully connected:UserWarning")  # spectral on separate blobs: expected


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_blobs(n_samples=90, centers=CENTERS, cluster_std=1.0, random_state=0)
    return X.astype(np.float32), y


def _min_ari(method: str) -> float:
    return 0.99 if method.split(":")[0] in MIXTURES else 1.0


def test_every_registered_method_is_covered():
    covered = {m.split(":")[0] for m in K_METHODS} | {"bgmm", "dbscan", "hdbscan"}
    assert covered == set(registry.names())


@pytest.mark.parametrize("method", K_METHODS)
def test_given_k_recovers_the_blobs(method, blobs):
    X, y = blobs
    labels, sel, est = fit_clusters(X, method, 3, random_state=0)
    assert sel.criterion == "given" and sel.chosen == 3
    assert adjusted_rand_score(y, labels) >= _min_ari(method)
    assert est.get_params()[registry.entry(method.split(":")[0]).meta["k_param"]] == 3


@pytest.mark.parametrize("method,criterion", [
    (m, c) for m in K_METHODS for c in registry.entry(m.split(":")[0]).meta["criteria"]])
def test_auto_k_finds_three(method, criterion, blobs):
    X, y = blobs
    labels, sel, _ = fit_clusters(X, method, "auto", criterion, K_RANGE, random_state=0)
    assert sel.criterion == criterion and sel.chosen == 3
    if criterion != "density":  # a sweep over the whole range; density counts the groups once
        assert [r["k"] for r in sel.table] == list(range(2, 7))
    assert [r["k"] for r in sel.table if r["chosen"]] == [3]
    assert adjusted_rand_score(y, labels) >= _min_ari(method)


def test_density_starts_kmeans_and_mixtures_from_the_groups(blobs):
    X, y = blobs
    _, sel, km = fit_clusters(X, "kmeans", "auto", "density", K_RANGE, random_state=0)
    assert km.n_init == 1 and km.init.shape == (3, X.shape[1])
    found = sorted(map(tuple, np.round(km.init)))
    assert found == sorted(map(tuple, np.round(np.array(CENTERS, dtype=float))))  # blob means
    row = sel.table[0]
    assert row["min_cluster_size"] == 5 and 0 <= row["noise_share"] < 0.2
    _, _, gmm = fit_clusters(X, "gmm", "auto", "density", K_RANGE, random_state=0)
    assert gmm.means_init.shape == (3, X.shape[1])


def test_density_falls_back_to_silhouette_without_two_groups(rng):
    X = rng.normal(size=(60, 3)).astype(np.float32)  # one round cloud: no two dense groups
    labels, sel, _ = fit_clusters(X, "kmeans", "auto", "density", K_RANGE, random_state=0)
    assert sel.criterion == "silhouette" and 2 <= sel.chosen <= 6
    assert sel.table[0]["criterion"] == "density" and sel.table[0]["clusters_found"] < 2
    assert "k" not in sel.table[0] and [r["k"] for r in sel.table[1:]] == list(range(2, 7))


@pytest.mark.parametrize("k", [3, "auto"])
def test_bayesian_mixture_prunes_to_three(k, blobs):
    X, y = blobs
    labels, sel, est = fit_clusters(X, "bgmm", k, None, K_RANGE, random_state=0)
    assert sel.criterion == "upper-bound" and sel.chosen == (3 if k == 3 else K_RANGE[1])
    assert len(np.unique(labels)) == 3
    assert adjusted_rand_score(y, labels) >= 0.99


def test_dbscan_eps_sweep_finds_the_blobs(blobs):
    X, y = blobs
    labels, sel, _ = fit_clusters(X, "dbscan", "auto", random_state=0)
    assert sel.criterion == "eps" and isinstance(sel.chosen, float)
    assert [r["eps"] for r in sel.table if r["chosen"]] == [sel.chosen]
    kept = labels >= 0
    assert len(np.unique(labels[kept])) == 3 and kept.mean() >= 0.8
    assert adjusted_rand_score(y[kept], labels[kept]) == 1.0
    # an eps given by the user is used as is, no sweep
    labels2, sel2, est = fit_clusters(X, "dbscan:eps=2.5", "auto")
    assert sel2.criterion == "none" and est.eps == 2.5


def test_hdbscan_finds_the_blobs_by_itself(blobs):
    X, y = blobs
    labels, sel, _ = fit_clusters(X, "hdbscan", "auto")
    assert sel.criterion == "none" and sel.chosen is None
    assert adjusted_rand_score(y, labels) == 1.0
    X_before = X.copy()
    fit_clusters(X, "hdbscan", 3)
    np.testing.assert_array_equal(X, X_before)  # copy=True: features are not modified


def test_bad_k_and_criterion_are_refused(blobs):
    X, _ = blobs
    with pytest.raises(ConfigError, match="k=91 is more than the 90 images"):
        fit_clusters(X, "kmeans", 91)
    with pytest.raises(ConfigError, match="criterion='bic' does not apply to 'kmeans'"):
        fit_clusters(X, "kmeans", "auto", "bic")
    with pytest.raises(ConfigError, match="must be 'auto' or a positive integer"):
        fit_clusters(X, "kmeans", "ten")
    with pytest.raises(ConfigError, match="k range"):
        fit_clusters(X[:4], "kmeans", "auto", k_range=(5, 9))
    with pytest.raises(ConfigError, match="valid names"):
        fit_clusters(X, "kmeanz", 3)


def test_same_seed_same_labels(blobs):
    X, _ = blobs
    a = fit_clusters(X, "minibatch-kmeans", 4, random_state=7)[0]
    b = fit_clusters(X, "minibatch-kmeans", 4, random_state=7)[0]
    np.testing.assert_array_equal(a, b)


def test_order_by_size_numbers_largest_first_and_keeps_noise():
    labels = np.array([5, 5, 2, 2, 2, -1, 9, 5, 2])
    np.testing.assert_array_equal(order_by_size(labels), [1, 1, 0, 0, 0, -1, 2, 1, 0])
    # ties: first seen first
    np.testing.assert_array_equal(order_by_size(np.array([3, 1, 1, 3])), [0, 1, 1, 0])


def test_describe_centres_distances_and_representatives():
    X = np.array([[0.0, 0], [2, 0], [1, 0], [10, 10], [12, 10], [50, 50]])
    labels = np.array([0, 0, 0, 1, 1, -1])
    centers, dist, reps = describe(X, labels)
    np.testing.assert_allclose(centers, [[1, 0], [11, 10]])
    np.testing.assert_allclose(dist[:5], [1, 1, 0, 1, 1])
    assert dist[5] == pytest.approx(np.hypot(39, 40))  # noise: distance to the nearest centre
    assert reps == {0: 2, 1: 3}


IDENTICAL_METHODS = ["kmeans", "minibatch-kmeans", "agglomerative", "knn-spectral", "spectral",
                     "gmm", "dbscan"]


@pytest.mark.parametrize("method", IDENTICAL_METHODS)
@pytest.mark.parametrize("k", ["auto", 5])
def test_identical_rows_are_one_cluster_with_a_note(method, k):
    X = np.tile(np.arange(6, dtype=np.float32), (20, 1))
    X[3, 0] = -0.0  # the same value as 0.0, other bytes
    labels, sel, est = fit_clusters(X, method, k, random_state=0)
    assert len(np.unique(labels)) == 1 and (labels >= 0).all()
    assert (sel.criterion, sel.chosen) == ("distinct", 1)
    (row,) = sel.table
    assert row["chosen"] and "all 20 images have the same features: one cluster" in row["note"]


@pytest.mark.parametrize("method", ["kmeans", "agglomerative", "knn-spectral", "gmm"])
def test_k_is_at_most_the_number_of_distinct_rows(method):
    X = np.repeat(np.eye(3, 6, dtype=np.float32) * 3, 7, axis=0)  # 3 distinct rows, 21 images
    labels, sel, est = fit_clusters(X, method, "auto", random_state=0)
    assert 1 <= len(np.unique(labels)) <= 3 and sel.chosen <= 3
    assert max(r["k"] for r in sel.table if "k" in r) <= 3
    (chosen,) = [r for r in sel.table if r.get("chosen")]
    assert "only 3 distinct feature rows" in chosen["note"]
    labels, sel, _ = fit_clusters(X, method, 10, random_state=0)  # a given k is lowered too
    assert (sel.criterion, sel.chosen) == ("distinct", 3) and len(np.unique(labels)) <= 3
    assert "k=10 was asked" in sel.table[0]["note"]


def test_silhouette_ties_go_to_the_smaller_k():
    from imgclust.cluster.select_k import sweep_k

    X = np.repeat(np.eye(3, 6) * 3, 7, axis=0)
    # k-means finds the same 3 clusters for every k from 3 up (silhouette 1 each time)
    with pytest.warns(Warning):  # scikit-learn: fewer distinct clusters than n_clusters
        chosen, table, _, _ = sweep_k(X, lambda kk: make_estimator("kmeans", n_clusters=kk),
                                      range(3, 6), "silhouette")
    assert [r["silhouette"] for r in table] == pytest.approx([1.0, 1.0, 1.0])
    assert chosen == 3


def test_a_sweep_that_cannot_tell_gives_one_cluster():
    from imgclust.cluster.select_k import sweep_k

    X = np.zeros((12, 3))  # every k-means fit puts all images in one cluster
    with pytest.warns(Warning):
        chosen, table, est, labels = sweep_k(
            X, lambda kk: make_estimator("kmeans", n_clusters=kk), range(2, 5), "silhouette")
    assert chosen == 1 and est.n_clusters == 1 and (labels == 0).all()
    assert [r["k"] for r in table if r["chosen"]] == [1] and "undefined" in table[-1]["note"]
