"""clustimage 1.7.1's default on the digits and MNIST-10k: time, chosen k, Hungarian ACC.

Run in its own virtual environment (never in imgclust's):

    python3 -m venv /work/venv-ci-clustimage && . /work/venv-ci-clustimage/bin/activate
    pip install clustimage==1.7.1
    python bench/clustimage_baseline.py [/path/to/mnist10k.npz]

Labels are used only to score. ACC is computed with scipy's Hungarian assignment (the same rule as
imgclust.evaluate.metrics.hungarian_accuracy, repeated here so that this script needs no imgclust).
"""
from __future__ import annotations

import sys
import time

import numpy as np
from scipy.optimize import linear_sum_assignment


def hungarian_acc(y: np.ndarray, p: np.ndarray) -> float:
    ys, ps = np.unique(y), np.unique(p)
    C = np.array([[np.sum((p == a) & (y == b)) for b in ys] for a in ps])
    r, c = linear_sum_assignment(-C)
    return float(C[r, c].sum() / len(y))


def main() -> None:
    from clustimage import Clustimage
    from sklearn.datasets import load_digits

    d = load_digits()
    data = [("digits", d.data / 16.0, d.target)]
    npz = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/datasets/mnist10k.npz"
    with np.load(npz) as z:
        data.append(("mnist10k", z["images"].reshape(len(z["images"]), -1) / 255.0, z["labels"]))
    for name, X, y in data:
        t = time.perf_counter()
        cl = Clustimage(verbose=50)  # the default pipeline: PCA, agglomerative, silhouette
        res = cl.fit_transform(X)
        secs = time.perf_counter() - t
        labels = np.asarray(res["labels"])
        print(f"{name}: n={len(X)} seconds={secs:.1f} k={len(np.unique(labels))} "
              f"acc={hungarian_acc(np.asarray(y), labels):.3f}", flush=True)


if __name__ == "__main__":
    main()
