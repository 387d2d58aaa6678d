"""CNN feature variants side by side on labelled folders (issue 12): Lite0 / Lite2, pooling,
test-time flips, L2, HOG beside the CNN (``cnn:hog=0.5``).

For each folder the images are decoded once (at the side each variant needs), each variant's
features are computed once (seconds recorded), then for each seed the default photo tail
(PCA to 50, UMAP to 10) and k-means with the true k and with k chosen by silhouette over 2..15
(the photo default's rule) are scored by Hungarian ACC. Labels are used only for scoring.

    python bench/cnn_variants.py /work/bench-data/sets/clipart /work/bench-data/sets/mixed \\
        --seeds 0 1 2 --json /tmp/cnn_variants.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

VARIANTS = {
    "lite0": {},
    "lite2": {"model": "lite2"},
    "lite0 flip": {"flip": True},
    "lite0 gem": {"pooling": "gem"},
    "lite0 l2": {"l2": True},
    "lite2 flip l2": {"model": "lite2", "flip": True, "l2": True},
    "lite0 hog0.5": {"hog": 0.5},  # HOG beside the CNN (bench/photo_features.py, stop 12)
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    from imgclust.evaluate.metrics import hungarian_accuracy
    from imgclust.features import build_steps
    from imgclust.features.cnn import CNNExtractor
    from imgclust.sources.folder import FolderSource

    rows = []
    for folder in args.folders:
        src = FolderSource(folder, labels_from_folders=True)
        labels = src.labels()
        for name in args.variants:
            ext = CNNExtractor(**VARIANTS[name])
            src.set_decode_side(ext.decode_side())
            t = time.perf_counter()
            load0 = os.getloadavg()[0]
            recs, chunks = [], []
            for r, imgs in src.iter_batches(64):
                recs += r
                chunks.append(ext.fit_transform(imgs) if imgs else np.zeros((0, ext.output_dim)))
            X = np.concatenate(chunks)
            secs = time.perf_counter() - t
            y = [labels.get(r.id) for r in recs]
            keep = np.array([v is not None for v in y])
            X, y = X[keep], [v for v in y if v is not None]
            k_true = len(set(y))
            for seed in args.seeds:
                Z = X
                for _, est in build_steps("pca:50,umap:10", random_state=seed)[1:]:
                    Z = est.fit_transform(Z)
                acc_true = hungarian_accuracy(y, KMeans(k_true, n_init=10, random_state=seed)
                                              .fit_predict(Z))
                best = (-2.0, 0, None)
                for k in range(2, 16):
                    lab = KMeans(k, n_init=10, random_state=seed).fit_predict(Z)
                    s = silhouette_score(Z, lab)
                    if s > best[0]:
                        best = (s, k, lab)
                row = {"folder": folder.name, "variant": name, "seed": seed, "n": len(y),
                       "classes": k_true, "feature_s": round(secs, 1),
                       "acc_true_k": round(acc_true, 3), "k_chosen": best[1],
                       "acc_k_chosen": round(hungarian_accuracy(y, best[2]), 3),
                       "load": round(load0, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| folder | variant | features s | ACC (true k) | k chosen | ACC (k chosen) |")
    print("|---|---|---|---|---|---|")
    by: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        by.setdefault((r["folder"], r["variant"]), []).append(r)

    def pm(v: list[float]) -> str:
        return f"{statistics.mean(v):.3f} ± {statistics.pstdev(v):.3f}"

    for (f, v), rs in by.items():
        print(f"| {f} | {v} | {rs[0]['feature_s']} (load {rs[0]['load']}) | "
              f"{pm([r['acc_true_k'] for r in rs])} | {', '.join(str(r['k_chosen']) for r in rs)} "
              f"| {pm([r['acc_k_chosen'] for r in rs])} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
