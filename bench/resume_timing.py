"""Kill a real ``imgclust run`` part-way and time the resume against an uninterrupted run.

    python bench/resume_timing.py [SOURCE.npz] [--n 2000] [--features cnn:64] [--kill batch:4]

Runs, each a fresh process of the installed CLI:
1. an uninterrupted run into A (reference clusters.csv, wall time);
2. the same run into B, SIGKILLed at ``--kill`` through the IMGCLUST_TEST_KILL_AT hook;
3. the same run into B again (resumes from B/cache), wall time;
4. the same run into B once more (everything cached), wall time.
Prints the times, the cache counts from summary.json and whether B/clusters.csv is
byte-identical to A/clusters.csv. ONNX graphs are cached in a temporary folder unless
IMGCLUST_CACHE_DIR is set.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                    / "shared" / "datasets" / "mnist10k.npz"))
    ap.add_argument("--n", type=int, default=2000, help="first N images of the .npz")
    ap.add_argument("--features", default="cnn:64")
    ap.add_argument("--method", default="kmeans")
    ap.add_argument("--k", default="10")
    ap.add_argument("--batch-size", type=int, default=250)
    ap.add_argument("--kill", default="batch:4")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="imgclust-resume-"))
    with np.load(a.source) as z:
        np.savez(tmp / "data.npz", images=z["images"][:a.n], labels=z["labels"][:a.n])
    env = {**os.environ}
    env.setdefault("IMGCLUST_CACHE_DIR", str(tmp / "onnx"))
    env.pop("IMGCLUST_TEST_KILL_AT", None)

    def run(out: Path, kill: str | None = None) -> tuple[float, int]:
        e = {**env, **({"IMGCLUST_TEST_KILL_AT": kill} if kill else {})}
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "imgclust.cli", "run", str(tmp / "data.npz"),
                            "-o", str(out), "-f", a.features, "-m", a.method, "-k", a.k,
                            "--batch-size", str(a.batch_size), "-q", "--no-report"],
                           env=e, capture_output=True, text=True)
        if p.returncode not in (0, -9):
            sys.exit(p.stderr)
        return time.perf_counter() - t, p.returncode

    # warm-up: export the ONNX graph (if any) outside the timed runs
    run(tmp / "warm")
    ref_s, _ = run(tmp / "A")
    kill_s, rc = run(tmp / "B", a.kill)
    resume_s, _ = run(tmp / "B")
    cache1 = json.loads((tmp / "B" / "summary.json").read_text())["features"]["cache"]
    again_s, _ = run(tmp / "B")
    cache2 = json.loads((tmp / "B" / "summary.json").read_text())["features"]["cache"]
    same = (tmp / "A" / "clusters.csv").read_bytes() == (tmp / "B" / "clusters.csv").read_bytes()
    print(f"source {a.source} first {a.n}, features {a.features}, batch {a.batch_size}, "
          f"kill at {a.kill}")
    print(f"uninterrupted run:           {ref_s:6.1f} s")
    print(f"killed run (rc {rc}):          {kill_s:6.1f} s")
    print(f"resumed run:                 {resume_s:6.1f} s  cache {cache1}")
    print(f"re-run of the finished run:  {again_s:6.1f} s  cache {cache2}")
    print(f"clusters.csv byte-identical to the uninterrupted run: {same}")


if __name__ == "__main__":
    main()
