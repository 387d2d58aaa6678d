"""The map's 2-D embeddings and the silhouette sample."""
from __future__ import annotations

import numpy as np
import pytest

from imgclust.report.embed import embed_2d, silhouette_sample


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    X = rng.normal(0, 0.2, (60, 6)) + np.eye(6)[y] * 5
    return X.astype(np.float32), y


@pytest.mark.parametrize("method, used", [("pca", "PCA"), ("tsne", "t-SNE"), ("umap", "UMAP"),
                                          ("auto", "t-SNE")])
def test_embeddings_keep_the_groups_apart(blobs, method, used):
    if method == "umap":
        pytest.importorskip("umap")
    X, y = blobs
    xy, name = embed_2d(X, method)
    assert name == used and xy.shape == (60, 2) and np.isfinite(xy).all()
    centres = np.stack([xy[y == c].mean(axis=0) for c in range(3)])
    spread = max(np.linalg.norm(xy[y == c] - centres[c], axis=1).max() for c in range(3))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a, b in ((0, 1), (0, 2), (1, 2))]
    assert min(gaps) > spread


def test_two_dimensional_features_are_drawn_as_they_are(blobs):
    X, _ = blobs
    xy, name = embed_2d(X[:, :2], "auto")
    assert name == "features"
    np.testing.assert_array_equal(xy, X[:, :2])
    xy1, _ = embed_2d(X[:, :1], "auto")
    assert xy1.shape == (60, 2) and (xy1[:, 1] == 0).all()


def test_few_points_fall_back_to_pca(blobs):
    X, _ = blobs
    assert embed_2d(X[:10], "auto")[1] == "PCA"


def test_silhouette_sample_leaves_noise_out(blobs):
    X, y = blobs
    y = y.copy()
    y[:3] = -1
    values, lab = silhouette_sample(X, y)
    assert len(values) == 57 and (lab >= 0).all() and values.mean() > 0.8
    assert silhouette_sample(X, np.zeros(60, int)) is None
