"""Reading a finished run directory: the report's only input (it never runs the pipeline)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgclust.errors import RunDirError

# the names are RunDir's (imgclust.run.rundir): one owner of the layout
from imgclust.run.rundir import CLUSTERS, COMPARE_CSV, COMPARE_JSON, FEATURES, SUMMARY  # noqa: E402


@dataclass
class RunData:
    """What ``imgclust run`` wrote, rows in ``clusters.csv`` order.

    Attributes
    ----------
    ids : list of str
    labels : ndarray of shape (n_images,)
        Cluster of each image (0 the largest, -1 noise).
    distance : ndarray of shape (n_images,)
        Distance to the cluster centre in feature space (``nan`` where unknown).
    is_rep : ndarray of bool
    X : ndarray of shape (n_images, n_features) or None
        ``features.npy`` (memory-mapped), ``None`` when missing.
    """

    run_dir: Path
    summary: dict[str, Any]
    ids: list[str]
    labels: np.ndarray
    distance: np.ndarray
    is_rep: np.ndarray
    X: np.ndarray | None


@dataclass
class CompareData:
    """What ``imgclust compare`` wrote: ``compare.json`` and the label columns of ``compare.csv``."""

    run_dir: Path
    info: dict[str, Any]
    ids: list[str]
    labels: dict[str, np.ndarray]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path}: cannot be read ({exc})") from exc


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    from imgclust.run.rundir import read_csv

    return read_csv(path)


def kind_of(run_dir: Path) -> str:
    """``"run"`` or ``"compare"``; raises :class:`RunDirError` for anything else."""
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: no such run directory")
    if (run_dir / SUMMARY).exists():
        return "run"
    if (run_dir / COMPARE_JSON).exists():
        return "compare"
    raise RunDirError(f"{run_dir}: holds no finished imgclust run ({SUMMARY} or {COMPARE_JSON} "
                      "missing)")


def load_run(run_dir: str | Path) -> RunData:
    """Read ``summary.json``, ``clusters.csv`` and ``features.npy`` (when present)."""
    run_dir = Path(run_dir)
    summary = _read_json(run_dir / SUMMARY)
    need = ("source", "n_images", "k", "method", "cluster_sizes", "metrics")
    if not isinstance(summary, dict) or any(k not in summary for k in need):
        missing = [k for k in need if not isinstance(summary, dict) or k not in summary]
        raise RunDirError(f"{run_dir / SUMMARY}: damaged or not imgclust's (missing "
                          f"{', '.join(missing)})")
    header, rows = _read_csv(run_dir / CLUSTERS)
    want = ["id", "cluster", "distance", "is_representative"]
    if header[:4] != want:
        raise RunDirError(f"{run_dir / CLUSTERS}: header {header} is not {want}")
    try:
        ids = [r[0] for r in rows]
        labels = np.array([int(r[1]) for r in rows], dtype=np.int64)
        distance = np.array([float(r[2]) if r[2] not in ("", "nan") else np.nan for r in rows])
        is_rep = np.array([r[3] == "1" for r in rows], dtype=bool)
    except (IndexError, ValueError) as exc:
        raise RunDirError(f"{run_dir / CLUSTERS}: malformed row ({exc})") from exc
    X = None
    fpath = run_dir / FEATURES
    if fpath.exists():
        try:
            X = np.load(fpath, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise RunDirError(f"{fpath}: cannot be read ({exc})") from exc
        if X.ndim != 2 or X.shape[0] != len(ids):
            raise RunDirError(f"{fpath}: shape {X.shape} does not match the {len(ids)} rows of "
                              f"{CLUSTERS}")
    return RunData(run_dir, summary, ids, labels, distance, is_rep, X)


def load_compare(run_dir: str | Path) -> CompareData:
    """Read ``compare.json`` and ``compare.csv``."""
    run_dir = Path(run_dir)
    info = _read_json(run_dir / COMPARE_JSON)
    header, rows = _read_csv(run_dir / COMPARE_CSV)
    if not header or header[0] != "id":
        raise RunDirError(f"{run_dir / COMPARE_CSV}: first column must be 'id', got {header[:1]}")
    try:
        labels = {m: np.array([int(r[j]) for r in rows], dtype=np.int64)
                  for j, m in enumerate(header[1:], start=1)}
    except (IndexError, ValueError) as exc:
        raise RunDirError(f"{run_dir / COMPARE_CSV}: malformed row ({exc})") from exc
    return CompareData(run_dir, info, [r[0] for r in rows], labels)
