"""k-means and mini-batch k-means (scikit-learn)."""
from typing import Any

from sklearn.cluster import KMeans, MiniBatchKMeans

from imgclust.cluster.registry import CLUSTERERS


def make_kmeans(n_clusters: int = 8, n_init: int = 10, algorithm: str = "lloyd",
                random_state: Any = None, **kw: Any) -> KMeans:
    """scikit-learn's ``KMeans`` (k-means++) with ``n_init=10`` restarts by default: its own
    default of one restart is noticeably less stable on image features."""
    return KMeans(n_clusters=n_clusters, n_init=n_init, algorithm=algorithm,
                  random_state=random_state, **kw)


def make_minibatch(n_clusters: int = 8, n_init: int = 3, batch_size: int = 1024,
                   random_state: Any = None, **kw: Any) -> MiniBatchKMeans:
    """scikit-learn's ``MiniBatchKMeans`` (bounded memory per step) with three restarts."""
    return MiniBatchKMeans(n_clusters=n_clusters, n_init=n_init, batch_size=batch_size,
                           random_state=random_state, **kw)


CLUSTERERS.add("kmeans", make_kmeans, primary="n_clusters", k_param="n_clusters",
               criteria=("silhouette", "elbow", "density"), sweep="k")
CLUSTERERS.add("minibatch-kmeans", make_minibatch, primary="n_clusters", k_param="n_clusters",
               criteria=("silhouette", "elbow", "density"), sweep="k")
