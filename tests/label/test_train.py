"""Training on the labels so far: logistic regression and its cross-validated accuracy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from imgclust.errors import ConfigError
from imgclust.label import LabelStore
from imgclust.label.train import GlobalScaler, train, train_run

from label_fixtures import two_blobs, write_run


@parametrize_with_checks([GlobalScaler()])
def test_global_scaler_follows_the_sklearn_contract(estimator, check) -> None:
    check(estimator)


def test_global_scaler_keeps_relative_scales() -> None:
    X = np.random.default_rng(0).normal(0, [10, 1], (200, 2))
    Z = GlobalScaler().fit_transform(X)
    assert Z.std(axis=0)[0] / Z.std(axis=0)[1] == pytest.approx(X.std(axis=0)[0] / X.std(axis=0)[1])
    assert np.mean(Z.var(axis=0)) == pytest.approx(1.0)


def test_train_cross_validates_with_folds_from_the_smallest_class() -> None:
    X, y = two_blobs(20)
    labels = np.where(y == 0, "a", "b")
    r = train(X, labels)
    assert r.n_folds == 5 and r.cv_accuracy == 1.0 and r.classes == ["a", "b"]
    keep = np.r_[0:20, 20:23]  # 3 of class b
    r = train(X[keep], labels[keep])
    assert r.n_folds == 3 and r.cv_accuracy == 1.0
    assert r.model.predict(X[30:31]).tolist() == ["b"]


def test_too_few_labels_give_no_cv_accuracy_and_one_class_is_refused() -> None:
    X, y = two_blobs(20)
    r = train(X[[0, 1, 20]], ["a", "a", "b"])
    assert r.cv_accuracy is None and r.n_folds is None
    assert "class 'b' has 1 label" in r.why_no_cv
    with pytest.raises(ConfigError, match="at least 2 classes; have only 'a'"):
        train(X[:3], ["a", "a", "a"])


def test_train_run_writes_model_labels_as_one_batch(tmp_path: Path) -> None:
    X, y = two_blobs(10)
    run = write_run(tmp_path / "run", [f"img{i:02d}" for i in range(20)], y, X, "dataset:x")
    s = LabelStore(run)
    s.label(["img00", "img01"], "a")
    s.label(["img10", "img11"], "b")
    s.mark_not_of_interest(["img05"])
    res, batch = train_run(run, write=True)
    assert res.n_labels == 4 and res.n_folds == 2 and res.cv_accuracy == 1.0
    model = s.current_labels(["model"])
    assert len(model) == 15 and "img05" not in model
    assert all(v[0] == ("a" if int(i[3:]) < 10 else "b") for i, v in model.items())
    assert all(0.5 < v[2] <= 1 for v in model.values())
    s.undo(batch)
    assert s.current_labels(["model"]) == {}
    with pytest.raises(ConfigError, match="no labels from propagated"):
        train_run(run, sources=["propagated"])
