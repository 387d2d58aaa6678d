"""Benchmarks of imgclust.detect (issue 14): outliers, near-duplicates, the hash search.

    python bench/detect_bench.py outliers [--seeds 5]     planted anomalies in digits / MNIST-10k
    python bench/detect_bench.py duplicates [--seeds 1]   planted near-duplicates in MNIST-10k
    python bench/detect_bench.py hashsearch [--n 100000]  radius search on synthetic hashes
    python bench/detect_bench.py all
    python bench/detect_bench.py outliers --seed-list 3,4,5 --only-default
    python bench/detect_bench.py clusterfeatures --seed-list 3,4,5   k-means distances + LR, digits

Each prints Markdown tables (figures recorded in BENCHMARKS.md). MNIST-10k is
../shared/datasets/mnist10k.npz (skipped when absent).

**Outliers.** 5 % of the images are replaced by an anomaly, a quarter each: rotated by 90
degrees (either way), mirrored (only digits that are not mirror-symmetric: not 0, 1, 8),
darkened (x 0.3) or inverted (max - x). Clusters: k-means with k = 10 on the features. Reported:
precision among the top 5 % by score (= recall, the two sets having one size), per detector
and combined, and how many of each kind are found.

**Duplicates.** MNIST-10k upscaled to 64 px (bicubic), and 2,000 photo-like pictures (1/f^2
noise, 128 px), written as PNG files; 10 % of them get a near-duplicate beside them, a third
each: resized to 3/4, re-encoded as JPEG q=60, or cropped by 5 % (2.5 % off each side). Pairs
precision / recall: a found pair is two images in one group; a true pair is an original and
its copy.

**Hash search.** n random 64-bit codes with 1 % planted neighbours (a random code with 1..10
bits flipped), radius 10, in a fresh subprocess per backend: seconds and peak RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "datasets" / "mnist10k.npz"
KINDS = ("rot90", "mirror", "darken", "invert")


# --- outliers ---------------------------------------------------------------------------------

def perturb(images: np.ndarray, target: np.ndarray, seed: int, share: float = 0.05
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``images`` (n, h, w) with ``share`` of them made anomalies (see the module docstring).

    Returns the new images, the planted mask, the planted rows and their kinds."""
    rng = np.random.default_rng(seed)
    imgs = images.astype(np.float64).copy()
    top = float(imgs.max())
    n = len(imgs)
    m = int(round(share * n))
    kinds = np.array([KINDS[j % 4] for j in range(m)])
    idx = np.empty(m, dtype=np.int64)
    mirror_ok = np.flatnonzero(~np.isin(target, [0, 1, 8]))
    idx[kinds == "mirror"] = rng.choice(mirror_ok, (kinds == "mirror").sum(), replace=False)
    rest = np.setdiff1d(np.arange(n), idx[kinds == "mirror"])
    idx[kinds != "mirror"] = rng.choice(rest, (kinds != "mirror").sum(), replace=False)
    for kind, i in zip(kinds, idx):
        a = imgs[i]
        imgs[i] = {"rot90": lambda: np.rot90(a, rng.choice([1, 3])), "mirror": lambda: a[:, ::-1],
                   "darken": lambda: a * 0.3, "invert": lambda: top - a}[kind]()
    planted = np.zeros(n, dtype=bool)
    planted[idx] = True
    return imgs, planted, idx, kinds


def _default_features(imgs: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The auto feature pipeline (and its k-means clusters, k by silhouette) on an array."""
    from imgclust.run.pipeline import run
    from imgclust.sources.base import ArraySource

    res = run(ArraySource("perturbed", imgs.astype(np.float32)), features="auto",
              method="kmeans", k="auto", seed=seed)
    spec = str(res.summary["features"]["spec"]).split(" (")[0]  # the spec without its reason
    return res.features_.X, res.labels_, "auto: " + spec


def bench_outliers(seeds: int | list[int], only_default: bool = False) -> None:
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_digits
    from threadpoolctl import threadpool_limits

    from imgclust.detect.outliers import grey_thumbnails, image_statistics, outlier_scores

    sets = []
    d = load_digits()
    sets.append(("digits", d.images, d.target))
    if MNIST.exists():
        with np.load(MNIST) as z:
            sets.append(("mnist10k", z["images"], z["labels"]))
    else:
        print(f"(skipped MNIST-10k: {MNIST} not found)")
    configs = [  # name, outlier_scores keyword arguments
        ("default (pca, centre, lof, stats, orient; tail, one pass)", {}),
        ("before stop 11 (gmm, pca, centre, lof; zmax)",
         {"methods": ("gmm", "pca", "centre", "lof"), "combine": "zmax", "refit": 1}),
        ("zmax combination, one refit", {"combine": "zmax", "refit": 1}),
        ("one refit", {"refit": 1}),
    ]
    big_set = (configs[0][0], configs[1][0])  # the configurations run on 10k images
    if only_default:
        configs = configs[:1]
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    rows = []
    for name, images, target in sets:
        for feats in ("pixels", "default"):
            if feats == "default" and name != "digits":
                continue  # the HOG pipeline on 10k images x 5 seeds: left out (see BENCHMARKS)
            for seed in seed_list:
                imgs, planted, idx, kinds = perturb(images, target, seed)
                top = int(planted.sum())
                if feats == "pixels":
                    X = imgs.reshape(len(imgs), -1)
                    with threadpool_limits(2):
                        labels = KMeans(10, n_init=4, random_state=seed).fit(X).labels_
                    spec = "pixels"
                else:
                    X, labels, spec = _default_features(imgs, seed)
                # the images' grey statistics and thumbnails, on one scale (as a source reads them)
                scaled = imgs / imgs.max()
                pix = {"image_stats": image_statistics(scaled), "thumbs": grey_thumbnails(scaled)}
                for cname, kw in configs:
                    if feats == "default" and cname != configs[0][0]:
                        continue
                    if name != "digits" and cname not in big_set:
                        continue  # 10k images: the default and the other combination only
                    t = time.perf_counter()
                    res = outlier_scores(X, labels, random_state=seed, **pix, **kw)
                    secs = time.perf_counter() - t
                    order = res.ranking()[:top]
                    found = set(order.tolist())
                    row = {"data": name, "features": spec, "config": cname, "seed": seed,
                           "precision": float(planted[order].mean()), "seconds": secs,
                           "kinds": {k: int(sum(1 for kk, i in zip(kinds, idx)
                                                if kk == k and i in found)) for k in KINDS},
                           "per_kind": int(top // 4)}
                    if cname == configs[0][0]:
                        row["detectors"] = {m: float(planted[np.argsort(-s, kind="stable")[:top]]
                                                     .mean()) for m, s in res.method_scores.items()}
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    print("\n| data | features | score | precision at 5 % (mean ± sd, min; per seed) | rot90 / "
          "mirror / darken / invert found (mean of ~n each) | seconds |")
    print("|---|---|---|---|---|---|")
    keys = list(dict.fromkeys((r["data"], r["features"], r["config"]) for r in rows))
    for key in keys:
        rs = [r for r in rows if (r["data"], r["features"], r["config"]) == key]
        p = np.array([r["precision"] for r in rs])
        kinds = " / ".join(f"{np.mean([r['kinds'][k] for r in rs]):.1f}" for k in KINDS)
        per = ", ".join(f"{x:.3f}" for x in p)
        print(f"| {key[0]} | {key[1]} | {key[2]} | {p.mean():.3f} ± {p.std():.3f}, "
              f"{p.min():.3f} ({per}) | {kinds} (of {rs[0]['per_kind']}) | "
              f"{np.mean([r['seconds'] for r in rs]):.1f} |")
    print("\nEach detector alone (default run, precision at 5 %, mean over seeds):\n")
    print("| data | features | " + " | ".join(rows[0]["detectors"]) + " |")
    print("|---|---|" + "---|" * len(rows[0]["detectors"]))
    for data, feats in dict.fromkeys((r["data"], r["features"]) for r in rows if "detectors" in r):
        rs = [r for r in rows if "detectors" in r and (r["data"], r["features"]) == (data, feats)]
        print(f"| {data} | {feats} | " + " | ".join(
            f"{np.mean([r['detectors'][m] for r in rs]):.3f}" for m in rs[0]["detectors"]) + " |")


def bench_cluster_features(seeds: list[int]) -> None:
    """``imgclust bench dataset:digits --cluster-features -f pixels`` on the given seeds (the
    CLI's ``--seeds N`` runs 0..N-1), with the default k grid."""
    from imgclust.bench import clusters_as_features, cluster_features_summary

    show = lambda r: print(json.dumps(r), file=sys.stderr, flush=True)  # noqa: E731
    rows = clusters_as_features(["dataset:digits"], ["pixels"], seeds=seeds, on_row=show)
    for g in cluster_features_summary(rows):
        per = {m: ", ".join(f"{r['test_acc']:.3f}" for r in rows if r["method"] == m)
               for m in ("logreg", "kmeans+logreg")}
        print(f"| {g['data']} | {g['features']} | {g['plain']['acc']:.3f} ± "
              f"{g['plain']['acc_sd']:.3f} ({per['logreg']}) | {g['clustered']['acc']:.3f} ± "
              f"{g['clustered']['acc_sd']:.3f} ({per['kmeans+logreg']}) | k {g['k']} | "
              f"{100 * g['plain_error']:.1f} % -> {100 * g['clustered_error']:.1f} % |")


# --- duplicates -------------------------------------------------------------------------------

def plant_duplicates(root: Path, images: np.ndarray, seed: int, share: float = 0.10,
                     side: int = 64) -> list[tuple[str, str, str]]:
    """Write every image as ``NNNNN.png`` (upscaled to ``side``) and ``share`` of them a copy
    ``NNNNN_<kind>.png/.jpg`` beside it. Returns (original id, copy id, kind)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    n = len(images)
    picked = rng.choice(n, int(round(share * n)), replace=False)
    kinds = ("resize", "jpeg60", "crop5")
    truth = []
    for i in range(n):
        im = Image.fromarray(images[i])
        if im.size != (side, side):
            im = im.resize((side, side), Image.Resampling.BICUBIC)
        im.save(root / f"{i:05d}.png")
    for j, i in enumerate(picked):
        im = Image.open(root / f"{i:05d}.png")
        kind = kinds[j % 3]
        if kind == "resize":
            name = f"{i:05d}_resize.png"
            im.resize((side * 3 // 4, side * 3 // 4), Image.Resampling.LANCZOS).save(root / name)
        elif kind == "jpeg60":
            name = f"{i:05d}_q60.jpg"
            im.convert("RGB").save(root / name, quality=60)
        else:
            name = f"{i:05d}_crop.png"
            dx = round(0.025 * side)
            im.crop((dx, dx, side - dx, side - dx)).save(root / name)
        truth.append((f"{i:05d}.png", name, kind))
    return truth


def pair_scores(res, truth: list[tuple[str, str, str]]) -> dict[str, float]:
    """Pairs precision and recall, counted without listing the pairs (a loose setting can
    make one group of thousands)."""
    group = dict(zip(res.ids, res.group.tolist()))
    sizes = np.bincount(res.group[res.group >= 0])
    found = int((sizes * (sizes - 1) // 2).sum())
    same = [group[o] >= 0 and group[o] == group[c] for o, c, _ in truth]
    hit = int(sum(same))
    by_kind = {kind: float(np.mean([s for s, (_, _, k) in zip(same, truth) if k == kind]))
               for kind in ("resize", "jpeg60", "crop5")}
    return {"precision": hit / found if found else 1.0, "recall": hit / len(truth),
            "found_pairs": found, "true_pairs": len(truth), "groups": int(len(sizes)),
            "largest_group": int(sizes.max()) if len(sizes) else 0, **by_kind}


def photo(seed: int, size: int = 128) -> np.ndarray:
    """A photo-like picture: 1/f^2 noise in each channel (natural images' spectrum)."""
    r = np.random.default_rng(seed)
    f = np.fft.fftfreq(size)
    fx, fy = np.meshgrid(f, f)
    amp = 1 / np.maximum(np.hypot(fx, fy), 1 / size) ** 2
    chans = []
    for _ in range(3):
        a = np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * r.random((size, size)))))
        chans.append((a - a.min()) / (a.max() - a.min()) * 255)
    return np.stack(chans, -1).astype(np.uint8)


def bench_duplicates(seeds: int) -> None:
    sets = [("photo-like 1/f, 2,000 + 200 planted (128 px)",
             np.stack([photo(s) for s in range(2000)]), 128)]
    if MNIST.exists():
        with np.load(MNIST) as z:
            sets.append(("MNIST-10k + 1,000 planted (64 px)", z["images"], 64))
    else:
        print(f"(skipped MNIST-10k: {MNIST} not found)")
    for name, images, side in sets:
        _bench_duplicates_on(name, images, side, seeds)


def _bench_duplicates_on(title: str, images: np.ndarray, side: int, seeds: int) -> None:
    from imgclust.detect.duplicates import find_duplicates

    configs = [("phash r=10, check auto (default)", dict(radius=10)),
               ("phash r=10, no check", dict(radius=10, min_similarity=None)),
               ("phash r=6, no check", dict(radius=6, min_similarity=None)),
               ("phash r=10, check 0.9", dict(radius=10, min_similarity=0.9)),
               ("dhash r=10, check auto", dict(radius=10, hash="dhash"))]
    rows = []
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "mnist"
            root.mkdir()
            t = time.perf_counter()
            truth = plant_duplicates(root, images, seed, side=side)
            print(f"wrote {len(images) + len(truth)} PNG/JPEG files in "
                  f"{time.perf_counter() - t:.0f} s", file=sys.stderr)
            for name, kw in configs:
                t = time.perf_counter()
                res = find_duplicates(root, **kw)
                row = {"config": name, "seed": seed, "seconds": time.perf_counter() - t,
                       "search_seconds": res.info["search_seconds"],
                       "hash_pairs": res.info["pairs"]["hash"],
                       "registered": res.info["registered"], **pair_scores(res, truth)}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"\n| {title} | pairs precision | recall | recall resize / "
          "JPEG q60 / crop 5 % | pairs within radius | groups (largest) | seconds (search) |")
    print("|---|---|---|---|---|---|---|")
    for name, _ in configs:
        rs = [r for r in rows if r["config"] == name]
        m = lambda k: np.mean([r[k] for r in rs])  # noqa: E731
        print(f"| {name} | {m('precision'):.3f} | {m('recall'):.3f} | {m('resize'):.3f} / "
              f"{m('jpeg60'):.3f} / {m('crop5'):.3f} | {m('hash_pairs'):,.0f} | "
              f"{m('groups'):,.0f} ({m('largest_group'):,.0f}) | {m('seconds'):.0f} "
              f"({m('search_seconds'):.1f}) |")


# --- hash search ------------------------------------------------------------------------------

def _search_child(n: int, backend: str) -> None:
    from imgclust.detect.duplicates import hamming_pairs

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(n, 8), dtype=np.uint8)
    m = n // 100
    src = rng.choice(n, m, replace=False)
    dst = rng.choice(np.setdiff1d(np.arange(n), src), m, replace=False)
    for s, d in zip(src, dst):  # plant a neighbour: flip 1..10 bits
        bits = np.unpackbits(codes[s])
        flip = rng.choice(64, rng.integers(1, 11), replace=False)
        bits[flip] ^= 1
        codes[d] = np.packbits(bits)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    i, j, _ = hamming_pairs(codes, 10, backend=backend)
    secs = time.perf_counter() - t
    found = set(zip(i.tolist(), j.tolist()))
    planted = {(min(a, b), max(a, b)) for a, b in zip(src.tolist(), dst.tolist())}
    print(json.dumps({"n": n, "backend": backend, "seconds": secs, "pairs": len(i),
                      "planted_found": len(planted & found) / len(planted),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rss_before_mb": base / 1024}))


def bench_hashsearch(n: int) -> None:
    rows = []
    for backend in ("faiss", "numpy"):
        out = subprocess.run([sys.executable, __file__, "_search", str(n), backend],
                             capture_output=True, text=True, timeout=1800)
        if out.returncode != 0:
            print(f"{backend}: failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(out.stdout.strip(), file=sys.stderr)
    print(f"\n| {n:,} codes, radius 10 | seconds | peak RSS (MB) | pairs | planted pairs found |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | {r['pairs']:,} | "
              f"{100 * r['planted_found']:.1f} % |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_search":
        _search_child(int(sys.argv[2]), sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["outliers", "duplicates", "hashsearch", "clusterfeatures",
                                     "all"])
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--seed-list", default=None,
                    help="comma-separated seeds (outliers, clusterfeatures), e.g. 3,4,5")
    ap.add_argument("--only-default", action="store_true",
                    help="outliers: the default configuration only")
    ap.add_argument("--n", type=int, default=100_000)
    a = ap.parse_args()
    print(f"imgclust detect bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    seed_list = [int(x) for x in a.seed_list.split(",")] if a.seed_list else None
    if a.what in ("outliers", "all"):
        bench_outliers(seed_list or (a.seeds or 5), a.only_default)
    if a.what == "clusterfeatures":
        bench_cluster_features(seed_list or list(range(a.seeds or 3)))
    if a.what in ("duplicates", "all"):
        bench_duplicates(a.seeds or 1)
    if a.what in ("hashsearch", "all"):
        bench_hashsearch(a.n)


if __name__ == "__main__":
    main()
