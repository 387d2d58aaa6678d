"""Spectral clustering (scikit-learn) on a nearest-neighbour graph."""
from typing import Any

from sklearn.cluster import SpectralClustering

from imgclust.cluster.registry import CLUSTERERS


def make_spectral(n_clusters: int = 8, affinity: str = "nearest_neighbors",
                  n_neighbors: int = 10, assign_labels: str = "cluster_qr",
                  random_state: Any = None, **kw: Any) -> SpectralClustering:
    """``SpectralClustering`` with a k-NN affinity: the RBF default fails on image features."""
    return SpectralClustering(n_clusters=n_clusters, affinity=affinity, n_neighbors=n_neighbors,
                              assign_labels=assign_labels, random_state=random_state, **kw)


CLUSTERERS.add("spectral", make_spectral, primary="n_clusters", k_param="n_clusters",
               criteria=("silhouette", "density"), sweep="k")
