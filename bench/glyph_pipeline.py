"""The glyph default's choices, measured: HOG blocks, PCA, and the rule that picks k.

    python bench/glyph_pipeline.py [/path/to/mnist10k.npz]

Works on arrays (scikit-learn's digits / 16, MNIST-10k / 255), with the same transformers the
default uses (``resize`` for the 8x8 digits, ``deskew``, ``hog``, PCA, ``knn-spectral``), one
seed. Labels are used only to score. Prints three Markdown tables:

1. ACC at the true k = 10 for HOG with 2x2 or 3x3-cell blocks, with or without PCA to 50;
2. the k each rule picks on the default's graph (graph = the default, the smaller of the other
   two; modularity; eigengap) and its ACC, 3 seeds, on digits, MNIST-10k, MNIST shrunk to 8x8
   (area average, 17 gray levels, like scikit-learn's digits), random MNIST samples and subsets
   of a few digit classes (PCA fitted on each set, as the default does);
3. the modularity curve around k = 10 (the default's choice is its maximum).
"""
from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from imgclust.cluster.spectral import KNNSpectral
from imgclust.evaluate.metrics import hungarian_accuracy
from imgclust.features.hog import HOG
from imgclust.features.reduce import Deskew, Resize


SEEDS = (0, 1, 2)


def hog_features(X: np.ndarray, small: bool, cells_per_block: int) -> np.ndarray:
    steps = ([Resize(24)] if small else []) + [Deskew(), HOG(cells_per_block=cells_per_block)]
    for step in steps:
        X = step.fit_transform(X)
    return X


def main() -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    npz = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/datasets/mnist10k.npz"
    d = load_digits()
    with np.load(npz) as z:
        images = z["images"]
        mnist = (images.reshape(len(images), -1) / 255.0).astype(np.float32), z["labels"]
    data = {"digits": ((d.data / 16.0).astype(np.float32), d.target, True), "MNIST-10k": (*mnist, False)}

    print("| data | HOG blocks | PCA | ACC at k=10 | seconds |\n|---|---|---|---|---|")
    feats = {}
    for name, (X, y, small) in data.items():
        for cpb in (2, 3):
            H = hog_features(X, small, cpb)
            feats[name, cpb] = H
            for pca in (None, 50):
                t = time.perf_counter()
                F = PCA(pca, random_state=0).fit_transform(H) if pca else H
                lab = KNNSpectral(10, random_state=0).fit(F).labels_
                print(f"| {name} | {cpb}x{cpb} | {pca or 'none'} | "
                      f"{hungarian_accuracy(y, lab):.3f} | {time.perf_counter() - t:.1f} |", flush=True)

    print("\n| data | n | graph (default): k, ACC | decided by | modularity: k, ACC | "
          "eigengap: k, ACC |\n|---|---|---|---|---|---|")
    small = (np.round(np.stack([np.asarray(Image.fromarray(im).resize((8, 8), Image.Resampling.BOX),
                                           dtype=np.float32) for im in images]) / 255 * 16) / 16)
    sets = [("digits", feats["digits", 3], data["digits"][1]),
            ("MNIST-10k", feats["MNIST-10k", 3], data["MNIST-10k"][1]),
            ("MNIST shrunk to 8x8", hog_features(small.reshape(len(small), -1), True, 3), mnist[1])]
    rng = np.random.default_rng(1)
    for n in (500, 1000, 3000):
        i = rng.choice(len(mnist[1]), n, replace=False)
        sets.append((f"MNIST random {n}", feats["MNIST-10k", 3][i], mnist[1][i]))
    for classes in ((3, 5, 8), (0, 1, 2, 3, 4), (4, 7, 9), (2, 6, 8, 9), (1, 7), (0, 2, 5, 6, 7, 9)):
        i = np.flatnonzero(np.isin(mnist[1], classes))
        sets.append(("MNIST " + "/".join(map(str, classes)), feats["MNIST-10k", 3][i], mnist[1][i]))
    curves, means = {}, {"graph": [], "modularity": [], "eigengap": []}
    for name, H, y in sets:
        for seed in SEEDS:
            F = PCA(50, iterated_power=3, random_state=seed).fit_transform(H)
            row = [name if seed == SEEDS[0] else "", str(len(F))]
            for rule in ("graph", "modularity", "eigengap"):
                est = KNNSpectral(k_rule=rule, random_state=seed).fit(F)
                acc = hungarian_accuracy(y, est.labels_)
                means[rule].append(acc)
                row.append(f"{est.n_clusters_}, {acc:.3f}")
                if rule == "graph":
                    row.append(est.k_decided_by_)
                if rule == "modularity" and name in ("digits", "MNIST-10k") and seed == SEEDS[0]:
                    curves[name] = {r["k"]: r["modularity"] for r in est.k_table_}
            print("| " + " | ".join(row) + " |", flush=True)
    print("| mean ACC | | " + " | ".join(f"{np.mean(means[r]):.3f}" + (" | " if r == "graph" else "")
                                      for r in means) + " |")

    print("\n| data | " + " | ".join(f"k={k}" for k in range(8, 14)) + " |\n|---|"
          + "---|" * 6)
    for name, q in curves.items():
        print(f"| {name} | " + " | ".join(f"{q[k]:.3f}" for k in range(8, 14)) + " |")


if __name__ == "__main__":
    main()
