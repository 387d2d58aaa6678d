"""Size, build time and opening time of the HTML report of a finished run directory.

    python bench/report_bench.py RUN_DIR [RUN_DIR ...]

For each directory: builds the report with thumbnails from scratch and a PCA map, then with the
default map (t-SNE; thumbnails cached), then with a UMAP map (the first UMAP in a process pays
numba's compilation), then again (everything cached); measures report.html, thumbs/ (bytes and
files) and plotly.min.js, and opens the page in headless Chromium: time until the script is
ready and until every plot is drawn, plus any console error. Prints one JSON line per directory.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path


def tree_size(p: Path) -> tuple[int, int, int]:
    """(bytes, disk bytes, files) under ``p``."""
    n = b = disk = 0
    for root, _, files in os.walk(p):
        for f in files:
            st = os.stat(os.path.join(root, f))
            n += 1
            b += st.st_size
            disk += st.st_blocks * 512
    return b, disk, n


def open_in_chromium(path: Path) -> dict:
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), args=flags)
        page = b.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        t = time.perf_counter()
        page.goto(path.resolve().as_uri(), wait_until="load")
        t_load = time.perf_counter() - t
        page.wait_for_function("window.imgclustReport && window.imgclustReport.ready")
        t_ready = time.perf_counter() - t
        page.evaluate("window.imgclustReport.drawAll()")
        page.wait_for_function("r => r.plotted + r.plotErrors >= r.plots",
                               arg=page.evaluate_handle("window.imgclustReport"), timeout=120_000)
        t_plots = time.perf_counter() - t
        b.close()
    return {"open_load_s": round(t_load, 2), "open_ready_s": round(t_ready, 2),
            "open_all_plots_s": round(t_plots, 2), "console_errors": errors}


def main(dirs: list[str]) -> None:
    from imgclust.report import build_report

    for d in map(Path, dirs):
        if (d / "thumbs").exists():
            shutil.rmtree(d / "thumbs")
        t = time.perf_counter()
        build_report(d, map_method="pca")  # thumbnails from scratch, the map without UMAP
        cold_pca = time.perf_counter() - t
        (d / "thumbs" / "map.npz").unlink(missing_ok=True)
        t = time.perf_counter()
        path = build_report(d)  # the default map (t-SNE)
        default_s = time.perf_counter() - t
        t = time.perf_counter()
        build_report(d, map_method="umap")  # numba compiles UMAP first in a fresh process
        umap_s = time.perf_counter() - t
        build_report(d)  # back to the default map
        t = time.perf_counter()
        build_report(d)
        warm = time.perf_counter() - t
        tb, tdisk, tn = tree_size(d / "thumbs")
        row = {"run_dir": str(d), "n_images": json.loads((d / "summary.json").read_text())["n_images"]
               if (d / "summary.json").exists() else None,
               "build_thumbs_pca_map_s": round(cold_pca, 1),
               "build_default_map_cached_thumbs_s": round(default_s, 1),
               "build_umap_map_cached_thumbs_s": round(umap_s, 1), "rebuild_s": round(warm, 1),
               "report_html_bytes": path.stat().st_size, "thumbs_bytes": tb,
               "thumbs_disk_bytes": tdisk, "thumbs_files": tn,
               "plotly_js_bytes": (d / "plotly.min.js").stat().st_size}
        row.update(open_in_chromium(path))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
