"""Decoding and featurising a folder on Dask (``pip install "imgclust[distributed]"``).

``imgclust run FOLDER --out DIR --workers N`` (a local cluster of N worker processes) or
``--scheduler tcp://HOST:8786`` (a running cluster) sends the batches of new or changed files
as Dask tasks (:func:`imgclust.run.extract.featurise_files`: stat, hash, decode, images step).
The fitted images step is scattered once to every worker, so each worker holds one copy and
loads its model once. Results come back to this process, which alone writes the feature store
and the catalogue (one commit per batch, as without Dask); a batch whose task failed or whose
worker died is run again by Dask (``retries``, and the scheduler's own rescheduling of a dead
worker's tasks), and since a batch is committed only when its result arrives, an image is
neither lost nor stored twice. Clustering then runs here on the gathered features.

Workers need the same installation and the folder at the same absolute path (a shared file
system).
"""
from __future__ import annotations

import contextlib
import copy
import os
import pickle
import uuid
from typing import Any, Iterator, Sequence

import numpy as np

from imgclust.errors import ConfigError, MissingExtraError

#: test hook: ``raise:ID:MARKER`` or ``exit:ID:MARKER`` makes the first task holding ``ID`` raise
#: (or its worker process exit) once, creating the file MARKER (see tests/test_distributed.py)
FAULT_ENV = "IMGCLUST_TEST_DASK_FAULT"
#: times a failed batch is run again
RETRIES = 3


def _dask() -> Any:
    try:
        import distributed
    except ImportError:
        raise MissingExtraError("--workers/--scheduler (Dask)", "distributed") from None
    return distributed


@contextlib.contextmanager
def client_for(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A Dask client: on the cluster at ``scheduler``, or on a new local cluster of
    ``workers`` single-threaded worker processes (closed on exit)."""
    distributed = _dask()
    if scheduler is not None and workers is not None:
        raise ConfigError("give --workers (a local Dask cluster) or --scheduler (a running "
                          "one), not both")
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        with client:
            yield client
        return
    if workers is None or int(workers) < 1:
        raise ConfigError(f"workers={workers} must be at least 1")
    with distributed.LocalCluster(n_workers=int(workers), threads_per_worker=1,
                                  processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        # every worker up before anything is scattered: a broadcast reaches only the workers
        # already registered, and the death of the one holding the only copy lost the data
        # ("lose scattered data, which can't be recovered": a fresh-venv test run)
        client.wait_for_workers(int(workers), timeout=120)
        yield client


def _fault(ids: Sequence[str]) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    mode, image_id, marker = spec.split(":", 2)
    if image_id in ids and not os.path.exists(marker):
        open(marker, "w").close()
        if mode == "exit":
            os._exit(1)  # the worker process dies, as by an out-of-memory kill
        raise RuntimeError(f"test fault in the batch holding {image_id}")


def _task(source: Any, ext: Any, ids: Sequence[str]) -> tuple[list[Any], np.ndarray]:
    """One batch on a worker (importable by name, so workers run installed code)."""
    from imgclust.run.extract import featurise_files

    _fault(ids)
    return featurise_files(source, ext, ids, threads=2)


def featurise_distributed(source: Any, ext: Any, chunks: Sequence[Sequence[str]],
                          workers: int | None = None, scheduler: str | None = None,
                          retries: int = RETRIES) -> Iterator[tuple[list[Any], np.ndarray]]:
    """Run :func:`~imgclust.run.extract.featurise_files` on each chunk of ids as Dask tasks.

    Parameters
    ----------
    source : FolderSource
    ext : fitted images step
    chunks : sequence of sequences of ids
    workers, scheduler
        See :func:`client_for`.
    retries : int
        Times a failed task is run again.

    Yields
    ------
    (rows, X) per chunk, in the order they finish.
    """
    distributed = _dask()
    src = copy.copy(source)  # what a worker needs: the root and the decode limits
    src._ids, src.failures, src.scan_failures = None, [], []
    try:
        pickle.dumps(ext)
        ext_sent = ext
    except Exception:  # noqa: BLE001 - a loaded model session: each worker loads its own
        from sklearn.base import clone

        ext_sent = clone(ext)
    token = uuid.uuid4().hex[:8]
    with client_for(workers, scheduler) as client:
        src_f = client.scatter(src, broadcast=True)
        ext_f = client.scatter(ext_sent, broadcast=True)  # one copy (one model load) per worker
        futures = [client.submit(_task, src_f, ext_f, list(c), key=f"imgclust-{token}-{i}",
                                 retries=retries, pure=False)
                   for i, c in enumerate(chunks)]
        for fut in distributed.as_completed(futures):
            rows, X = fut.result()
            fut.release()
            yield rows, X
