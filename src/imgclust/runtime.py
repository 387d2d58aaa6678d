"""Process settings that keep a run fast and its memory bounded on a busy machine.

Measured on the 2-core box with other work running (issue 12): scikit-learn's k-means sweep on
308 x 10 points took 31 s with OpenMP's default waiting (threads spin while they wait, taking
the cores the working thread needs) and 2.6 s with one thread; PCA of 308 x 1280 took 4.0 s with
two OpenBLAS threads and 0.2 s with one. glibc kept ~150 MB of freed image buffers per decoding
thread (its mmap threshold rises after each large free, so later 16 MB blocks come from the heap
and are not returned).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
from typing import Any, Iterator

#: Arrays with fewer elements than this are worked on with one BLAS/OpenMP thread: at this size
#: a second thread gains little and costs most on a loaded machine (figures above).
SMALL_PROBLEM = 2_000_000

#: Allocations above this go straight to mmap and back to the system when freed (glibc).
MMAP_THRESHOLD = 4 << 20

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


def tune_process() -> None:
    """Set, for this process, what the figures above call for: OpenMP threads that sleep when
    idle (``OMP_WAIT_POLICY=PASSIVE``, unless the user set it; it must be set before OpenMP
    loads, so this is called first thing by the command line) and glibc's mmap threshold fixed
    at :data:`MMAP_THRESHOLD`. Nothing happens where glibc is not the C library."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # mallopt has no Python binding (neither the standard library nor a maintained package
    # exposes it), hence ctypes; a no-op on musl, macOS and Windows. confstr asks the C library
    # itself (ctypes.util.find_library would run ldconfig in a subprocess at every start).
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)  # the process's own libc
    except (ValueError, OSError, AttributeError):
        return


@contextlib.contextmanager
def threads_for(X: Any) -> Iterator[None]:
    """One BLAS/OpenMP thread while working on a small array (fewer than
    :data:`SMALL_PROBLEM` elements); the libraries' own settings otherwise."""
    size = int(getattr(X, "size", 0) or 0)
    if size >= SMALL_PROBLEM:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
