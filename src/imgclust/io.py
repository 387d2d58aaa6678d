"""Atomic file writes: a temporary file in the same folder, flushed, then renamed over the target,
so a run killed at any moment leaves either the old file or the new one, never half of one.

A killed write can leave its temporary file behind (``.NAME.XXXXXXXX.tmp`` next to the target);
:func:`is_temp_leftover` recognises them so the run directory can clean them up on resume.
"""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Sequence

import numpy as np


#: environment variable naming the stage at which :func:`kill_point` kills the process
KILL_ENV = "IMGCLUST_TEST_KILL_AT"


def kill_point(stage: str) -> None:
    """Crash-test hook: SIGKILL this process at ``stage`` when ``IMGCLUST_TEST_KILL_AT=stage``.

    Lets tests/test_resume.py kill a real run at an exact point (``run-json``, ``batch:3``,
    ``tmp:clusters.csv``, ``export:5``… see bench/results/safety.md), as a power cut or an
    out-of-memory kill would. Without the variable it does nothing.
    """
    if os.environ.get(KILL_ENV) == stage:
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_dir(path: str | Path) -> None:
    """Flush a folder's entries (a rename is durable only once its folder is synced)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported on this platform / file system: nothing more to do
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_temp_leftover(name: str) -> bool:
    """Whether ``name`` is a temporary file of :func:`atomic_write_bytes` (left by a kill)."""
    return name.startswith(".") and name.endswith(".tmp") and name.count(".") >= 3


def _new_file_mode(path: Path) -> int:
    """The mode of the file being replaced, or what a new file gets under the current umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        mask = os.umask(0o022)  # reading the umask means setting it; restored at once
        os.umask(mask)
        return 0o666 & ~mask


@contextmanager
def atomic_writer(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` atomically when the block ends (temp file beside it +
    fsync + rename); on an error the temp file is removed and ``path`` is untouched. Data is
    streamed to disk, never held whole in memory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _new_file_mode(path))  # mkstemp makes 0600; keep what open() would give
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        kill_point(f"tmp:{path.name}")
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.filename is None:  # name the file (a full disk)
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename)."""
    with atomic_writer(path) as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str, errors: str = "strict") -> None:
    atomic_write_bytes(path, text.encode("utf-8", errors))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=_json_default, ensure_ascii=False)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    # Non-UTF-8 file names reach us as lone surrogates (surrogateescape); "backslashreplace"
    # writes them as \udcXX escapes: valid UTF-8 JSON that json.loads turns back into the same str.
    atomic_write_text(path, to_json(obj) + "\n", errors="backslashreplace")


def atomic_write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    # CSV has no escapes: a non-UTF-8 file name is written as its own bytes (read the file with
    # errors="surrogateescape" to get the exact name back), as the export journal does.
    atomic_write_text(path, buf.getvalue(), errors="surrogateescape")


def atomic_save_npy(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` to ``path`` atomically, streamed: a matrix on disk (:func:`on_disk`) is read
    a block at a time with plain reads, so neither a copy of it nor its mapped pages count in
    the process's memory."""
    if on_disk(array) is not None:
        write_npy_blocks(path, array.shape, array.dtype, (b for _, b in row_blocks(array)))
        return
    with atomic_writer(path) as f:
        # numpy's ``tofile`` fast path for real files loses the error (a full disk is raised
        # without errno); through a plain ``write`` it writes in bounded chunks and the OS
        # error comes back whole
        np.save(_ChunkWriter(f), array, allow_pickle=False)


class _ChunkWriter:
    """A file-like with only ``write``: numpy then saves an array chunk by chunk."""

    def __init__(self, f: BinaryIO) -> None:
        self.write = f.write


# -- matrices on disk ------------------------------------------------------------------------
# A feature matrix larger than OUT_OF_CORE_BYTES stays in its .npy file during a run, opened
# memory-mapped (np.load(mmap_mode="r")) so that every consumer still gets an ndarray. The passes
# that read all of it (clustering, scores, saving) go through row_blocks/take_rows, which read
# the file with plain reads instead of touching the map: a mapped page, once read, stays in the
# process's resident memory (ru_maxrss counts it), so a pass over the map would cost as much as
# the matrix in memory. numpy and Dask have no such bounded-resident reader; it is a few lines.

#: a run's matrix larger than this is kept on disk and read a block at a time
OUT_OF_CORE_BYTES = 32 << 20
#: a step or clusterer fitted on a sample of a matrix on disk takes at most this many bytes of
#: rows (never fewer than cluster.large.SAMPLE_MAX rows), then is applied a block at a time
FIT_SAMPLE_BYTES = 64 << 20
#: bytes read at a time by :func:`row_blocks` and :func:`read_rows`, at most
BLOCK_BYTES = 4 << 20


def on_disk(X: Any) -> tuple[str, int] | None:
    """``(file, byte offset of row 0)`` when ``X`` is a whole 2-D C-ordered memory-mapped file
    (``np.memmap`` or ``np.load(..., mmap_mode="r")``), else ``None`` (a view of one is None)."""
    import mmap

    if (isinstance(X, np.memmap) and isinstance(X.base, mmap.mmap) and X.filename
            and X.ndim == 2 and X.flags.c_contiguous):
        return str(X.filename), int(X.offset)
    return None


def read_rows(path: str | Path, offset: int, dtype: Any, dim: int, rows: np.ndarray,
              block_bytes: int = BLOCK_BYTES) -> np.ndarray:
    """Rows ``rows`` (any order, repeats allowed) of the C-ordered ``(n, dim)`` matrix of
    ``dtype`` stored from byte ``offset`` of ``path``, by plain reads of at most
    ``block_bytes`` (one row whatever its width) in file order, only of blocks that hold a
    wanted row.

    Returns
    -------
    ndarray of shape (len(rows), dim), in memory
    """
    dtype = np.dtype(dtype)
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty((len(rows), dim), dtype=dtype)
    if not len(rows) or not dim:
        return out
    order = np.argsort(rows, kind="stable")
    srt = rows[order]
    chunk = max(1, int(block_bytes) // (dim * dtype.itemsize))
    with open(path, "rb") as f:
        lo = 0
        while lo < len(srt):
            first = int(srt[lo])  # the next wanted row starts a block
            hi = int(np.searchsorted(srt, first + chunk, side="left"))
            last = int(srt[hi - 1])
            f.seek(offset + first * dim * dtype.itemsize)
            count = (last + 1 - first) * dim
            block = np.fromfile(f, dtype=dtype, count=count)
            if block.size != count:
                raise OSError(f"{path}: {block.size // dim} rows from row {first}, "
                              f"expected {last + 1 - first} (file cut short)")
            out[order[lo:hi]] = block.reshape(-1, dim)[srt[lo:hi] - first]
            lo = hi
    return out


def take_rows(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``X[rows]`` in memory; a matrix on disk is read with plain reads (:func:`read_rows`)."""
    where = on_disk(X)
    if where is None:
        return np.asarray(X[np.asarray(rows, dtype=np.int64)])
    return read_rows(where[0], where[1], X.dtype, X.shape[1], rows)


def row_blocks(X: np.ndarray, block_bytes: int = BLOCK_BYTES
               ) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, block)`` over ``X`` in order, at most ``block_bytes`` a block (one row
    whatever its width); a matrix on disk read with plain reads, never through its map."""
    n = X.shape[0]
    step = max(1, int(block_bytes) // max(1, X.shape[1] * X.dtype.itemsize))
    where = on_disk(X)
    if where is None:
        for s in range(0, n, step):
            yield s, X[s:s + step]
        return
    path, offset = where
    dim, dtype = X.shape[1], X.dtype
    with open(path, "rb") as f:
        f.seek(offset)
        for s in range(0, n, step):
            m = min(step, n - s)
            block = np.fromfile(f, dtype=dtype, count=m * dim)
            if block.size != m * dim:
                raise OSError(f"{path}: cut short at row {s + block.size // max(1, dim)} of {n}")
            yield s, block.reshape(m, dim)


def write_npy_blocks(path: str | Path, shape: tuple[int, int], dtype: Any,
                     blocks: Iterable[np.ndarray]) -> None:
    """Write a ``.npy`` of ``shape`` atomically from row blocks given in order (the header
    first, numpy's format 1.0); refuses blocks that do not add up to ``shape``."""
    dtype = np.dtype(dtype)
    n, dim = int(shape[0]), int(shape[1])
    with atomic_writer(path) as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                "shape": (n, dim)})
        got = 0
        for b in blocks:
            b = np.ascontiguousarray(b, dtype=dtype)
            if b.ndim != 2 or b.shape[1] != dim:
                raise ValueError(f"a block of shape {b.shape} for a matrix of width {dim}")
            f.write(b.tobytes())
            got += b.shape[0]
        if got != n:
            raise ValueError(f"{got} rows written for a matrix of {n}")


def open_npy(path: str | Path) -> np.ndarray:
    """A ``.npy`` matrix opened memory-mapped, read-only (see :func:`on_disk`)."""
    return np.load(path, mmap_mode="r", allow_pickle=False)
