"""knn-spectral: modularity, the eigengap rule and the clusterer on data with a known answer."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import make_blobs, make_moons
from sklearn.metrics import adjusted_rand_score

from imgclust.cluster import fit_clusters
from imgclust.cluster.spectral import KNNSpectral, eigengap_k, graph_k, modularity


def test_eigengap_picks_the_largest_jump_in_range():
    lam = np.array([0.0, 0.01, 0.02, 0.04, 0.5, 0.55, 0.9])
    assert eigengap_k(lam) == 4  # 0.04 -> 0.5
    assert eigengap_k(lam, k_min=5) == 6  # 0.55 -> 0.9 is the largest gap from k=5 on
    assert eigengap_k(lam, k_max=3) == 3
    with pytest.raises(ValueError, match="cannot choose"):
        eigengap_k(np.array([0.0, 0.1]), k_min=2)


def test_graph_rule_keeps_the_smaller_of_the_two_ks():
    def table(gaps, mods):
        return [{"k": k, "gap": g, "modularity": q} for k, g, q in zip(range(2, 9), gaps, mods)]

    mods = [0.40, 0.50, 0.60, 0.70, 0.72, 0.71, 0.70]  # best at k=6
    assert graph_k(table([0.01, 0.06, 0.02, 0.01, 0.02, 0.01, 0.01], mods)) == (3, "eigengap")
    assert graph_k(table([0.01, 0.02, 0.02, 0.01, 0.02, 0.01, 0.06], mods)) == (6, "modularity")
    assert graph_k(table([0.01, 0.02, 0.02, 0.01, 0.06, 0.01, 0.01], mods)) == (6, "both")
    assert graph_k(table([0.05], [0.3])) == (2, "both")  # a single candidate


def test_modularity_of_two_triangles_joined_by_one_edge():
    edges = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]
    r, c = np.array(edges).T
    A = sparse.coo_matrix((np.ones(14), (np.r_[r, c], np.r_[c, r])), shape=(6, 6))
    # 2m = 14; each triangle: 6 of the 14 edge ends inside, total degree 7
    assert modularity(A, np.array([0, 0, 0, 1, 1, 1])) == pytest.approx(2 * (6 / 14 - 0.25))
    assert modularity(A, np.zeros(6, int)) == pytest.approx(0.0)
    assert modularity(A, np.array([0, 1, 0, 1, 0, 1])) < 0


@pytest.mark.parametrize("n", [300, 1500])  # dense eigh up to 1,000 images, lobpcg above
def test_finds_the_number_of_blobs_and_recovers_them(n):
    X, y = make_blobs(n_samples=n, centers=6, n_features=10, cluster_std=1.5, random_state=1)
    est = KNNSpectral(random_state=0).fit(X)
    assert est.n_clusters_ == 6
    assert adjusted_rand_score(y, est.labels_) > 0.99
    assert est.embedding_.shape == (n, 6)
    np.testing.assert_allclose(np.linalg.norm(est.embedding_, axis=1), 1.0, rtol=1e-6)
    lam = est.eigenvalues_
    assert len(lam) == 16 and np.all(np.diff(lam) >= -1e-9)
    chosen = [r for r in est.k_table_ if r["chosen"]]
    assert [r["k"] for r in chosen] == [6]
    assert chosen[0]["modularity"] == max(r["modularity"] for r in est.k_table_)
    assert chosen[0]["gap"] == max(r["gap"] for r in est.k_table_)  # both rules agree here


def test_eigengap_counts_the_parts_of_a_split_graph():
    """Blobs far apart: one zero eigenvalue per blob, found by lobpcg (1,200 images)."""
    X, _ = make_blobs(n_samples=1200, centers=4, n_features=8, cluster_std=0.5,
                      center_box=(-40, 40), random_state=5)
    est = KNNSpectral(k_rule="eigengap", random_state=0).fit(X)
    assert est.n_clusters_ == 4
    np.testing.assert_allclose(est.eigenvalues_[:4], 0, atol=1e-6)
    assert est.eigenvalues_[4] > 1e-3


def test_follows_the_graph_where_kmeans_cannot():
    """Two interleaved half-moons: k-means on the coordinates cuts across them, the graph not."""
    X, y = make_moons(n_samples=400, noise=0.05, random_state=0)
    est = KNNSpectral(2, random_state=0).fit(X)
    assert adjusted_rand_score(y, est.labels_) > 0.95


def test_seeded_runs_repeat_and_given_k_is_kept():
    X, _ = make_blobs(n_samples=1100, centers=3, random_state=1)
    a = KNNSpectral(4, random_state=7).fit(X)
    b = KNNSpectral(4, random_state=7).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.n_clusters_ == 4 and len(np.unique(a.labels_)) == 4 and not hasattr(a, "k_table_")


def test_bad_parameters_are_refused():
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match="'auto' or an integer"):
        KNNSpectral("many").fit(X)
    with pytest.raises(ValueError, match="between 1 and 20"):
        KNNSpectral(21).fit(X)
    with pytest.raises(ValueError, match="k_rule"):
        KNNSpectral(k_rule="gap").fit(X)
    with pytest.raises(ValueError, match="cannot be split"):
        KNNSpectral(min_clusters=5).fit(X[:4])


@pytest.mark.parametrize("criterion", ["graph", "modularity", "eigengap"])
def test_fit_clusters_reports_every_k(criterion):
    X, _ = make_blobs(n_samples=240, centers=4, n_features=6, cluster_std=0.5, random_state=2)
    labels, sel, est = fit_clusters(X, "knn-spectral", "auto", criterion, (2, 8), random_state=0)
    assert sel.criterion == criterion and sel.chosen == 4 == est.n_clusters_
    assert [r["k"] for r in sel.table] == list(range(2, 9))
    assert [r["k"] for r in sel.table if r["chosen"]] == [4]
    assert ("modularity" in sel.table[0]) == (criterion != "eigengap")
    (chosen,) = [r for r in sel.table if r["chosen"]]
    assert chosen["decided_by"] == {"graph": "both", "modularity": "modularity",
                                    "eigengap": "eigengap"}[criterion]
    if criterion == "graph":
        assert chosen["k_eigengap"] == chosen["k_modularity"] == 4
    assert len(np.unique(labels)) == 4


def test_refit_with_a_given_k_drops_the_auto_tables():
    X, _ = make_blobs(n_samples=90, centers=3, random_state=1)
    est = KNNSpectral(random_state=0).fit(X)
    assert est.k_table_ and est.k_decided_by_
    est.set_params(n_clusters=2).fit(X)
    assert est.n_clusters_ == 2
    assert not hasattr(est, "k_table_") and not hasattr(est, "k_decided_by_")


def test_parameters_are_checked_without_data():
    for bad, match in [({"n_neighbors": 0}, "n_neighbors=0"), ({"n_init": "abc"}, "n_init='abc'"),
                       ({"n_clusters": 0}, "n_clusters=0"), ({"k_rule": "gap"}, "k_rule")]:
        with pytest.raises(ValueError, match=match):
            KNNSpectral(**bad)._validate_params_()
    KNNSpectral()._validate_params_()
