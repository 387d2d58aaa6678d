"""Hand-made run directories for the label tests (no pipeline run: seconds matter)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image


def two_blobs(n_per: int = 20, seed: int = 0, dim: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Two well separated Gaussian blobs: features (2 n_per, dim) and their blob (0 / 1)."""
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0, 1, (n_per, dim)), rng.normal(10, 1, (n_per, dim))])
    return X, np.repeat([0, 1], n_per)


def write_run(run: Path, ids: list[str], clusters: np.ndarray, X: np.ndarray, source: str,
              fingerprint: str = "f0") -> Path:
    """The three files the label room reads: summary.json, clusters.csv, features.npy."""
    run.mkdir(parents=True)
    sizes = {str(c): int((clusters == c).sum()) for c in np.unique(clusters)}
    (run / "summary.json").write_text(json.dumps({
        "source": source, "source_fingerprint": fingerprint, "n_images": len(ids),
        "k": {"criterion": "given"}, "method": {"name": "hand-made"}, "cluster_sizes": sizes,
        "metrics": {}}))
    with open(run / "clusters.csv", "w", newline="", encoding="utf-8",
              errors="surrogateescape") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "cluster", "distance", "is_representative"])
        for i, c in zip(ids, clusters):
            w.writerow([i, int(c), 0.0, 0])
    np.save(run / "features.npy", X.astype(np.float32))
    return run


def folder_run(tmp: Path, n_per: int = 4) -> tuple[Path, Path]:
    """A folder of PNGs (dark/ and light/, one odd .gif) and a run over it: (run_dir, images)."""
    root = tmp / "images"
    ids, X = [], []
    for g, value in (("dark", 30), ("light", 220)):
        (root / g).mkdir(parents=True)
        for i in range(n_per):
            a = np.full((6, 6), value + i, dtype=np.uint8)
            ext = "gif" if (g, i) == ("light", 0) else "png"
            Image.fromarray(a).save(root / g / f"{g}{i}.{ext}")
            ids.append(f"{g}/{g}{i}.{ext}")
            X.append([value + i, 0.0])
    clusters = np.array([0 if i.startswith("dark") else 1 for i in ids])
    return write_run(tmp / "run", ids, clusters, np.array(X), str(root)), root


def array_run(tmp: Path, n_per: int = 10, seed: int = 0) -> Path:
    """An .npz source of 2 n_per images in two blobs, run dir with the blob as cluster."""
    X, y = two_blobs(n_per, seed)
    images = np.where(y[:, None, None] == 0, 20, 230).astype(np.uint8) * np.ones((1, 8, 8),
                                                                                   np.uint8)
    np.savez(tmp / "arr.npz", images=images, labels=y)
    ids = [str(i) for i in range(len(y))]
    return write_run(tmp / "run", ids, y, X, str(tmp / "arr.npz"))
