"""One paired run on one photo folder: ``imgclust run`` (default settings, with its report)
against clustimage 1.7.1's README default ``Clustimage(method='pca').fit_transform(folder)``,
each in its own process under ``/usr/bin/time -v``: wall time, whole-process peak RSS, k and
Hungarian ACC against the first-level folders (labels used only for scoring). Issue 12.

clustimage runs in its own virtual environment, never in imgclust's::

    python3 -m venv /work/venv-clustimage && /work/venv-clustimage/bin/pip install clustimage==1.7.1
    python bench/photo_speed.py /work/bench-data/sets/mixed --clustimage-python \\
        /work/venv-clustimage/bin/python [--order imgclust-first|clustimage-first]

The load average is printed beside each timing (the machine may be shared).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CLUSTIMAGE_CHILD = r"""
import json, sys
from clustimage import Clustimage
cl = Clustimage(method='pca')
res = cl.fit_transform(sys.argv[1])
print("@@" + json.dumps({"labels": [int(v) for v in res["labels"]],
                         "paths": [str(p) for p in cl.results["pathnames"]]}))
"""


def hungarian_acc(y: list[str], p: list[int]) -> float:
    from scipy.optimize import linear_sum_assignment

    ys, ps = sorted(set(y)), sorted(set(p))
    C = np.array([[sum(1 for a, b in zip(p, y) if a == pi and b == yi) for yi in ys] for pi in ps])
    r, c = linear_sum_assignment(-C)
    return float(C[r, c].sum() / len(y))


def timed(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    """Run ``cmd`` under /usr/bin/time -v; wall seconds, peak RSS (MB), stdout, load before."""
    load = os.getloadavg()
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True,
                       env={**os.environ, **(env or {})})
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", r.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    cpu = [float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", r.stderr)]
    secs = 0.0
    if wall:
        for part in wall[1].split(":"):
            secs = secs * 60 + float(part)
    return {"rc": r.returncode, "wall_s": round(secs, 1), "cpu_s": round(sum(cpu), 1),
            "peak_rss_mb": round(int(rss[1]) / 1024) if rss else None,
            "load_before": [round(v, 2) for v in load],
            "load_after": [round(v, 2) for v in os.getloadavg()],
            "stdout": r.stdout, "stderr_tail": r.stderr[-1500:]}


def run_imgclust(folder: Path, work: Path) -> dict[str, object]:
    out = work / "imgclust-run"
    res = timed([sys.executable, "-m", "imgclust.cli", "run", str(folder), "--out", str(out),
                 "-q"])
    if res["rc"] == 0:
        with open(out / "clusters.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        y = [Path(r["id"]).parts[0] for r in rows]
        p = [int(r["cluster"]) for r in rows]
        res.update(n=len(rows), k=len(set(c for c in p if c >= 0)), acc=round(hungarian_acc(y, p), 3))
        summary = json.loads((out / "summary.json").read_text())
        res["timings"] = summary.get("timings_s")
    return res


def run_clustimage(folder: Path, python: str) -> dict[str, object]:
    res = timed([python, "-c", CLUSTIMAGE_CHILD, str(folder)], env={"MPLBACKEND": "Agg"})
    line = next((ln for ln in str(res["stdout"]).splitlines() if ln.startswith("@@")), None)
    if line:
        got = json.loads(line[2:])
        y = [Path(os.path.relpath(p, folder)).parts[0] for p in got["paths"]]
        res.update(n=len(y), k=len(set(got["labels"])), acc=round(hungarian_acc(y, got["labels"]), 3))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--clustimage-python", default="/work/venv-clustimage/bin/python")
    ap.add_argument("--order", choices=("imgclust-first", "clustimage-first"),
                    default="imgclust-first")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="photo-speed-") as tmp:
        work = Path(tmp)
        jobs = [("imgclust", lambda: run_imgclust(args.folder, work)),
                ("clustimage", lambda: run_clustimage(args.folder, args.clustimage_python))]
        if args.order == "clustimage-first":
            jobs.reverse()
        results = {}
        for name, job in jobs:
            results[name] = job()
            r = results[name]
            print(f"{name}: rc={r['rc']} wall={r['wall_s']} s cpu={r['cpu_s']} s peak RSS="
                  f"{r['peak_rss_mb']} MB n={r.get('n')} k={r.get('k')} ACC={r.get('acc')} "
                  f"load {r['load_before']} -> {r['load_after']}", flush=True)
            if r["rc"] != 0:
                print(r["stderr_tail"], file=sys.stderr)
    a, b = results["imgclust"], results["clustimage"]
    if a["wall_s"] and b["wall_s"]:
        print(f"wall ratio imgclust/clustimage = {a['wall_s'] / b['wall_s']:.2f} (bar <= 0.5); "
              f"peak RSS {a['peak_rss_mb']} MB (bar <= 600)")
    if a.get("timings"):
        print("imgclust stages (s):", json.dumps(a["timings"]))
    if args.json:
        for r in results.values():
            r.pop("stdout", None)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
