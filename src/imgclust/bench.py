"""``imgclust bench``: the feature x method matrix on labelled data, scored against the labels.

Labels are used only to score; each row also reports the k it used and how it got it. The
plain k-means-on-pixels baseline (k = number of classes) is always the first row. This module
runs pipelines, so it sits above them (``imgclust.bench``), not inside ``evaluate/``.
"""
from __future__ import annotations

import time
import tracemalloc
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from imgclust.errors import ConfigError
from imgclust.evaluate.metrics import hungarian_accuracy
from imgclust.sources import open_source

DEFAULT_FEATURES = ("pixels", "pixels,pca:50")
DEFAULT_METHODS = ("kmeans", "minibatch-kmeans", "agglomerative", "dbscan", "hdbscan",
                   "spectral", "gmm:covariance_type=diag", "bgmm:covariance_type=diag")
BASELINE = ("pixels", "kmeans")


def bench(sources: Sequence[str], features: Sequence[str] = DEFAULT_FEATURES,
          methods: Sequence[str] = DEFAULT_METHODS, k: str | int = "true",
          seeds: Sequence[int] = (0,), include_default: bool = True,
          on_row: Callable[[dict[str, Any]], None] | None = None, memory: bool = False
          ) -> list[dict[str, Any]]:
    """Run every feature/method pair on each labelled source.

    Parameters
    ----------
    sources : sequence of str
        Labelled sources: ``dataset:digits``, ``.npz`` with labels, or ``folders:PATH`` for a
        folder of class subfolders.
    k : "true", "auto" or int
        ``"true"``: the number of classes (stated in each row as ``k_from="given"``).
    seeds : sequence of int
        Each row is repeated per seed; mean and spread are computed by :func:`aggregate`.
    include_default : bool
        Add the ``auto/auto/auto`` default pipeline as a row.
    memory : bool
        Also record each row's peak Python memory (``peak_mb``, by ``tracemalloc``). Tracing
        every allocation slows Python-heavy steps several times over, so the seconds of such a
        run are not comparable with one without it; by default nothing is traced.

    Returns
    -------
    list of dict
        One row per (source, features, method, seed): acc, nmi, ari, k, seconds and, with
        ``memory``, peak_mb.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from imgclust.features.auto import choose_method
    from imgclust.pipeline import cluster_features, extract_features

    rows = []
    for spec in sources:
        labels_mode = None
        if spec.startswith("folders:"):
            spec, labels_mode = spec.split(":", 1)[1], "folders"
        src = open_source(spec, labels=labels_mode)
        truth = src.labels()
        if truth is None:
            raise ConfigError(f"{spec}: bench needs labels (an .npz with 'labels', a bundled "
                              "dataset, or folders:PATH with class subfolders)")
        n_classes = len(set(truth.values()))
        pairs = [BASELINE] + [(f, m) for f in features for m in methods if (f, m) != BASELINE]
        if include_default:
            pairs.append(("auto", "auto"))
        for seed in seeds:
            feat_cache: dict[str, tuple[Any, float, float]] = {}
            for feat, meth in pairs:
                kk = n_classes if (k == "true" and (feat, meth) != ("auto", "auto")) else k
                if kk == "true":
                    kk = "auto"
                if feat not in feat_cache:
                    _trace(memory)
                    t = time.perf_counter()
                    fs, _, _, desc = extract_features(src, feat, seed=seed, progress=False)
                    secs = time.perf_counter() - t
                    feat_cache[feat] = (fs, secs, _peak(memory))
                fs, f_secs, f_peak = feat_cache[feat]
                _trace(memory)
                t = time.perf_counter()
                m, crit = choose_method(",".join(fs.steps))[:2] if meth == "auto" else (meth, None)
                try:
                    clustering, sel, _ = cluster_features(fs, m, kk, crit, (2, 15), seed, False)
                    err = None
                except (ConfigError, ValueError, MemoryError) as exc:
                    clustering, sel, err = None, None, str(exc)
                c_secs = time.perf_counter() - t
                peak = _peak(memory)
                row: dict[str, Any] = {
                    "data": spec, "features": feat, "method": meth, "seed": seed,
                    "baseline": (feat, meth) == BASELINE, "n": len(fs.ids),
                    "k_from": "given" if isinstance(kk, int) else "auto",
                    "features_s": round(f_secs, 3), "cluster_s": round(c_secs, 3),
                    "seconds": round(f_secs + c_secs, 3),
                }
                if memory:
                    row["peak_mb"] = round(max(f_peak or 0.0, peak or 0.0), 1)
                if clustering is not None:
                    y = [truth[i] for i in fs.ids]
                    row.update(k=clustering.n_clusters, criterion=sel.criterion, k_from=sel.criterion,
                               noise=float((clustering.labels < 0).mean()),
                               acc=hungarian_accuracy(y, clustering.labels),
                               nmi=float(normalized_mutual_info_score(y, clustering.labels)),
                               ari=float(adjusted_rand_score(y, clustering.labels)))
                else:
                    row["error"] = err
                rows.append(row)
                if on_row:
                    on_row(row)
    return rows


def _trace(memory: bool) -> None:
    if memory:
        tracemalloc.start()


def _peak(memory: bool) -> float | None:
    """Peak traced memory in MiB since :func:`_trace`, and stop tracing; ``None`` untraced."""
    if not memory:
        return None
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak


def aggregate(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds of acc/nmi/ari/seconds/k/noise, per configuration."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["data"], r["features"], r["method"]), []).append(r)
    out = []
    for (data, feat, meth), rs in groups.items():
        ok = [r for r in rs if "acc" in r]
        agg: dict[str, Any] = {"data": data, "features": feat, "method": meth, "seeds": len(rs)}
        for key in ("acc", "nmi", "ari", "seconds", "k", "noise"):
            vals = [r[key] for r in ok]
            if vals:
                agg[key] = float(np.mean(vals))
                agg[key + "_sd"] = float(np.std(vals))
        peaks = [r["peak_mb"] for r in rs if r.get("peak_mb") is not None]
        agg["peak_mb"] = max(peaks) if peaks else None
        agg["k_from"] = rs[0]["k_from"]
        out.append(agg)
    return out
