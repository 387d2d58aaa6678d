"""Stage 1: images -> features, in bounded batches, with a per-batch cache for resume.

The images step (pixels, cnn…) runs batch by batch (only one batch of decoded images is in
memory); array steps (pca, umap…) are then fitted on the whole matrix. :func:`transform_new`
applies fitted steps to images that were not in the run.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from imgclust._version import __version__
from imgclust.errors import ConfigError
from imgclust.features import build_steps
from imgclust.features.auto import choose_features
from imgclust.io import atomic_save_npy, kill_point
from imgclust.model import Features, ImageRecord
from imgclust.progress import progress_bar, progress_status
from imgclust.sources import Source

log = logging.getLogger(__name__)


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
                     cache_dir: Path | None = None, cache_stats: dict[str, Any] | None = None,
                     assign_out: dict[str, Any] | None = None
                     ) -> tuple[Features, list[ImageRecord], list[tuple[str, Any]], str]:
    """Read the images in bounded batches and compute the feature matrix.

    Only one batch of decoded images is in memory at a time; the images step must be stateless
    (pixels, cnn). Array steps (pca, umap…) are then fitted on the whole matrix.

    With ``cache_dir``, each batch's images-step features are saved there (atomically) and
    reused by a later call on the same inputs, so a killed run resumes without recomputing them
    (images are still decoded: their records and failures come from the source). Array steps
    are refitted (deterministic for a given seed). ``cache_stats`` receives the key and how many
    batches were reused and computed. ``assign_out["X"]`` receives the matrix new images are
    assigned in: the output of the steps before the first UMAP/t-SNE (see
    :func:`imgclust.run.model.assign_prefix`); it is the feature matrix itself when there is none.

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

    pbar_n = [0]

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
        # skipped files count as read, so the bar ends at the number of candidates
        pbar.update(len(records) + len(source.failures) - pbar_n[0])
        pbar_n[0] = len(records) + len(source.failures)
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
    from imgclust.run.model import assign_prefix

    n_prefix = assign_prefix([s for s, _ in steps])
    for i, (name, est) in enumerate(steps[1:], start=1):
        if i == n_prefix and assign_out is not None:
            assign_out["X"] = np.ascontiguousarray(X, dtype=np.float32)
        t = time.perf_counter()
        with progress_status(progress, f"features: fitting {name} on {X.shape[0]} × {X.shape[1]}"):
            X = _fit_array_step(name, est, X)
        timings["features:" + name] = time.perf_counter() - t
    feats = Features(ids=tuple(r.id for r in records), X=np.ascontiguousarray(X, dtype=np.float32),
                     steps=tuple(s for s, _ in steps))
    if assign_out is not None and "X" not in assign_out:
        assign_out["X"] = feats.X
    return feats, records, steps, (reason and f"{spec} ({reason})") or spec


def validate(features: str, method: str | Sequence[str], export: str | None = None,
             criterion: str | None = None) -> None:
    """Fail fast, before any image is read or the run folder touched: unknown steps, methods or
    export modes, and parameter values the estimators refuse (``Registry.check``)."""
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
        if "auto" in methods:  # the method is chosen later: any method's criterion may apply
            valid = sorted({c for n in creg.names() for c in creg.entry(n).meta.get("criteria", ())})
        else:
            valid = [c for m in methods
                     for c in creg.entry(freg.parse_name(m)).meta.get("criteria", ())]
        if criterion not in valid:
            raise ConfigError(f"criterion={criterion!r} does not apply to "
                              f"{' / '.join(methods)}; valid: {', '.join(dict.fromkeys(valid))}")


def _fit_array_step(name: str, est: Any, X: np.ndarray) -> np.ndarray:
    """Fit one array step on ``X`` and return its output (parameters are never rewritten:
    ``pca``'s cap on n_components lives inside its own fit)."""
    from imgclust.run.model import NON_INDUCTIVE
    from imgclust.registry import parse_spec

    if parse_spec(name)[0] in NON_INDUCTIVE or not hasattr(est, "transform"):
        return np.asarray(est.fit_transform(X), dtype=np.float32)
    # fit, then transform: what a new image gets from the saved step is then exactly what the
    # run's own images got (PCA's randomized fit_transform returns U*S, which differs from
    # transform's X @ V by up to 0.2 on digits' HOG features)
    return np.asarray(est.fit(X).transform(X), dtype=np.float32)




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
