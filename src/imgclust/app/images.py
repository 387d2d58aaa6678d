"""Images and thumbnails, served by row number of the run's catalogue only.

No request names a path: ``/thumb/{row}`` and ``/img/{row}`` take an integer, the row's image id
comes from ``clusters.csv``, and the image is read through the run's source
(:func:`imgclust.sources.open_source`), decoded and re-encoded as PNG, so nothing but a decoded
image ever leaves the server. For a folder source the file's real path (symlinks resolved) must
lie inside the source folder: a symlink that points elsewhere is refused.
"""
from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from imgclust.errors import ImgclustError

#: longest side of a thumbnail (smaller images keep their size; the page scales them)
THUMB_SIDE = 128
#: longest side of a full view
FULL_SIDE = 1024
#: thumbnails kept in memory
CACHE_SIZE = 4096
#: what reading an image may raise (a file gone or damaged since the run)
_READ_ERRORS = (ImgclustError, OSError, ValueError, SyntaxError, EOFError, MemoryError)


class NotServed(Exception):
    """The row has no image to serve (out of range, outside the source folder, unreadable)."""


class ImageServer:
    """PNG bytes of a run's images, by row; an LRU cache of thumbnails.

    Parameters
    ----------
    ids : list of str
        The run's image ids in row order.
    source_spec : str
        ``summary.json``'s ``source`` (a folder, an .npz file or ``dataset:NAME``).
    """

    def __init__(self, ids: list[str], source_spec: str | None) -> None:
        self.ids = ids
        self.spec = source_spec
        self._source: Any = None
        self._root: Path | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, bytes] = OrderedDict()

    def _open(self) -> Any:
        if self._source is None:
            with self._lock:
                if self._source is None:
                    from imgclust.sources import FolderSource, open_source

                    if not self.spec:
                        raise NotServed("the run names no source")
                    try:
                        src = open_source(self.spec)
                    except _READ_ERRORS as exc:
                        raise NotServed(str(exc)) from exc
                    if isinstance(src, FolderSource):
                        self._root = Path(src.root).resolve()
                    self._source = src
        return self._source

    def _read(self, row: int) -> Any:
        if not 0 <= row < len(self.ids):
            raise NotServed(f"row {row} is not an image of the run")
        src = self._open()
        image_id = self.ids[row]
        if self._root is not None:
            real = (Path(src.root) / image_id).resolve()
            if not real.is_relative_to(self._root):
                raise NotServed(f"{image_id}: outside the source folder")
        try:
            return src.read(image_id)[1]
        except _READ_ERRORS as exc:
            raise NotServed(f"{image_id}: {exc}") from exc

    @staticmethod
    def _png(img: Any, side: int) -> bytes:
        if img.mode not in ("L", "RGB", "RGBA", "LA"):
            img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        img = img.copy()
        img.thumbnail((side, side))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    def thumb(self, row: int) -> bytes:
        """PNG of the row's image, at most :data:`THUMB_SIDE` px (cached)."""
        with self._lock:
            data = self._cache.get(row)
            if data is not None:
                self._cache.move_to_end(row)
                return data
        data = self._png(self._read(row), THUMB_SIDE)
        with self._lock:
            self._cache[row] = data
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return data

    def full(self, row: int) -> bytes:
        """PNG of the row's image, at most :data:`FULL_SIDE` px (not cached)."""
        return self._png(self._read(row), FULL_SIDE)
