"""knn-spectral's graph: built through imgclust.neighbors (the same graph as scikit-learn's),
and the neighbours it takes when k is given (issue 12: digits at k = 10)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.neighbors import kneighbors_graph

from imgclust.cluster.spectral import NEIGHBORS_AUTO_K, NEIGHBORS_GIVEN_K, KNNSpectral, knn_graph


@pytest.mark.parametrize("n_neighbors", [1, 5, 10])
def test_knn_graph_is_scikit_learns_graph(n_neighbors):
    X = np.random.default_rng(0).normal(size=(120, 6))
    ref = kneighbors_graph(X, n_neighbors, include_self=False)
    ref = ref.maximum(ref.T).astype(np.float64)
    got = knn_graph(X, n_neighbors)
    assert got.shape == ref.shape and got.dtype == np.float64
    assert (got != ref).nnz == 0


def test_labels_unchanged_by_the_neighbour_backend():
    """The clustering of a given graph is what it was with scikit-learn's kneighbors_graph."""
    X, _ = make_blobs(300, centers=4, cluster_std=1.5, random_state=1)
    a = KNNSpectral(n_clusters="auto", random_state=0).fit(X)
    b = KNNSpectral(n_clusters="auto", n_neighbors=10, random_state=0).fit(X)
    assert a.n_neighbors_ == 10 and (a.labels_ == b.labels_).all()
    assert a.n_clusters_ == 4


def test_neighbours_default_depends_on_whether_k_is_given():
    X, _ = make_blobs(200, centers=3, random_state=0)
    assert KNNSpectral(random_state=0).fit(X).n_neighbors_ == NEIGHBORS_AUTO_K == 10
    assert KNNSpectral(n_clusters=3, random_state=0).fit(X).n_neighbors_ == NEIGHBORS_GIVEN_K
    assert KNNSpectral(n_clusters=3, n_neighbors=7, random_state=0).fit(X).n_neighbors_ == 7
    assert KNNSpectral(n_clusters=2, random_state=0).fit(X[:6]).n_neighbors_ == 5  # n - 1
    est = KNNSpectral(n_clusters=3)
    assert est.get_params()["n_neighbors"] is None  # fit never rewrites a parameter
    with pytest.raises(ValueError, match="n_neighbors=0 must be a positive integer"):
        KNNSpectral(n_neighbors=0).fit(X)


def test_digits_with_k_given_through_the_cli(tmp_path):
    """imgclust run --k 10 on digits (default features and method): ACC >= 0.97 (0.883 with the
    10-NN graph before issue 12)."""
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "imgclust.cli", "run", "dataset:digits", "-o",
                        str(out), "-k", "10", "--no-report", "-q"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    import json

    summary = json.loads((out / "summary.json").read_text())
    text = json.dumps(summary)
    assert "knn-spectral" in text
    acc = _find(summary, "acc")
    assert acc is not None and acc >= 0.97, (acc, r.stdout[-2000:])


def _find(obj, key):
    """The first value under ``key`` anywhere in a JSON tree."""
    if isinstance(obj, dict):
        if key in obj and isinstance(obj[key], (int, float)):
            return obj[key]
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            got = _find(v, key)
            if got is not None:
                return got
    return None
