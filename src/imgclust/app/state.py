"""What the app knows of one run: the label store, and views of it cached until the next write.

Every page reads the run's clusters as they are *now* (moves, merges and splits of the label
store replayed over ``clusters.csv``) and the labels that count. Both are derived from the store's
events, so they are computed once per store version (the highest event number: every write, an
undo included, adds an event) and shared by the requests until the next write, whoever made it
(the app, or ``imgclust label`` in another process).
"""
from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclust.label.store import GIVEN, LabelStore

#: members shown on a cluster's card on the overview
STRIP = 8


@dataclass
class View:
    """The run at one store version (every array in row order, as ``clusters.csv``)."""

    version: int
    clusters: np.ndarray                 # current cluster of each row
    distance: np.ndarray                 # distance to the current centre of its cluster
    labels: dict[int, tuple[str, str, float | None]]  # row -> (label, source, confidence)
    names: dict[int, str]
    not_of_interest: set[int]
    label_list: list[str]                # the labels a person gave, in order of first use
    members: dict[int, np.ndarray] = field(default_factory=dict)  # cluster -> rows, nearest first
    cards: list[dict[str, Any]] = field(default_factory=list)


class RunState:
    """The label store of ``run_dir`` and the cached :class:`View` of it.

    Parameters
    ----------
    run_dir : str or Path
        A directory of ``imgclust run``; raises :class:`~imgclust.errors.RunDirError` otherwise.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.store = LabelStore(run_dir)
        self.run_dir = self.store.run_dir
        self.run = self.store.run
        self.ids = self.store.ids
        self.n = len(self.ids)
        self._X: np.ndarray | None = None
        self._lock = threading.Lock()
        self._view: View | None = None
        self._local = threading.local()
        self._accuracy: tuple[int, dict[str, Any]] | None = None

    # -- features ------------------------------------------------------------------------------
    @property
    def X(self) -> np.ndarray | None:
        """``features.npy`` read into memory once (float64), or None when the run has none."""
        if self._X is None and self.run.X is not None:
            self._X = np.asarray(self.run.X, dtype=np.float64)
        return self._X

    # -- the store's version -------------------------------------------------------------------
    def _con(self) -> sqlite3.Connection:
        """This thread's read-only connection to the store (for the two queries of its own)."""
        con = getattr(self._local, "con", None)
        if con is None:
            uri = self.store.path.resolve().as_uri() + "?mode=ro"
            con = self._local.con = sqlite3.connect(uri, uri=True, timeout=5)
        return con

    def version(self) -> int:
        """The highest event number of the store (0 when empty): changes with every write."""
        row = self._con().execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def _label_list(self) -> list[str]:
        rows = self._con().execute(
            "SELECT label, MIN(seq) FROM events WHERE op = 'label' AND undone = 0 AND label IS "
            f"NOT NULL AND source IN ({', '.join('?' * len(GIVEN))}) GROUP BY label ORDER BY 2",
            GIVEN).fetchall()
        return [r[0] for r in rows]

    def view(self) -> View:
        """The :class:`View` of the store as it is now (recomputed after any write)."""
        v = self.version()
        cached = self._view
        if cached is not None and cached.version == v:
            return cached
        with self._lock:
            if self._view is not None and self._view.version == v:
                return self._view
            self._view = self._compute(v, self._view)
            return self._view

    def _compute(self, version: int, before: View | None = None) -> View:
        st = self.store
        clusters = st.current_clusters()
        index = st.index
        labels = {index[i]: v for i, v in st.current_labels().items()}
        view = View(version, clusters, np.empty(0), labels, st.cluster_names(),
                    {index[i] for i in st.not_of_interest()}, self._label_list())
        if before is not None and np.array_equal(before.clusters, clusters):
            # a label, a name or a mark: the clusters, their centres and order are as they were
            view.distance, view.members = before.distance, before.members
        else:
            view.distance = self._distances(clusters)
            # members of every cluster, nearest its centre first (one sort for all)
            order = np.lexsort((np.arange(self.n), np.nan_to_num(view.distance, nan=np.inf),
                                clusters))
            cs = clusters[order]
            starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
            ends = np.r_[starts[1:], len(cs)]
            view.members = {int(cs[s]): order[s:e] for s, e in zip(starts, ends)}
        # label counts per cluster: one pass over the labelled images
        counts: dict[int, dict[str, int]] = {}
        for r, (lab, _, _) in labels.items():
            per = counts.setdefault(int(clusters[r]), {})
            per[lab] = per.get(lab, 0) + 1
        for c, rows in view.members.items():
            d = view.distance[rows]
            per = counts.get(c, {})
            view.cards.append({
                "cluster": c, "size": int(len(rows)), "name": view.names.get(c),
                "rep": int(rows[0]), "strip": [int(r) for r in rows[:STRIP]],
                "cohesion": float(np.nanmean(d)) if np.isfinite(d).any() else None,
                "labels": sorted(per.items(), key=lambda kv: (-kv[1], kv[0])),
                "labelled": int(sum(per.values()))})
        return view

    def _distances(self, clusters: np.ndarray) -> np.ndarray:
        """Distance of each image to the mean of its current cluster (nan for noise).

        Without features (``features.npy`` missing) the run's own distances are kept.
        """
        from scipy.sparse import csr_matrix

        X = self.X
        if X is None:
            return np.asarray(self.run.distance, dtype=np.float64)
        uniq, inv = np.unique(clusters, return_inverse=True)
        # the sums of each cluster's rows: one sparse product (np.add.at takes 30x longer)
        member = csr_matrix((np.ones(self.n), (inv, np.arange(self.n))),
                            shape=(len(uniq), self.n))
        centres = (member @ X) / np.bincount(inv, minlength=len(uniq))[:, None]
        d = np.linalg.norm(X - centres[inv], axis=1)
        d[clusters < 0] = np.nan
        return d

    # -- training accuracy ---------------------------------------------------------------------
    def accuracy(self) -> dict[str, Any]:
        """Cross-validated accuracy of a classifier on the labels a person gave (cached)."""
        from imgclust.errors import ConfigError
        from imgclust.label.train import train

        view = self.view()
        if self._accuracy is not None and self._accuracy[0] == view.version:
            return self._accuracy[1]
        given = {r: v[0] for r, v in view.labels.items() if v[1] in GIVEN}
        out: dict[str, Any] = {"n_labels": len(given), "accuracy": None, "sd": None}
        if self.X is None:
            out["why"] = "the run has no features.npy"
        else:
            try:
                rows = np.fromiter(given, dtype=np.int64, count=len(given))
                res = train(self.X[rows], list(given.values()))
                out.update(accuracy=res.cv_accuracy, sd=res.cv_sd, folds=res.n_folds,
                           why=res.why_no_cv)
            except ConfigError as exc:
                out["why"] = str(exc)
        self._accuracy = (view.version, out)
        return out
