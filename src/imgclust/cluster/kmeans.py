"""k-means and mini-batch k-means (scikit-learn's own classes)."""
from sklearn.cluster import KMeans, MiniBatchKMeans

from imgclust.cluster.registry import CLUSTERERS

CLUSTERERS.add(
    "kmeans", KMeans, primary="n_clusters", k_param="n_clusters",
    criteria=("silhouette", "elbow", "density"), sweep="k",
    # one k-means++ start (scikit-learn's n_init="auto") is noticeably less stable on image
    # features than the best of ten
    defaults={"n_init": 10},
    about="k-means: k centres, each image in the cluster of the nearest.\n\n"
          "k-means (scikit-learn): k cluster centres, each image in the cluster of the nearest "
          "centre, the centres moved until the summed squared distances (inertia) stop "
          "falling; the best of n_init=10 starts is kept. Suits compact, similar-sized groups.")
CLUSTERERS.add(
    "minibatch-kmeans", MiniBatchKMeans, primary="n_clusters", k_param="n_clusters",
    criteria=("silhouette", "elbow", "density"), sweep="k", defaults={"n_init": 3},
    about="k-means on small batches: bounded memory for large sets.\n\n"
          "Mini-batch k-means (scikit-learn): k-means that moves its centres from small random "
          "batches of images (batch_size) instead of all of them at each step: bounded memory "
          "and faster on large sets, slightly less exact; best of n_init=3 starts.")
