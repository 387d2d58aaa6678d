"""Density-based clustering (scikit-learn): DBSCAN and HDBSCAN. Label -1 is noise."""
from typing import Any

from sklearn.cluster import DBSCAN, HDBSCAN

from imgclust.cluster.registry import CLUSTERERS


def make_hdbscan(min_cluster_size: int = 5, min_samples: int | None = None, copy: bool = True,
                 **kw: Any) -> HDBSCAN:
    """scikit-learn's ``HDBSCAN``; ``copy=True`` so the caller's features are never modified."""
    return HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=copy, **kw)


CLUSTERERS.add("dbscan", DBSCAN, primary="eps", k_param=None, criteria=("eps",), sweep="eps")
CLUSTERERS.add("hdbscan", make_hdbscan, primary="min_cluster_size", k_param=None, criteria=(),
               sweep=None)
