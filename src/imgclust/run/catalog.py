"""The catalogue of a folder's files (SQLite, in the run directory), for incremental reruns.

One database per feature configuration, beside its feature store
(:class:`~imgclust.run.store.FeatureStore`)::

    files(id, path, size, mtime_ns, hash, status, reason, width, height, mode)
    features(hash, row)      content hash -> row of the feature store
    meta(key, value)         dim, n_rows (rows of the store that are committed), config key

It is written as images are read, one transaction per batch, in WAL mode: a killed run leaves
every batch committed before the kill, and the store's rows past ``n_rows`` (appended by a batch
whose commit never came) are cut off when the store is opened again. A file is decoded again
only when its size or modification time changed (quick check) and its content hash is new.

Nothing of the catalogue is held in memory for the whole run (a dict of every entry cost about
400 bytes an image): :meth:`Catalog.lookup` reads the files table in id order, a window at a
time, while the ids asked for come in that order (a folder's candidates, sorted), and asks
SQLite for one entry otherwise.
"""
from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

#: bytes read at a time when hashing a file
_HASH_BLOCK = 1 << 20


class FileRow(NamedTuple):
    """One file's catalogue entry (``status`` is ``"ok"`` or ``"failed"``)."""

    id: str
    path: str
    size: int
    mtime_ns: int
    hash: str | None
    status: str
    reason: str | None
    width: int | None
    height: int | None
    mode: str | None


def _key(image_id: str) -> bytes:
    # ids are file names, which may hold undecodable bytes (surrogateescape): stored as bytes
    return image_id.encode("utf-8", "surrogateescape")


def _text(s: str | None) -> str | None:
    return None if s is None else s.encode("utf-8", "surrogateescape").decode(
        "utf-8", "backslashreplace")


def content_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex, 32 characters)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(_HASH_BLOCK)
            if not b:
                break
            h.update(b)
    return h.hexdigest()[:32]


class Catalog:
    """The SQLite catalogue of one folder's files for one feature configuration.

    Parameters
    ----------
    path : str or Path
        The database file (created when missing).

    Examples
    --------
    >>> cat = Catalog(tmp / "catalog.sqlite")  # doctest: +SKIP
    >>> cat.lookup("a/b.png")  # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.con = sqlite3.connect(str(self.path), isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.executescript("""
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS files (
                id BLOB PRIMARY KEY, path TEXT, size INTEGER, mtime_ns INTEGER, hash TEXT,
                status TEXT NOT NULL, reason TEXT, width INTEGER, height INTEGER, mode TEXT);
            CREATE TABLE IF NOT EXISTS features (hash TEXT PRIMARY KEY, row INTEGER NOT NULL);
        """)
        self._stream: Iterator[tuple] | None = None  # entries in id order (see lookup)
        self._ahead: tuple | None = None  # the stream's next entry, not yet asked for
        self._prev: bytes | None = None  # the id the stream last answered for

    def close(self) -> None:
        self._reset()
        self.con.close()

    # -- meta ------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        r = self.con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if r is None else r[0]

    def n_rows(self) -> int:
        """Rows of the feature store that a committed batch refers to."""
        return int(self.get_meta("n_rows") or 0)

    # -- reading ---------------------------------------------------------------------------
    #: entries an ordered pass fetches at a time, at most
    FETCH_MAX = 4096

    _ENTRY = ("SELECT f.id, f.size, f.mtime_ns, f.hash, f.status, f.reason, f.width, f.height,"
              " f.mode, x.row FROM files f LEFT JOIN features x ON f.hash = x.hash")

    def _reset(self) -> None:
        """Drop the ordered stream (before a write, which it must not see half of)."""
        if self._stream is not None:
            self._stream.close()  # type: ignore[attr-defined]
        self._stream, self._ahead, self._prev = None, None, None

    def _entries(self, start: bytes) -> Iterator[tuple]:
        """The entries from id ``start`` on, in id order (SQLite orders BLOBs by their bytes),
        fetched 16 at first (a lookup out of order starts a pass), then up to
        :attr:`FETCH_MAX` at a time."""
        cur = self.con.execute(self._ENTRY + " WHERE f.id >= ? ORDER BY f.id", (start,))
        size = 16
        try:
            while True:
                block = cur.fetchmany(size)
                if not block:
                    return
                yield from block
                size = min(self.FETCH_MAX, size * 4)
        finally:
            cur.close()

    def lookup(self, image_id: str) -> tuple | None:
        """``(size, mtime_ns, hash, status, reason, width, height, mode, row)`` or ``None``.

        Ids asked for in increasing order (of their UTF-8 bytes: a folder's sorted candidates)
        are served by one ordered pass over the table, which starts again wherever an id comes
        out of order; only the pass's current block of entries is held.
        """
        k = _key(image_id)
        if self._stream is None or (self._prev is not None and k <= self._prev):
            self._reset()
            self._stream = self._entries(k)
            self._ahead = next(self._stream, None)
        self._prev = k
        # every entry between the previous id asked for and the next one in the stream was
        # passed (or does not exist): advance to k
        while self._ahead is not None and bytes(self._ahead[0]) < k:
            self._ahead = next(self._stream, None)  # type: ignore[arg-type]
        e = self._ahead
        if e is not None and bytes(e[0]) == k:
            self._ahead = next(self._stream, None)  # type: ignore[arg-type]
            return tuple(e[1:])
        return None

    def row_of(self, h: str) -> int | None:
        r = self.con.execute("SELECT row FROM features WHERE hash = ?", (h,)).fetchone()
        return None if r is None else int(r[0])

    def count(self, status: str | None = None) -> int:
        if status is None:
            return int(self.con.execute("SELECT count(*) FROM files").fetchone()[0])
        return int(self.con.execute("SELECT count(*) FROM files WHERE status = ?",
                                    (status,)).fetchone()[0])

    def files(self) -> Iterator[FileRow]:
        """Every file entry (for inspection and tests)."""
        for r in self.con.execute("SELECT id, path, size, mtime_ns, hash, status, reason, "
                                  "width, height, mode FROM files ORDER BY id"):
            yield FileRow(bytes(r[0]).decode("utf-8", "surrogateescape"), *r[1:])

    # -- writing ---------------------------------------------------------------------------
    def commit_batch(self, files: Iterable[FileRow], new_rows: dict[str, int], n_rows: int,
                     dim: int | None) -> None:
        """One transaction: the batch's file entries, the store rows it appended, ``n_rows``."""
        files = list(files)
        self._reset()
        cur = self.con.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(_key(f.id), _text(f.path), f.size, f.mtime_ns, f.hash, f.status,
                  _text(f.reason), f.width, f.height, f.mode) for f in files])
            cur.executemany("INSERT OR IGNORE INTO features VALUES (?, ?)", new_rows.items())
            cur.execute("INSERT OR REPLACE INTO meta VALUES ('n_rows', ?)", (str(n_rows),))
            if dim is not None:
                cur.execute("INSERT OR REPLACE INTO meta VALUES ('dim', ?)", (str(dim),))
            cur.execute("COMMIT")
        except BaseException as exc:
            self._abort(exc)
            raise

    def _abort(self, exc: BaseException) -> None:
        """Roll back the transaction a write left open (a failed COMMIT has already rolled it
        back), and raise a full disk as the OSError it is, naming the database (SQLite says
        only "database or disk is full")."""
        if self.con.in_transaction:
            self.con.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path)) from exc

    def drop_missing(self, present: Iterable[str]) -> int:
        """Remove the entries of files no longer in the folder; returns how many.

        The ids present go into a temporary table (on disk, as SQLite keeps temporary tables
        by default), so no set of every id is built in memory.
        """
        self._reset()
        con = self.con
        con.execute("CREATE TEMP TABLE IF NOT EXISTS present (id BLOB PRIMARY KEY)")
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("DELETE FROM temp.present")
            con.executemany("INSERT OR IGNORE INTO temp.present VALUES (?)",
                            ((_key(i),) for i in present))
            gone = con.execute("DELETE FROM files WHERE id NOT IN "
                               "(SELECT id FROM temp.present)").rowcount
            con.execute("DELETE FROM temp.present")
            con.execute("COMMIT")
        except BaseException as exc:
            self._abort(exc)
            raise
        return int(gone)
