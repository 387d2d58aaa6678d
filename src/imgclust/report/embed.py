"""Samples and 2-D embeddings for the report's map and silhouette diagram.

Both are computed on a stratified sample, so that a run of 100,000 images still gives a report
that builds in seconds and opens at once; every cluster keeps some points in the sample.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from imgclust.io import atomic_write_bytes, take_rows

#: points on the map (t-SNE: 4 s for 1,800 points, 12 s for 4,000 on 2 cores; UMAP on 4,096
#: points or more switches to approximate neighbours, whose compilation costs tens of seconds)
MAP_POINTS = 4000
#: images in the silhouette diagram (silhouette_samples is O(n^2) in time and memory)
SILHOUETTE_POINTS = 4000
#: below this many points neither t-SNE's neighbourhoods nor UMAP's spectral start mean much;
#: the map is PCA instead
MIN_MAP_POINTS = 30
#: part of the cached map's key; raised when what a method name draws changes
MAP_VERSION = 2


def stratified_sample(labels: np.ndarray, max_points: int, seed: int = 0,
                      min_per_cluster: int = 20) -> np.ndarray:
    """Sorted row indices: all rows if there are at most ``max_points``, else a random sample
    with each cluster's share kept and at least ``min_per_cluster`` rows of each (if it has them).
    """
    n = len(labels)
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    uniq, counts = np.unique(labels, return_counts=True)
    floor_ = np.minimum(counts, max(1, min(min_per_cluster, max_points // len(uniq))))
    quota = np.maximum(floor_, np.floor(counts * max_points / n).astype(int))
    excess = int(quota.sum()) - max_points
    if excess > 0:  # the minimums pushed it over: take the excess from the large clusters
        spare = quota - floor_
        quota -= np.ceil(spare * (excess / spare.sum())).astype(int)
    picks = [rng.choice(np.flatnonzero(labels == c), size=int(q), replace=False)
             for c, q in zip(uniq, quota)]
    return np.sort(np.concatenate(picks))


def embed_2d(X: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """A 2-D embedding of the rows of ``X`` for the map.

    Parameters
    ----------
    X : ndarray of shape (n_points, n_features)
    method : {"auto", "umap", "tsne", "pca"}
        ``auto``: the features themselves when they are already 2-D, PCA for fewer than 30
        points, else scikit-learn's t-SNE. t-SNE rather than UMAP: UMAP's just-in-time
        compilation costs ~14 s in every new process (a digits report: 16 s with UMAP, 6 s
        with t-SNE), and t-SNE draws well-separated groups as clearly.

    Returns
    -------
    xy : ndarray of shape (n_points, 2)
    method : str
        What was used, for the plot's title.
    """
    X = np.asarray(X, dtype=np.float32)
    n, d = X.shape
    if method == "auto":
        if d <= 2:
            method = "features"
        elif n < MIN_MAP_POINTS:
            method = "pca"
        else:
            method = "tsne"
    if method == "features" or d <= 2:
        xy = np.zeros((n, 2), np.float32)
        xy[:, :d] = X
        return xy, "features"
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(X), "PCA"
    if len(X) > 50 and d > 50:  # both UMAP and t-SNE are faster, and no worse, after PCA to 50
        from sklearn.decomposition import PCA

        X = PCA(n_components=50, random_state=seed).fit_transform(X)
    if method == "umap":
        from imgclust.features.reduce import make_umap

        reducer = make_umap(n_components=2, n_neighbors=min(15, n - 1), min_dist=0.1,
                            random_state=seed)  # umap-learn's default spread for a picture
        return reducer.fit_transform(X), "UMAP"
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca",
                    random_state=seed).fit_transform(X), "t-SNE"
    raise ValueError(f"map method {method!r}; valid: auto, umap, tsne, pca")


def cached_map(run_dir: Path, X: np.ndarray, labels: np.ndarray, method: str, seed: int
               ) -> tuple[np.ndarray, np.ndarray, str]:
    """The sampled rows and their 2-D map, reused from ``thumbs/map.npz`` when the features
    and settings are unchanged (the embedding is the slowest part of a report).

    The map does not depend on the clusters, so ``imgclust recluster`` (a new k on the same
    features) reuses it; the sample of rows is stratified by the clusters it was first drawn for.
    """
    # MAP_VERSION: a map cached before "auto" meant t-SNE (it was UMAP) is not reused as "auto"
    h = hashlib.sha256(f"{MAP_VERSION}:{method}:{seed}:{MAP_POINTS}:{X.shape}".encode())
    st = (run_dir / "features.npy").stat()
    h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    key = h.hexdigest()[:20]
    path = run_dir / "thumbs" / "map.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key:
                return z["rows"], z["xy"], str(z["method"])
    except (OSError, KeyError, ValueError):
        pass
    rows = stratified_sample(labels, MAP_POINTS, seed)
    xy, used = embed_2d(take_rows(X, rows), method, seed)  # plain reads of a mapped matrix
    buf = io.BytesIO()
    np.savez(buf, key=key, rows=rows, xy=np.asarray(xy, np.float32), method=used)
    atomic_write_bytes(path, buf.getvalue())
    return rows, np.asarray(xy, np.float32), used


def silhouette_sample(X: np.ndarray, labels: np.ndarray, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-image silhouettes of a sample of the non-noise rows: (values, labels), or ``None``
    when silhouette is undefined (fewer than two clusters)."""
    from sklearn.metrics import silhouette_samples

    keep = np.flatnonzero(labels >= 0)
    if len(np.unique(labels[keep])) < 2 or len(np.unique(labels[keep])) >= len(keep):
        return None
    rows = keep[stratified_sample(labels[keep], SILHOUETTE_POINTS, seed, min_per_cluster=2)]
    lab = labels[rows]
    if len(np.unique(lab)) < 2:
        return None
    return silhouette_samples(np.asarray(take_rows(X, rows), dtype=np.float32), lab), lab
