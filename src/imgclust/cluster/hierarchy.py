"""Agglomerative clustering (scikit-learn): ward, complete, average, single linkage."""
from sklearn.cluster import AgglomerativeClustering

from imgclust.cluster.registry import CLUSTERERS

CLUSTERERS.add(
    "agglomerative", AgglomerativeClustering, primary="n_clusters", k_param="n_clusters",
    criteria=("silhouette", "elbow", "density"), sweep="k",
    about="Hierarchical clustering: merge the closest clusters until k remain.\n\n"
          "Agglomerative (hierarchical) clustering (scikit-learn): every image starts as its own "
          "cluster and the two closest clusters are merged until k remain; linkage says what "
          "'closest' means (ward: the merge that adds the least within-cluster variance; "
          "average, complete, single: mean, largest or smallest distance between members).")
