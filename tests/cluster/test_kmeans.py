"""k-means inside scikit-learn pipelines: as preprocessing for a classifier, k chosen by a grid."""
from __future__ import annotations

import warnings

import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from imgclust.cluster import make_estimator
from imgclust.features.pixels import PixelExtractor


def test_kmeans_as_preprocessing_with_grid_search_over_k():
    """scikit-learn's "clustering as preprocessing" recipe on image arrays: the distances to k
    centres feed a logistic regression; more centres keep more of the digit shapes."""
    d = load_digits()
    images, y = d.images[:900], d.target[:900]  # (900, 8, 8) arrays in, not a feature matrix
    pipe = Pipeline([
        ("pixels", PixelExtractor()),
        ("kmeans", make_estimator("kmeans:n_init=1", random_state=0)),
        ("scale", StandardScaler()),
        ("lr", LogisticRegression(max_iter=500)),
    ])
    grid = GridSearchCV(pipe, {"kmeans__n_clusters": [5, 40]}, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs convergence notes on a fold
        grid.fit(images, y)
    scores = dict(zip(grid.cv_results_["param_kmeans__n_clusters"],
                      grid.cv_results_["mean_test_score"]))
    assert grid.best_params_ == {"kmeans__n_clusters": 40}
    assert scores[40] > 0.85 and scores[5] < scores[40] - 0.1  # 5 centres cannot separate 10
    assert grid.score(d.images[900:], d.target[900:]) > 0.85  # held out
    assert grid.best_estimator_.named_steps["kmeans"].cluster_centers_.shape == (40, 64)
    assert grid.predict(d.images[-5:]).shape == (5,)


def test_registry_kmeans_defaults():
    km = make_estimator("kmeans:7", random_state=3)
    assert (km.n_clusters, km.n_init, km.random_state) == (7, 10, 3)
    assert make_estimator("kmeans", random_state=None).random_state is None
    with pytest.raises(Exception, match="bad parameters"):
        make_estimator("kmeans:n_clusterz=3")
