"""The label store: every labelling action of a run, as events in ``DIR/labels.sqlite``.

Nothing is ever updated in place except the ``undone`` flag: a label, a cluster name, a move,
a merge, a split or a "not of interest" mark is a row of ``events``, and the current state is
derived from the rows not undone (the ``current_labels`` view; :meth:`LabelStore.cluster_of`
replays moves, merges and splits over the run's ``clusters.csv``). Each call is one
transaction (one *batch* id), so :meth:`LabelStore.undo` takes back exactly one action.

SQLite in WAL mode with ``synchronous=FULL``: several writers (the app, the CLI) may write at
once (each waits up to 5 s for the other's transaction), and a process killed at any moment
loses at most its own unfinished transaction.

Which label counts
------------------
Per image, the latest label given by a person (source ``human`` or ``import``) wins over any
machine label (``propagated``, ``model``); without one, the latest machine label counts. A row
with ``label`` NULL clears its tier (a person's "remove label", or a propagation run that no
longer labels that image).

Examples
--------
>>> store = LabelStore("runs/digits")                       # doctest: +SKIP
>>> b = store.label(["0", "10"], "zero")                    # doctest: +SKIP
>>> store.current_labels()["0"]                             # doctest: +SKIP
('zero', 'human', None)
>>> store.undo(b)                                           # doctest: +SKIP
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from imgclust.errors import ConfigError, ImgclustError, RunDirError
from imgclust.io import kill_point

log = logging.getLogger(__name__)

DB_NAME = "labels.sqlite"
SCHEMA_VERSION = 1
SOURCES = ("human", "propagated", "model", "import")
#: sources that a person gave: they win over machine labels and are what propagation and
#: training learn from
GIVEN = ("human", "import")
MAX_LABEL_LEN = 200
#: how long a writer waits for another one's transaction before giving up (milliseconds)
BUSY_TIMEOUT_MS = 5000

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('label', 'name_cluster', 'not_of_interest', 'of_interest',
                                   'move', 'merge', 'split', 'undo')),
    image_id,            -- TEXT, or BLOB for a file name that is not valid UTF-8
    label TEXT,          -- the label; the cluster name (name_cluster); the batch undone (undo)
    source TEXT CHECK (source IN ({", ".join(repr(s) for s in SOURCES)})),
    confidence REAL CHECK (confidence IS NULL OR (confidence >= 0 AND confidence <= 1)),
    cluster INTEGER,     -- name_cluster: the cluster; merge: the cluster merged away
    to_cluster INTEGER,  -- move, split: the image's new cluster; merge: the cluster kept
    batch TEXT NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0 CHECK (undone IN (0, 1)),
    CHECK (op != 'label' OR (image_id IS NOT NULL AND source IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS events_batch ON events (batch);
CREATE INDEX IF NOT EXISTS events_op_image ON events (op, image_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
-- the latest label per image and tier (given by a person / by a machine), then the given one
CREATE VIEW IF NOT EXISTS current_labels AS
WITH tiers AS (
    SELECT image_id, label, source, confidence, seq,
           source IN ('human', 'import') AS given,
           ROW_NUMBER() OVER (PARTITION BY image_id, source IN ('human', 'import')
                              ORDER BY seq DESC) AS rn
    FROM events WHERE op = 'label' AND undone = 0),
latest AS (SELECT * FROM tiers WHERE rn = 1 AND label IS NOT NULL),
ranked AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY image_id ORDER BY given DESC) AS r2
           FROM latest)
SELECT image_id, label, source, confidence, seq FROM ranked WHERE r2 = 1;
CREATE VIEW IF NOT EXISTS not_of_interest AS
SELECT image_id FROM (
    SELECT image_id, op, ROW_NUMBER() OVER (PARTITION BY image_id ORDER BY seq DESC) AS rn
    FROM events WHERE op IN ('not_of_interest', 'of_interest') AND undone = 0)
WHERE rn = 1 AND op = 'not_of_interest';
CREATE VIEW IF NOT EXISTS cluster_names AS
SELECT cluster, label AS name FROM (
    SELECT cluster, label, ROW_NUMBER() OVER (PARTITION BY cluster ORDER BY seq DESC) AS rn
    FROM events WHERE op = 'name_cluster' AND undone = 0)
WHERE rn = 1 AND label IS NOT NULL;
"""

#: test hook: the number of write transactions this process began (see :func:`kill_point`)
_writes = 0


class LabelError(ImgclustError):
    """A labelling request that cannot be carried out (unknown images, nothing to undo…)."""


def _enc(image_id: str) -> str | bytes:
    """An id as stored: text, or the raw bytes of a non-UTF-8 file name (surrogateescape)."""
    try:
        image_id.encode("utf-8")
        return image_id
    except UnicodeEncodeError:
        return image_id.encode("utf-8", "surrogateescape")


def _dec(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _new_batch(op: str) -> str:
    return f"{op}-{uuid.uuid4().hex[:12]}"


def check_label(label: str) -> str:
    """``label`` if it can be stored, else a :class:`ConfigError` saying why."""
    if not isinstance(label, str):
        raise ConfigError(f"label {label!r} must be a string")
    if not label.strip():
        raise ConfigError(f"label {label!r} is empty")
    if len(label) > MAX_LABEL_LEN:
        raise ConfigError(f"label {label[:40]!r}… has {len(label)} characters; at most "
                          f"{MAX_LABEL_LEN}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in label):
        raise ConfigError(f"label {label!r} holds a control character")
    try:
        label.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"label {label!r} is not valid text") from None
    return label


def _check_source(source: str) -> str:
    if source not in SOURCES:
        raise ConfigError(f"label source {source!r}; valid: {', '.join(SOURCES)}")
    return source


def _check_confidence(c: float | None) -> float | None:
    if c is None:
        return None
    c = float(c)
    if not 0.0 <= c <= 1.0:  # also refuses nan
        raise ConfigError(f"confidence={c} must be between 0 and 1")
    return c


class LabelStore:
    """The labels, cluster names and cluster edits of one run directory.

    Parameters
    ----------
    run_dir : str or Path
        A directory written by ``imgclust run --out DIR``; the store is ``DIR/labels.sqlite``
        (created on first use).

    Attributes
    ----------
    ids : list of str
        The run's image ids, in ``clusters.csv`` order.
    base_clusters : ndarray of shape (n_images,)
        The clusters of ``clusters.csv`` (before any move, merge or split).
    """

    def __init__(self, run_dir: str | Path) -> None:
        from imgclust.report.rundir import kind_of, load_run

        self.run_dir = Path(run_dir)
        if kind_of(self.run_dir) != "run":
            raise RunDirError(f"{self.run_dir}: labels belong to a run directory of 'imgclust "
                              "run', not of 'imgclust compare'")
        self.run = load_run(self.run_dir)
        self.ids: list[str] = list(self.run.ids)
        self.base_clusters = np.asarray(self.run.labels, dtype=np.int64)
        self.index: dict[str, int] = {i: n for n, i in enumerate(self.ids)}
        self.path = self.run_dir / DB_NAME
        self._local = threading.local()
        self._init_db()

    # -- connection and transactions -------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        """This thread's connection (kept open: closing the last one checkpoints the WAL)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._open()
        return con

    def close(self) -> None:
        """Close this thread's connection (others close when their thread's store goes)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            self._local.con = None
            con.close()

    def _open(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise RunDirError(f"{self.path}: cannot be opened ({exc})") from exc
        try:
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            con.close()
            raise RunDirError(f"{self.path}: cannot be opened ({exc})") from exc
        return con

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            yield con
        except sqlite3.DatabaseError as exc:
            raise RunDirError(f"{self.path}: cannot be read ({exc})") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything inside lands, or nothing does."""
        global _writes
        _writes += 1
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")  # take the write lock now (no upgrade deadlock)
            yield con
            kill_point(f"labels:{_writes}")  # crash tests: killed with the rows not committed
            con.execute("COMMIT")
        except BaseException as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise LabelError(f"{self.path}: another writer held the store for more than "
                                 f"{BUSY_TIMEOUT_MS // 1000} s; nothing was written") from exc
            if isinstance(exc, sqlite3.DatabaseError):
                raise RunDirError(f"{self.path}: cannot be written ({exc})") from exc
            raise

    def _init_db(self) -> None:
        with self._write() as con:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RunDirError(f"{self.path}: label store format {version} is newer than this "
                                  f"imgclust reads ({SCHEMA_VERSION}); upgrade imgclust")
            if version == 0:
                for stmt in _SCHEMA.split(";\n"):  # executescript() would commit first
                    if stmt.strip():
                        con.execute(stmt)
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                con.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)", [
                    ("created", _now()),
                    ("source", str(self.run.summary.get("source"))),
                    ("source_fingerprint", str(self.run.summary.get("source_fingerprint")))])
            else:
                row = con.execute("SELECT value FROM meta WHERE key = 'source_fingerprint'"
                                  ).fetchone()
                now = str(self.run.summary.get("source_fingerprint"))
                if row and row[0] != now:
                    log.warning("%s: the labels were made for source fingerprint %s, the run "
                                "now has %s (the images may have changed)", self.path, row[0], now)

    def _insert(self, con: sqlite3.Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        cols = ("time", "op", "image_id", "label", "source", "confidence", "cluster",
                "to_cluster", "batch")
        con.executemany(
            f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [tuple(r.get(c) for c in cols) for r in rows])

    # -- validation --------------------------------------------------------------------------
    def check_ids(self, ids: Iterable[str]) -> list[str]:
        """``ids`` as a list, or :class:`LabelError` naming how many are not images of the run."""
        ids = [str(i) for i in ids]
        unknown = [i for i in ids if i not in self.index]
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:3]) + (" …" if len(unknown) > 3 else "")
            raise LabelError(f"{len(unknown)} of {len(ids)} ids are not images of the run in "
                             f"{self.run_dir}: {shown}")
        return ids

    # -- labels ------------------------------------------------------------------------------
    def label(self, ids: Iterable[str], label: str, source: str = "human",
              confidence: float | None = None) -> str:
        """Give every image of ``ids`` the same ``label``; returns the batch id (for undo).

        Parameters
        ----------
        ids : iterable of str
            Image ids of the run.
        label : str
        source : {"human", "propagated", "model", "import"}
        confidence : float in [0, 1], optional
        """
        check_label(label)
        ids = self.check_ids(ids)
        return self.label_each(dict.fromkeys(ids, label), source,
                               None if confidence is None else dict.fromkeys(ids, confidence))

    def label_each(self, labels: Mapping[str, str | None], source: str = "human",
                   confidences: Mapping[str, float] | None = None, op_name: str = "label") -> str:
        """Give each image its own label in one batch (``None`` clears the source's tier).

        Parameters
        ----------
        labels : mapping of image id to label or None
        source : {"human", "propagated", "model", "import"}
        confidences : mapping of image id to float in [0, 1], optional
        op_name : str
            Prefix of the batch id (``propagate``, ``import``…), to tell batches apart.
        """
        _check_source(source)
        if not labels:
            raise ConfigError("no images given to label")
        self.check_ids(labels)
        for lab in labels.values():
            if lab is not None:
                check_label(lab)
        confidences = confidences or {}
        batch, t = _new_batch(op_name), _now()
        rows = [{"time": t, "op": "label", "image_id": _enc(i), "label": lab, "source": source,
                 "confidence": _check_confidence(confidences.get(i)), "batch": batch}
                for i, lab in labels.items()]
        with self._write() as con:
            self._insert(con, rows)
        return batch

    def clear(self, ids: Iterable[str], source: str = "human") -> str:
        """Remove the label of ``source``'s tier from each image (a new event; undo restores)."""
        return self.label_each(dict.fromkeys(self.check_ids(ids)), source, op_name="clear")

    def current_labels(self, sources: Sequence[str] | None = None
                       ) -> dict[str, tuple[str, str, float | None]]:
        """The label that counts for each labelled image.

        Parameters
        ----------
        sources : sequence of str, optional
            Keep only labels from these sources (e.g. :data:`GIVEN`).

        Returns
        -------
        dict
            image id -> (label, source, confidence).
        """
        if sources is not None:
            for s in sources:
                _check_source(s)
        with self._read() as con:
            rows = con.execute("SELECT image_id, label, source, confidence FROM current_labels "
                               "ORDER BY seq").fetchall()
        return {_dec(i): (lab, src, conf) for i, lab, src, conf in rows
                if sources is None or src in sources}

    def given_labels(self) -> dict[str, str]:
        """The labels a person gave (sources :data:`GIVEN`): image id -> label."""
        return {i: v[0] for i, v in self.current_labels(GIVEN).items()}

    def counts(self) -> dict[str, dict[str, int]]:
        """How many images count each label, by source: ``{label: {source: n}}``."""
        out: dict[str, Counter[str]] = {}
        for lab, src, _ in self.current_labels().values():
            out.setdefault(lab, Counter())[src] += 1
        return {lab: dict(c) for lab, c in sorted(out.items())}

    # -- not of interest ---------------------------------------------------------------------
    def mark_not_of_interest(self, ids: Iterable[str], value: bool = True) -> str:
        """Mark images as not of interest (``value=False`` takes the mark back); a batch id."""
        ids = self.check_ids(ids)
        if not ids:
            raise ConfigError("no images given to mark")
        batch, t = _new_batch("interest"), _now()
        op = "not_of_interest" if value else "of_interest"
        with self._write() as con:
            self._insert(con, [{"time": t, "op": op, "image_id": _enc(i), "batch": batch}
                               for i in ids])
        return batch

    def not_of_interest(self) -> set[str]:
        """The ids currently marked not of interest."""
        with self._read() as con:
            return {_dec(r[0]) for r in con.execute("SELECT image_id FROM not_of_interest")}

    # -- clusters ----------------------------------------------------------------------------
    def name_cluster(self, cluster: int, name: str | None) -> str:
        """Name a cluster (``None`` removes the name); returns the batch id."""
        cluster = int(cluster)
        if name is not None:
            check_label(name)
        batch = _new_batch("name")
        with self._write() as con:
            if cluster not in self._known_clusters(con):
                raise ConfigError(f"cluster {cluster} does not exist in {self.run_dir}")
            self._insert(con, [{"time": _now(), "op": "name_cluster", "cluster": cluster,
                                "label": name, "batch": batch}])
        return batch

    def cluster_names(self) -> dict[int, str]:
        """cluster -> name, for the named clusters."""
        with self._read() as con:
            return {int(c): n for c, n in con.execute("SELECT cluster, name FROM cluster_names")}

    def _replay(self, con: sqlite3.Connection) -> np.ndarray:
        """The run's clusters with every move, merge and split not undone, in order."""
        cur = self.base_clusters.copy()
        rows = con.execute("SELECT op, image_id, cluster, to_cluster FROM events WHERE undone = 0 "
                           "AND op IN ('move', 'merge', 'split') ORDER BY seq")
        for op, image_id, a, b in rows:
            if op == "merge":
                cur[cur == a] = b
            else:
                n = self.index.get(_dec(image_id))
                if n is not None:
                    cur[n] = b
        return cur

    def _known_clusters(self, con: sqlite3.Connection) -> set[int]:
        known = set(np.unique(self.base_clusters).tolist()) | {-1}
        known |= {int(r[0]) for r in con.execute(
            "SELECT DISTINCT to_cluster FROM events WHERE undone = 0 AND to_cluster IS NOT NULL")}
        return known

    def current_clusters(self) -> np.ndarray:
        """Each image's cluster now, array of shape (n_images,) in :attr:`ids` order."""
        with self._read() as con:
            return self._replay(con)

    def cluster_of(self, ids: Iterable[str] | None = None) -> dict[str, int]:
        """The current cluster of each of ``ids`` (all images when None)."""
        cur = self.current_clusters()
        ids = self.ids if ids is None else self.check_ids(ids)
        return {i: int(cur[self.index[i]]) for i in ids}

    def move(self, ids: Iterable[str], to_cluster: int) -> str:
        """Move images to an existing cluster (``-1``: noise); returns the batch id."""
        ids, to_cluster = self.check_ids(ids), int(to_cluster)
        if not ids:
            raise ConfigError("no images given to move")
        batch, t = _new_batch("move"), _now()
        with self._write() as con:
            if to_cluster not in self._known_clusters(con):
                raise ConfigError(f"cluster {to_cluster} does not exist in {self.run_dir} (a "
                                  "new cluster comes from split)")
            self._insert(con, [{"time": t, "op": "move", "image_id": _enc(i),
                                "to_cluster": to_cluster, "batch": batch} for i in ids])
        return batch

    def merge(self, a: int, b: int) -> str:
        """Merge cluster ``a`` into cluster ``b`` (its images join ``b``); returns the batch id."""
        a, b = int(a), int(b)
        if a == b:
            raise ConfigError(f"cannot merge cluster {a} into itself")
        batch = _new_batch("merge")
        with self._write() as con:
            cur = self._replay(con)
            for c in (a, b):
                if c < 0 or not (cur == c).any():
                    raise ConfigError(f"cluster {c} has no images in {self.run_dir}; "
                                      "nothing to merge")
            self._insert(con, [{"time": _now(), "op": "merge", "cluster": a, "to_cluster": b,
                                "batch": batch}])
        return batch

    def split(self, parts: Mapping[str, int]) -> tuple[str, dict[int, int]]:
        """Record the result of splitting a cluster: each part becomes a new cluster.

        Parameters
        ----------
        parts : mapping of image id to part number
            E.g. the labels of a re-clustering of one cluster's images.

        Returns
        -------
        batch : str
        new_clusters : dict
            part number -> the new cluster id given to it (after every id in use).
        """
        ids = self.check_ids(parts)
        if not ids:
            raise ConfigError("split needs at least one image")
        batch, t = _new_batch("split"), _now()
        with self._write() as con:
            # never reuse an id, not even one of an undone split (its name would come back)
            top = con.execute("SELECT MAX(to_cluster) FROM events").fetchone()[0]
            nxt = max(int(self.base_clusters.max(initial=-1)), -1 if top is None else int(top)) + 1
            new = {p: nxt + n for n, p in enumerate(sorted(set(int(v) for v in parts.values())))}
            self._insert(con, [{"time": t, "op": "split", "image_id": _enc(i),
                                "to_cluster": new[int(parts[i])], "batch": batch} for i in ids])
        return batch, new

    # -- undo --------------------------------------------------------------------------------
    def undo(self, batch: str) -> int:
        """Take back one batch (every event of it); returns how many events were undone."""
        with self._write() as con:
            n = con.execute("UPDATE events SET undone = 1 WHERE batch = ? AND undone = 0 AND "
                            "op != 'undo'", (batch,)).rowcount
            if n == 0:
                raise LabelError(f"batch {batch!r}: nothing to undo (unknown or already undone)")
            self._insert(con, [{"time": _now(), "op": "undo", "label": batch,
                                "batch": _new_batch("undo")}])
        return n

    def undo_last(self) -> str | None:
        """Take back the latest batch not yet undone; returns its id (None: nothing to undo)."""
        with self._write() as con:
            row = con.execute("SELECT batch FROM events WHERE undone = 0 AND op != 'undo' "
                              "ORDER BY seq DESC LIMIT 1").fetchone()
            if row is None:
                return None
            con.execute("UPDATE events SET undone = 1 WHERE batch = ? AND undone = 0",
                        (row[0],))
            self._insert(con, [{"time": _now(), "op": "undo", "label": row[0],
                                "batch": _new_batch("undo")}])
        return row[0]

    def batches(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest batches, newest first: batch, time, op, source, events, undone."""
        with self._read() as con:
            rows = con.execute(
                "SELECT batch, MIN(time), MIN(op), MIN(source), COUNT(*), MIN(undone) "
                "FROM events WHERE op != 'undo' GROUP BY batch ORDER BY MAX(seq) DESC LIMIT ?",
                (int(limit),)).fetchall()
        return [{"batch": b, "time": t, "op": op, "source": s, "events": n, "undone": bool(u)}
                for b, t, op, s, n, u in rows]
