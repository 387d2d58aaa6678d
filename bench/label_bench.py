"""Labelling seed experiment (issue 13): how few labels reach a good classifier on digits?

scikit-learn's digits (1797 images, 10 classes). Per seed, a stratified quarter is held out as
the test set; the labels are chosen from the other three quarters (the pool). Strategies for
k labels:

  random          k random pool images
  reps            the k images nearest the centres of a k-means with k clusters (on the pool)
  reps+cluster    reps, each k-means cluster given its representative's label
  reps+nearest    reps, only the 20 % of each cluster nearest its centre labelled
  reps+spread     reps, LabelSpreading (kNN graph, 10 neighbours) over the pool
  active          one per cluster of the run's 10 clusters, then rounds of 10 least certain
                  (LabelSpreading margin, spread over the 20 x 10 least certain by k-means)
                  until k: imgclust.label.active.next_to_label
  active+spread   active, then LabelSpreading

Classifier: StandardScaler + logistic regression (imgclust.label.train.make_classifier) on the
labelled (and propagated) pool images; accuracy on the test quarter. Features: the imgclust
default for digits (``imgclust.pipeline.run(features="auto")``: resize, deskew, HOG, PCA 50)
and plain pixels; both are fitted without labels on all 1797 images (unsupervised, as a run
does). ``prop`` = accuracy of the propagated labels on the pool.

    .venv/bin/python bench/label_bench.py --seeds 5 > /tmp/label_bench.md
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import numpy as np
from sklearn.cluster import KMeans
from sklearn.model_selection import train_test_split

from imgclust.label.active import next_to_label
from imgclust.label.propagate import propagate
from imgclust.label.train import make_classifier

KS = (10, 20, 50)
RUN_K = 10  # the clusters a run of digits would have (imgclust run -k 10)
ROUND = 10


def features(name: str) -> tuple[np.ndarray, np.ndarray]:
    import imgclust.pipeline as pipeline

    spec = {"default": "auto", "pixels": "pixels"}[name]
    res = pipeline.run("dataset:digits", features=spec, method="kmeans", k=10)
    y = np.array(res.y_true, dtype=str)
    return np.asarray(res.features_.X, dtype=np.float64), y


def kmeans(X: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and, per cluster, the member nearest the centre."""
    km = KMeans(k, n_init=10, random_state=seed).fit(X)
    reps = np.array([np.flatnonzero(km.labels_ == c)[np.argmin(np.linalg.norm(
        X[km.labels_ == c] - km.cluster_centers_[c], axis=1))] for c in range(k)])
    return km.labels_, reps


def fit_score(Xp: np.ndarray, idx: np.ndarray, lab: np.ndarray, Xt: np.ndarray, yt: np.ndarray,
              seed: int) -> float:
    if len(set(lab.tolist())) < 2:
        return float("nan")
    clf = make_classifier(seed).fit(Xp[idx], lab)
    return float((clf.predict(Xt) == yt).mean())


def from_propagation(Xp, yp, clusters, given, mode, Xt, yt, seed) -> tuple[float, float]:
    p = propagate(Xp, clusters, given, mode)
    idx = np.array([i for i in range(len(Xp)) if p.labels[i] is not None])
    lab = p.labels[idx].astype(str)
    prop_acc = float((lab == yp[idx]).mean())
    return fit_score(Xp, idx, lab, Xt, yt, seed), prop_acc


def active_labels(Xp: np.ndarray, yp: np.ndarray, k: int, seed: int) -> dict[int, str]:
    run_clusters, _ = kmeans(Xp, RUN_K, seed)
    given: dict[int, str] = {}
    while len(given) < k:
        step = min(ROUND if given else RUN_K, k - len(given))
        for s in next_to_label(Xp, run_clusters, given, n=step, seed=seed):
            given[s.index] = str(yp[s.index])  # the oracle: a person looking at the image
    return given


def one_seed(X: np.ndarray, y: np.ndarray, seed: int) -> list[dict]:
    idx_p, idx_t = train_test_split(np.arange(len(y)), test_size=0.25, stratify=y,
                                    random_state=seed)
    Xp, yp, Xt, yt = X[idx_p], y[idx_p], X[idx_t], y[idx_t]
    rng = np.random.default_rng(seed)
    rows = []

    def add(strategy: str, k: int, acc: float, prop: float | None = None) -> None:
        rows.append({"strategy": strategy, "k": k, "acc": acc, "prop": prop})

    for k in KS:
        r = rng.choice(len(yp), k, replace=False)
        add("random", k, fit_score(Xp, r, yp[r], Xt, yt, seed))
        clusters, reps = kmeans(Xp, k, seed)
        add("reps", k, fit_score(Xp, reps, yp[reps], Xt, yt, seed))
        given = {int(i): str(yp[i]) for i in reps}
        for mode, name in (("cluster", "reps+cluster"), ("nearest:20%", "reps+nearest"),
                           ("spread", "reps+spread")):
            add(name, k, *from_propagation(Xp, yp, clusters, given, mode, Xt, yt, seed))
        given = active_labels(Xp, yp, k, seed)
        a = np.fromiter(given, dtype=np.int64)
        add("active", k, fit_score(Xp, a, yp[a], Xt, yt, seed))
        add("active+spread", k, *from_propagation(Xp, yp, np.zeros(len(yp), int), given,
                                                  "spread", Xt, yt, seed))
    return rows


def table(rows: list[dict], key: str) -> list[str]:
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    out = ["| strategy | " + " | ".join(f"{k} labels" for k in KS) + " |",
           "|---|" + "---|" * len(KS)]
    for s in strategies:
        cells = []
        for k in KS:
            v = np.array([r[key] for r in rows if r["strategy"] == s and r["k"] == k
                          and r[key] is not None], dtype=float)
            cells.append("–" if len(v) == 0 else f"{np.nanmean(v):.3f} ± {np.nanstd(v):.3f}")
        if any(c != "–" for c in cells):
            out.append(f"| {s} | " + " | ".join(cells) + " |")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--features", default="default,pixels")
    args = ap.parse_args(argv)
    for name in args.features.split(","):
        t = time.perf_counter()
        X, y = features(name)
        rows = [r for s in range(args.seeds) for r in one_seed(X, y, s)]
        print(f"\n**{name} features** ({X.shape[1]} dims; test accuracy, mean ± sd over "
              f"{args.seeds} seeds; {time.perf_counter() - t:.0f} s)\n")
        print("\n".join(table(rows, "acc")))
        print(f"\n{name} features: accuracy of the propagated labels on the pool\n")
        print("\n".join(table(rows, "prop")))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
