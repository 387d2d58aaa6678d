"""``run(config) -> Result``: the one place where the stages are chained.

source -> features (bounded batches) -> reduction steps -> clustering (k chosen) -> scores ->
run directory (clusters.csv, summary.json, features.npy) -> optional per-cluster export.
"""
from __future__ import annotations

import hashlib
import json
import logging
import platform
import shutil
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from imgclust._version import __version__
from imgclust.cluster import DEFAULT_K_RANGE, describe, fit_clusters, order_by_size
from imgclust.errors import ConfigError, RunDirError
from imgclust.evaluate import agreement_matrix, external_scores, internal_scores
from imgclust.features import build_steps
from imgclust.features.auto import choose_features, choose_method
from imgclust.io import (atomic_save_npy, atomic_write_csv, atomic_write_json, is_temp_leftover,
                         kill_point, to_json)
from imgclust.progress import progress_bar, progress_status
from imgclust.model import Clustering, Features, ImageRecord, KSelection, LoadFailure
from imgclust.sources import DEFAULT_SOURCE, Source, open_source

SUMMARY = "summary.json"
CLUSTERS = "clusters.csv"
FEATURES = "features.npy"
#: written first: the configuration, the fingerprint of the inputs and the version (see prepare_out)
RUN_JSON = "run.json"
#: the images-step features, one file per batch, so a killed run resumes where it stopped
CACHE = "cache"
#: the journal of an ``--export move`` (imgclust.export.folders.JOURNAL)
JOURNAL = "export-journal.jsonl"
#: what imgclust writes in a run directory; ``overwrite`` removes only these, never other files
OWN_FILES = (RUN_JSON, SUMMARY, CLUSTERS, FEATURES, "report.html", "compare.json", "compare.csv",
             "export.csv", "plotly.min.js")
RUN_FORMAT = 1

log = logging.getLogger(__name__)


@dataclass
class Result:
    """What a run found.

    Attributes
    ----------
    ids : tuple of str
        Image ids in row order (relative paths, or array indices).
    labels_ : ndarray of shape (n_images,)
        Cluster of each image, 0 the largest, -1 noise.
    features_ : Features
        The matrix the clusters were found in.
    clustering : Clustering
    selection : KSelection
        How k was chosen, with every score of the sweep.
    metrics : dict
        Internal scores, and ``acc``/``nmi``/``ari``/``purity``/``confusion`` when labels exist.
    summary : dict
        Everything written to ``summary.json``.
    steps_ : list of (str, estimator)
        The fitted feature steps (images step first).
    clusterer_ : estimator
        The fitted clusterer.
    run_dir : Path or None
    """

    ids: tuple[str, ...]
    labels_: np.ndarray
    features_: Features
    clustering: Clustering
    selection: KSelection
    metrics: dict[str, Any]
    summary: dict[str, Any]
    steps_: list[tuple[str, Any]]
    clusterer_: Any
    records: list[ImageRecord]
    failures: list[LoadFailure]
    y_true: list[str] | None = None
    run_dir: Path | None = None
    source: Source | None = field(default=None, repr=False)

    def pipeline(self) -> Any:
        """The fitted feature steps as a scikit-learn ``Pipeline`` (images in, features out).

        Steps that only embed the images they were fitted on (t-SNE) cannot transform new ones.
        """
        from sklearn.pipeline import Pipeline

        return Pipeline([(f"{i}_{s.split(':')[0]}", est) for i, (s, est) in enumerate(self.steps_)])


def versions() -> dict[str, str]:
    """Versions of Python, imgclust and the libraries that shape results."""
    out = {"python": platform.python_version(), "imgclust": __version__}
    for pkg in ("numpy", "scipy", "scikit-learn", "pillow", "umap-learn", "onnxruntime"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def run_manifest(command: str, source: Source, config: dict[str, Any]) -> dict[str, Any]:
    """What ``run.json`` records: version, command, configuration and the inputs' fingerprint."""
    return {"format": RUN_FORMAT, "imgclust_version": __version__, "command": command,
            "config": json.loads(to_json(config)),
            "inputs": {"source": source.spec, "fingerprint": source.fingerprint()}}


def read_manifest(out: str | Path) -> dict[str, Any] | None:
    """The ``run.json`` of a run directory, or ``None`` when there is none (or it is unreadable)."""
    p = Path(out) / RUN_JSON
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{p}: cannot read: {exc}") from None
    return data if isinstance(data, dict) else None


def _difference(old: dict[str, Any] | None, new: dict[str, Any]) -> str | None:
    """Why an earlier run in the folder is not the one asked for, or ``None`` if it is."""
    if old is None:
        return f"an earlier run whose settings are unknown ({RUN_JSON} missing)"
    o_in, n_in = old.get("inputs", {}), new["inputs"]
    if o_in.get("fingerprint") != n_in["fingerprint"]:
        return (f"a run of other inputs ({o_in.get('source')}, fingerprint "
                f"{o_in.get('fingerprint')}; now {n_in['source']}, {n_in['fingerprint']})")
    o_cfg = {"command": old.get("command"), **old.get("config", {})}
    n_cfg = {"command": new["command"], **new["config"]}
    diffs = [f"{k} {o_cfg.get(k)!r} -> {n_cfg.get(k)!r}" for k in sorted(set(o_cfg) | set(n_cfg))
             if o_cfg.get(k) != n_cfg.get(k)]
    return f"a run with other settings ({', '.join(diffs)})" if diffs else None


def _remove_temp_leftovers(out: Path) -> None:
    """Delete temporary files that a killed atomic write left in the run folder or its cache."""
    for folder in (out, out / CACHE, *(out / CACHE).glob("features-*")):
        if folder.is_dir():
            for p in folder.iterdir():
                if is_temp_leftover(p.name) and p.is_file() and (
                        folder != out or any(p.name.startswith(f".{n}.") for n in OWN_FILES)):
                    p.unlink()


def _holds_run(out: Path) -> bool:
    """A folder with imgclust's own marker files (not a user folder that has a report.html)."""
    return any((out / n).exists() for n in (RUN_JSON, SUMMARY, "compare.json"))


def check_no_pending_move(out: str | Path) -> None:
    """Refuse a run folder that is a file, or holds the journal of a move not undone (checked
    before the source is opened: the moved images are missing from it)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out}: exists and is not a folder")
    if (out / JOURNAL).exists():
        raise RunDirError(f"{out}: holds files moved by an earlier --export move ({JOURNAL}); "
                          f"run 'imgclust undo {out}' first, or choose another --out")


def prepare_out(out: str | Path, overwrite: bool, manifest: dict[str, Any] | None = None) -> Path:
    """Create, resume or replace the run directory ``out``, then write ``run.json`` first.

    - missing or empty (temporary files of a killed write aside): a new run;
    - holds a run of the same inputs and settings (``run.json``), finished or killed part-way:
      resumed, without ``overwrite``; the feature cache is reused and the outputs rewritten.
      Written by another imgclust version: resumed with a warning (the cache is not reused);
    - holds a run of other inputs or settings: refused unless ``overwrite``, which removes only
      what imgclust wrote (:data:`OWN_FILES`, exported copies per ``export.csv``, thumbs/);
    - holds files but no run, or the journal of an ``--export move`` not undone: refused.

    Raises
    ------
    RunDirError
    """
    out = Path(out)
    check_no_pending_move(out)
    if out.is_dir():
        entries = list(out.iterdir())
        if _holds_run(out) or all(is_temp_leftover(p.name) for p in entries):
            # a run (or a fresh one killed while writing run.json): drop half-written files
            _remove_temp_leftovers(out)
    if out.is_dir() and any(out.iterdir()):
        old = read_manifest(out)
        if not _holds_run(out):
            if overwrite:
                raise RunDirError(f"{out}: not empty and holds no imgclust run ({RUN_JSON} "
                                  "missing); refusing to overwrite it")
            raise RunDirError(f"{out}: folder is not empty and holds no imgclust run; "
                              "choose a new or empty --out")
        why = _difference(old, manifest) if manifest is not None else "an earlier run"
        if why is not None and not overwrite:
            raise RunDirError(f"{out}: holds {why}; pass --overwrite to replace it, "
                              "or choose another --out")
        if old is not None and old.get("imgclust_version") != __version__:
            log.warning("%s was written by imgclust %s; this is %s: features are recomputed",
                        out, old.get("imgclust_version"), __version__)
        from imgclust.export import remove_export

        # resume or replace: the files an export wrote are removed and written again, so a
        # half-done export leaves no name_1 duplicates; files the user put there stay
        remove_export(out)
        if why is not None:  # overwrite: remove only imgclust's own outputs
            for name in OWN_FILES:
                (out / name).unlink(missing_ok=True)
            if (out / "thumbs").is_dir():
                shutil.rmtree(out / "thumbs")
    out.mkdir(parents=True, exist_ok=True)
    if manifest is not None:
        atomic_write_json(out / RUN_JSON, {**manifest, "state": "running"})
        kill_point("run-json")
    return out


def finish_run(out: Path) -> None:
    """Mark the run in ``out`` finished (``run.json`` state ``done``), once every output is written."""
    data = read_manifest(out)
    if data is not None:
        atomic_write_json(out / RUN_JSON, {**data, "state": "done"})


def feature_cache_key(fingerprint: str, step_spec: str, extractor: Any, seed: int,
                      batch_size: int) -> str:
    """Key of the cached images-step features: inputs, step, extractor's own cache key (its
    parameters and model version), seed, batch size and imgclust version."""
    ext_key = extractor.cache_key() if hasattr(extractor, "cache_key") else repr(
        sorted(extractor.get_params().items()))
    payload = json.dumps([fingerprint, step_spec, type(extractor).__name__, ext_key, seed,
                          batch_size, __version__])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _load_chunk(path: Path, n_rows: int) -> np.ndarray | None:
    """A cached batch of features, or ``None`` when missing or damaged (then it is recomputed)."""
    try:
        a = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError) as exc:
        log.warning("%s: damaged cache file, recomputing (%s)", path, exc)
        return None
    return a if a.ndim == 2 and a.shape[0] == n_rows else None


def extract_features(source: Source, spec: str, seed: int = 0, batch_size: int = 256,
                     progress: bool = True, timings: dict[str, float] | None = None,
                     cache_dir: Path | None = None, cache_stats: dict[str, Any] | None = None
                     ) -> tuple[Features, list[ImageRecord], list[tuple[str, Any]], str]:
    """Read the images in bounded batches and compute the feature matrix.

    Only one batch of decoded images is in memory at a time; the images step must be stateless
    (pixels, cnn). Array steps (pca, umap…) are then fitted on the whole matrix.

    With ``cache_dir``, each batch's images-step features are saved there (atomically) and
    reused by a later call on the same inputs, so a killed run resumes without recomputing them
    (images are still decoded: their records and failures come from the source). Array steps
    are refitted (deterministic for a given seed). ``cache_stats`` receives the key and how many
    batches were reused and computed.

    Returns
    -------
    features, records, fitted steps, the feature spec actually used (``auto`` resolved)
    """
    timings = timings if timings is not None else {}
    bar = progress_bar(progress)
    n_total = len(source.candidates())
    t0 = time.perf_counter()
    batches = source.iter_batches(batch_size)
    first_recs, first_imgs = next(batches, ([], []))
    reason = None
    if spec == "auto":
        spec, reason = choose_features(first_imgs[:64])
    steps = build_steps(spec, random_state=seed)
    name0, ext = steps[0]
    # validates parameters; pixels with size=None fixes its shape here, from the first image,
    # so that every batch gets the same width
    ext.fit(first_imgs[:1])
    records: list[ImageRecord] = []
    chunks: list[np.ndarray] = []
    pbar = bar(total=n_total, desc=f"reading + {name0}", unit="img")
    stats = cache_stats if cache_stats is not None else {}
    stats.update(reused=0, computed=0)
    bdir = None
    if cache_dir is not None:
        stats["key"] = feature_cache_key(source.fingerprint(), name0, ext, seed, batch_size)
        bdir = Path(cache_dir) / f"features-{stats['key']}"

    def consume(i: int, recs: list[ImageRecord], imgs: list[Any]) -> None:
        if imgs:
            chunk, path = None, None
            if bdir is not None:
                ids_hash = hashlib.sha256("\0".join(r.id for r in recs).encode(
                    "utf-8", "surrogateescape")).hexdigest()[:12]
                path = bdir / f"batch-{i:05d}-{ids_hash}.npy"
                chunk = _load_chunk(path, len(recs))
            if chunk is None:
                chunk = ext.transform(imgs)
                stats["computed"] += 1
                if path is not None:
                    atomic_save_npy(path, chunk)
            else:
                stats["reused"] += 1
            chunks.append(chunk)
            records.extend(recs)
        pbar.update(len(recs) + 0)
        kill_point(f"batch:{i + 1}")

    consume(0, first_recs, first_imgs)
    for i, (recs, imgs) in enumerate(batches, start=1):
        consume(i, recs, imgs)
    pbar.close()
    if bdir is not None:  # a run directory caches the features of its current run only
        for old in Path(cache_dir).glob("features-*"):
            if old != bdir and old.is_dir():
                shutil.rmtree(old)
    timings["features:" + name0] = time.perf_counter() - t0
    if not records:
        raise ConfigError(f"{source.spec}: no readable images "
                          f"({len(source.failures)} files skipped)")
    X = np.concatenate(chunks).astype(np.float32, copy=False)
    del chunks
    for name, est in steps[1:]:
        t = time.perf_counter()
        with progress_status(progress, f"features: fitting {name} on {X.shape[0]} × {X.shape[1]}"):
            X = _fit_array_step(name, est, X)
        timings["features:" + name] = time.perf_counter() - t
    feats = Features(ids=tuple(r.id for r in records), X=np.ascontiguousarray(X, dtype=np.float32),
                     steps=tuple(s for s, _ in steps))
    return feats, records, steps, (reason and f"{spec} ({reason})") or spec


def validate(features: str, method: str | Sequence[str], export: str | None = None) -> None:
    """Fail fast, before any image is read, on an unknown step, method or export mode."""
    from imgclust.cluster import registry as creg
    from imgclust.export.folders import MODES
    from imgclust.features import registry as freg
    from imgclust.features import split_steps

    freg.load_builtins()
    creg.load_builtins()
    if features != "auto":
        for step in split_steps(features):
            freg.entry(freg.parse_name(step))
    for m in [method] if isinstance(method, str) else method:
        if m != "auto":
            creg.entry(freg.parse_name(m))
    if export is not None and export not in MODES:
        raise ConfigError(f"export mode {export!r}; valid: {', '.join(MODES)}")


def _fit_array_step(name: str, est: Any, X: np.ndarray) -> np.ndarray:
    params = est.get_params(deep=False)
    cap = min(X.shape)
    # an integer n_components larger than the data allows is lowered to what the data allows
    if isinstance(params.get("n_components"), (int, np.integer)) and params["n_components"] > cap \
            and type(est).__name__ == "PCA":
        est.set_params(n_components=cap)
    return np.asarray(est.fit_transform(X), dtype=np.float32)


def _parse_k(k: int | str) -> int | str:
    if isinstance(k, str):
        if k == "auto":
            return k
        try:
            return int(k)
        except ValueError:
            raise ConfigError(f"k={k!r} must be 'auto' or a positive integer") from None
    return int(k)


def cluster_features(feats: Features, method: str, k: int | str, criterion: str | None,
                     k_range: tuple[int, int], seed: int, progress: bool
                     ) -> tuple[Clustering, KSelection, Any]:
    """Cluster a feature matrix, order clusters by size and find centres and representatives."""
    n = feats.X.shape[0]
    if n < 2:
        raise ConfigError(f"only {n} image read; clustering needs at least 2")
    bar = progress_bar(progress)
    k = _parse_k(k)
    # a k sweep has its own bar; a single fit gets a spinner
    with progress_status(progress and k != "auto", f"clustering: {method}, k={k}"):
        raw, selection, est = fit_clusters(
            feats.X, method, k, criterion, k_range, random_state=seed,
            progress=lambda it: bar(it, desc=f"{method}: choosing k", unit="k"))
    labels = order_by_size(raw)
    centers, distance, reps = describe(feats.X, labels)
    params = {kk: v for kk, v in est.get_params(deep=False).items()
              if isinstance(v, (int, float, str, bool, type(None)))}
    clustering = Clustering(ids=feats.ids, labels=labels, method=method, params=params,
                            distance=distance, representatives=reps, centers=centers)
    return clustering, selection, est


def run(source: str | Path | Source = DEFAULT_SOURCE, out: str | Path | None = None, *,
        features: str = "auto", method: str = "auto", k: int | str = "auto",
        criterion: str | None = None, k_range: tuple[int, int] = DEFAULT_K_RANGE,
        labels: str | None = None, seed: int = 0, export: str | None = None,
        overwrite: bool = False, batch_size: int = 256, progress: bool = False) -> Result:
    """Cluster the images of ``source`` and, with ``out``, write a run directory.

    Parameters
    ----------
    source : str, Path or Source
        ``dataset:digits`` (default), an ``.npz`` file or a folder of images.
    out : str or Path, optional
        Run directory to write (``clusters.csv``, ``summary.json``, ``features.npy``).
    features : str
        Feature steps, e.g. ``"pixels"``, ``"pixels:16:gray=true,pca:50"``, or ``"auto"``.
    method : str
        A clusterer name with optional parameters (``kmeans``, ``gmm:covariance_type=diag``…),
        or ``"auto"``.
    k : int or "auto"
    criterion : str, optional
        For ``k="auto"``: silhouette (default), elbow, bic or aic.
    k_range : (int, int)
        Range of k tried by ``auto``.
    labels : {None, "folders"}
        Ground truth for evaluation only: class subfolders. Array sources use their own labels.
    seed : int
    export : {None, "copy", "link", "move"}
        Write ``out/clusters/cluster_NN/`` folders.
    overwrite : bool
        Replace an earlier run in ``out``.
    progress : bool
        Show progress bars on stderr.

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
    validate(features, method, export)
    _parse_k(k)  # a bad k fails before the run folder is touched
    if out is not None:
        check_no_pending_move(out)
    src = source if isinstance(source, Source) else open_source(source, labels=labels)
    out_dir = None
    if out is not None:
        config = {"features": features, "method": method, "k": str(k), "criterion": criterion,
                  "k_range": list(k_range), "labels": labels, "seed": seed, "export": export}
        out_dir = prepare_out(out, overwrite, run_manifest("run", src, config))
    t = time.perf_counter()
    truth = src.labels()
    timings["scan"] = time.perf_counter() - t
    cache_stats: dict[str, Any] = {}
    feats, records, steps, feat_desc = extract_features(
        src, features, seed, batch_size, progress, timings,
        cache_dir=out_dir / CACHE if out_dir is not None else None, cache_stats=cache_stats)
    kill_point("features")
    method_reason = None
    if method == "auto":
        method, auto_criterion, method_reason = choose_method(",".join(feats.steps))
        criterion = criterion or auto_criterion
    t = time.perf_counter()
    clustering, selection, est = cluster_features(feats, method, k, criterion, k_range, seed,
                                                  progress)
    timings["cluster"] = time.perf_counter() - t
    t = time.perf_counter()
    metrics: dict[str, Any] = internal_scores(feats.X, clustering.labels, seed)
    y_true = None
    if truth is not None:
        keep = [i for i, r in enumerate(feats.ids) if r in truth]
        y_true = [truth.get(i) for i in feats.ids]
        if keep:
            yt = [y_true[i] for i in keep]
            metrics.update(external_scores(yt, clustering.labels[keep]))
            metrics["n_labelled"] = len(keep)
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
                     "cache": cache_stats if out_dir is not None else None},
        "method": {"name": method, "params": clustering.params, "why": method_reason},
        "k": {"requested": k, "chosen": clustering.n_clusters, "criterion": selection.criterion,
              "selected_value": selection.chosen, "sweep": selection.table},
        "n_clusters": clustering.n_clusters,
        "cluster_sizes": {str(c): s for c, s in clustering.sizes().items()},
        "representatives": {str(c): feats.ids[i] for c, i in clustering.representatives.items()},
        "metrics": metrics,
        "seed": seed,
        "labels_source": ("folders" if labels == "folders" else "array") if truth is not None else None,
        "versions": versions(),
        "timings_s": timings,
    }
    result = Result(ids=feats.ids, labels_=clustering.labels, features_=feats,
                    clustering=clustering, selection=selection, metrics=metrics, summary=summary,
                    steps_=steps, clusterer_=est, records=records, failures=failures,
                    y_true=y_true, run_dir=out_dir, source=src)
    if out_dir is not None:
        write_run(result, out_dir)
        kill_point("written")
        if export:
            from imgclust.export import export_clusters  # export reads finished results

            t = time.perf_counter()
            stats = export_clusters(result, out_dir, mode=export, progress=progress)
            timings["export"] = time.perf_counter() - t
            summary["export"] = stats
    timings["total"] = time.perf_counter() - t_start
    if out_dir is not None:
        atomic_write_json(out_dir / SUMMARY, summary)
        finish_run(out_dir)
    return result


def write_run(result: Result, out_dir: Path) -> None:
    """Write ``clusters.csv``, ``features.npy`` and ``summary.json`` atomically."""
    c = result.clustering
    reps = set(c.representatives.values())
    rows = ((i, int(lab), f"{d:.6g}", int(j in reps))
            for j, (i, lab, d) in enumerate(zip(c.ids, c.labels, c.distance)))
    atomic_write_csv(out_dir / CLUSTERS, ["id", "cluster", "distance", "is_representative"], rows)
    atomic_save_npy(out_dir / FEATURES, result.features_.X)
    atomic_write_json(out_dir / SUMMARY, result.summary)


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
    validate(features, methods)
    _parse_k(k)
    if out is not None:
        check_no_pending_move(out)
    src = source if isinstance(source, Source) else open_source(source, labels=labels)
    out_dir = None
    if out is not None:
        config = {"features": features, "methods": list(methods), "k": str(k),
                  "k_range": list(k_range), "labels": labels, "seed": seed}
        out_dir = prepare_out(out, overwrite, run_manifest("compare", src, config))
    truth = src.labels()
    feats, _, _, feat_desc = extract_features(
        src, features, seed, progress=progress,
        cache_dir=out_dir / CACHE if out_dir is not None else None)
    results, table = {}, []
    for m in methods:
        t = time.perf_counter()
        clustering, selection, _ = cluster_features(feats, m, k, None, k_range, seed, progress)
        metrics = internal_scores(feats.X, clustering.labels, seed)
        if truth is not None:
            ext = external_scores([truth[i] for i in feats.ids], clustering.labels)
            metrics.update({kk: v for kk, v in ext.items() if kk != "confusion"})
        secs = time.perf_counter() - t
        results[m] = (clustering, selection, metrics)
        table.append({"method": m, "k": clustering.n_clusters, "criterion": selection.criterion,
                      "seconds": secs, **metrics})
    names, agree = agreement_matrix({m: results[m][0].labels for m in methods})
    res = CompareResult(list(methods), results, agree, feats, table)
    if out_dir is not None:
        atomic_write_json(out_dir / "compare.json", {
            "source": src.spec, "features": feat_desc, "n_images": len(feats.ids),
            "n_skipped": len(src.failures), "skipped": [f.to_dict() for f in src.failures],
            "table": table, "agreement": {"methods": names, "ari": agree.tolist()},
            "versions": versions()})
        atomic_write_csv(out_dir / "compare.csv", ["id", *methods],
                         ([i, *(int(results[m][0].labels[j]) for m in methods)]
                          for j, i in enumerate(feats.ids)))
        finish_run(out_dir)
    return res
