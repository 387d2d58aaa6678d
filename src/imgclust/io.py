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
    """``np.save`` to ``path`` atomically, streamed (a memory-mapped array is never copied whole
    into memory)."""
    with atomic_writer(path) as f:
        # numpy's ``tofile`` fast path for real files loses the error (a full disk is raised
        # without errno); through a plain ``write`` it writes in bounded chunks and the OS
        # error comes back whole
        np.save(_ChunkWriter(f), array, allow_pickle=False)


class _ChunkWriter:
    """A file-like with only ``write``: numpy then saves an array chunk by chunk."""

    def __init__(self, f: BinaryIO) -> None:
        self.write = f.write
