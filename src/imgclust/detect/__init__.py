"""Outliers and near-duplicates, on top of the nearest-neighbour layer (:mod:`imgclust.neighbors`).

- :func:`imgclust.detect.outliers.outlier_scores`: a score per image from several detectors
  (Gaussian-mixture density, PCA reconstruction error, distance to the cluster centre,
  k-NN distance), combined, with the top share flagged and the reason named.
- :func:`imgclust.detect.duplicates.find_duplicates`: exact copies (content hash) and
  near-duplicates (64-bit perceptual hash, Hamming radius search; optionally feature cosine).

The submodules are imported on first use, so ``import imgclust.detect`` stays light.
"""
from __future__ import annotations

from typing import Any

__all__ = ["outlier_scores", "find_duplicates"]


def __getattr__(name: str) -> Any:
    if name == "outlier_scores":
        from imgclust.detect.outliers import outlier_scores

        return outlier_scores
    if name == "find_duplicates":
        from imgclust.detect.duplicates import find_duplicates

        return find_duplicates
    raise AttributeError(f"module 'imgclust.detect' has no attribute {name!r}")
