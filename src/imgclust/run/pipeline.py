"""``run(...) -> Result`` and ``compare(...)``: the one place where the stages are chained.

source -> features (bounded batches, cached per batch) -> reduction steps -> clustering (k
chosen) -> scores -> run directory (:class:`~imgclust.run.rundir.RunDir`: clusters.csv,
summary.json, features.npy, images.csv, model.npz) -> optional per-cluster export.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from imgclust._version import __version__
from imgclust.cluster import DEFAULT_K_RANGE
from imgclust.errors import ConfigError
from imgclust.evaluate import agreement_matrix
from imgclust.features.auto import choose_method
from imgclust.io import kill_point, to_json
from imgclust.model import Clustering, Features, KSelection
from imgclust.run.clustering import cluster_features, k_disagreement, score
from imgclust.run.config import RunConfig
from imgclust.run.extract import check_distributed, extract_features
from imgclust.run.model import model_bytes, versions
from imgclust.run.result import IMAGES_HEADER, Result, records_rows
from imgclust.run.rundir import (ASSIGN_FEATURES, CACHE, CLUSTERS, COMPARE_CSV, COMPARE_JSON,
                                 FEATURES, IMAGES, MODEL, RUN_FORMAT, SUMMARY, RunDir)
from imgclust.sources import DEFAULT_SOURCE, Source, open_source

log = logging.getLogger(__name__)


def run_manifest(command: str, source: Source, config: dict[str, Any]) -> dict[str, Any]:
    """What ``run.json`` records: format, version, command, configuration and the inputs."""
    return {"format": RUN_FORMAT, "imgclust_version": __version__, "command": command,
            "config": json.loads(to_json(config)),
            "inputs": {"source": source.spec, "fingerprint": source.fingerprint()}}


def run(source: str | Path | Source = DEFAULT_SOURCE, out: str | Path | None = None, *,
        features: str = "auto", method: str = "auto", k: int | str = "auto",
        criterion: str | None = None, k_range: tuple[int, int] = DEFAULT_K_RANGE,
        labels: str | None = None, seed: int = 0, export: str | None = None,
        overwrite: bool = False, batch_size: int = 256, progress: bool = False,
        workers: int | None = None, scheduler: str | None = None) -> Result:
    """Cluster the images of ``source`` and, with ``out``, write a run directory.

    Parameters
    ----------
    source : str, Path or Source
        ``dataset:digits`` (default), an ``.npz`` file or a folder of images.
    out : str or Path, optional
        Run directory to write; :func:`imgclust.load` reopens it.
    features : str
        Feature steps, e.g. ``"pixels"``, ``"pixels:16:gray=true,pca:50"``, or ``"auto"``.
    method : str
        A clusterer name with optional parameters (``kmeans``, ``gmm:covariance_type=diag``…),
        or ``"auto"``.
    k : int or "auto"
    criterion : str, optional
        For ``k="auto"``: the method's first criterion by default (silhouette for k-means).
    k_range : (int, int)
        Range of k tried by ``auto``.
    labels : {None, "folders"}
        Ground truth for evaluation only: class subfolders. Array sources use their own labels.
    seed : int
    export : {None, "copy", "link", "move"}
        Write ``out/clusters/cluster_NN/`` folders.
    overwrite : bool
        Replace an earlier run in ``out`` (only the files it lists as written are removed).
    batch_size : int
        Images decoded at a time (bounds memory).
    progress : bool
        Show progress bars on stderr.
    workers : int, optional
        Decode and featurise a folder's new files on a local Dask cluster of this many workers
        (``pip install "imgclust[distributed]"``); needs ``out``.
    scheduler : str, optional
        The same on a running Dask cluster (``tcp://HOST:8786``); workers need the same
        install and the folder at the same path.

    Returns
    -------
    Result

    Examples
    --------
    >>> res = run("dataset:digits", features="pixels", method="kmeans", k=10)  # doctest: +SKIP
    >>> res.metrics["acc"]  # doctest: +SKIP
    """
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    # every option checked once, before the run folder is touched or an image read
    cfg = RunConfig.parse(features=features, method=method, k=k, criterion=criterion,
                          k_range=k_range, labels=labels, seed=seed, export=export,
                          batch_size=batch_size)
    features, method, k, criterion = cfg.features, cfg.method, cfg.k, cfg.criterion
    k_range, seed, batch_size = cfg.k_range, cfg.seed, cfg.batch_size
    rd = RunDir(out) if out is not None else None
    if rd is not None:
        rd.check_no_pending_move()
    src = source if isinstance(source, Source) else open_source(source, labels=labels)
    check_distributed(src, rd is not None, workers, scheduler)
    if rd is not None:
        rd.prepare(run_manifest("run", src, cfg.manifest()), overwrite)
    t = time.perf_counter()
    truth = src.labels()
    timings["scan"] = time.perf_counter() - t
    cache_stats: dict[str, Any] = {}
    assign: dict[str, Any] = {}
    cache_dir = rd.own(CACHE) if rd is not None else None
    feats, records, steps, feat_desc = extract_features(
        src, features, seed, batch_size, progress, timings, cache_dir=cache_dir,
        cache_stats=cache_stats, assign_out=assign, workers=workers, scheduler=scheduler)
    kill_point("features")
    method_reason = None
    if method == "auto":
        method, criterion, method_reason = choose_method(",".join(feats.steps), criterion)
    t = time.perf_counter()
    with _dask_for(method, workers, scheduler):
        clustering, selection, est = cluster_features(feats, method, k, criterion, k_range,
                                                      seed, progress)
    timings["cluster"] = time.perf_counter() - t
    t = time.perf_counter()
    metrics, y_true = score(feats.X, clustering.labels, feats.ids, truth, seed)
    timings["evaluate"] = time.perf_counter() - t
    failures = list(src.failures)
    summary = {
        "imgclust_version": __version__,
        "source": src.spec,
        "source_fingerprint": src.fingerprint(),
        "n_candidates": len(src.candidates()),
        "n_images": len(records),
        "n_skipped": len(failures),
        "skipped": [f.to_dict() for f in failures],
        "features": {"spec": feat_desc, "steps": list(feats.steps), "dim": int(feats.X.shape[1]),
                     "assign_dim": int(assign["X"].shape[1]),
                     "cache": cache_stats if rd is not None else None},
        "labels_source": ("folders" if labels == "folders" else "array") if truth is not None else None,
        "seed": seed,
        "versions": versions(),
        "timings_s": timings,
    }
    summary.update(clustering_summary(method, method_reason, k, clustering, selection, metrics))
    result = Result(ids=feats.ids, labels_=clustering.labels, features_=feats,
                    clustering=clustering, selection=selection, metrics=metrics, summary=summary,
                    steps_=steps, clusterer_=est, records=records, failures=failures,
                    y_true=y_true, run_dir=rd.path if rd else None, source=src,
                    assign_X_=assign["X"])
    if rd is not None:
        write_run(result, rd)
        kill_point("written")
        if export:
            from imgclust.export import export_clusters  # export reads finished results

            t = time.perf_counter()
            stats = export_clusters(result, rd.path, mode=export, progress=progress)
            timings["export"] = time.perf_counter() - t
            summary["export"] = stats
    timings["total"] = time.perf_counter() - t_start
    if rd is not None:
        rd.write_json(SUMMARY, summary)
        rd.finish()
    return result


def _dask_for(method: str, workers: int | None, scheduler: str | None) -> Any:
    """dask-kmeans of a run given ``--workers``/``--scheduler`` runs on that Dask cluster (its
    workers read the matrix's blocks by path: on a real cluster, the run folder on a shared
    path); anything else, or no cluster, in this process."""
    import contextlib

    from imgclust.registry import parse_spec

    if parse_spec(method)[0] != "dask-kmeans" or (workers is None and scheduler is None):
        return contextlib.nullcontext()
    from imgclust.distributed import client_for

    return client_for(workers, scheduler)


def clustering_summary(method: str, why: str | None, k: int | str, clustering: Clustering,
                       selection: KSelection, metrics: dict[str, Any]) -> dict[str, Any]:
    """The keys of summary.json that a new clustering (run or recluster) rewrites."""
    ids = clustering.ids
    return {
        "method": {"name": method, "params": clustering.params, "why": why},
        "k": {"requested": k, "chosen": clustering.n_clusters, "criterion": selection.criterion,
              "selected_value": selection.chosen, "sweep": selection.table,
              "disagreement": k_disagreement(selection), "note": selection.note},
        "n_clusters": clustering.n_clusters,
        "cluster_sizes": {str(c): s for c, s in clustering.sizes().items()},
        "representatives": {str(c): ids[i] for c, i in clustering.representatives.items()},
        "metrics": metrics,
    }


def write_clusters(rd: RunDir, c: Clustering) -> None:
    """``clusters.csv``: id, cluster, distance, is_representative, in feature-row order."""
    reps = set(c.representatives.values())
    rows = ((i, int(lab), f"{d:.6g}", int(j in reps))
            for j, (i, lab, d) in enumerate(zip(c.ids, c.labels, c.distance)))
    rd.write_csv(CLUSTERS, ["id", "cluster", "distance", "is_representative"], rows)


def write_run(result: Result, rd: RunDir) -> None:
    """Write every output of a run atomically: clusters.csv, images.csv, features.npy,
    assign-features.npy (when it differs), model.npz and summary.json."""
    write_clusters(rd, result.clustering)
    recs = result.records
    # a block of rows at a time: the CSV is streamed, no list of every row is built
    rd.write_csv(IMAGES, IMAGES_HEADER, (row for s in range(0, len(recs), 4096)
                                         for row in records_rows(recs[s:s + 4096])))
    rd.save_npy(FEATURES, result.features_.X)
    if result.assign_X_ is not None and result.assign_X_ is not result.features_.X:
        rd.save_npy(ASSIGN_FEATURES, result.assign_X_)
    rd.write_bytes(MODEL, model_bytes(result.steps_, result.clusterer_))
    rd.write_json(SUMMARY, result.summary)


@dataclass
class CompareResult:
    """Several methods on the same features: one metrics row per method and their agreement."""

    methods: list[str]
    results: dict[str, tuple[Clustering, KSelection, dict[str, Any]]]
    agreement: np.ndarray
    features_: Features
    table: list[dict[str, Any]]


def compare(source: str | Path | Source = DEFAULT_SOURCE, out: str | Path | None = None, *,
            methods: Sequence[str] = ("kmeans", "agglomerative", "gmm", "hdbscan"),
            features: str = "auto", k: int | str = "auto", k_range: tuple[int, int] = DEFAULT_K_RANGE,
            labels: str | None = None, seed: int = 0, overwrite: bool = False,
            progress: bool = False) -> CompareResult:
    """Run several clustering methods on the same features.

    Returns a table of metrics (one row per method) and the pairwise ARI agreement matrix; with
    ``out``, writes ``compare.json`` and ``compare.csv`` (one label column per method).
    """
    if not methods:
        raise ConfigError("compare needs at least one method")
    try:
        cfg = RunConfig.parse(features=features, method=list(methods), k=k, k_range=k_range,
                              labels=labels, seed=seed)
    except ConfigError as exc:
        raise ConfigError(f"compare: {exc}") from None
    k, k_range, seed = cfg.k, cfg.k_range, cfg.seed
    rd = RunDir(out) if out is not None else None
    if rd is not None:
        rd.check_no_pending_move()
    src = source if isinstance(source, Source) else open_source(source, labels=labels)
    if rd is not None:
        config = {"features": features, "methods": list(methods), "k": str(k),
                  "k_range": list(k_range), "labels": labels, "seed": seed}
        rd.prepare(run_manifest("compare", src, config), overwrite)
    truth = src.labels()
    feats, _, _, feat_desc = extract_features(
        src, features, seed, progress=progress,
        cache_dir=rd.own(CACHE) if rd is not None else None)
    results, table = {}, []
    for m in methods:
        t = time.perf_counter()
        clustering, selection, _ = cluster_features(feats, m, k, None, k_range, seed, progress)
        metrics, _ = score(feats.X, clustering.labels, feats.ids, truth, seed)
        metrics.pop("confusion", None)
        metrics.pop("n_labelled", None)
        secs = time.perf_counter() - t
        results[m] = (clustering, selection, metrics)
        table.append({"method": m, "k": clustering.n_clusters, "criterion": selection.criterion,
                      "seconds": secs, **metrics})
    names, agree = agreement_matrix({m: results[m][0].labels for m in methods})
    res = CompareResult(list(methods), results, agree, feats, table)
    if rd is not None:
        rd.write_json(COMPARE_JSON, {
            "source": src.spec, "features": feat_desc, "n_images": len(feats.ids),
            "n_skipped": len(src.failures), "skipped": [f.to_dict() for f in src.failures],
            "table": table, "agreement": {"methods": names, "ari": agree.tolist()},
            "versions": versions()})
        rd.write_csv(COMPARE_CSV, ["id", *methods],
                     ([i, *(int(results[m][0].labels[j]) for m in methods)]
                      for j, i in enumerate(feats.ids)))
        rd.save_npy(FEATURES, feats.X)
        rd.finish()
    return res
