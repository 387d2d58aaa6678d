"""Stage 1: images -> features, in bounded batches, with a per-batch cache for resume.

The images step (pixels, cnn…) runs batch by batch (only one batch of decoded images is in
memory); array steps (pca, umap…) are then fitted on the whole matrix. :func:`transform_new`
applies fitted steps to images that were not in the run.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from imgclust._version import __version__
from imgclust.errors import ConfigError
from imgclust.features import build_step, build_steps
from imgclust.features.auto import choose_features
from imgclust.io import (FIT_SAMPLE_BYTES, OUT_OF_CORE_BYTES, atomic_save_npy, kill_point,
                         on_disk, open_npy, row_blocks, take_rows, write_npy_blocks)
from imgclust.model import Features, ImageRecord
from imgclust.progress import progress_bar, progress_status
from imgclust.runtime import threads_for
from imgclust.sources import Source

log = logging.getLogger(__name__)

#: a folder run's matrix on disk (above OUT_OF_CORE_BYTES), in its feature store's folder
MATRIX_FILE = "matrix.npy"


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


def store_key(step_spec: str, extractor: Any, seed: int, decode: Any = None) -> str:
    """Key of a folder's feature store and catalogue: the images step, the extractor's own
    cache key (parameters and model version), seed, how the source decodes (``decode``: its
    size limits) and imgclust version. Not the inputs: rows are keyed by each file's content
    hash, so one store serves every state of the folder."""
    ext_key = extractor.cache_key() if hasattr(extractor, "cache_key") else repr(
        sorted(extractor.get_params().items()))
    payload = json.dumps(["store", step_spec, type(extractor).__name__, ext_key, seed,
                          repr(decode), __version__])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def extract_features(source: Source, spec: str, seed: int = 0, batch_size: int = 256,
                     progress: bool = True, timings: dict[str, float] | None = None,
                     cache_dir: Path | None = None, cache_stats: dict[str, Any] | None = None,
                     assign_out: dict[str, Any] | None = None, workers: int | None = None,
                     scheduler: str | None = None
                     ) -> tuple[Features, list[ImageRecord], list[tuple[str, Any]], str]:
    """Read the images in bounded batches and compute the feature matrix.

    Only one batch of decoded images is in memory at a time; the images step must be stateless
    (pixels, cnn). Array steps (pca, umap…) are then fitted on the whole matrix.

    A folder with ``cache_dir`` (a run directory) goes through its catalogue and feature store
    (:mod:`imgclust.run.catalog`, :mod:`imgclust.run.store`): only files that are new or changed
    (size or modification time, then content hash) are decoded, their features appended to the
    store on disk, one SQLite commit per batch; the matrix is then gathered from the store.
    ``workers`` (a local Dask cluster of that many workers) or ``scheduler`` (the address of a
    running one) send those batches to Dask (:mod:`imgclust.distributed`).

    Other sources with ``cache_dir`` save each batch's images-step features there (atomically),
    reused by a later call on the same inputs, so a killed run resumes without recomputing
    them (images are still decoded: their records and failures come from the source). Array
    steps are refitted (deterministic for a given seed). ``cache_stats`` receives the key and
    how many batches were reused and computed (and, for a folder, how many images were decoded,
    reused and dropped). ``assign_out["X"]`` receives the matrix new images are assigned in:
    the output of the steps before the first UMAP/t-SNE (see
    :func:`imgclust.run.model.assign_prefix`); it is the feature matrix itself when there is none.

    Returns
    -------
    features, records, fitted steps, the feature spec actually used (``auto`` resolved)
    """
    from imgclust.sources.folder import FolderSource

    timings = timings if timings is not None else {}
    stats = cache_stats if cache_stats is not None else {}
    t0 = time.perf_counter()
    check_distributed(source, cache_dir is not None, workers, scheduler)
    decode_for(source, spec)
    if cache_dir is not None and isinstance(source, FolderSource):
        X, records, steps, spec, reason = _extract_folder(
            source, spec, seed, batch_size, progress, Path(cache_dir), stats, workers, scheduler)
    else:
        X, records, steps, spec, reason = _extract_batches(
            source, spec, seed, batch_size, progress, cache_dir, stats)
    name0 = steps[0][0]
    timings["features:" + name0] = time.perf_counter() - t0
    from imgclust.run.model import assign_prefix

    n_prefix = assign_prefix([s for s, _ in steps])
    for i, (name, est) in enumerate(steps[1:], start=1):
        if est is None:  # deferred by _first_steps
            est = build_step(name, seed)
            steps[i] = (name, est)
        if i == n_prefix and assign_out is not None:
            assign_out["X"] = X if on_disk(X) is not None else np.ascontiguousarray(
                X, dtype=np.float32)
        t = time.perf_counter()
        with progress_status(progress, f"features: fitting {name} on {X.shape[0]} × {X.shape[1]}"):
            with threads_for(X):
                X = (_fit_array_step_on_disk(name, est, X, i, seed) if on_disk(X) is not None
                     else _fit_array_step(name, est, X))
        timings["features:" + name] = time.perf_counter() - t
    ids = records.ids if hasattr(records, "ids") else [r.id for r in records]  # ImageRecords
    # a matrix on disk stays mapped (np.ascontiguousarray would drop the memmap type)
    X = X if on_disk(X) is not None else np.ascontiguousarray(X, dtype=np.float32)
    feats = Features(ids=tuple(ids), X=X,
                     steps=tuple(s for s, _ in steps))
    if assign_out is not None and "X" not in assign_out:
        assign_out["X"] = feats.X
    return feats, records, steps, (reason and f"{spec} ({reason})") or spec


def _first_steps(spec: str, seed: int, first_imgs: list[Any]
                 ) -> tuple[list[tuple[str, Any]], str, str | None]:
    """Resolve ``auto`` on the first images, build the steps, fit the images step on one image
    (validates parameters; pixels with size=None fixes its shape there, so that every batch
    gets the same width)."""
    reason = None
    if spec == "auto":
        spec, reason = choose_features(first_imgs[:64])
    steps = build_steps(spec, random_state=seed, defer=True)  # UMAP made after the images
    steps[0][1].fit(first_imgs[:1])
    return steps, spec, reason


def _extract_batches(source: Source, spec: str, seed: int, batch_size: int, progress: bool,
                     cache_dir: Path | None, stats: dict[str, Any]):
    """Any source: its own batches, each batch's features cached in ``cache_dir``; the rows are
    written into one preallocated matrix (no list of batches joined at the end)."""
    bar = progress_bar(progress)
    n_total = len(source.candidates())
    batches = source.iter_batches(batch_size)
    first_recs, first_imgs = next(batches, ([], []))
    steps, spec, reason = _first_steps(spec, seed, first_imgs)
    name0, ext = steps[0]
    records: list[ImageRecord] = []
    X: np.ndarray | None = None
    pbar = bar(total=n_total, desc=f"reading + {name0}", unit="img")
    stats.update(reused=0, computed=0)
    bdir = None
    if cache_dir is not None:
        stats["key"] = feature_cache_key(source.fingerprint(), name0, ext, seed, batch_size)
        bdir = Path(cache_dir) / f"features-{stats['key']}"

    pbar_n = [0]

    def consume(i: int, recs: list[ImageRecord], imgs: list[Any]) -> None:
        nonlocal X
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
            if X is None:  # at most one row per candidate: cut to the images read at the end
                X = np.empty((n_total, chunk.shape[1]), dtype=np.float32)
            X[len(records):len(records) + len(recs)] = chunk
            records.extend(recs)
        # skipped files count as read, so the bar ends at the number of candidates
        pbar.update(len(records) + len(source.failures) - pbar_n[0])
        pbar_n[0] = len(records) + len(source.failures)
        kill_point(f"batch:{i + 1}")

    consume(0, first_recs, first_imgs)
    for i, (recs, imgs) in enumerate(batches, start=1):
        consume(i, recs, imgs)
    pbar.close()
    if bdir is not None:  # a run directory caches the features of its current run only
        _prune(Path(cache_dir), bdir)
    if not records:
        raise ConfigError(f"{source.spec}: no readable images "
                          f"({len(source.failures)} files skipped)")
    return X[:len(records)], records, steps, spec, reason


def _prune(cache_dir: Path, keep: Path) -> None:
    for old in cache_dir.glob("features-*"):
        if old != keep and old.is_dir():
            shutil.rmtree(old)


def featurise_files(source: Any, ext: Any, ids: Sequence[str], threads: int = 2,
                    on_file: Any = None, previews: list[Any] | None = None
                    ) -> tuple[list[Any], np.ndarray]:
    """Stat, hash and decode files of a folder on ``threads`` threads, then featurise them.

    The unit of work of a folder's extraction, in this process or as a Dask task.

    Parameters
    ----------
    source : FolderSource
    ext : fitted images step
    ids : sequence of str
        Relative paths in ``source``.
    on_file : callable, optional
        Called once per file, in order (moves a progress bar).
    previews : list, optional
        Receives ``(id, size, mtime_ns, bytes)``: a small preview of each decoded image
        (:mod:`imgclust.run.thumbstore`), made on the decoding threads, for the report.

    Returns
    -------
    rows : list of :class:`~imgclust.run.catalog.FileRow`, one per id, in order
    X : ndarray of shape (n_ok, n_features), one row per ``status == "ok"`` entry, in order
    """
    import os
    import stat
    from concurrent.futures import ThreadPoolExecutor

    from imgclust.errors import DecodeError
    from imgclust.run.catalog import FileRow, content_hash

    def one(i: str) -> tuple[FileRow, Any]:
        path = source.describe(i)
        size = mtime = -1
        h, stat_error = None, None
        try:
            st = os.stat(path)
            size, mtime = st.st_size, st.st_mtime_ns
            # only a regular file is hashed: opening a named pipe blocks until a writer comes
            # (the reader below refuses it with its reason)
            h = content_hash(path) if stat.S_ISREG(st.st_mode) else None
        except OSError as exc:  # the reader below says why in its words (dangling link, loop…)
            stat_error = f"cannot read: {exc.strerror or exc}"
        try:
            rec, img = source.read(i)
        except DecodeError as exc:
            return FileRow(i, path, size, mtime, h, "failed", exc.reason, None, None, None), None
        except Exception as exc:  # noqa: BLE001 - one file must never abort a scan (as Source)
            return FileRow(i, path, size, mtime, h, "failed",
                           f"unexpected error while reading (please report): "
                           f"{type(exc).__name__}: {exc}", None, None, None), None
        if h is None:  # read, but not stat'ed or hashed (it changed meanwhile): not kept
            return FileRow(i, path, size, mtime, None, "failed",
                           stat_error or "cannot read: not a regular file", None, None, None), None
        return FileRow(i, path, size, mtime, h, "ok", None, rec.width, rec.height, rec.mode), img

    def one_with_preview(i: str) -> tuple[FileRow, Any, bytes | None]:
        row, img = one(i)
        # only from an image decoded at least as large as a preview (pixels:8 decodes at 8 px)
        good = (img is not None and previews is not None
                and max(img.size) >= min(PREVIEW_SIDE, max(row.width, row.height)))
        return row, img, preview_bytes(img) if good else None

    from imgclust.run.thumbstore import PREVIEW_SIDE, preview_bytes

    rows, imgs = [], []
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for row, img, preview in pool.map(one_with_preview, ids):
            rows.append(row)
            if img is not None:
                imgs.append(img)
            if preview is not None:
                previews.append((row.id, row.size, row.mtime_ns, preview))
            if on_file is not None:
                on_file()
    X = (np.asarray(ext.transform(imgs), dtype=np.float32) if imgs
         else np.zeros((0, 0), dtype=np.float32))
    return rows, X


def _extract_folder(source: Any, spec: str, seed: int, batch_size: int, progress: bool,
                    cache_dir: Path, stats: dict[str, Any], workers: int | None,
                    scheduler: str | None):
    """A folder through its catalogue and feature store: only new or changed files decoded."""
    import os

    from imgclust.model import LoadFailure
    from imgclust.run.catalog import Catalog
    from imgclust.run.store import CATALOG_FILE, STORE_FILE, FeatureStore

    ids = source.candidates()
    n_total = len(ids)
    # the first readable image resolves "auto" (up to 64 of them) and fits the images step
    probe: list[Any] = []
    for i in ids:
        try:
            probe.append(source.read(i)[1])
        except Exception:  # noqa: BLE001 - the catalogue pass records why
            continue
        if len(probe) == (64 if spec == "auto" else 1):
            break
    if not probe:
        source.failures = list(source.scan_failures)
        raise ConfigError(f"{source.spec}: no readable images "
                          f"({n_total + len(source.scan_failures)} files skipped)")
    steps, spec, reason = _first_steps(spec, seed, probe)
    del probe
    name0, ext = steps[0]
    key = store_key(name0, ext, seed, sorted(
        (k, v) for k, v in vars(source).items()
        if k.startswith(("max_", "min_")) or "decode" in k))
    bdir = cache_dir / f"features-{key}"
    bdir.mkdir(parents=True, exist_ok=True)
    cat = Catalog(bdir / CATALOG_FILE)
    dim = cat.get_meta("dim")
    store = FeatureStore(bdir / STORE_FILE, cat.n_rows(), int(dim) if dim else None)
    stats.update(key=key, reused=0, computed=0, decoded=0, reused_images=0, removed=0)
    pbar = progress_bar(progress)(total=n_total, desc=f"reading + {name0}", unit="img")
    # quick check: a file whose size and modification time are those catalogued is not read
    need: list[str] = []
    batch_has_need = set()
    for j, i in enumerate(ids):
        e = cat.lookup(i)
        try:
            st = os.stat(source.describe(i))
            same = e is not None and e[0] == st.st_size and e[1] == st.st_mtime_ns and (
                e[3] == "failed" or e[8] is not None)
        except OSError:
            same = False
        if same:
            stats["reused_images"] += 1
            pbar.update(1)
        else:
            need.append(i)
            batch_has_need.add(j // batch_size)
    n_batches = -(-n_total // batch_size)
    stats["computed"] = len(batch_has_need)
    stats["reused"] = n_batches - len(batch_has_need)
    chunks = [need[s:s + batch_size] for s in range(0, len(need), batch_size)]

    def commit(i: int, rows: list[Any], X: np.ndarray) -> None:
        ok = [r for r in rows if r.status == "ok"]
        new: dict[str, int] = {}
        take = []
        for j, r in enumerate(ok):  # a content already stored (a copy, a renamed file) is kept once
            if r.hash not in new and cat.row_of(r.hash) is None:
                new[r.hash] = store.n_rows + len(take)
                take.append(j)
        if take:
            store.append(X[take])
        kill_point(f"store:{i + 1}")  # rows appended, not yet committed: cut off when reopened
        cat.commit_batch(rows, new, store.n_rows, store.dim)
        stats["decoded"] += len(rows)
        kill_point(f"batch:{i + 1}")

    if chunks and (workers is not None or scheduler is not None):
        from imgclust.distributed import featurise_distributed

        for i, (rows, X) in enumerate(featurise_distributed(source, ext, chunks, workers,
                                                            scheduler)):
            commit(i, rows, X)
            pbar.update(len(rows))
    else:
        import sqlite3

        from imgclust.run.thumbstore import THUMBS_FILE, ThumbStore

        threads = min(8, os.cpu_count() or 1)
        try:  # previews for the report (a cache: a run goes on without; distributed: none)
            thumbs: ThumbStore | None = ThumbStore(bdir / THUMBS_FILE)
        except (sqlite3.Error, OSError) as exc:
            log.warning("%s: previews not kept (%s)", bdir / THUMBS_FILE, exc)
            thumbs = None
        try:
            for i, chunk in enumerate(chunks):
                previews: list[Any] = []
                rows, X = featurise_files(source, ext, chunk, threads,
                                          on_file=lambda: pbar.update(1),
                                          previews=previews if thumbs is not None else None)
                commit(i, rows, X)
                if thumbs is not None and not thumbs.put_many(previews):
                    log.warning("%s: previews not kept (cannot write them); the report reads "
                                "the images again", thumbs.path)
                    thumbs = None
        finally:
            if thumbs is not None:
                thumbs.close()
    pbar.close()
    stats["removed"] = cat.drop_missing(ids)
    # the run's images, in candidate order, from the catalogue (read in id order, one entry at
    # a time), held compactly: arrays and ids, each path computed when asked for
    from array import array

    from imgclust.model import ImageRecords

    records = ImageRecords(source.describe)
    failures = list(source.scan_failures)
    rows_idx = array("q")
    for i in ids:
        e = cat.lookup(i)
        if e is None:  # pragma: no cover - every candidate was catalogued above
            failures.append(LoadFailure(source.describe(i), "not read"))
        elif e[3] == "ok" and e[8] is not None:
            records.append(i, e[5], e[6], e[7])
            rows_idx.append(e[8])
        else:
            failures.append(LoadFailure(source.describe(i), e[4] or "not read"))
    source.failures = failures
    cat.close()
    if not records:
        store.close()
        raise ConfigError(f"{source.spec}: no readable images ({len(failures)} files skipped)")
    rows = np.frombuffer(rows_idx, dtype=np.int64)
    for old in bdir.glob("matrix*.npy"):  # an earlier run's (an open map keeps its pages)
        old.unlink()
    if len(rows) * (store.dim or 0) * 4 > OUT_OF_CORE_BYTES:
        # too large to hold beside everything else: the run's matrix, in run order, on disk
        # (memory-mapped), read a block at a time by the stages after (imgclust.io)
        X = store.gather(rows, bdir / MATRIX_FILE)
    else:
        X = store.take(rows)
    store.close()
    _prune(cache_dir, bdir)
    return X, records, steps, spec, reason


def decode_for(source: Any, spec: str) -> None:
    """Let a source that can (a folder) decode each file only as large as ``spec``'s images
    step needs (JPEG draft scales, ``reduce`` before conversion), before the first image is
    read, so that every image of a run, and every new image assigned to it, decodes alike."""
    from imgclust.features.registry import decode_side

    if hasattr(source, "set_decode_side"):
        source.set_decode_side(decode_side(spec))


def check_distributed(source: Any, has_run_dir: bool, workers: int | None,
                      scheduler: str | None) -> None:
    """``workers``/``scheduler`` (Dask) read a folder into a run directory: refuse anything else
    before the run folder is touched (:class:`ConfigError`)."""
    from imgclust.sources.folder import FolderSource

    if workers is None and scheduler is None:
        return
    if workers is not None and scheduler is not None:
        raise ConfigError("give --workers (a local Dask cluster) or --scheduler (a running one), "
                          "not both")
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise ConfigError(f"workers={workers} must be at least 1")
    if not (has_run_dir and isinstance(source, FolderSource)):
        raise ConfigError("--workers/--scheduler read a folder into a run directory "
                          f"(--out); {source.spec} is not a folder" if has_run_dir else
                          "--workers/--scheduler need a run directory (--out)")


def validate(features: str, method: str | Sequence[str], export: str | None = None,
             criterion: str | None = None) -> None:
    """Fail fast, before any image is read or the run folder touched: unknown steps, methods or
    export modes, and parameter values the estimators refuse (``Registry.check``)."""
    from imgclust.cluster import criteria
    from imgclust.cluster import registry as creg
    from imgclust.export.folders import MODES
    from imgclust.features import registry as freg
    from imgclust.features import split_steps

    freg.load_builtins()
    creg.load_builtins()
    if features != "auto":
        for step in split_steps(features):
            freg.FEATURES.check(step)
    for m in [method] if isinstance(method, str) else method:
        if m != "auto":
            creg.CLUSTERERS.check(m)
    if export is not None and export not in MODES:
        raise ConfigError(f"export mode {export!r}; valid: {', '.join(MODES)}")
    if criterion is not None:
        methods = [method] if isinstance(method, str) else list(method)
        if "auto" in methods:
            from imgclust.features.auto import AUTO_METHODS, choose_method

            # known now when the features are given; chosen after them otherwise
            auto = ([choose_method(features)[0]] if features != "auto" else list(AUTO_METHODS))
            methods = [m for m in methods if m != "auto"] + [f"{m} (auto)" for m in auto]
            valid = [c for m in methods
                     for c in criteria.for_method(creg.entry(m.split(" ")[0]).meta)]
        else:
            valid = [c for m in methods
                     for c in criteria.for_method(creg.entry(freg.parse_name(m)).meta)]
        if criterion not in valid:
            raise ConfigError(f"criterion={criterion!r} does not apply to "
                              f"{' / '.join(methods)}; valid: {', '.join(dict.fromkeys(valid))}")


def _fit_array_step(name: str, est: Any, X: np.ndarray) -> np.ndarray:
    """Fit one array step on ``X`` and return its output. Parameters are not rewritten
    (``pca``'s cap on n_components lives inside its own fit), with one exception: UMAP on
    fewer images than its dimensions + 3 starts from a random layout, since its spectral start
    then fails inside scipy (``eigsh`` needs k < N: a TypeError on 7 images)."""
    import warnings

    from imgclust.run.model import NON_INDUCTIVE
    from imgclust.registry import parse_spec

    kind = parse_spec(name)[0]
    if kind == "umap" and getattr(est, "init", None) == "spectral" and (
            X.shape[0] <= int(est.n_components) + 2):
        log.info("umap on %d images: random start (the spectral one needs more)", X.shape[0])
        est.set_params(init="random")
    if kind in NON_INDUCTIVE or not hasattr(est, "transform"):
        with warnings.catch_warnings():
            # umap says it on every small folder; it uses n - 1 neighbours, which is right
            warnings.filterwarnings("ignore", message="n_neighbors is larger than the dataset")
            return np.asarray(est.fit_transform(X), dtype=np.float32)
    # fit, then transform: what a new image gets from the saved step is then exactly what the
    # run's own images got (PCA's randomized fit_transform returns U*S, which differs from
    # transform's X @ V by up to 0.2 on digits' HOG features)
    return np.asarray(est.fit(X).transform(X), dtype=np.float32)




def _fit_array_step_on_disk(name: str, est: Any, X: np.ndarray, i: int, seed: int = 0
                            ) -> np.ndarray:
    """An array step on a matrix on disk: fitted on a random sample of rows, then applied a
    block at a time; its output is kept on disk beside ``X`` when it too is large. A step with
    no ``transform`` (t-SNE) needs every row at once: ``X`` is read into memory for it."""
    from imgclust.cluster.large import SAMPLE_MAX, sample_rows
    from imgclust.registry import parse_spec
    from imgclust.run.model import NON_INDUCTIVE

    if parse_spec(name)[0] in NON_INDUCTIVE or not hasattr(est, "transform"):
        log.info("%s needs every row at once: %d x %d read into memory", name, *X.shape)
        return _fit_array_step(name, est, take_rows(X, np.arange(X.shape[0])))
    n = X.shape[0]
    n_fit = min(n, max(SAMPLE_MAX, FIT_SAMPLE_BYTES // max(1, X.shape[1] * X.dtype.itemsize)))
    est.fit(take_rows(X, sample_rows(n, n_fit, random_state=seed)))
    parts = (np.asarray(est.transform(b), dtype=np.float32) for _, b in row_blocks(X))
    first = next(parts)  # its width sizes the output (a matrix on disk has n >= 1 rows)
    if n * first.shape[1] * 4 <= OUT_OF_CORE_BYTES:
        return np.concatenate([first, *parts])
    path = Path(on_disk(X)[0]).with_name(f"matrix-step{i}.npy")
    write_npy_blocks(path, (n, first.shape[1]), np.float32, itertools.chain([first], parts))
    return open_npy(path)


def transform_new(steps: Sequence[tuple[str, Any]], batches: Iterable[tuple[list[Any], list[Any]]],
                  progress: bool = False, total: int | None = None
                  ) -> tuple[list[Any], np.ndarray]:
    """Apply fitted ``steps`` (images step first, then array steps' ``transform``) to new
    images, batch by batch.

    Parameters
    ----------
    steps : sequence of (spec, fitted estimator)
    batches : iterable of (records, images)
        As ``Source.iter_batches`` gives them.

    Returns
    -------
    records, features of shape (n_images, n_features)
    """
    bar = progress_bar(progress)(total=total, desc="assign: reading + features", unit="img")
    recs_all: list[Any] = []
    chunks: list[np.ndarray] = []
    for recs, imgs in batches:
        if len(imgs):
            X = steps[0][1].transform(imgs)
            for _, est in steps[1:]:
                X = est.transform(X)
            chunks.append(np.asarray(X, dtype=np.float32))
            recs_all.extend(recs)
        bar.update(len(recs))
    bar.close()
    if not chunks:
        return recs_all, np.zeros((0, 0), dtype=np.float32)
    return recs_all, np.concatenate(chunks)
