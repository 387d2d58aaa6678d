"""Memory of a folder's run does not grow with the number of images beyond the feature matrix
and the ids (issue 15: peak RSS flat from 10k to 100k images).

The extraction of a folder through its catalogue and feature store is traced (tracemalloc,
which counts numpy's buffers too) at n and 4n tiny generated images, first run and rerun: what
it holds once done and its peak, per image added, must stay within the matrix row (4 bytes a
feature) plus a small allowance for the id and its record. The blocks the store and the
catalogue are read in are made small here, so that they are full at both sizes (at 100k images
they are 4 MiB and 4,096 entries). Measured on 6x6 PNGs (48 features, bound 442 bytes an
image): 190-330 bytes an image now; 530-1,170 before stop 12 (a list of ImageRecord objects, a
dict of every catalogue entry, the matrix gathered in blocks of 65,536 rows), which fails.
"""
from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclust.run import store
from imgclust.run.catalog import Catalog
from imgclust.run.extract import extract_features
from imgclust.sources.folder import FolderSource

N = 300
#: bytes an image beyond the matrix row: the id string (about 60 bytes here, held by the
#: source and shared by the records), list slots, the records' arrays, the store row index
ALLOWANCE = 250


def _folder(root: Path, n: int) -> Path:
    rng = np.random.default_rng(n)
    for j in range(n):
        sub = root / f"d{j // 500:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(
            sub / f"img{j:06d}.png")
    return root


def _traced(folder: Path, cache: Path) -> tuple[int, int, int]:
    """(bytes held after the extraction, its peak, width) for a run on ``folder``."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        feats, records, _, _ = extract_features(FolderSource(folder), "pixels:4", batch_size=64,
                                                progress=False, cache_dir=cache)
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
        n_rows = feats.X.shape[0]
        dim = feats.X.shape[1]
    finally:
        tracemalloc.stop()
    assert len(records) == n_rows
    return held - base, peak - base, dim


def test_extraction_memory_per_image_is_the_matrix_row_and_the_id(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "TAKE_BLOCK_BYTES", 2048)
    monkeypatch.setattr(Catalog, "FETCH_MAX", 64)
    warm = _folder(tmp_path / "warm", 70)  # imports and first-call caches, before tracing
    extract_features(FolderSource(warm), "pixels:4", batch_size=64, progress=False,
                     cache_dir=tmp_path / "c-warm")
    small, large = _folder(tmp_path / "small", N), _folder(tmp_path / "large", 4 * N)
    for what in ("first run", "rerun"):  # the rerun reads the catalogue and decodes nothing
        held_s, peak_s, dim = _traced(small, tmp_path / "c-small")
        held_l, peak_l, _ = _traced(large, tmp_path / "c-large")
        per_image = 4 * dim + ALLOWANCE
        assert (held_l - held_s) / (3 * N) < per_image, (what, held_s, held_l)
        assert (peak_l - peak_s) / (3 * N) < per_image, (what, peak_s, peak_l)
