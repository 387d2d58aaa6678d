"""Agglomerative clustering (scikit-learn): ward, complete, average, single linkage."""
from sklearn.cluster import AgglomerativeClustering

from imgclust.cluster.registry import CLUSTERERS

CLUSTERERS.add("agglomerative", AgglomerativeClustering, primary="n_clusters",
               k_param="n_clusters", criteria=("silhouette", "elbow", "density"), sweep="k")
