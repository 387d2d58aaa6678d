"""``Result``: what a run found, live after ``imgclust.run`` or reopened by ``imgclust.load``."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from imgclust.errors import ConfigError, RunDirError
from imgclust.model import Clustering, Features, ImageRecord, KSelection, LoadFailure
from imgclust.run.assign import Assignment, NearestAssigner
from imgclust.run.rundir import (ASSIGN_FEATURES, CLUSTERS, FEATURES, IMAGES, MODEL, SUMMARY,
                                 RunDir, read_csv)
from imgclust.sources import Source

log = logging.getLogger(__name__)


@dataclass
class Result:
    """What a run found.

    Attributes
    ----------
    ids : tuple of str
        Image ids in row order (relative paths, or array indices).
    labels_ : ndarray of shape (n_images,)
        Cluster of each image, 0 the largest, -1 noise (the numbering of clusters.csv).
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
        The fitted feature steps (images step first). After :func:`load`, only those that
        transform new images (all up to the first UMAP/t-SNE).
    clusterer_ : estimator or None
        The fitted clusterer.
    assign_X_ : ndarray of shape (n_images, n_assign_features)
        The run's images in the space new images are assigned in.
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
    y_true: list[Any] | None = None
    run_dir: Path | None = None
    source: Source | None = field(default=None, repr=False)
    assign_X_: np.ndarray | None = field(default=None, repr=False)
    _assigner: NearestAssigner | None = field(default=None, repr=False)

    def pipeline(self) -> Any:
        """The fitted feature steps as a scikit-learn ``Pipeline`` (images in, features out).

        Steps that only embed the images they were fitted on (t-SNE) cannot transform new ones.
        """
        from sklearn.pipeline import Pipeline

        return Pipeline([(f"{i}_{s.split(':')[0]}", est) for i, (s, est) in enumerate(self.steps_)])

    def assign_steps(self) -> list[tuple[str, Any]]:
        """The leading steps that transform new images exactly (up to the first UMAP/t-SNE)."""
        from imgclust.run.model import assign_prefix

        return self.steps_[:assign_prefix([s for s, _ in self.steps_])]

    def assigner(self) -> NearestAssigner:
        """The fitted k-NN assigner over the run's images (built once)."""
        if self._assigner is None:
            X = self.assign_X_ if self.assign_X_ is not None else self.features_.X
            self._assigner = NearestAssigner().fit(X, self.labels_)
        return self._assigner

    def predict(self, images: Any, progress: bool = False) -> Assignment:
        """Assign new images to this run's clusters, numbered as ``clusters.csv``.

        Parameters
        ----------
        images : Source, str, Path, sequence of PIL images, or ndarray (n, H, W[, C])
            A source spec (folder, ``.npz``, ``dataset:NAME``) or images in memory.

        Returns
        -------
        Assignment
            ``labels`` (-1: unknown or noise), ``distance`` to the nearest run image,
            ``unknown`` and a ``reason`` per image. For a source, :meth:`predict_source` also
            gives the records of the images read.
        """
        if isinstance(images, (str, Path, Source)):
            return self.predict_source(images, progress=progress)[1]
        from imgclust.run.extract import transform_new

        imgs = list(images) if not isinstance(images, np.ndarray) else images
        _, Q = transform_new(self.assign_steps(), [([None] * len(imgs), imgs)])
        return self.assigner().predict(Q)

    def predict_source(self, source: str | Path | Source, batch_size: int = 256,
                       progress: bool = False) -> tuple[list[ImageRecord], Assignment, list[LoadFailure]]:
        """Assign the images of a source; returns (records, assignment, skipped files)."""
        from imgclust.run.extract import decode_for, transform_new
        from imgclust.sources import open_source

        src = source if isinstance(source, Source) else open_source(source)
        decode_for(src, self.features_.steps[0])  # decoded as the run's own images were
        recs, Q = transform_new(self.assign_steps(), src.iter_batches(batch_size), progress,
                                total=len(src.candidates()))
        if not recs:
            raise ConfigError(f"{src.spec}: no readable images ({len(src.failures)} skipped)")
        return recs, self.assigner().predict(Q), list(src.failures)


def _load_npy(path: Path, n: int) -> np.ndarray:
    from imgclust.io import OUT_OF_CORE_BYTES

    try:
        # a large matrix stays on disk: the stages read it a block at a time (imgclust.io)
        big = path.stat().st_size > OUT_OF_CORE_BYTES
        X = np.load(path, allow_pickle=False, mmap_mode="r" if big else None)
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing (the run did not finish?)") from None
    except (OSError, ValueError, EOFError) as exc:
        raise RunDirError(f"{path}: cannot be read ({exc})") from None
    if X.ndim != 2 or X.shape[0] != n:
        raise RunDirError(f"{path}: shape {X.shape} does not match the {n} rows of {CLUSTERS}")
    return X


def load(run_dir: str | Path) -> Result:
    """Reopen a finished run directory, from any working directory.

    Parameters
    ----------
    run_dir : str or Path
        A directory written by ``imgclust run --out DIR`` (or ``imgclust.run(out=DIR)``).

    Returns
    -------
    Result
        Features, labels, fitted steps (those that transform new images), clusterer,
        selection and metrics; :meth:`Result.predict` assigns new images.

    Raises
    ------
    RunDirError
        Not a run directory, one of an older format, unfinished, or damaged.

    Examples
    --------
    >>> res = imgclust.load("runs/digits")  # doctest: +SKIP
    >>> res.predict("new_images/").labels  # doctest: +SKIP
    """
    import json

    from imgclust.run.model import load_model

    rd = RunDir(run_dir)
    m = rd.check_format()
    if m.get("command") != "run":
        raise RunDirError(f"{rd.path}: holds an 'imgclust {m.get('command')}' result, not a run")
    if m.get("state") != "done":
        raise RunDirError(f"{rd.path}: the run did not finish (state {m.get('state')!r}); "
                          "run the same command again to resume it")
    try:
        summary = json.loads((rd / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{rd / SUMMARY}: cannot be read ({exc})") from None
    header, rows = read_csv(rd / CLUSTERS)
    if header[:4] != ["id", "cluster", "distance", "is_representative"]:
        raise RunDirError(f"{rd / CLUSTERS}: unexpected header {header}")
    try:
        labels = np.array([int(r[1]) for r in rows], dtype=np.int64)
        distance = np.array([float(r[2]) for r in rows])
        reps = {int(r[1]): j for j, r in enumerate(rows) if r[3] == "1"}
    except (IndexError, ValueError) as exc:
        raise RunDirError(f"{rd / CLUSTERS}: malformed row ({exc})") from None
    _, img_rows = read_csv(rd / IMAGES)
    if len(img_rows) != len(rows):
        raise RunDirError(f"{rd / IMAGES}: {len(img_rows)} rows, {CLUSTERS} has {len(rows)}")
    try:
        records = [ImageRecord(_raw(r[0], r[5]), _raw(r[1], r[6]) or None, int(r[2]), int(r[3]),
                               r[4]) for r in img_rows]
    except (IndexError, ValueError) as exc:
        raise RunDirError(f"{rd / IMAGES}: malformed row ({exc})") from None
    ids = tuple(r.id for r in records)
    X = _load_npy(rd / FEATURES, len(ids))
    A = _load_npy(rd / ASSIGN_FEATURES, len(ids)) if (rd / ASSIGN_FEATURES).exists() else X
    model = load_model(rd / MODEL)
    k = summary.get("k", {})
    selection = KSelection(k.get("criterion", "none"), k.get("selected_value"), k.get("sweep", []))
    feats = Features(ids=ids, X=np.ascontiguousarray(X, dtype=np.float32),
                     steps=tuple(model.get("step_specs", ())))
    centers = np.stack([X[labels == c].mean(axis=0) for c in sorted(set(labels.tolist()) - {-1})]) \
        if (labels >= 0).any() else None
    clustering = Clustering(ids=ids, labels=labels, method=summary.get("method", {}).get("name", "?"),
                            params=summary.get("method", {}).get("params", {}), distance=distance,
                            representatives=reps, centers=centers)
    failures = [LoadFailure(f["path"], f["reason"]) for f in summary.get("skipped", [])]
    return Result(ids=ids, labels_=labels, features_=feats, clustering=clustering,
                  selection=selection, metrics=summary.get("metrics", {}), summary=summary,
                  steps_=[(s, e) for s, e in model["steps"]], clusterer_=model.get("clusterer"),
                  records=records, failures=failures, run_dir=rd.path, assign_X_=A)


#: the catalogue's columns; id_raw/path_raw hold the exact bytes (hex) of a name that is not
#: valid UTF-8, whose id/path columns show it escaped
IMAGES_HEADER = ["id", "path", "width", "height", "mode", "id_raw", "path_raw"]


def _hex_if_undecodable(text: str) -> str:
    try:
        text.encode("utf-8")
        return ""
    except UnicodeEncodeError:
        return os.fsencode(text).hex()


def _raw(shown: str, raw: str) -> str:
    return os.fsdecode(bytes.fromhex(raw)) if raw else shown


def records_rows(records: Sequence[ImageRecord]) -> list[list[Any]]:
    """The catalogue's rows (``images.csv``, :data:`IMAGES_HEADER`)."""
    return [[r.id, r.path or "", r.width, r.height, r.mode, _hex_if_undecodable(r.id),
             _hex_if_undecodable(r.path or "")] for r in records]
