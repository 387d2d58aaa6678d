"""Clustering many images: faiss k-means and sample-then-assign (issue 15)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from imgclust.cluster import make_estimator
from imgclust.cluster import large
from imgclust.cluster.kmeans import FaissKMeans


def blobs(n_per: int, seed: int = 0, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (k, 16))
    X = np.concatenate([c + rng.normal(0, 0.5, (n_per, 16)) for c in centres]).astype(np.float32)
    return X, np.repeat(np.arange(k), n_per)


def test_faiss_kmeans_finds_blobs_and_matches_sklearn_inertia():
    X, y = blobs(500)
    est = make_estimator("faiss-kmeans:4", random_state=0).fit(X)
    assert adjusted_rand_score(y, est.labels_) == 1.0
    sk = make_estimator("kmeans:4", random_state=0).fit(X)
    assert est.inertia_ == pytest.approx(sk.inertia_, rel=1e-2)  # float32 distances
    np.testing.assert_array_equal(est.predict(X[:50]), est.labels_[:50])
    # same seed, same clusters
    again = FaissKMeans(4, n_init=3, random_state=0).fit(X)
    np.testing.assert_array_equal(again.labels_, est.labels_)


def test_faiss_kmeans_refuses_fewer_images_than_clusters():
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=5"):
        FaissKMeans(5).fit(np.zeros((3, 2)))


def test_unscalable_method_fits_a_sample_and_assigns_the_rest():
    X, y = blobs(600)  # 2,400 images, sample of 300
    labels, sel, est, note = large.fit_large(X, "agglomerative", k=4, sample_max=300)
    assert labels.shape == (2400,) and adjusted_rand_score(y, labels) == 1.0
    assert est.labels_.shape == (300,)  # the estimator saw the sample only
    assert "agglomerative cannot scale to 2,400 images" in note and "300" in note


def test_scalable_method_sweeps_k_on_a_sample_then_fits_every_image(monkeypatch):
    X, y = blobs(600)
    seen = []
    from imgclust.cluster import large as mod

    real = mod.fit_clusters

    def spy(Xa, *a, **kw):
        seen.append(len(Xa))
        return real(Xa, *a, **kw)

    monkeypatch.setattr(mod, "fit_clusters", spy)
    labels, sel, est, note = large.fit_large(X, "minibatch-kmeans", k="auto", k_range=(2, 6),
                                             sample_max=400)
    assert seen == [400] and sel.chosen == 4
    assert adjusted_rand_score(y, labels) == 1.0 and len(est.labels_) == 2400
    assert "sample of 400 of the 2,400 images" in note


def test_small_sets_are_not_sampled():
    X, y = blobs(20)
    labels, sel, est, note = large.fit_large(X, "kmeans", k=4, sample_max=1000)
    assert note is None and adjusted_rand_score(y, labels) == 1.0


def test_faiss_kmeans_plusplus_start_beats_faiss_random_start():
    """faiss' own start (k random rows) merges and splits many separated groups; the
    k-means++ start comes near the ideal inertia (20,000 x 32 around 100 centres, sd 0.2)."""
    rng = np.random.default_rng(0)
    C = rng.normal(0, 1, (100, 32))
    X = (C[rng.integers(0, 100, 20000)] + rng.normal(0, 0.2, (20000, 32))).astype(np.float32)
    ideal = 20000 * 32 * 0.2 ** 2
    plus = FaissKMeans(100, random_state=0).fit(X).inertia_
    rand = FaissKMeans(100, init="random", random_state=0).fit(X).inertia_
    assert plus < 1.2 * ideal < rand
    with pytest.raises(ValueError, match="init='kmeans'; valid"):
        FaissKMeans(3, init="kmeans").fit(X)
