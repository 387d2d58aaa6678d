"""A matrix too large to hold stays on disk (issue 15): the same results a block at a time.

:mod:`imgclust.io`'s block readers, and every stage that reads a whole matrix (describe, the
internal scores, the large-n fit, saving), give on a memory-mapped ``.npy`` what they give on
the same matrix in memory, and never read it through its map (which would put every page in
the process's resident memory).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclust import io as iio
from imgclust.cluster import describe
from imgclust.cluster.large import fit_large, fit_on_disk
from imgclust.evaluate import internal_scores


def _blobs(n: int = 3000, k: int = 5, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=8, size=(k, d))
    y = rng.integers(0, k, n)
    return (centres[y] + rng.normal(size=(n, d))).astype(np.float32), y


def _on_disk(tmp_path: Path, X: np.ndarray, name: str = "m.npy") -> np.ndarray:
    iio.write_npy_blocks(tmp_path / name, X.shape, X.dtype,
                         (X[s:s + 777] for s in range(0, len(X), 777)))
    M = iio.open_npy(tmp_path / name)
    assert iio.on_disk(M) is not None and iio.on_disk(M[1:]) is None
    return M


@pytest.fixture
def no_map_reads(monkeypatch):
    """Fail a test that reads a matrix on disk through its map in a whole pass: the map's
    ``__array__``/slicing still work, but the block readers must not go through them."""
    seen = []
    real = np.memmap.__getitem__

    def spy(self, key):
        if iio.on_disk(self) is not None and isinstance(key, (slice, np.ndarray, list)):
            seen.append(key)
        return real(self, key)

    monkeypatch.setattr(np.memmap, "__getitem__", spy)
    return seen


def test_blocks_and_rows_match_memory(tmp_path):
    X, _ = _blobs(2000, d=5)
    M = _on_disk(tmp_path, X)
    got = np.concatenate([b for _, b in iio.row_blocks(M, block_bytes=999)])
    assert np.array_equal(got, X)
    rows = np.array([1999, 0, 5, 5, 1000, 3])
    assert np.array_equal(iio.take_rows(M, rows), X[rows])
    iio.atomic_save_npy(tmp_path / "copy.npy", M)
    assert np.array_equal(np.load(tmp_path / "copy.npy"), X)


def test_write_npy_blocks_refuses_a_short_matrix(tmp_path):
    with pytest.raises(ValueError, match="3 rows written for a matrix of 4"):
        iio.write_npy_blocks(tmp_path / "x.npy", (4, 2), np.float32, [np.zeros((3, 2))])
    assert not (tmp_path / "x.npy").exists() and not list(tmp_path.iterdir())


def test_cut_short_file_is_an_error(tmp_path):
    X, _ = _blobs(500)
    M = _on_disk(tmp_path, X)
    with open(tmp_path / "m.npy", "r+b") as f:
        f.truncate(128 + 100 * X.shape[1] * 4)
    with pytest.raises(OSError, match="cut short"):
        list(iio.row_blocks(M, block_bytes=4096))


def test_describe_and_scores_match_memory(tmp_path, no_map_reads):
    X, y = _blobs(3000)
    labels = y.copy()
    labels[::37] = -1  # some noise
    M = _on_disk(tmp_path, X)
    no_map_reads.clear()
    c0, d0, r0 = describe(X, labels)
    c1, d1, r1 = describe(M, labels)
    np.testing.assert_allclose(c1, c0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d1, d0, rtol=1e-4, atol=1e-5)
    assert r1 == r0
    s0, s1 = internal_scores(X, labels, 0), internal_scores(M, labels, 0)
    for key in ("silhouette", "davies_bouldin", "calinski_harabasz", "noise_share"):
        assert s1[key] == pytest.approx(s0[key], rel=1e-4), key
    assert not no_map_reads


@pytest.mark.parametrize("method", ["minibatch-kmeans", "faiss-kmeans", "kmeans", "agglomerative"])
def test_fit_large_on_disk_finds_the_blobs(tmp_path, method, no_map_reads):
    from sklearn.metrics import adjusted_rand_score

    X, y = _blobs(6000, k=5)
    M = _on_disk(tmp_path, X)
    no_map_reads.clear()
    labels, sel, est, note = fit_large(M, method, k=5, random_state=0, sample_max=1000)
    assert len(labels) == len(X)
    assert adjusted_rand_score(y, labels) > 0.99
    assert note  # says what was fitted on what
    assert not no_map_reads


def test_minibatch_on_disk_is_as_good_as_in_memory(tmp_path):
    """The out-of-core mini-batch fit (sample start + a pass of partial_fit over blocks read
    in shuffled pieces) ends within 2 % of scikit-learn's in-memory fit's inertia."""
    from sklearn.cluster import MiniBatchKMeans

    X, _ = _blobs(20000, k=20, d=8, seed=3)
    X = X[np.argsort(X[:, 0])]  # sorted: a pass in file order would be biased
    M = _on_disk(tmp_path, X)
    ref = MiniBatchKMeans(20, n_init=3, random_state=0).fit(X)
    est = MiniBatchKMeans(20, n_init=3, random_state=0)
    labels, how = fit_on_disk(est, M, 0, sample_max=2000)
    inertia = float(((X - est.cluster_centers_[labels]) ** 2).sum())
    assert inertia <= 1.02 * ref.inertia_
    assert "pass" in how


def test_dask_kmeans_on_disk(tmp_path):
    pytest.importorskip("dask_ml")
    from sklearn.metrics import adjusted_rand_score

    from imgclust.cluster.kmeans import DaskKMeans

    X, y = _blobs(4000, k=4)
    M = _on_disk(tmp_path, X)
    est = DaskKMeans(n_clusters=4, block_rows=1000, random_state=0)
    labels = est.fit_blocks(M)
    assert adjusted_rand_score(y, labels) > 0.99
    assert np.array_equal(est.predict(X[:50]), labels[:50])
    assert adjusted_rand_score(y, DaskKMeans(n_clusters=4, random_state=0).fit_predict(X)) > 0.99


def test_dask_kmeans_checks_its_parameters():
    from imgclust.cluster import registry
    from imgclust.errors import ConfigError

    registry.load_builtins()
    with pytest.raises(ConfigError, match="block_rows"):
        registry.check("dask-kmeans:block_rows=0")


def test_folder_run_keeps_a_large_matrix_on_disk(tmp_path, monkeypatch):
    """Above OUT_OF_CORE_BYTES a folder's matrix is gathered into a .npy on disk and the whole
    run (clusters, scores, features.npy) is what it is in memory."""
    from imgclust.run import extract
    from imgclust.run.pipeline import run

    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    for c in range(3):
        (folder / f"c{c}").mkdir(parents=True)
        base = rng.integers(0, 256, 3)
        for j in range(40):
            px = np.clip(base + rng.normal(0, 12, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(folder / f"c{c}" / f"{j:03d}.png")
    kw = dict(features="pixels:4,pca:5", method="kmeans", k=3, progress=False)
    mem = run(folder, tmp_path / "mem", **kw)
    monkeypatch.setattr(extract, "OUT_OF_CORE_BYTES", 1024)
    monkeypatch.setattr(iio, "OUT_OF_CORE_BYTES", 1024)
    disk = run(folder, tmp_path / "disk", **kw)
    assert iio.on_disk(disk.features_.X) is not None  # the pca output, itself on disk
    assert iio.on_disk(mem.features_.X) is None
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(mem.labels_, disk.labels_) == 1.0
    np.testing.assert_allclose(np.load(tmp_path / "disk" / "features.npy"),
                               np.load(tmp_path / "mem" / "features.npy"), atol=1e-4)
    assert disk.metrics["silhouette"] == pytest.approx(mem.metrics["silhouette"], rel=1e-3)
    # the matrices on disk are the run's cache: a later run in memory removes them
    (d,) = (tmp_path / "disk" / "cache").glob("features-*")
    assert sorted(p.name for p in d.glob("matrix*.npy")) == ["matrix-step1.npy", "matrix.npy"]
    monkeypatch.setattr(extract, "OUT_OF_CORE_BYTES", 1 << 30)
    again = run(folder, tmp_path / "disk", overwrite=True, **kw)
    assert iio.on_disk(again.features_.X) is None and not list(d.glob("matrix*.npy"))
    assert adjusted_rand_score(mem.labels_, again.labels_) == 1.0
