"""Issue 10's figures: recluster vs a full run, assign agreement, open-set unknowns.

    python bench/assign_bench.py [--mnist ../shared/datasets/mnist10k.npz] [--seeds 3]

1. ``imgclust recluster`` on MNIST-10k's cached features vs the full ``imgclust run``, both
   with their report, wall seconds of the whole CLI process, in one run.
2. digits: fit on a random half, assign the other half; ARI of all images' clusters (fitted
   half: their own; other half: assigned) against a run on all images.
3. open set: a run on MNIST-10k's digits 0-4 (a random 80 %), then assign the held-out 20 % of
   0-4 and all of 5-9: the share of each called unknown.
Labels are used only for choosing subsets and scoring.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score


def cli(*args: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "imgclust.cli", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def recluster_vs_run(mnist: Path, tmp: Path) -> None:
    out = tmp / "mnist"
    t_run = cli("run", str(mnist), "--out", str(out), "-q")
    t_re = cli("recluster", str(out), "-k", "8", "-q")
    t_re2 = cli("recluster", str(out), "-k", "10", "-q")
    print(f"| MNIST-10k | full run + report {t_run:.1f} s | recluster -k 8 + report {t_re:.1f} s "
          f"({100 * t_re / t_run:.0f} %) | recluster -k 10 + report {t_re2:.1f} s "
          f"({100 * t_re2 / t_run:.0f} %) |", flush=True)


def assign_half(seeds: int, tmp: Path) -> None:
    import imgclust
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs, y = d.images.astype(np.float32), d.target
    full = imgclust.run(_npz(tmp / "all.npz", imgs, y))
    aris = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        idx = rng.permutation(len(imgs))
        a, b = idx[: len(idx) // 2], idx[len(idx) // 2:]
        out = tmp / f"half{seed}"
        half = imgclust.run(_npz(tmp / f"a{seed}.npz", imgs[a], y[a]), out, seed=seed)
        got = np.empty(len(imgs), dtype=np.int64)
        got[a] = half.labels_
        got[b] = imgclust.load(out).predict(imgs[b]).labels
        aris.append(adjusted_rand_score(full.labels_, got))
        ari_b = adjusted_rand_score(full.labels_[b], got[b])
        print(f"| digits half/half seed {seed} | k(all) = {full.clustering.n_clusters}, "
              f"k(half) = {half.clustering.n_clusters} | ARI all {aris[-1]:.3f} | "
              f"ARI assigned half {ari_b:.3f} |", flush=True)
    print(f"| digits half/half | mean ARI {np.mean(aris):.3f} ± {np.std(aris):.3f} |", flush=True)


def open_set(mnist: Path, seeds: int, tmp: Path) -> None:
    import imgclust

    z = np.load(mnist)
    imgs, y = z["images"], z["labels"]
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        known = np.flatnonzero(y < 5)
        rng.shuffle(known)
        cut = int(0.8 * len(known))
        fit, held = known[:cut], known[cut:]
        unseen = np.flatnonzero(y >= 5)
        out = tmp / f"open{seed}"
        imgclust.run(_npz(tmp / f"k{seed}.npz", imgs[fit], y[fit]), out, seed=seed)
        res = imgclust.load(out)
        u_held = res.predict(imgs[held]).unknown.mean()
        u_new = res.predict(imgs[unseen]).unknown.mean()
        print(f"| open set seed {seed} | k = {res.clustering.n_clusters} | held-out 0-4 unknown "
              f"{100 * u_held:.1f} % | unseen 5-9 unknown {100 * u_new:.1f} % |", flush=True)


def _npz(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    np.savez(path, images=images, labels=labels)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mnist", default=str(Path(__file__).parents[2] / "shared/datasets/mnist10k.npz"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", choices=["recluster", "assign", "open"], default=None)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="assign-bench-"))
    try:
        if a.only in (None, "recluster"):
            recluster_vs_run(Path(a.mnist), tmp)
        if a.only in (None, "assign"):
            assign_half(a.seeds, tmp)
        if a.only in (None, "open"):
            open_set(Path(a.mnist), a.seeds, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
