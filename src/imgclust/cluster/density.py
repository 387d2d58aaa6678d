"""Density-based clustering (scikit-learn): DBSCAN and HDBSCAN. Label -1 is noise."""
from sklearn.cluster import DBSCAN, HDBSCAN

from imgclust.cluster.registry import CLUSTERERS

CLUSTERERS.add(
    "dbscan", DBSCAN, primary="eps", k_param=None, criteria=("eps",), sweep="eps",
    about="Dense regions within a fixed radius (eps); the rest is noise.\n\n"
          "DBSCAN (scikit-learn): clusters are regions where images lie densely, each image "
          "with at least min_samples others within distance eps; images in no such region are "
          "noise (-1). It finds the number of clusters itself; without eps, eps is swept and "
          "chosen by silhouette.")
CLUSTERERS.add(
    "hdbscan", HDBSCAN, primary="min_cluster_size", k_param=None, criteria=(), sweep=None,
    # copy=True: the caller's features are never modified in place
    defaults={"copy": True},
    about="Dense regions at every radius at once; the rest is noise.\n\n"
          "HDBSCAN (scikit-learn): density-based clustering at every density at once, keeping "
          "the groups that persist longest (at least min_cluster_size images); finds the number "
          "of clusters itself and marks images in no group as noise (-1).")
