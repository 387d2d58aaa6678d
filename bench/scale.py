"""Scale benchmarks of issue 15: whole-process peak RSS and wall time (``/usr/bin/time -v``).

    python bench/scale.py ingest --sizes 10000,30000,100000 --work /tmp/scale
        For each size: a folder of generated 640x480 JPEGs, then ``imgclust run`` on it
        (pixels:8, minibatch-kmeans, k=10, no report) twice: the first run (ingest rate from
        summary.json's features timing, peak RSS, wall) and a rerun on the unchanged folder.
    python bench/scale.py stages --folder /tmp/scale/jpegs-100000 --out /tmp/scale/run-100000
        One ``imgclust.run`` in this process (same options as ingest) while a thread samples
        VmRSS every 20 ms: the largest resident memory in each stage (imports, extraction,
        clustering, scores, writing), to find what grows with n.
    python bench/scale.py cpu --n 1000
        CPU milliseconds per image of stat + hash + decode + pixels, decoding at 512 px a side
        (the folder's default) and at 16 (what pixels:8 needs): a figure the load cannot skew.
    python bench/scale.py kmeans --n 1000000 --dim 128 --k 1000 [--on-disk DIR]
        n x dim float32 features drawn around k centres (with --on-disk, saved to a .npy in DIR
        and fitted the way a run does above 32 MiB: cluster.large.fit_on_disk); scikit-learn's MiniBatchKMeans and
        faiss k-means (imgclust's minibatch-kmeans and faiss-kmeans entries, their defaults),
        each in its own process: time, peak RSS, inertia (both measured the same way: squared
        distance of every row to its nearest final centre, by faiss).

Every timing is printed with the load average (the box is shared). Results are appended to
``bench/results/scale.jsonl``.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "scale.jsonl"
#: distinct pictures drawn; every other file is one of them with a few random bytes after the
#: JPEG's end marker (decoders ignore them): a distinct content hash, the same decoding work
N_BASE = 1000


def loadavg() -> str:
    return open("/proc/loadavg").read().split(" ", 3)[:3].__str__()


def timed(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``cmd`` under ``/usr/bin/time -v``: wall seconds, peak RSS (MB), return code."""
    la0 = open("/proc/loadavg").read().split()[:3]
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", p.stderr)
    parts = [float(x) for x in wall.group(1).split(":")] if wall else [float("nan")]
    secs = sum(v * 60 ** i for i, v in enumerate(reversed(parts)))
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)",
                                            p.stderr))
    out = {"rc": p.returncode, "wall_s": round(secs, 2), "cpu_s": round(cpu, 2),
           "peak_rss_mb": round(int(rss.group(1)) / 1024, 1) if rss else None,
           "loadavg_before": la0, "loadavg_after": open("/proc/loadavg").read().split()[:3]}
    if p.returncode != 0:
        out["stderr"] = p.stderr[-1500:]
    out["stdout"] = p.stdout[-3000:]
    return out


def _rev() -> str | None:
    """The checkout's commit (short), for the results file."""
    p = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True)
    return p.stdout.strip() or None


def generate(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` 640x480 JPEGs in 10 colour groups (subfolders of 1,000 files)."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    have = sum(1 for _ in folder.rglob("*.jpg"))
    if have >= n:
        return
    rng = np.random.default_rng(seed)
    base = []
    yy, xx = np.mgrid[0:480, 0:640]
    for i in range(N_BASE):
        g = i % 10
        hue = np.array([(g * 97) % 256, (g * 53 + 80) % 256, (g * 31 + 160) % 256], float)
        grad = (xx / 640.0)[..., None] * rng.uniform(-60, 60, 3) + (yy / 480.0)[..., None] * \
            rng.uniform(-60, 60, 3)
        a = np.clip(hue + grad + rng.normal(0, 6, (480, 640, 3)), 0, 255).astype(np.uint8)
        img = Image.fromarray(a)
        d = ImageDraw.Draw(img)
        for _ in range(3):
            x, y = rng.integers(0, 560), rng.integers(0, 400)
            d.ellipse([x, y, x + rng.integers(20, 80), y + rng.integers(20, 80)],
                      fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        base.append(buf.getvalue())
    for j in range(n):
        sub = folder / f"part{j // 1000:04d}"
        if j % 1000 == 0:
            sub.mkdir(exist_ok=True)
        p = sub / f"img{j:07d}.jpg"
        if not p.exists():
            p.write_bytes(base[j % N_BASE] + rng.bytes(8))


def ingest(args: argparse.Namespace) -> list[dict]:
    work = Path(args.work)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        folder = work / f"jpegs-{n}"
        t = time.perf_counter()
        generate(folder, n)
        gen_s = time.perf_counter() - t
        out = work / f"run-{n}"
        if (out / "run.json").exists():  # this benchmark's own run: the first run starts empty
            shutil.rmtree(out)
        cmd = [sys.executable, "-m", "imgclust.cli", "run", str(folder), "-o", str(out),
               "-f", args.features, "-m", args.method, "-k", args.k, "-q", "--no-report",
               "--overwrite"]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        first = timed(cmd)
        summ = json.loads((out / "summary.json").read_text()) if first["rc"] == 0 else {}
        feat_s = summ.get("timings_s", {}).get(f"features:{args.features.split(',')[0]}")
        again = timed(cmd)
        row = {"bench": "ingest", "n": n, "rev": _rev(), "features": args.features,
               "method": args.method, "k": args.k,
               "workers": args.workers, "cores": os.cpu_count(), "generate_s": round(gen_s, 1),
               "first": {k: v for k, v in first.items() if k != "stdout"},
               "features_s": feat_s,
               "images_per_s": round(n / feat_s, 1) if feat_s else None,
               "timings_s": summ.get("timings_s"),
               "rerun": {k: v for k, v in again.items() if k != "stdout"},
               "rerun_ratio": round(again["wall_s"] / first["wall_s"], 3)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def cpu(args: argparse.Namespace) -> list[dict]:
    """CPU milliseconds per image (all threads; independent of the box's load) of
    :func:`imgclust.run.extract.featurise_files` (stat, hash, decode, images step), decoding at
    the folder's default limit (512 px a side) and at the size the features need."""
    import resource

    from imgclust.features import build_steps
    from imgclust.run.extract import featurise_files
    from imgclust.sources.folder import FolderSource

    folder = Path(args.work) / "jpegs-cpu"
    generate(folder, args.n)
    rows = []
    for max_side in (512, args.need):
        src = FolderSource(folder, max_side=max_side)
        ids = src.candidates()[:args.n]
        ext = build_steps(args.features)[0][1]
        ext.fit([src.read(ids[0])[1]])
        r0, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        featurise_files(src, ext, ids, threads=1)
        r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t
        ms = ((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)) / len(ids) * 1e3
        row = {"bench": "cpu", "n": len(ids), "features": args.features, "decode_max_side":
               max_side, "cpu_ms_per_image": round(ms, 2),
               "images_per_s_on_2_free_cores": round(2000 / ms), "wall_s": round(wall, 1),
               "loadavg": open("/proc/loadavg").read().split()[:3]}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def stages(args: argparse.Namespace) -> list[dict]:
    """Largest VmRSS (MB) per stage of one in-process run (a sampling thread, every 20 ms)."""
    import threading

    from imgclust.run import pipeline

    stage, top = ["imports"], {}

    def rss_mb() -> int:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) // 1024 for ln in f if ln.startswith("VmRSS"))

    def sample() -> None:
        while True:
            top[stage[0]] = max(top.get(stage[0], 0), rss_mb())
            time.sleep(0.02)

    def wrap(name: str, label: str) -> None:
        f = getattr(pipeline, name)

        def g(*a, **k):
            stage[0] = label
            try:
                return f(*a, **k)
            finally:
                stage[0] = "after " + label

        setattr(pipeline, name, g)

    for name, label in (("extract_features", "extraction"), ("cluster_features", "clustering"),
                        ("score", "scores"), ("write_run", "writing")):
        wrap(name, label)
    threading.Thread(target=sample, daemon=True).start()
    time.sleep(0.1)
    t = time.perf_counter()
    pipeline.run(args.folder, args.out, features=args.features, method=args.method, k=10,
                 overwrite=True)
    time.sleep(0.1)
    row = {"bench": "stages", "folder": args.folder, "rev": _rev(), "features": args.features,
           "method": args.method, "wall_s": round(time.perf_counter() - t, 1),
           "max_rss_mb": top, "loadavg": open("/proc/loadavg").read().split()[:3]}
    print(json.dumps(row), flush=True)
    return [row]


def _kmeans_child(args: argparse.Namespace) -> None:
    """In its own process: draw the data, fit one method, print time and inertia."""
    import faiss

    from imgclust.cluster import make_estimator

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (args.k, args.dim)).astype(np.float32)

    def blocks():  # drawn a block at a time: no float64 copy of X
        for s in range(0, args.n, 100_000):
            m = min(100_000, args.n - s)
            yield centres[rng.integers(0, args.k, m)] + rng.normal(
                0, 0.35, (m, args.dim)).astype(np.float32)

    est = make_estimator(f"{args.method}:{args.k}", random_state=0)
    if args.on_disk:  # imgclust's out-of-core path: the matrix in a .npy, read in blocks
        from imgclust.cluster.large import fit_on_disk
        from imgclust.io import open_npy, write_npy_blocks

        path = Path(args.on_disk) / f"kmeans-{args.n}x{args.dim}.npy"
        write_npy_blocks(path, (args.n, args.dim), np.float32, blocks())  # never in memory
        X = open_npy(path)
        t = time.perf_counter()
        _, how = fit_on_disk(est, X, 0)
        fit_s = time.perf_counter() - t
    else:
        X = np.concatenate(list(blocks()))
        how = "in memory"
        t = time.perf_counter()
        est.fit(X)
        fit_s = time.perf_counter() - t
    C = np.ascontiguousarray(est.cluster_centers_, dtype=np.float32)
    index = faiss.IndexFlatL2(args.dim)
    index.add(C)
    inertia = 0.0
    from imgclust.io import row_blocks

    for _, b in row_blocks(X):  # plain reads of a matrix on disk: its pages not resident
        D, _ = index.search(np.ascontiguousarray(b), 1)
        inertia += float(D.sum(dtype=np.float64))
    if args.on_disk:
        path.unlink()
    print(json.dumps({"fit_s": round(fit_s, 1), "inertia": inertia, "how": how,
                      "params": {k: v for k, v in est.get_params().items()
                                 if isinstance(v, (int, float, str, type(None)))}}))


def kmeans(args: argparse.Namespace) -> list[dict]:
    rows = []
    for method in args.methods.split(","):
        res = timed([sys.executable, __file__, "_kmeans_child", "--n", str(args.n), "--dim",
                     str(args.dim), "--k", str(args.k), "--method", method,
                     *(["--on-disk", args.on_disk] if args.on_disk else [])])
        child = json.loads(res["stdout"].strip().splitlines()[-1]) if res["rc"] == 0 else {}
        row = {"bench": "kmeans", "n": args.n, "dim": args.dim, "k": args.k, "method": method,
               "on_disk": bool(args.on_disk),
               "cores": os.cpu_count(), **child,
               **{k: v for k, v in res.items() if k != "stdout"}}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("ingest")
    a.add_argument("--sizes", default="10000,30000,100000")
    a.add_argument("--work", default="/tmp/imgclust-scale")
    a.add_argument("--features", default="pixels:8")
    a.add_argument("--method", default="minibatch-kmeans")
    a.add_argument("--workers", type=int, default=None)
    a.add_argument("--k", default="10", help="-k of the runs (auto: the default sweep)")
    for name in ("kmeans", "_kmeans_child"):
        b = sub.add_parser(name)
        b.add_argument("--n", type=int, default=1_000_000)
        b.add_argument("--dim", type=int, default=128)
        b.add_argument("--k", type=int, default=1000)
        b.add_argument("--methods", default="minibatch-kmeans,faiss-kmeans")
        b.add_argument("--method", default="faiss-kmeans")
        b.add_argument("--on-disk", default=None, metavar="DIR",
                       help="fit imgclust's out-of-core way, the matrix in a .npy in DIR")
    c = sub.add_parser("cpu")
    c.add_argument("--n", type=int, default=1000)
    c.add_argument("--work", default="/tmp/imgclust-scale")
    c.add_argument("--features", default="pixels:8")
    c.add_argument("--need", type=int, default=16)
    s = sub.add_parser("stages")
    s.add_argument("--folder", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--features", default="pixels:8")
    s.add_argument("--method", default="minibatch-kmeans")
    g = sub.add_parser("gen")
    g.add_argument("folder")
    g.add_argument("n", type=int)
    args = ap.parse_args()
    if args.cmd == "gen":
        generate(Path(args.folder), args.n)
        return
    if args.cmd == "_kmeans_child":
        _kmeans_child(args)
        return
    rows = {"ingest": ingest, "kmeans": kmeans, "cpu": cpu, "stages": stages}[args.cmd](args)
    RESULTS.parent.mkdir(exist_ok=True)
    with open(RESULTS, "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
