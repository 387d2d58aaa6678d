"""Previews of a folder's images, made from the images decoded for the features.

Decoding a large PNG or WebP takes seconds (a 4096x4096 WebP: ~270 MB and 1-3 s), and the report
needs a 64-px thumbnail of every image: reading the folder again for them took longer than the
clustering (issue 12). So while a folder is read for its features, each decoded image also gives
a small preview, kept in ``thumbs.sqlite`` beside the feature store and catalogue
(``cache/features-KEY/``). The report takes a file's preview when the file's size and
modification time are those it was made from, and reads the file otherwise.

Previews are at most :data:`PREVIEW_SIDE` pixels a side: JPEG (quality 90, ~3 KB), or PNG for
images of at most :data:`LOSSLESS_SIDE` pixels (icons, glyphs: kept exact).
"""
from __future__ import annotations

import io
import sqlite3
import threading
from pathlib import Path
from typing import Iterable

from PIL import Image

# ids stored as their bytes, as the catalogue stores them (file names may not be UTF-8)
from imgclust.run.catalog import _key

#: the file beside the feature store
THUMBS_FILE = "thumbs.sqlite"
#: longest side of a preview (the report's thumbnails are 64 px)
PREVIEW_SIDE = 64
#: images at most this side are kept as PNG (exact); larger ones as JPEG
LOSSLESS_SIDE = 32


def preview_bytes(img: Image.Image) -> bytes:
    """The encoded preview of a decoded RGB image (thread-safe; Pillow encodes without the GIL).

    Examples
    --------
    >>> from PIL import Image
    >>> b = preview_bytes(Image.new("RGB", (640, 480), "red"))
    >>> Image.open(io.BytesIO(b)).size
    (64, 48)
    """
    small = img.copy() if max(img.size) > PREVIEW_SIDE else img
    if small is not img:
        small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if max(img.size) <= LOSSLESS_SIDE:
        small.save(buf, "PNG")
    else:
        small.convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


class ThumbStore:
    """A SQLite table of previews keyed by image id, with the file's size and mtime.

    Parameters
    ----------
    path : path
        The ``thumbs.sqlite`` file (created when missing).
    readonly : bool
        Open for :meth:`get` only (the report); the file must exist.
    """

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        if readonly:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                       check_same_thread=False)
        # writing: the file is made with the first preview (a run with none leaves no file)
        self._lock = threading.Lock()  # the report reads from several threads

    def _writer(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS previews (id BLOB PRIMARY KEY, "
                             "size INTEGER, mtime_ns INTEGER, data BLOB)")
        return self._db

    @classmethod
    def of_run(cls, run_dir: str | Path) -> "ThumbStore | None":
        """The previews of a run directory's feature store, or ``None`` when it has none."""
        for p in sorted(Path(run_dir).glob(f"cache/features-*/{THUMBS_FILE}")):
            try:
                return cls(p, readonly=True)
            except sqlite3.Error:
                continue
        return None

    def put_many(self, rows: Iterable[tuple[str, int, int, bytes]]) -> bool:
        """Add or replace previews ``(id, size, mtime_ns, data)`` and commit them.

        Returns False, with nothing kept, when they cannot be written (a full disk): previews
        are a cache, so the run goes on without them and the report reads the files.
        """
        rows = [(_key(i), a, b, d) for i, a, b, d in rows]
        if not rows:
            return True
        try:
            with self._lock:
                db = self._writer()
                with db:
                    db.executemany("INSERT OR REPLACE INTO previews VALUES (?, ?, ?, ?)", rows)
        except (sqlite3.Error, OSError):
            self.discard()
            return False
        return True

    def discard(self) -> None:
        """Close and delete the previews (this module's files only: ``thumbs.sqlite`` and its
        rollback journal), freeing their space."""
        self.close()
        for suffix in ("", "-journal"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    def get(self, image_id: str, size: int, mtime_ns: int) -> Image.Image | None:
        """The preview of ``image_id`` if it was made from a file of this size and mtime."""
        if self._db is None:
            return None
        try:
            with self._lock:
                row = self._db.execute("SELECT size, mtime_ns, data FROM previews WHERE id = ?",
                                       (_key(image_id),)).fetchone()
        except sqlite3.Error:  # a damaged cache: the caller reads the file instead
            return None
        if row is None or row[0] != size or row[1] != mtime_ns:
            return None
        try:
            img = Image.open(io.BytesIO(row[2]))
            img.load()
        except (OSError, ValueError, SyntaxError):
            return None
        return img

    def close(self) -> None:
        if self._db is None:
            return
        try:
            self._db.close()
        except sqlite3.Error:
            pass
        self._db = None
