"""Decoding and featurising on Dask (issue 15): same clusters as one process; a failed batch
or a dead worker is run again, no image lost or stored twice."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import imgclust
from imgclust.distributed import FAULT_ENV
from imgclust.run.catalog import Catalog
from imgclust.run.store import CATALOG_FILE, STORE_FILE

distributed = pytest.importorskip("distributed")

ARGS = dict(features="pixels:8", method="kmeans", k=3, seed=0, batch_size=4)


@pytest.fixture
def folder(tmp_path, make_colors):
    root = tmp_path / "imgs"
    make_colors(root, n_per=8)  # 24 images, 6 batches of 4
    return root


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as c:
        yield c


def _store_rows(out) -> int:
    (d,) = (out / "cache").glob("features-*")
    cat = Catalog(d / CATALOG_FILE)
    n, count = cat.n_rows(), cat.count("ok")
    cat.close()
    assert (d / STORE_FILE).stat().st_size == n * 8 * 8 * 3 * 4
    return n if n == count else -1


def test_dask_gives_the_single_process_clusters(tmp_path, folder, cluster):
    one = imgclust.run(folder, tmp_path / "one", **ARGS)
    dask = imgclust.run(folder, tmp_path / "dask", **ARGS, scheduler=cluster.scheduler_address)
    assert dask.summary["features"]["cache"]["decoded"] == 24
    np.testing.assert_array_equal(one.features_.X, dask.features_.X)
    assert (tmp_path / "one" / "clusters.csv").read_bytes() == \
        (tmp_path / "dask" / "clusters.csv").read_bytes()
    assert _store_rows(tmp_path / "dask") == 24


def test_failed_batch_is_retried_without_loss_or_duplicates(tmp_path, folder, cluster,
                                                            monkeypatch):
    marker = tmp_path / "failed-once"
    monkeypatch.setenv(FAULT_ENV, f"raise:green/green_3.png:{marker}")
    res = imgclust.run(folder, tmp_path / "run", **ARGS, scheduler=cluster.scheduler_address)
    assert marker.exists()  # the fault did happen
    assert len(res.ids) == len(set(res.ids)) == 24 and res.summary["n_skipped"] == 0
    assert _store_rows(tmp_path / "run") == 24  # no row stored twice
    ref = imgclust.run(folder, tmp_path / "ref", **{**ARGS})
    assert (tmp_path / "run" / "clusters.csv").read_bytes() == \
        (tmp_path / "ref" / "clusters.csv").read_bytes()


def test_cli_workers_survive_a_dead_worker_process(tmp_path, folder):
    """``--workers 2``: a real local cluster of processes; the worker running one batch exits
    (as by an out-of-memory kill), the scheduler reruns that batch elsewhere."""
    marker = tmp_path / "died-once"
    out = tmp_path / "run"
    env = {**os.environ, FAULT_ENV: f"exit:red/red_5.png:{marker}"}
    p = subprocess.run([sys.executable, "-m", "imgclust.cli", "run", str(folder), "-o", str(out),
                        "-f", "pixels:8", "-m", "kmeans", "-k", "3", "--batch-size", "4",
                        "--workers", "2", "-q", "--no-report"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert marker.exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == 24 and summary["features"]["cache"]["decoded"] == 24
    assert _store_rows(out) == 24


def test_workers_need_a_folder_and_a_run_dir(tmp_path):
    from imgclust.errors import ConfigError

    with pytest.raises(ConfigError, match="not a folder"):
        imgclust.run("dataset:digits", tmp_path / "r", features="pixels", method="kmeans", k=3,
                     workers=2)
    assert not (tmp_path / "r").exists()  # refused before the run folder is made
    with pytest.raises(ConfigError, match="not both"):
        imgclust.run("dataset:digits", tmp_path / "r", workers=2, scheduler="tcp://x:8786")
    with pytest.raises(ConfigError, match="run directory"):
        imgclust.run("dataset:digits", features="pixels", workers=2)
    assert not (tmp_path / "r").exists()


def test_dask_kmeans_runs_on_the_run_cluster(tmp_path, folder, cluster, monkeypatch):
    """-m dask-kmeans with --scheduler: dask-ml's k-means runs on that cluster, the matrix's
    blocks read from the run folder by its workers (here kept on disk by a low threshold)."""
    from sklearn.metrics import adjusted_rand_score

    from imgclust import io as iio
    from imgclust.run import extract

    import functools

    from imgclust.cluster import large
    from imgclust.run import clustering

    monkeypatch.setattr(extract, "OUT_OF_CORE_BYTES", 256)
    # above the sample size: fit_on_disk -> DaskKMeans.fit_blocks, read by the workers
    monkeypatch.setattr(clustering, "fit_large", functools.partial(large.fit_large,
                                                                   sample_max=10))
    args = {**ARGS, "method": "dask-kmeans"}
    res = imgclust.run(folder, tmp_path / "dk", **args, scheduler=cluster.scheduler_address)
    assert iio.on_disk(res.features_.X) is not None
    one = imgclust.run(folder, tmp_path / "one", **ARGS)
    assert adjusted_rand_score(one.labels_, res.labels_) == 1.0
    assert res.summary["method"]["name"] == "dask-kmeans"
    assert "read the 24 images from disk a block at a time" in res.summary["k"]["note"]
