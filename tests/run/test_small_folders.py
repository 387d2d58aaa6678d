"""A handful of images through the default photo reduction (UMAP to 10 dimensions)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

import imgclust


def test_umap_on_fewer_images_than_its_dimensions(tmp_path):
    pytest.importorskip("umap")
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(7):  # 7 <= 10 + 2: umap's spectral start fails inside scipy (TypeError)
        a = np.random.default_rng(i).integers(0, 255, (40, 60, 3), np.uint8)
        a[..., i % 2] = 255
        Image.fromarray(a).save(root / f"{i}.png")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="n_neighbors is larger")
        res = imgclust.run(root, tmp_path / "out", features="pixels:8,umap:10", k=2)
    assert len(res.labels_) == 7 and len(set(res.labels_.tolist())) == 2
