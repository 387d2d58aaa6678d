"""Spectral clustering on a nearest-neighbour graph: scikit-learn's ``SpectralClustering``
(``spectral``) and ``knn-spectral``, which also chooses k on the graph itself (the Laplacian's
eigengap, modularity, or the smaller of the two)."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import laplacian
from scipy.sparse.linalg import lobpcg
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans, SpectralClustering
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from imgclust.cluster.registry import CLUSTERERS
from imgclust.neighbors import make_index, self_knn


#: up to this many images the Laplacian is decomposed densely (numpy's eigh: 0.2 s at 1,000)
DENSE_MAX = 1000
#: ``n_neighbors=None``: the graph's neighbours when knn-spectral chooses k, and when k is given.
#: The graph rule was measured on 10-NN graphs (bench/results/default.md); at a given k a
#: 15-NN graph joins the styles of one class (digits' three kinds of 1) that the 10-NN graph
#: keeps apart: digits at k = 10 scores ACC 0.988 (10-NN: 0.883), MNIST-10k 0.975 (0.978),
#: 3 seeds each, the same to 3 decimals (BENCHMARKS.md, "Real folders and the k rule").
NEIGHBORS_AUTO_K, NEIGHBORS_GIVEN_K = 10, 15


def knn_graph(X: np.ndarray, n_neighbors: int) -> sparse.csr_matrix:
    """The symmetric k-nearest-neighbour connectivity graph of the rows of ``X``.

    An edge (weight 1) joins two images when either is among the other's ``n_neighbors``
    nearest (Euclidean, itself left out), searched through :mod:`imgclust.neighbors` (exact;
    faiss for large sets where installed). The same graph as scikit-learn's
    ``kneighbors_graph(X, n_neighbors)`` made symmetric by the maximum.
    """
    n = X.shape[0]
    _, idx = self_knn(make_index(X), X, n_neighbors)
    k = idx.shape[1]
    graph = sparse.csr_matrix((np.ones(n * k), idx.ravel(), np.arange(0, n * k + 1, k)),
                              shape=(n, n))
    return graph.maximum(graph.T).astype(np.float64)

CLUSTERERS.add(
    "spectral", SpectralClustering, primary="n_clusters", k_param="n_clusters",
    criteria=("silhouette", "density"), sweep="k",
    # a k-NN affinity: the RBF default fails on image features
    defaults={"affinity": "nearest_neighbors", "n_neighbors": 10, "assign_labels": "cluster_qr"},
    about="Spectral clustering of the nearest-neighbour graph, k given or swept.\n\n"
          "Spectral clustering (scikit-learn): the images' nearest-neighbour graph is embedded "
          "by the eigenvectors of its Laplacian (a matrix whose smallest eigenvectors vary "
          "little along the graph's links), and the embedding is split into k clusters; it "
          "follows groups of any shape. k is given or swept (see knn-spectral, which chooses k "
          "on the graph).")


def eigengap_k(eigenvalues: np.ndarray, k_min: int = 2, k_max: int = 15) -> int:
    """The k in ``[k_min, k_max]`` after which the ascending eigenvalues jump the most.

    The eigengap heuristic (von Luxburg, *A tutorial on spectral clustering*, 2007, §8.3): a
    graph of k loosely joined groups has k normalised-Laplacian eigenvalues near 0 and then a
    gap. ``eigenvalues`` must be sorted ascending and hold at least ``k_min + 1`` values.
    """
    lam = np.asarray(eigenvalues, dtype=float)
    hi = min(k_max, len(lam) - 1)
    if hi < k_min:
        raise ValueError(f"eigengap: {len(lam)} eigenvalues cannot choose k >= {k_min}")
    ks = np.arange(k_min, hi + 1)
    return int(ks[np.argmax(lam[ks] - lam[ks - 1])])


def modularity(adjacency: sparse.spmatrix, labels: np.ndarray) -> float:
    """Newman's modularity of a partition of a weighted undirected graph.

    ``Q = sum over clusters c of (w_c / 2m - (d_c / 2m) ** 2)``, with ``w_c`` the weight of the
    edges inside c counted both ways, ``d_c`` the total degree of c and ``2m`` the total degree.
    Written here as sparse arithmetic because networkx would first copy a 100,000-edge graph into
    Python objects. Noise labels (< 0) are not allowed.
    """
    coo = sparse.coo_matrix(adjacency)
    labels = np.asarray(labels)
    k = int(labels.max()) + 1
    degree = np.bincount(coo.row, weights=coo.data, minlength=len(labels))
    two_m = degree.sum()
    if two_m <= 0:
        return 0.0
    inside = labels[coo.row] == labels[coo.col]
    w = np.bincount(labels[coo.row[inside]], weights=coo.data[inside], minlength=k)
    d = np.bincount(labels, weights=degree, minlength=k)
    return float((w / two_m - (d / two_m) ** 2).sum())


#: how ``knn-spectral`` may choose k itself
K_RULES = ("graph", "modularity", "eigengap")


def rule_ks(table: list[dict[str, Any]]) -> tuple[int, int]:
    """Each rule's own k over a table of candidates: (largest ``gap``, highest ``modularity``)."""
    return (max(table, key=lambda r: r["gap"])["k"],
            max(table, key=lambda r: r["modularity"])["k"])


def graph_k(table: list[dict[str, Any]]) -> tuple[int, str]:
    """``k_rule="graph"``: the smaller of the eigengap's k and modularity's k.

    ``table`` holds one row per candidate k with ``gap`` (the jump after the k-th eigenvalue)
    and ``modularity``. Where either rule went wrong on the glyph default it found too many
    clusters, each for its own reason: the eigengap on small samples, whose noisy spectrum puts
    the largest gap late (500 MNIST images: k = 12, ACC 0.85); modularity on sets of a few
    classes, which it splits into their styles (MNIST 3/5/8: k = 7, ACC 0.51; 1/7: k = 7–9).
    Taking the smaller needs no threshold and, over 12 MNIST-derived and digits sets x 3 seeds,
    scored mean ACC 0.950 against 0.940 (eigengap), 0.739 (modularity) and 0.924 (eigengap
    when 1.2x the next gap, else modularity) — bench/results/default.md. It under-splits
    where the eigengap does (MNIST shrunk to 8x8: k = 7).

    Returns
    -------
    k, and which rule gave it: ``"eigengap"``, ``"modularity"`` or ``"both"``
    """
    k_gap, k_mod = rule_ks(table)
    if k_gap == k_mod:
        return k_gap, "both"
    return (k_gap, "eigengap") if k_gap < k_mod else (k_mod, "modularity")


class KNNSpectral(ClusterMixin, BaseEstimator):
    """Spectral clustering of the nearest-neighbour graph, k chosen on that graph.

    The images' nearest-neighbour graph is embedded by the eigenvectors of its Laplacian and
    split by k-means; k is chosen by the eigengap (where the sorted eigenvalues of the graph's
    Laplacian jump most: one small eigenvalue per loosely joined group), by modularity (how many
    more links fall inside clusters than chance would put there), or, by default, the smaller
    of the two.

    Normalised spectral clustering of the k-nearest-neighbour graph (Ng, Jordan & Weiss).

    The images' ``n_neighbors``-nearest-neighbour graph (:func:`knn_graph`: euclidean, an edge
    where either image is among the other's neighbours) gives a normalised Laplacian. Its smallest
    eigenvectors (numpy's ``eigh`` up to 1,000 images, scipy's ``lobpcg`` beyond) embed the
    images; for k clusters the first k of them, each row scaled to unit length, are split by
    k-means. With ``n_clusters="auto"`` one decomposition serves every k in
    ``[min_clusters, max_clusters]`` and k is chosen on the graph:

    - ``k_rule="eigengap"``: the largest gap between consecutive eigenvalues
      (:func:`eigengap_k`) — one k-means only, but fooled by groups made of sub-styles, whose own
      small eigenvalues put the largest gap at the wrong k;
    - ``k_rule="modularity"``: the k whose clustering has the highest modularity on the graph
      (Newman 2006), the share of links inside clusters beyond chance — steady where the
      spectrum has no clear gap, but it splits a few large groups into their sub-styles;
    - ``k_rule="graph"`` (default): the smaller of the two (:func:`graph_k`), since each, when
      wrong, found too many clusters.

    scikit-learn's ``SpectralClustering`` (``spectral``) takes k as given and recomputes the
    embedding for each k, which is why this one is written here; the graph, the eigensolvers
    and k-means are the libraries'.

    Parameters
    ----------
    n_clusters : int or "auto", default="auto"
    n_neighbors : int or None, default=None
        Neighbours per image in the graph; ``None``: 10 when k is chosen (the graph rule was
        measured on 10-NN graphs) and 15 when ``n_clusters`` is given (a 15-NN graph joins one
        class's styles: digits at k = 10, ACC 0.988 against 0.883; see ``NEIGHBORS_GIVEN_K``).
    k_rule : {"graph", "modularity", "eigengap"}, default="graph"
        How ``n_clusters="auto"`` chooses k.
    min_clusters, max_clusters : int, default=2, 15
        Range searched by ``n_clusters="auto"``.
    n_init : int, default=10
        k-means restarts in the embedding.
    random_state : int, optional
        Seeds the eigensolver's start vectors and k-means.

    Attributes
    ----------
    labels_ : ndarray of shape (n_images,)
    n_clusters_ : int
    n_neighbors_ : int
        The neighbours per image the graph was built with.
    eigenvalues_ : ndarray
        The smallest eigenvalues of the normalised Laplacian, ascending.
    embedding_ : ndarray of shape (n_images, n_clusters_)
        The row-normalised spectral embedding k-means ran in.
    k_table_ : list of dict
        With ``n_clusters="auto"``: per k, the k-th eigenvalue, the gap after it, the
        clustering's modularity (not with ``k_rule="eigengap"``) and whether it was chosen.
    k_decided_by_ : str
        With ``n_clusters="auto"``: ``"eigengap"``, ``"modularity"`` or ``"both"``, the rule
        that gave k.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(c, 0.1, (30, 2)) for c in (0, 3, 6)])
    >>> KNNSpectral(random_state=0).fit(X).n_clusters_
    3
    """

    def __init__(self, n_clusters: int | str = "auto", n_neighbors: int | None = None,
                 k_rule: str = "graph", min_clusters: int = 2, max_clusters: int = 15,
                 n_init: int = 10, random_state: int | np.random.RandomState | None = None
                 ) -> None:
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.k_rule = k_rule
        self.min_clusters = min_clusters
        self.max_clusters = max_clusters
        self.n_init = n_init
        self.random_state = random_state

    def _validate_params_(self) -> None:
        """Check the parameters without data (fit checks ``n_clusters`` against the images)."""
        def positive_int(name: str) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}={v!r} must be a positive integer")

        if isinstance(self.n_clusters, str):
            if self.n_clusters != "auto":
                raise ValueError(f"n_clusters={self.n_clusters!r} must be 'auto' or an integer")
        else:
            positive_int("n_clusters")
        for name in ("min_clusters", "max_clusters", "n_init"):
            positive_int(name)
        if self.n_neighbors is not None:
            positive_int("n_neighbors")
        if self.k_rule not in K_RULES:
            raise ValueError(f"k_rule={self.k_rule!r}; valid: {', '.join(K_RULES)}")
        check_random_state(self.random_state)

    def fit(self, X: Any, y: Any = None) -> "KNNSpectral":
        """Build the graph, decompose its Laplacian, choose k if asked, run k-means."""
        self._validate_params_()
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        n = len(X)
        auto = self.n_clusters == "auto"
        if not auto and not 1 <= int(self.n_clusters) <= n:
            raise ValueError(f"n_clusters={self.n_clusters} must be between 1 and {n}")
        for name in ("k_table_", "k_decided_by_"):  # only n_clusters="auto" sets them
            self.__dict__.pop(name, None)
        rng = check_random_state(self.random_state)
        nn = self.n_neighbors if self.n_neighbors is not None else (
            NEIGHBORS_AUTO_K if auto else NEIGHBORS_GIVEN_K)
        self.n_neighbors_ = min(int(nn), n - 1)
        affinity = knn_graph(X, self.n_neighbors_)
        top = max(self.max_clusters, self.min_clusters) if auto else int(self.n_clusters)
        vals, vecs = self._eigen(affinity, min(n, top + 1), rng)
        self.eigenvalues_ = np.clip(vals, 0.0, None)

        def embed(k: int) -> np.ndarray:
            emb = vecs[:, :k]
            norms = np.linalg.norm(emb, axis=1, keepdims=True)
            return emb / np.where(norms > 0, norms, 1.0)

        def split(k: int) -> np.ndarray:
            km = KMeans(k, n_init=self.n_init, random_state=rng.randint(2**31 - 1))
            return km.fit_predict(embed(k))

        if not auto:
            k = int(self.n_clusters)
            self.labels_ = split(k)
        else:
            lam = self.eigenvalues_
            hi = min(self.max_clusters, len(lam) - 1)
            if hi < self.min_clusters:
                raise ValueError(f"knn-spectral: {n} images cannot be split into "
                                 f"{self.min_clusters} or more clusters")
            ks = range(self.min_clusters, hi + 1)
            table = [{"k": kk, "eigenvalue": float(lam[kk - 1]),
                      "gap": float(lam[kk] - lam[kk - 1])} for kk in ks]
            fits: dict[int, np.ndarray] = {}  # labels per k (small: no embeddings kept)
            by_rule: dict[str, int] = {}  # graph: each rule's own k, shown in the report
            if self.k_rule == "eigengap":
                k, self.k_decided_by_ = eigengap_k(lam, self.min_clusters, hi), "eigengap"
            else:
                for row in table:
                    fits[row["k"]] = split(row["k"])
                    row["modularity"] = modularity(affinity, fits[row["k"]])
                if self.k_rule == "graph":
                    k, self.k_decided_by_ = graph_k(table)
                    by_rule = dict(zip(("k_eigengap", "k_modularity"), rule_ks(table)))
                else:
                    k, self.k_decided_by_ = rule_ks(table)[1], "modularity"
            for row in table:
                row["chosen"] = row["k"] == k
                if row["chosen"]:
                    row["decided_by"] = self.k_decided_by_
                    row.update(by_rule)
            self.k_table_ = table
            self.labels_ = fits[k] if k in fits else split(k)
        self.embedding_ = embed(k)
        self.n_clusters_ = k
        return self

    @staticmethod
    def _eigen(affinity: sparse.spmatrix, n_vec: int, rng: np.random.RandomState
               ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n_vec`` smallest eigenpairs of the graph's normalised Laplacian, ascending."""
        n = affinity.shape[0]
        lap, dd = laplacian(affinity, normed=True, return_diag=True)
        if n <= DENSE_MAX or n_vec * 5 >= n:
            vals, vecs = np.linalg.eigh(lap.toarray())
            return vals[:n_vec], vecs[:, :n_vec]
        # LOBPCG, a block method: it finds repeated eigenvalues (one 0 per connected part of the
        # graph) that single-vector Lanczos (eigsh) can miss; as in scikit-learn's
        # spectral_embedding, the first start vector is the known null vector sqrt(degree)
        start = rng.standard_normal((n, n_vec))
        start[:, 0] = dd
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "did not reach tol": still usable
            vals, vecs = lobpcg(lap, start, tol=1e-5, maxiter=2000, largest=False)
        order = np.argsort(vals)
        return vals[order], vecs[:, order]


CLUSTERERS.add("knn-spectral", KNNSpectral, primary="n_clusters", k_param="n_clusters",
               criteria=("graph", "modularity", "eigengap", "silhouette"), sweep="k")
