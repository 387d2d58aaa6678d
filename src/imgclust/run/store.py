"""The feature store: one float32 matrix on disk, grown a batch at a time, read in blocks.

The images step's features of every file read are appended to ``store.f32`` (raw C-order
float32 rows; the width and the committed row count live in the catalogue's ``meta`` table, so
one SQLite transaction commits a batch's rows and its file entries together). Rows are keyed by
content hash (:class:`~imgclust.run.catalog.Catalog`), so a file that did not change is never
decoded again and two copies of one image share a row.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from imgclust.io import BLOCK_BYTES, open_npy, read_rows, write_npy_blocks

STORE_FILE = "store.f32"
CATALOG_FILE = "catalog.sqlite"
#: bytes :meth:`FeatureStore.take` reads at a time, at most (io's block size)
TAKE_BLOCK_BYTES = BLOCK_BYTES


class FeatureStore:
    """Append-only float32 rows in one file.

    Parameters
    ----------
    path : str or Path
        The ``.f32`` file.
    n_rows : int
        Rows committed (the catalogue's ``n_rows``); bytes past them, appended by a batch a
        kill interrupted before its commit, are cut off.
    dim : int or None
        Row width, ``None`` until the first batch.
    """

    def __init__(self, path: str | Path, n_rows: int = 0, dim: int | None = None) -> None:
        self.path = Path(path)
        self.dim = dim
        self.n_rows = n_rows
        want = n_rows * (dim or 0) * 4
        if self.path.exists():
            if self.path.stat().st_size < want:  # the store lost rows the catalogue refers to
                raise OSError(f"{self.path}: {self.path.stat().st_size} bytes, "
                              f"the catalogue refers to {want}")
            os.truncate(self.path, want)
        elif n_rows:
            raise FileNotFoundError(f"{self.path}: missing, the catalogue refers to {n_rows} rows")
        self._f = open(self.path, "ab")

    def append(self, X: np.ndarray) -> int:
        """Append rows (shape (n, dim)); returns the index of the first one."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise ValueError(f"features of shape {X.shape}: expected (n_images, n_features)")
        if self.dim is None:
            self.dim = int(X.shape[1])
        elif X.shape[1] != self.dim:
            raise ValueError(f"features of width {X.shape[1]}; the store holds {self.dim}")
        first = self.n_rows
        self._f.write(X.tobytes())
        self._f.flush()  # in the page cache before the catalogue commits: survives a SIGKILL
        self.n_rows += X.shape[0]
        return first

    def close(self) -> None:
        self._f.close()

    def matrix(self) -> np.ndarray:
        """Every committed row, memory-mapped read-only (shape (n_rows, dim))."""
        self._f.flush()
        if not self.n_rows:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return np.memmap(self.path, dtype=np.float32, mode="r", shape=(self.n_rows, self.dim))

    def take(self, rows: np.ndarray, chunk: int = 65536, block_bytes: int | None = None
             ) -> np.ndarray:
        """Rows ``rows`` in that order, as one float32 array in memory (the final matrix).

        The store is read with plain reads of at most ``chunk`` rows and ``block_bytes`` bytes
        at a time, in file order (only the blocks that hold a wanted row), and scattered into
        the result: nothing but the result and one block is held. Not through the memory map:
        its pages would count in the process's resident memory beside the result (a second
        copy of the matrix at the peak).

        Parameters
        ----------
        rows : ndarray of int
            Store rows, any order, repeats allowed.
        chunk : int
            Rows read at a time, at most.
        block_bytes : int, optional
            Bytes read at a time, at most (one row whatever its width); default
            :data:`TAKE_BLOCK_BYTES`.

        Returns
        -------
        ndarray of shape (len(rows), dim)
        """
        rows = np.asarray(rows, dtype=np.int64)
        dim = self.dim or 0
        if not len(rows) or not dim:
            return np.empty((len(rows), dim), dtype=np.float32)
        if rows.min() < 0 or rows.max() >= self.n_rows:
            raise IndexError(f"store rows {rows.min()}..{rows.max()}; it holds {self.n_rows}")
        self._f.flush()
        nbytes = TAKE_BLOCK_BYTES if block_bytes is None else int(block_bytes)
        return read_rows(self.path, 0, np.float32, dim, rows,
                         block_bytes=min(nbytes, max(1, int(chunk)) * dim * 4))

    def gather(self, rows: np.ndarray, path: str | Path, block: int = 65536) -> np.ndarray:
        """Rows ``rows`` in that order written to the ``.npy`` file ``path`` (atomically, a
        block of rows at a time) and returned memory-mapped: a run's matrix too large to hold
        (:data:`imgclust.io.OUT_OF_CORE_BYTES`), read a block at a time by the stages after.

        Returns
        -------
        ndarray of shape (len(rows), dim), memory-mapped read-only
        """
        rows = np.asarray(rows, dtype=np.int64)
        dim = self.dim or 0
        step = max(1, min(int(block), TAKE_BLOCK_BYTES // max(1, dim * 4)))
        write_npy_blocks(path, (len(rows), dim), np.float32,
                         (self.take(rows[s:s + step]) for s in range(0, len(rows), step)))
        return open_npy(path)
