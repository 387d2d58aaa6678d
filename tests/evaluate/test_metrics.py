"""Scores against hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from imgclust.evaluate import (agreement_matrix, confusion, external_scores, hungarian_accuracy,
                               hungarian_match, internal_scores, purity)


def test_hungarian_accuracy_by_hand():
    # clusters renamed: perfect
    assert hungarian_accuracy([0, 0, 1, 1, 2, 2], [2, 2, 0, 0, 1, 1]) == 1.0
    # classes a,a,a,b,b,c ; clusters 0,0,1,1,1,1: best one-to-one is 0->a (2), 1->b (2) = 4/6
    assert hungarian_accuracy(list("aaabbc"), [0, 0, 1, 1, 1, 1]) == pytest.approx(4 / 6)
    # more clusters than classes: an unmatched cluster counts as wrong
    assert hungarian_accuracy([0, 0, 0, 0], [0, 0, 1, 2]) == pytest.approx(0.5)
    # noise (-1) is one more cluster and can match at most one class
    assert hungarian_accuracy([0, 0, 1, 1], [-1, -1, -1, -1]) == pytest.approx(0.5)
    # one-to-one, not majority: two clusters of class 0 cannot both count
    assert hungarian_accuracy([0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 1, 1]) == pytest.approx(4 / 6)


def test_hungarian_match_maps_clusters_to_classes():
    m = hungarian_match(["cat", "cat", "dog", "dog", "dog"], [1, 1, 0, 0, 2])
    assert m == {0: "dog", 1: "cat", 2: None}


def test_purity_is_majority_class_share():
    # clusters: {a,a,b}, {b,b}, {c}: 2 + 2 + 1 = 5 of 6
    assert purity(list("aabbbc"), [0, 0, 0, 1, 1, 2]) == pytest.approx(5 / 6)
    # purity rewards splitting: every point alone is pure, accuracy is not
    y = list("aabb")
    assert purity(y, [0, 1, 2, 3]) == 1.0 and hungarian_accuracy(y, [0, 1, 2, 3]) == 0.5


def test_nmi_and_ari_sanity():
    y = [0, 0, 1, 1, 2, 2]
    s = external_scores(y, [5, 5, 3, 3, 9, 9])
    assert s["acc"] == s["nmi"] == s["purity"] == 1.0 and s["ari"] == pytest.approx(1.0)
    s = external_scores(y, [0, 0, 0, 0, 0, 0])
    assert s["nmi"] == pytest.approx(0.0) and s["ari"] == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    big = rng.integers(0, 5, 2000)
    assert abs(external_scores(big, rng.integers(0, 5, 2000))["ari"]) < 0.02  # chance level


def test_confusion_puts_matched_pairs_on_the_diagonal():
    y = ["cat"] * 3 + ["dog"] * 2 + ["eel"]
    pred = [2, 2, 0, 1, 1, 3]  # 2 -> cat, 1 -> dog, 3 -> eel; 0 holds the third cat
    c = confusion(y, pred)
    assert c["classes"] == ["cat", "dog", "eel"]
    # matched clusters first, in class order, then the unmatched cluster
    assert c["clusters"] == [2, 1, 3, 0]
    assert c["matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 1], [1, 0, 0]]
    assert all(c["matrix"][i][i] >= max(c["matrix"][i]) for i in range(3))
    assert sum(map(sum, c["matrix"])) == len(y)


def test_internal_scores_none_with_one_cluster():
    X, _ = make_blobs(n_samples=30, centers=2, random_state=0)
    s = internal_scores(X, np.zeros(30, int))
    assert s["silhouette"] is None and s["davies_bouldin"] is None
    assert s["calinski_harabasz"] is None and s["noise_share"] == 0.0
    s = internal_scores(X, np.r_[np.full(10, -1), np.zeros(20, int)])  # one cluster + noise
    assert s["silhouette"] is None and s["noise_share"] == pytest.approx(1 / 3)


def test_internal_scores_leave_noise_out():
    X, y = make_blobs(n_samples=60, centers=[[0, 0], [20, 0]], cluster_std=0.5, random_state=0)
    labels = y.copy()
    labels[:5] = -1
    s = internal_scores(X, labels)
    assert s["silhouette"] > 0.9 and s["davies_bouldin"] < 0.1
    assert s["noise_share"] == pytest.approx(5 / 60)


def test_agreement_matrix():
    names, m = agreement_matrix({"a": [0, 0, 1, 1], "b": [1, 1, 0, 0], "c": [0, 1, 0, 1]})
    assert names == ["a", "b", "c"]
    np.testing.assert_allclose(np.diag(m), 1.0)
    np.testing.assert_allclose(m, m.T)
    assert m[0, 1] == pytest.approx(1.0) and m[0, 2] < 0
    _, n = agreement_matrix({"a": [0, 0, 1, 1], "c": [0, 1, 0, 1]}, score="nmi")
    assert n[0, 1] == pytest.approx(0.0)


def test_scores_without_matrix_copies_match_scikit_learn():
    """internal_scores' Calinski-Harabasz (one cluster's rows converted at a time) and the
    sampled silhouette (rows picked without copying every non-noise row) give scikit-learn's
    numbers."""
    from sklearn.metrics import calinski_harabasz_score, silhouette_score

    from imgclust.cluster import select_k
    from imgclust.evaluate.metrics import _calinski_harabasz

    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 7)).astype(np.float32)
    labels = rng.integers(-1, 5, 3000)  # -1: noise
    m = labels >= 0
    assert _calinski_harabasz(X[m], labels[m]) == pytest.approx(
        calinski_harabasz_score(X[m], labels[m]), rel=1e-12)
    old = select_k.SILHOUETTE_SAMPLE
    try:
        select_k.SILHOUETTE_SAMPLE = 500
        got = select_k.safe_silhouette(X, labels, random_state=4)
    finally:
        select_k.SILHOUETTE_SAMPLE = old
    assert got == pytest.approx(silhouette_score(X[m], labels[m], sample_size=500,
                                                 random_state=4), rel=1e-12)
