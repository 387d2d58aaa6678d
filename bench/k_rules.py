"""Which rule for k holds on real photo folders? (issue 12)

For every labelled folder built by ``python -m bench.sets build`` this computes the default
photo features once (``cnn`` through :func:`imgclust.run.extract.extract_features`, cached as
``<cache>/<set>/cnn.npy``), then per seed the product's own ``pca:50`` and ``umap:10`` steps
(:func:`imgclust.features.build_steps`), and scores each candidate rule for k by the Hungarian
ACC of the clustering it gives against the folder labels, and by its k against the true k.

Rules (k searched in 2..15; labels are used only for scoring):

- ``sil-umap``: k-means in UMAP-10, k by silhouette there (the default before issue 12);
- ``sil-pca``: k-means in PCA-50, k by silhouette in PCA-50;
- ``sil-cos``: k-means on the L2-normalised PCA-50 features, silhouette by cosine distance;
- ``gap``: Tibshirani's gap statistic on PCA-50 (4 uniform reference sets in the PCA box;
  the smallest k with gap(k) >= gap(k+1) - s(k+1)), k-means in PCA-50;
- ``stability``: k-means in PCA-50 on 2 pairs of 80 % subsamples; k with the highest mean
  ARI on the shared images (Ben-Hur et al. 2002; the largest such k within 0.01 of the best);
- ``bic``: a full-covariance Gaussian mixture in UMAP-10, k with the lowest BIC;
- ``eigengap`` / ``graph``: ``knn-spectral`` on PCA-50 (10-NN graph) with its own rules;
- ``density``: HDBSCAN's count of dense groups in UMAP-10 (min cluster 2 %), then k-means;
- ``elbow``: the knee of k-means' within-cluster sum of squares in UMAP-10;
- ``log-elbow``: the knee of its logarithm over k = 1..15 (k = 1: the total sum of squares);
- ``consensus``: the median k of sil-pca, gap, stability, bic, eigengap, density, elbow,
  k-means in UMAP-10 at that k.

Each rule's k is also applied to k-means in UMAP-10 (column ``ACC@umap``), since the rule and
the partition can be chosen apart. ``--k true`` rows give the ceilings (k-means in UMAP-10 /
PCA-50 and knn-spectral at the true k).

Usage::

    python -m bench.sets build
    python bench/k_rules.py [--sets clipart emoji ...] [--seeds 0 1 2] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sklearn.cluster import HDBSCAN, KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import normalize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.sets import NAMES, SETS  # noqa: E402

CACHE = Path("/work/bench-data/features")
K_RANGE = range(2, 16)


#: folders of 2 and 3 classes, taken from the sets (``set[class+class]``): does a rule find few?
SUBSETS = ("mixed[wallpapers+flags]", "mixed[clipart+icons]", "wesnoth[portraits+terrain]",
           "emoji[flags+food_drink]", "mixed[wallpapers+sprites+flags]",
           "wesnoth[units+portraits+attacks]")


def features(name: str, root: Path = SETS, cache: Path = CACHE) -> tuple[np.ndarray, np.ndarray]:
    """The set's CNN features (cached) and its labels (class folder names); ``set[a+b]``: only
    the images of classes a and b."""
    if name.endswith("]"):
        base, classes = name[:-1].split("[")
        X, y = features(base, root, cache)
        keep = np.isin(y, classes.split("+"))
        return X[keep], y[keep]
    d = cache / name
    if (d / "cnn.npy").is_file():
        return np.load(d / "cnn.npy"), np.load(d / "labels.npy")
    from imgclust.run.extract import extract_features
    from imgclust.sources import FolderSource

    src = FolderSource(root / name, labels_from_folders=True)
    feats, _, _, _ = extract_features(src, "cnn", seed=0, progress=False)
    truth = src.labels()
    y = np.array([truth[i] for i in feats.ids])
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "cnn.npy", feats.X)
    np.save(d / "labels.npy", y)
    return feats.X, y


def reduce(X: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The product's ``pca:50`` then ``umap:10`` steps, fitted with this seed."""
    from imgclust.features import build_steps

    steps = build_steps("pca:50,umap:10", random_state=seed)
    pca = steps[1][1].fit(X).transform(X).astype(np.float32)
    um = np.asarray(steps[2][1].fit_transform(pca), dtype=np.float32)
    return pca, um


def km(X: np.ndarray, k: int, seed: int, n_init: int = 3) -> np.ndarray:
    return KMeans(k, n_init=n_init, random_state=seed).fit_predict(X)


def sweep(X: np.ndarray, seed: int, score: Callable[[np.ndarray, np.ndarray], float],
          Xfit: np.ndarray | None = None) -> tuple[int, np.ndarray]:
    """k-means over K_RANGE on ``Xfit`` (default X); the k with the highest ``score``."""
    Xfit = X if Xfit is None else Xfit
    best = None
    for k in K_RANGE:
        lab = km(Xfit, k, seed)
        s = score(X, lab)
        if best is None or s > best[0]:
            best = (s, k, lab)
    return best[1], best[2]


def gap_k(X: np.ndarray, seed: int, B: int = 4) -> int:
    rng = np.random.default_rng(seed)
    lo, hi = X.min(0), X.max(0)
    refs = [rng.uniform(lo, hi, X.shape) for _ in range(B)]
    gap, s = [], []
    for k in K_RANGE:
        w = np.log(KMeans(k, n_init=3, random_state=seed).fit(X).inertia_)
        wr = np.log([KMeans(k, n_init=1, random_state=seed).fit(R).inertia_ for R in refs])
        gap.append(wr.mean() - w)
        s.append(wr.std() * np.sqrt(1 + 1 / B))
    ks = list(K_RANGE)
    for i in range(len(ks) - 1):
        if gap[i] >= gap[i + 1] - s[i + 1]:
            return ks[i]
    return ks[-1]


def stability_k(X: np.ndarray, seed: int, pairs: int = 2, frac: float = 0.8) -> int:
    rng = np.random.default_rng(seed)
    n = len(X)
    scores = {}
    for k in K_RANGE:
        vals = []
        for _ in range(pairs):
            a = rng.choice(n, int(frac * n), replace=False)
            b = rng.choice(n, int(frac * n), replace=False)
            la = KMeans(k, n_init=3, random_state=seed).fit(X[a]).predict(X)
            lb = KMeans(k, n_init=3, random_state=seed).fit(X[b]).predict(X)
            both = np.intersect1d(a, b)
            vals.append(adjusted_rand_score(la[both], lb[both]))
        scores[k] = float(np.mean(vals))
    best = max(scores.values())
    return max(k for k, v in scores.items() if v >= best - 0.01)


def bic_k(X: np.ndarray, seed: int) -> int:
    bics = {k: GaussianMixture(k, covariance_type="full", random_state=seed, n_init=1,
                               reg_covar=1e-4).fit(X).bic(X) for k in K_RANGE}
    return min(bics, key=bics.get)


def elbow_k(X: np.ndarray, seed: int) -> int:
    from imgclust.cluster.select_k import knee

    ks = list(K_RANGE)
    w = [KMeans(k, n_init=3, random_state=seed).fit(X).inertia_ for k in ks]
    return ks[knee(ks, w)]


def log_elbow_k(X: np.ndarray, seed: int) -> int:
    """The knee of log inertia over k = 1..15 (k = 1: the total sum of squares), at least 2."""
    from imgclust.cluster.select_k import knee, within_ss

    ks = [1] + list(K_RANGE)
    w = [within_ss(X, np.zeros(len(X), int))] + [
        KMeans(k, n_init=3, random_state=seed).fit(X).inertia_ for k in K_RANGE]
    return max(2, ks[knee(ks, np.log(w))])


def density_k(X: np.ndarray) -> int:
    mcs = max(5, round(0.02 * len(X)))
    lab = HDBSCAN(min_cluster_size=mcs, min_samples=10).fit_predict(X)
    return max(2, int(lab.max()) + 1)


def spectral(X: np.ndarray, seed: int, k: int | str, rule: str = "graph") -> tuple[int, np.ndarray]:
    from imgclust.cluster.spectral import KNNSpectral

    est = KNNSpectral(n_clusters=k, k_rule=rule, n_init=4, random_state=seed).fit(X)
    return est.n_clusters_, est.labels_


#: the rules score_set knows, in its order
RULES = ("sil-umap", "sil-pca", "sil-cos", "gap", "stability", "bic", "density", "elbow",
         "eigengap", "graph", "consensus", "med3-umap", "log-elbow", "true-k umap", "true-k pca",
         "true-k spectral")
CONSENSUS = ("sil-pca", "gap", "stability", "bic", "eigengap", "density", "elbow")
MED3 = ("sil-umap", "bic", "elbow")


def score_set(name: str, seed: int, only: set[str] | None = None) -> list[dict[str, Any]]:
    """Every rule's (or those in ``only``'s) row for one set and seed."""
    from imgclust.evaluate.metrics import hungarian_accuracy

    X, y = features(name)
    k_true = len(np.unique(y))
    pca, um = reduce(X, seed)
    cos = normalize(pca)
    rows: list[dict[str, Any]] = []

    def add(rule: str, k: int, labels: np.ndarray | None = None, t0: float | None = None) -> None:
        t0 = time.perf_counter() if t0 is None else t0
        lab_u = km(um, k, seed)
        labels = lab_u if labels is None else labels
        rows.append({"set": name, "seed": seed, "rule": rule, "k": int(k), "k_true": k_true,
                     "acc": hungarian_accuracy(y, labels),
                     "acc_umap": hungarian_accuracy(y, lab_u),
                     "s": round(time.perf_counter() - t0, 2)})

    want = set(RULES) if only is None else set(only)
    need = want | (set(CONSENSUS) if "consensus" in want else set()) | (
        set(MED3) if "med3-umap" in want else set())
    sil = lambda A, l: silhouette_score(A, l)  # noqa: E731
    ks: dict[str, int] = {}
    sweeps = {"sil-umap": (um, sil), "sil-pca": (pca, sil),
              "sil-cos": (cos, lambda A, l: silhouette_score(A, l, metric="cosine"))}
    for rule, (A, score) in sweeps.items():
        if rule in need:
            t = time.perf_counter()
            ks[rule], lab = sweep(A, seed, score)
            add(rule, ks[rule], lab, t)
    for rule, fn in (("gap", lambda: gap_k(pca, seed)), ("stability", lambda: stability_k(pca, seed)),
                     ("bic", lambda: bic_k(um, seed)), ("density", lambda: density_k(um)),
                     ("elbow", lambda: elbow_k(um, seed)),
                     ("log-elbow", lambda: log_elbow_k(um, seed))):
        if rule in need:
            t = time.perf_counter()
            ks[rule] = fn()
            native = km(pca, ks[rule], seed) if rule in ("gap", "stability") else None
            add(rule, ks[rule], native, t)
    for rule in ("eigengap", "graph"):
        if rule in need:
            t = time.perf_counter()
            ks[rule], lab = spectral(pca, seed, "auto", rule)
            add(rule, ks[rule], lab, t)
    if "consensus" in want:
        add("consensus", int(np.median([ks[r] for r in CONSENSUS])))
    if "med3-umap" in want:  # the median of three cheap rules in UMAP space
        add("med3-umap", int(np.median([ks[r] for r in MED3])))
    # ceilings at the true k
    if "true-k umap" in want:
        add("true-k umap", k_true)
    if "true-k pca" in want:
        add("true-k pca", k_true, km(pca, k_true, seed))
    if "true-k spectral" in want:
        add("true-k spectral", k_true, spectral(pca, seed, k_true)[1])
    rows = [r for r in rows if r["rule"] in want]
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    sets = list(dict.fromkeys(r["set"] for r in rows))
    rules = list(dict.fromkeys(r["rule"] for r in rows))
    out = ["| rule | " + " | ".join(sets) + " | mean ACC | ACC@umap mean | k off (mean abs) |",
           "|---" * (len(sets) + 4) + "|"]
    for rule in rules:
        cells, means, mu, off = [], [], [], []
        for s in sets:
            rr = [r for r in rows if r["set"] == s and r["rule"] == rule]
            a = np.array([r["acc"] for r in rr])
            cells.append(f"{a.mean():.3f} ± {a.std():.3f} (k {np.mean([r['k'] for r in rr]):.1f})")
            means.append(a.mean())
            mu.append(np.mean([r["acc_umap"] for r in rr]))
            off.append(np.mean([abs(r["k"] - r["k_true"]) for r in rr]))
        out.append(f"| {rule} | " + " | ".join(cells) +
                   f" | **{np.mean(means):.3f}** (min {np.min(means):.3f}) | {np.mean(mu):.3f} "
                   f"| {np.mean(off):.1f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=list(NAMES),
                    help="set names, or set[class+class] subsets; 'subsets': the SUBSETS")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--features-only", action="store_true")
    ap.add_argument("--rules", nargs="+", choices=RULES, default=None,
                    help="score only these rules (and what they need)")
    ap.add_argument("--table", nargs="+", type=Path, default=None,
                    help="print the table of these JSON results and exit")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    rows: list[dict[str, Any]] = []
    if args.table:
        for p in args.table:
            rows += json.loads(p.read_text())
        print(table(rows))
        return
    if args.sets == ["subsets"]:
        args.sets = list(SUBSETS)
    for name in args.sets:
        t = time.perf_counter()
        X, y = features(name)
        print(f"{name}: {X.shape} features, {len(np.unique(y))} classes, "
              f"{time.perf_counter() - t:.1f} s", flush=True)
    if args.features_only:
        return
    for seed in args.seeds:  # seed outermost: every set's first seed comes first
        for name in args.sets:
            new = score_set(name, seed, set(args.rules) if args.rules else None)
            print(f"{name} seed {seed}: " + ", ".join(
                f"{r['rule']} k={r['k']} {r['acc']:.3f}" for r in new), flush=True)
            rows += new
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1))
    if rows:
        print(table(rows))
        true = {r["set"]: r["k_true"] for r in rows}
        print("true k:", true)


if __name__ == "__main__":
    main()
