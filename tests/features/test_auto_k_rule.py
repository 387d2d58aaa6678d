"""The photo default's k rule (issue 12): k-means with k by the log-elbow, which one far group does
not pull to k = 2 as silhouette does."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from imgclust.features.auto import choose_method


def far_group_images(path, n=30, seed=0):
    """Five groups of 8x8 colour images: four near colours and one far (white), as .npz."""
    rng = np.random.default_rng(seed)
    colours = [(10, 10, 60), (30, 10, 60), (10, 30, 60), (30, 30, 60), (250, 250, 250)]
    imgs = np.concatenate([np.clip(rng.normal(c, 2.0, (n, 8, 8, 3)), 0, 255) for c in colours])
    labels = np.repeat(np.arange(5), n)
    np.savez(path, images=imgs.astype(np.uint8), labels=labels)


def test_photo_default_criterion_is_the_log_elbow():
    for spec in ("cnn,pca:50,umap:10", "pixels:32,pca:0.9", "cnn,pca:50"):
        method, criterion, why = choose_method(spec)
        assert (method, criterion) == ("kmeans", "log-elbow") and "log-inertia" in why


def test_one_far_group_does_not_collapse_k_to_two(tmp_path):
    data = tmp_path / "far.npz"
    far_group_images(data)
    ks = {}
    for crit in ("auto", "silhouette"):
        out = tmp_path / crit
        cmd = [sys.executable, "-m", "imgclust.cli", "run", str(data), "-o", str(out), "-f",
               "pixels", "-m", "auto" if crit == "auto" else "kmeans", "--no-report", "-q"]
        if crit != "auto":
            cmd += ["--criterion", crit]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        summary = json.loads((out / "summary.json").read_text())
        ks[crit] = (summary["n_clusters"], summary["k"]["criterion"])
    assert ks["silhouette"] == (2, "silhouette")  # the failure issue 12 reported
    assert ks["auto"] == (5, "log-elbow")
