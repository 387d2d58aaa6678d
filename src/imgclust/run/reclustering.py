"""A new k or method on a finished run's cached features: no decoding, no featurising."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from imgclust.cluster import DEFAULT_K_RANGE
from imgclust.errors import ImgclustError, RunDirError
from imgclust.features.auto import choose_method
from imgclust.cluster import criteria
from imgclust.run.clustering import cluster_features, score
from imgclust.run.config import RunConfig
from imgclust.run.model import model_bytes
from imgclust.run.pipeline import clustering_summary, write_clusters
from imgclust.run.result import Result, load
from imgclust.run.rundir import MODEL, SUMMARY, RunDir


def _truth(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The run's labels again (class folders or the array's labels), or ``None`` when the
    run had none or the source is gone (the scores against labels are then left out)."""
    if summary.get("labels_source") is None:
        return None
    from imgclust.sources import open_source

    try:
        src = open_source(summary["source"],
                          labels="folders" if summary["labels_source"] == "folders" else None)
        return src.labels()
    except (ImgclustError, OSError):
        return None


def recluster(run_dir: str | Path, k: int | str = "auto", method: str | None = None,
              criterion: str | None = None, k_range: tuple[int, int] = DEFAULT_K_RANGE,
              seed: int | None = None, progress: bool = False) -> Result:
    """Cluster a finished run's features again, with another k, method or criterion.

    ``clusters.csv``, ``summary.json`` and the saved model are rewritten (the features, the
    catalogue and the fitted feature steps stay); per-cluster folders of an ``--export copy``
    or ``link`` are removed, since they show the old clusters.

    Parameters
    ----------
    run_dir : str or Path
    k : int or "auto"
    method : str, optional
        Default: the run's method.
    criterion : str, optional
        How ``k="auto"`` chooses (default: the method's first).
    k_range : (int, int)
    seed : int, optional
        Default: the run's seed.

    Returns
    -------
    Result

    Raises
    ------
    RunDirError
        Not a finished run, or one with files moved by ``--export move`` (undo first).
    """
    t0 = time.perf_counter()
    rd = RunDir(run_dir)
    m = rd.check_format()
    rd.check_no_pending_move()
    cfg = RunConfig.parse(method=method or "auto", k=k, criterion=criterion, k_range=k_range)
    k, k_range = cfg.k, cfg.k_range
    res = load(rd.path)
    s = dict(res.summary)
    seed = int(s.get("seed", 0) if seed is None else seed)
    why = None
    if method is None or method == "auto":
        prev = s.get("method", {})
        if method == "auto":
            method, criterion, why = choose_method(",".join(res.features_.steps), criterion)
        else:
            method, why = prev.get("name"), prev.get("why")
            if criterion is None and k == "auto" and prev.get("name") == method:
                crit = s.get("k", {}).get("criterion")
                # a record of how k came about (given, eps…) is not a criterion to choose by
                c = criteria.get(crit) if crit else None
                criterion = crit if c is not None and c.kind != "record" else None
    if method is None:
        raise RunDirError(f"{rd.path}: summary.json names no method; pass -m")
    t = time.perf_counter()
    clustering, selection, est = cluster_features(res.features_, method, k, criterion, k_range,
                                                  seed, progress)
    timings = {"cluster": time.perf_counter() - t}
    metrics, y_true = score(res.features_.X, clustering.labels, res.ids, _truth(s), seed)
    s.update(clustering_summary(method, why, k, clustering, selection, metrics))
    from imgclust.export import remove_export

    removed = remove_export(rd.path)
    s.pop("export", None)
    timings["total"] = time.perf_counter() - t0
    s.setdefault("run_timings_s", s.get("timings_s", {}))  # the first run's, kept once
    s["timings_s"] = timings
    s["recluster"] = {"export_files_removed": removed,
                      "from": {"method": res.summary.get("method", {}).get("name"),
                               "k": res.summary.get("n_clusters")}}
    rd.update_manifest(state="running")
    write_clusters(rd, clustering)
    rd.write_bytes(MODEL, model_bytes(res.steps_, est, res.features_.steps))
    rd.write_json(SUMMARY, s)
    cfg = dict(m.get("config", {}))
    cfg.update(method=method, k=str(k), criterion=criterion, k_range=list(k_range), seed=seed,
               export=None)
    rd.update_manifest(config=cfg, command="run", state="done")
    return Result(ids=res.ids, labels_=clustering.labels, features_=res.features_,
                  clustering=clustering, selection=selection, metrics=metrics, summary=s,
                  steps_=res.steps_, clusterer_=est, records=res.records, failures=res.failures,
                  y_true=y_true, run_dir=rd.path, assign_X_=res.assign_X_)
