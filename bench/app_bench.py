"""Benchmark of the labelling app (``imgclust serve``) on a 100k-image run.

1. Page times in-process (FastAPI's TestClient): the median of 20 requests of ``/`` and of
   ``/cluster/0``, with the store unchanged between requests (the cached view) and with one
   label written before each request (the view recomputed each time). Bar: under 100 ms.
2. A load test on loopback: ``imgclust serve`` in a subprocess on 127.0.0.1, 20 client threads
   (httpx) for 30 s of reads (pages, thumbnails) and label writes; then 0 errors, and every
   acknowledged write is in the store (its batch, and each image's last acknowledged label).

    python bench/app_bench.py [--n 100000] [--clients 20] [--seconds 30] [--work DIR]
"""
from __future__ import annotations

import argparse
import json
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def make_run(work: Path, n: int) -> Path:
    """An .npz of ``n`` 8x8 images in 20 noisy shapes, and its minibatch-kmeans run (k=20)."""
    import imgclust

    out = work / "run"
    if (out / "summary.json").exists():
        return out
    rng = np.random.default_rng(0)
    shapes = rng.integers(0, 2, (20, 8, 8)) * 255
    y = rng.integers(0, 20, n)
    imgs = np.clip(shapes[y] + rng.normal(0, 40, (n, 8, 8)), 0, 255).astype(np.uint8)
    npz = work / "tiny100k.npz"
    np.savez(npz, images=imgs, labels=y)
    t = time.perf_counter()
    imgclust.run(npz, out, features="pixels", method="minibatch-kmeans", k=20)
    print(f"run of {n} images: {time.perf_counter() - t:.1f} s", flush=True)
    return out


def page_times(run_dir: Path, reps: int = 20) -> dict[str, float]:
    from fastapi.testclient import TestClient

    from imgclust.app import create_app

    app = create_app(run_dir)
    client = TestClient(app, base_url="http://127.0.0.1")
    h = {"X-Imgclust-Token": app.state.token}
    out: dict[str, float] = {}
    t = time.perf_counter()
    assert client.get("/").status_code == 200
    out["first / (view built, ms)"] = 1000 * (time.perf_counter() - t)
    for path in ("/", "/cluster/0"):
        assert client.get(path).status_code == 200
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            r = client.get(path)
            times.append(time.perf_counter() - t)
            assert r.status_code == 200
        out[f"{path} cached (ms)"] = 1000 * statistics.median(times)
        times = []
        for i in range(reps):
            assert client.post("/api/label", json={"rows": [i], "label": "bench"},
                               headers=h).status_code == 200
            t = time.perf_counter()
            r = client.get(path)
            times.append(time.perf_counter() - t)
            assert r.status_code == 200
        out[f"{path} after a write (ms)"] = 1000 * statistics.median(times)
    assert client.post("/api/undo", json={}, headers=h).status_code == 200
    return out


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def load_test(run_dir: Path, clients: int, seconds: float) -> dict[str, object]:
    import httpx

    from imgclust.label.store import LabelStore

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "imgclust.cli", "serve", str(run_dir),
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        token = None
        for _ in range(600):
            try:
                page = httpx.get(base + "/", timeout=30).text
                token = re.search(r'name="imgclust-token" content="([^"]+)"', page).group(1)
                break
            except (httpx.HTTPError, AttributeError):
                time.sleep(0.1)
        if token is None:
            raise SystemExit("the server did not start: " + proc.stderr.read())
        store = LabelStore(run_dir)
        n = len(store.ids)
        clusters = sorted(set(store.current_clusters().tolist()))
        errors: list[str] = []
        acked: dict[int, tuple[str, str]] = {}   # row -> (label, batch) of its last acked write
        batches: list[str] = []
        counts = {"reads": 0, "writes": 0}
        lock = threading.Lock()
        latencies: list[float] = []
        stop = time.monotonic() + seconds

        def client(k: int) -> None:
            rng = random.Random(k)
            mine = list(range(k, n, clients))    # each client writes its own rows
            with httpx.Client(base_url=base, timeout=30) as c:
                i = 0
                while time.monotonic() < stop:
                    i += 1
                    t = time.perf_counter()
                    try:
                        if rng.random() < 0.3:
                            row, lab = rng.choice(mine), f"c{k}-{i}"
                            r = c.post("/api/label", json={"rows": [row], "label": lab},
                                       headers={"X-Imgclust-Token": token})
                            if r.status_code == 200:
                                with lock:
                                    acked[row] = (lab, r.json()["batch"])
                                    batches.append(r.json()["batch"])
                                    counts["writes"] += 1
                        else:
                            what = rng.random()
                            path = ("/" if what < 0.2 else
                                    f"/cluster/{rng.choice(clusters)}" if what < 0.5 else
                                    f"/thumb/{rng.randrange(n)}")
                            r = c.get(path)
                            with lock:
                                counts["reads"] += 1
                        if r.status_code != 200:
                            with lock:
                                errors.append(f"{r.request.method} {r.request.url.path}: "
                                              f"{r.status_code} {r.text[:100]}")
                    except httpx.HTTPError as exc:
                        with lock:
                            errors.append(f"{type(exc).__name__}: {exc}")
                    with lock:
                        latencies.append(time.perf_counter() - t)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 120)
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(30)
    # every acknowledged write is in the store: its batch, and each row's last label
    stored = {b["batch"] for b in store.batches(limit=10 ** 7) if not b["undone"]}
    labels = store.current_labels()
    lost_batches = [b for b in batches if b not in stored]
    wrong = [r for r, (lab, _) in acked.items() if labels.get(store.ids[r], (None,))[0] != lab]
    lat = sorted(latencies)
    return {"clients": clients, "seconds": round(wall, 1), "reads": counts["reads"],
            "writes acknowledged": counts["writes"], "errors": len(errors),
            "error samples": errors[:5], "lost writes": len(lost_batches) + len(wrong),
            "requests/s": round((counts["reads"] + counts["writes"]) / wall, 1),
            "latency median (ms)": round(1000 * lat[len(lat) // 2], 1) if lat else None,
            "latency p95 (ms)": round(1000 * lat[int(len(lat) * 0.95)], 1) if lat else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--work", type=Path, default=None, help="Keep the run here (reused).")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="app-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    run_dir = make_run(work, args.n)
    times = page_times(run_dir)
    print(json.dumps({k: round(v, 1) for k, v in times.items()}, indent=1), flush=True)
    load = load_test(run_dir, args.clients, args.seconds)
    print(json.dumps(load, indent=1))
    ok = (max(v for k, v in times.items() if "cached" in k) < 100 and load["errors"] == 0
          and load["lost writes"] == 0)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
