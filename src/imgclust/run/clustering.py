"""Stage 2: features -> clusters (k chosen), numbered by size, with centres, representatives
and scores."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from imgclust.cluster import describe, order_by_size
from imgclust.cluster.large import fit_large
from imgclust.errors import ConfigError, ImgclustError
from imgclust.evaluate import external_scores, internal_scores
from imgclust.model import Clustering, Features, KSelection
from imgclust.progress import progress_bar, progress_status
from imgclust.runtime import threads_for
from imgclust.run.config import parse_k


def cluster_features(feats: Features, method: str, k: int | str, criterion: str | None,
                     k_range: tuple[int, int], seed: int, progress: bool
                     ) -> tuple[Clustering, KSelection, Any]:
    """Cluster a feature matrix, order clusters by size and find centres and representatives."""
    n = feats.X.shape[0]
    if n < 2:
        raise ConfigError(f"only {n} image read; clustering needs at least 2")
    bar = progress_bar(progress)
    k = parse_k(k)
    # a k sweep has its own bar; a single fit gets a spinner
    try:
        with progress_status(progress and k != "auto", f"clustering: {method}, k={k}"), \
                threads_for(feats.X):
            # above SAMPLE_MAX images the sweep (and a method that cannot scale) runs on a sample
            raw, selection, est, note = fit_large(
                feats.X, method, k, criterion, k_range, random_state=seed,
                progress=lambda it: bar(it, desc=f"{method}: choosing k", unit="k"))
            if note:
                selection = dataclasses.replace(selection, note=note)
    except ImgclustError:
        raise
    except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
        # the estimator refused these features (a mixture's covariance on near-identical
        # images…): one line naming the method, not the library's traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImgclustError(f"{method} failed on these {n} images x {feats.X.shape[1]} features: "
                            f"{first}; try another method or fewer features (-f ...,pca:20)") \
            from None
    labels = order_by_size(raw)
    centers, distance, reps = describe(feats.X, labels)
    params = {kk: v for kk, v in est.get_params(deep=False).items()
              if isinstance(v, (int, float, str, bool, type(None)))}
    clustering = Clustering(ids=feats.ids, labels=labels, method=method, params=params,
                            distance=distance, representatives=reps, centers=centers)
    return clustering, selection, est



def score(X: np.ndarray, labels: np.ndarray, ids: tuple[str, ...],
          truth: dict[str, Any] | None, seed: int) -> tuple[dict[str, Any], list[Any] | None]:
    """Internal scores, and against ``truth`` (id -> class) the external ones when it exists.

    Returns
    -------
    metrics, the class of each image (``None`` where unlabelled) or ``None`` without truth
    """
    metrics: dict[str, Any] = internal_scores(X, labels, seed)
    if truth is None:
        return metrics, None
    y_true = [truth.get(i) for i in ids]
    keep = [j for j, i in enumerate(ids) if i in truth]
    if keep:
        metrics.update(external_scores([y_true[j] for j in keep], labels[keep]))
        metrics["n_labelled"] = len(keep)
    return metrics, y_true


def k_disagreement(selection: KSelection) -> dict[str, Any] | None:
    """Where the compared k criteria of a sweep disagree (silhouette, elbow, BIC; the eigengap
    and modularity of knn-spectral), each one's k, so that the user can try the other with
    ``imgclust recluster DIR -k K``; ``None`` when they agree or there was no sweep
    (:func:`imgclust.cluster.criteria.disagreement`)."""
    from imgclust.cluster import criteria

    return criteria.disagreement(selection.chosen, selection.criterion, selection.table)
