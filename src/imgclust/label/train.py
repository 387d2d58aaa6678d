"""A classifier from the labels so far: logistic regression on the run's features.

:class:`GlobalScaler` then ``LogisticRegression``; cross-validated accuracy with
``StratifiedKFold`` (folds = min(5, the smallest class's count); none below 2 per class).

Why not ``StandardScaler``: fitted on a few labelled images it gives every feature unit
variance, so a run's low-variance PCA components (mostly noise) weigh as much as the first
ones. On digits (HOG + PCA 50) logistic regression on the 10 k-means representatives scored
0.41 with it and 0.93 with one scale for all features (bench/label_bench.py, BENCHMARKS.md
"Labelling"); on 50 random labels 0.75 against 0.89.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from imgclust.errors import ConfigError

MAX_FOLDS = 5


class GlobalScaler(TransformerMixin, BaseEstimator):
    """Centre the features and divide them all by one number, the root mean variance.

    Unlike ``StandardScaler`` the features keep their relative scales (a PCA's first
    components stay the largest); the regularisation of a model after it then means the same
    for features of any overall scale (pixels in [0, 1], CNN embeddings, HOG).

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    scale_ : float

    Examples
    --------
    >>> GlobalScaler().fit_transform(np.array([[0.0, 0.0], [2.0, 4.0]])).tolist()
    [[-0.6324555320336759, -1.2649110640673518], [0.6324555320336759, 1.2649110640673518]]
    """

    def fit(self, X: np.ndarray, y: Any = None) -> "GlobalScaler":
        X = validate_data(self, X, dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        scale = float(np.sqrt(X.var(axis=0).mean()))
        self.scale_ = scale if scale > 0 else 1.0
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return (X - self.mean_) / self.scale_


@dataclass
class TrainResult:
    """A fitted classifier and how well it generalises.

    Attributes
    ----------
    model : sklearn Pipeline
        :class:`GlobalScaler` + ``LogisticRegression``, fitted on every label.
    classes : list of str
    n_labels : int
    cv_accuracy, cv_sd : float or None
        Mean and standard deviation over the folds; None when too few labels.
    n_folds : int or None
    why_no_cv : str or None
        Why there is no cross-validated accuracy.
    """

    model: Any
    classes: list[str]
    n_labels: int
    cv_accuracy: float | None
    cv_sd: float | None
    n_folds: int | None
    why_no_cv: str | None = None


def make_classifier(seed: int = 0, C: float = 1.0) -> Any:
    """The unfitted pipeline: :class:`GlobalScaler` then ``LogisticRegression``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(GlobalScaler(), LogisticRegression(C=C, max_iter=2000,
                                                            random_state=seed))


def train(X: np.ndarray, y: Sequence[str], *, seed: int = 0, C: float = 1.0,
          cv: bool = True) -> TrainResult:
    """Fit a classifier on labelled rows and cross-validate it.

    Parameters
    ----------
    X : array of shape (n_labelled, n_features)
    y : sequence of str, length n_labelled
    seed : int
        Seeds the fold split.
    C : float
        Inverse regularisation strength of the logistic regression.
    cv : bool
        Compute the cross-validated accuracy.

    Examples
    --------
    >>> X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    >>> r = train(X, ["a", "a", "a", "b", "b", "b"])
    >>> r.n_folds, r.cv_accuracy, r.model.predict([[4.9]]).tolist()
    (3, 1.0, ['b'])
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(list(y), dtype=object)
    if X.ndim != 2 or len(y) != X.shape[0]:
        raise ConfigError(f"{len(y)} labels for features of shape {X.shape}")
    classes, counts = np.unique(y.astype(str), return_counts=True)
    if len(classes) < 2:
        have = f"only {str(classes[0])!r}" if len(classes) else "none"
        raise ConfigError(f"training needs labels of at least 2 classes; have {have}")
    y = y.astype(str)
    folds = min(MAX_FOLDS, int(counts.min()))
    acc = sd = None
    why = None
    if not cv:
        why = "not asked for"
    elif folds < 2:
        small = str(classes[counts.argmin()])
        why = (f"class {small!r} has {int(counts.min())} label; cross-validation needs at "
               "least 2 per class")
    else:
        scores = cross_val_score(make_classifier(seed, C), X, y,
                                 cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
        acc, sd = float(scores.mean()), float(scores.std())
    model = make_classifier(seed, C).fit(X, y)
    return TrainResult(model, classes.tolist(), len(y), acc, sd, folds if acc is not None else None,
                       why)


def train_run(run_dir: str | Path, sources: Sequence[str] = ("human", "import"),
              write: bool = False, seed: int = 0) -> tuple[TrainResult, str | None]:
    """Train on a run's labels; with ``write``, record the predictions as ``model`` labels.

    Parameters
    ----------
    run_dir : str or Path
    sources : sequence of str
        Which labels to learn from (default: those a person gave).
    write : bool
        Label every image without a person's label (and not marked not of interest) with the
        model's prediction, confidence = its probability, as one undoable batch.

    Returns
    -------
    (TrainResult, batch id or None)
    """
    from imgclust.errors import RunDirError
    from imgclust.label.store import GIVEN, LabelStore

    store = LabelStore(run_dir)
    if store.run.X is None:
        raise RunDirError(f"{store.run_dir}: features.npy is missing; training needs it")
    labels = store.current_labels(sources)
    if not labels:
        raise ConfigError(f"{store.run_dir}: no labels from {', '.join(sources)} to train on")
    rows = np.array([store.index[i] for i in labels])
    X = np.asarray(store.run.X)
    res = train(X[rows], [v[0] for v in labels.values()], seed=seed)
    batch = None
    if write:
        keep = set(store.current_labels(GIVEN)) | store.not_of_interest()
        todo = [n for n, i in enumerate(store.ids) if i not in keep]
        if todo:
            proba = res.model.predict_proba(X[todo])
            cls = res.model.classes_
            batch = store.label_each(
                {store.ids[n]: str(cls[j]) for n, j in zip(todo, proba.argmax(axis=1))},
                "model", {store.ids[n]: round(float(p), 6) for n, p in zip(todo, proba.max(axis=1))},
                op_name="train")
    return res, batch
