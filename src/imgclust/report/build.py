"""``build_report(run_dir)``: the HTML report of a finished run, written beside it.

Reads only the run directory (summary.json, clusters.csv, features.npy, or compare.json and
compare.csv) and the source it names, reopened for thumbnails. Writes ``report.html``,
``thumbs/`` and ``plotly.min.js`` (copied from the plotly package, so the page needs no network).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from imgclust.cluster import criteria
from imgclust.errors import ConfigError, ImgclustError
from imgclust.io import atomic_write_text
from imgclust.report import embed, figures
from imgclust.report.rundir import (FEATURES, CompareData, RunData, kind_of, load_compare,
                                    load_run)
from imgclust.report.thumbs import (SHARD, SHEET_COLS, ThumbSet, cache_key, load_cached,
                                    make_thumbnails, sheet_cell, sheet_name, thumb_name)

log = logging.getLogger(__name__)

REPORT = "report.html"
PLOTLY_JS = "plotly.min.js"
#: images shown in each of a cluster's "nearest" and "farthest" strips
STRIP = 5
#: skipped files listed in the report (all of them are in summary.json)
MAX_SKIPPED_SHOWN = 500
#: what ``map_method`` accepts
MAP_METHODS = ("auto", "umap", "tsne", "pca")


def build_report(run_dir: str | Path, *, progress: bool = False, map_method: str = "auto",
                 seed: int = 0) -> Path:
    """Write ``run_dir/report.html`` for a finished ``imgclust run`` or ``imgclust compare``.

    Parameters
    ----------
    run_dir : str or Path
        A run directory (``summary.json``) or a compare directory (``compare.json``).
    progress : bool
        Progress bar for the thumbnails.
    map_method : {"auto", "umap", "tsne", "pca"}
        2-D embedding of the features for the map (see :func:`imgclust.report.embed.embed_2d`).
    seed : int
        Seed of the samples and of the embedding.

    Returns
    -------
    Path
        The report file.

    Raises
    ------
    RunDirError
        ``run_dir`` holds no finished run, or its files cannot be read.

    Examples
    --------
    >>> from imgclust.report import build_report
    >>> build_report("runs/digits")  # doctest: +SKIP
    PosixPath('runs/digits/report.html')
    """
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    if map_method not in MAP_METHODS:
        raise ConfigError(f"map_method={map_method!r}; valid: {', '.join(MAP_METHODS)}")
    from imgclust.run.rundir import RunDir

    rd = RunDir(run_dir)
    if rd.holds_run():  # the report's files join the manifest: only they may be replaced
        for name in (REPORT, PLOTLY_JS, "thumbs"):
            rd.own(name)
    if kind_of(run_dir) == "compare":
        ctx = _compare_context(load_compare(run_dir), progress)
        template = "compare.html.j2"
    else:
        ctx = _run_context(load_run(run_dir), progress, map_method, seed)
        from imgclust.report.detect import detect_context  # outliers / duplicates sections

        ctx["detect"] = detect_context(run_dir)
        template = "report.html.j2"
    _copy_plotly(run_dir)
    ctx["build_seconds"] = time.perf_counter() - t0
    html = render(template, ctx)
    out = run_dir / REPORT
    atomic_write_text(out, html, errors="backslashreplace")
    log.info("report written to %s in %.1f s", out, time.perf_counter() - t0)
    return out


# --- rendering --------------------------------------------------------------------------------

def _env() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("imgclust.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["secs"] = lambda v: f"{v:.2f} s" if isinstance(v, (int, float)) else "–"
    env.globals["colour"] = figures.colour
    env.globals["cluster_name"] = figures.cluster_name
    return env


def render(template: str, ctx: dict[str, Any]) -> str:
    """Render one of the report's templates (the app reuses the partials)."""
    static = resources.files("imgclust.report") / "static"
    ctx = {**ctx, "css": (static / "report.css").read_text(encoding="utf-8"),
           "js": (static / "report.js").read_text(encoding="utf-8"), "plotly_js": PLOTLY_JS}
    return _env().get_template(template).render(**ctx)


#: a score as the page shows it (3 decimals, "–" when missing): the criteria's own rule
_num = criteria.num


def _copy_plotly(run_dir: Path) -> None:
    import plotly

    src = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    dest = run_dir / PLOTLY_JS
    if not dest.exists() or dest.stat().st_size != src.stat().st_size:
        tmp = run_dir / f".{PLOTLY_JS}.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)


# --- a run ------------------------------------------------------------------------------------

def _open_source(summary: dict[str, Any]) -> tuple[Any | None, str | None]:
    """The run's source reopened, or ``None`` and why not (the report is built without images)."""
    from imgclust.sources import open_source

    labels = "folders" if summary.get("labels_source") == "folders" else None
    try:
        src = open_source(summary["source"], labels=labels)
    except ImgclustError as exc:
        return None, f"The images cannot be shown: {exc}"
    note = None
    fp = summary.get("source_fingerprint")
    try:
        if fp and src.fingerprint() != fp:
            note = ("The source has changed since this run: thumbnails show the images as they "
                    "are now, and images removed since are missing.")
    except (OSError, ImgclustError) as exc:
        note = f"The source could not be checked against the run ({exc})."
    return src, note


def _thumbs(data: RunData, src: Any | None, note: str | None, progress: bool) -> ThumbSet:
    if src is None:
        return ThumbSet(available=False, note=note,
                        missing=dict.fromkeys(range(len(data.ids)), "source unavailable"))
    key = cache_key(data.run_dir, data.summary["source"])
    ts = load_cached(data.run_dir, key)
    if ts is None:
        ts = make_thumbnails(src, data.ids, data.labels, data.run_dir, key, progress=progress)
    ts.note = note
    if ts.missing:
        extra = f"{len(ts.missing)} image(s) could not be read again for thumbnails."
        ts.note = f"{note} {extra}" if note else extra
    return ts


def _order_by_distance(rows: np.ndarray, distance: np.ndarray) -> np.ndarray:
    d = distance[rows]
    return rows[np.lexsort((rows, np.where(np.isnan(d), np.inf, d)))]


def _thumb_ref(r: int, ts: ThumbSet) -> tuple[str | None, str | None]:
    """Where thumbnail row ``r`` is: its file, or the CSS that crops it from a sheet."""
    if ts.mode == "sheet":  # a cell of a PNG sheet, cropped and scaled by CSS (64 px tiles)
        col, line = sheet_cell(r)
        return None, (f"background-image:url({sheet_name(r)});"
                      f"background-size:{SHEET_COLS * 64}px auto;"
                      f"background-position:-{col * 64}px -{line * 64}px")
    return thumb_name(r), None


def _tile(data: RunData, r: int, ts: ThumbSet, truth: list[str | None] | None) -> dict[str, Any]:
    i = data.ids[r]
    d = data.distance[r]
    r = int(r)
    src, style = _thumb_ref(r, ts)
    return {"row": r, "id": i, "name": _short(i), "src": src, "style": style,
            "missing": ts.missing.get(r), "cluster": int(data.labels[r]),
            "distance": None if np.isnan(d) else float(d),
            "truth": truth[r] if truth is not None else None}


def _short(image_id: str) -> str:
    return os.path.basename(image_id) or image_id


def _k_story(summary: dict[str, Any], run_dir: Path | None = None) -> str:
    """How the number of clusters was reached, and where the criteria disagree, the command
    that tries the other k."""
    story = _k_sentence(summary)
    if summary.get("k", {}).get("note"):  # a large run: what was fitted on a sample
        story += f" ({summary['k']['note']}.)"
    dis = summary.get("k", {}).get("disagreement")
    if dis:
        picks = ", ".join(f"{name} says {k}" for name, k in dis["picks"].items())
        story += (f" The criteria disagree ({picks}): to see k = {dis['others'][0]} instead, run "
                  f"imgclust recluster {run_dir if run_dir is not None else 'DIR'} -k "
                  f"{dis['others'][0]} (seconds: the features are reused).")
    return story


def _k_sentence(summary: dict[str, Any]) -> str:
    """One sentence on how the number of clusters was reached (the criterion's own)."""
    return criteria.sentence(summary)


def _truth(src: Any | None, ids: list[str]) -> list[str | None] | None:
    if src is None:
        return None
    truth = src.labels()
    if not truth:
        return None
    return [None if truth.get(i) is None else str(truth.get(i)) for i in ids]


def _run_context(data: RunData, progress: bool, map_method: str, seed: int) -> dict[str, Any]:
    s = data.summary
    src, note = _open_source(s)
    ts = _thumbs(data, src, note, progress)
    truth = _truth(src, data.ids)
    labels, n = data.labels, len(data.ids)
    figs: dict[str, Any] = {"sizes": figures.sizes(s["cluster_sizes"])}

    # galleries: members of each cluster, nearest to its centre first; noise last
    clusters, members = [], {}
    for c in sorted((int(c) for c in np.unique(labels)), key=lambda c: (c < 0, c)):
        rows = _order_by_distance(np.flatnonzero(labels == c), data.distance)
        members[str(c)] = rows.tolist()
        near = rows[:STRIP]
        far = rows[max(len(near), len(rows) - STRIP):][::-1]
        rep = np.flatnonzero(data.is_rep & (labels == c))
        classes = Counter(truth[r] for r in rows if truth[r] is not None) if truth else Counter()
        clusters.append({
            "id": c, "size": len(rows), "share": len(rows) / n,
            "mean": ts.means.get(c), "rep": _tile(data, int(rep[0]), ts, truth) if len(rep) else None,
            "near": [_tile(data, r, ts, truth) for r in near],
            "far": [_tile(data, r, ts, truth) for r in far],
            "top_classes": classes.most_common(3),
            "median_distance": float(np.nanmedian(data.distance[rows])) if len(rows) and
            not np.isnan(data.distance[rows]).all() else None,
        })

    # choosing k
    sweep = s["k"].get("sweep") or []
    k_figs: list[tuple[str, Any]] = []
    eps_rows = [r for r in sweep if "eps" in r]
    density_rows = [r for r in sweep if "min_cluster_size" in r]  # HDBSCAN's count (density)
    k_rows = [r for r in sweep if "k" in r and r not in density_rows]
    if k_rows:
        elbow = criteria.get("elbow").pick(k_rows) if len(k_rows) >= 3 else None
        k_figs = figures.sweep_k(k_rows, s["k"]["criterion"], elbow)
    if eps_rows:
        k_figs.append(("eps", figures.sweep_eps(eps_rows)))
    for name, f in k_figs:
        figs["k_" + name] = f

    # map and silhouette diagram (need features.npy)
    map_info = None
    sil = None
    if data.X is not None:
        rows, xy, used = embed.cached_map(data.run_dir, data.X, labels, map_method, seed)
        figs["map"] = figures.scatter_map(xy, rows, labels, used)
        map_info = {"method": used, "points": len(rows), "sampled": len(rows) < n}
        ss = embed.silhouette_sample(data.X, labels, seed)
        if ss is not None:
            values, lab = ss
            figs["silhouette"] = figures.silhouette_diagram(values, lab, float(values.mean()))
            sil = {"points": len(values), "mean": float(values.mean())}

    # evaluation against labels
    metrics = s.get("metrics", {})
    evaluation = None
    disagree: list[int] = []
    if "acc" in metrics:
        mapping: dict[int, Any] = {}
        if truth is not None:
            from imgclust.evaluate.metrics import hungarian_match

            lab_rows = [r for r in range(n) if truth[r] is not None]
            mapping = {int(k): None if v is None else str(v) for k, v in hungarian_match(
                [truth[r] for r in lab_rows], labels[lab_rows]).items()}
            wrong = [r for r in lab_rows if mapping.get(int(labels[r])) != truth[r]]
            # grouped by cluster, then by true class, then nearest to the centre first
            disagree = sorted(wrong, key=lambda r: (labels[r] < 0, labels[r], truth[r],
                                                    np.nan_to_num(data.distance[r], nan=np.inf)))
        if metrics.get("confusion"):
            figs["confusion"] = figures.confusion(metrics["confusion"], mapping)
        evaluation = {"mapping": mapping, "n_disagree": len(disagree),
                      "n_labelled": metrics.get("n_labelled")}

    # what the page's script needs for "show all", the map's hover card and the paged galleries
    class_names = sorted({t for t in truth if t is not None}) if truth else []
    cidx = {c: i for i, c in enumerate(class_names)}
    page = {
        "n": n, "mode": ts.mode, "shard": SHARD, "cols": SHEET_COLS, "thumbs": ts.available,
        # array sources' ids are the row numbers: not repeated
        "ids": None if all(i == str(r) for r, i in enumerate(data.ids)) else data.ids,
        "missing": sorted(ts.missing) if ts.available else [],
        "members": members, "disagree": disagree,
        "classes": class_names,
        "truth": [cidx[t] if t is not None else -1 for t in truth] if truth else None,
        "mapping": {str(k): v for k, v in (evaluation or {}).get("mapping", {}).items()},
        "figs": figs,
    }
    skipped = s.get("skipped", [])
    reasons = Counter(_reason_kind(f["reason"]) for f in skipped)
    return {
        "kind": "run", "s": s, "n": n, "clusters": clusters, "ts": ts, "page": page,
        "k_story": _k_story(s, data.run_dir), "k_figs": [name for name, _ in k_figs], "eps_rows": eps_rows,
        "density_rows": density_rows,
        "map_info": map_info, "sil": sil, "evaluation": evaluation, "metrics": metrics,
        "skipped": skipped[:MAX_SKIPPED_SHOWN], "n_skipped": s.get("n_skipped", len(skipped)),
        "skip_reasons": reasons.most_common(), "title": f"imgclust report: {s['source']}",
        "params": {k: v for k, v in (s["method"].get("params") or {}).items()},
        "timings": s.get("timings_s", {}),
    }


def _reason_kind(reason: str) -> str:
    """The first clause of a failure reason, to count skipped files by kind."""
    return reason.split(":")[0].split("(")[0].strip()[:60] or "unknown"


# --- a comparison -----------------------------------------------------------------------------

#: clusters shown per method in the comparison, and images per cluster
COMPARE_CLUSTERS = 20
COMPARE_TILES = 6


def _compare_galleries(data: CompareData, progress: bool) -> tuple[list[dict[str, Any]], str | None]:
    """For each method, its clusters (largest first) with the images nearest each centre, so that
    a reader sees what each method did; thumbnails only for the images shown."""
    from imgclust.cluster import describe

    fpath = data.run_dir / FEATURES
    if not fpath.exists():
        return [], "The images cannot be shown: features.npy is missing."
    try:
        X = np.load(fpath, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        return [], f"The images cannot be shown: {fpath} cannot be read ({exc})."
    if X.ndim != 2 or X.shape[0] != len(data.ids):
        return [], f"The images cannot be shown: {fpath} does not match compare.csv."
    X = np.asarray(X, dtype=np.float64)
    shown: dict[str, list[tuple[int, int, list[int]]]] = {}
    for m, labels in data.labels.items():
        _, distance, _ = describe(X, labels)
        cs = sorted((int(c) for c in np.unique(labels)), key=lambda c: (c < 0, -(labels == c).sum()))
        rows = []
        for c in cs[:COMPARE_CLUSTERS]:
            members = np.flatnonzero(labels == c)
            near = _order_by_distance(members, distance)[:COMPARE_TILES]
            rows.append((c, len(members), [int(r) for r in near]))
        shown[m] = rows
    picked = sorted({r for rows in shown.values() for _, _, near in rows for r in near})
    src, note = _open_source({"source": data.info.get("source", "")})
    if src is None:
        return [], note
    sub = [data.ids[r] for r in picked]
    key = hashlib.sha256(("compare:" + str(data.info.get("source")) + "\0" + "\0".join(sub))
                         .encode("utf-8", "surrogateescape")).hexdigest()[:20]
    ts = load_cached(data.run_dir, key)
    if ts is None:  # one row per image shown (the thumbnail's row is its place in ``picked``)
        ts = make_thumbnails(src, sub, np.full(len(sub), -1), data.run_dir, key, progress=progress)
    at = {r: j for j, r in enumerate(picked)}
    galleries = []
    for m, rows in shown.items():
        clusters = []
        for c, size, near in rows:
            tiles = []
            for r in near:
                ref, style = _thumb_ref(at[r], ts)
                tiles.append({"row": r, "id": data.ids[r], "name": _short(data.ids[r]),
                              "src": ref, "style": style, "missing": ts.missing.get(at[r]),
                              "cluster": c, "distance": None, "truth": None})
            clusters.append({"id": c, "size": size, "tiles": tiles})
        n_clusters = len({int(c) for c in np.unique(data.labels[m]) if c >= 0})
        galleries.append({"method": m, "clusters": clusters, "n_clusters": n_clusters,
                          "more": max(0, len(np.unique(data.labels[m])) - len(rows))})
    if ts.missing:
        extra = f"{len(ts.missing)} image(s) could not be read again for thumbnails."
        note = f"{note} {extra}" if note else extra
    return galleries, note


def _compare_context(data: CompareData, progress: bool = False) -> dict[str, Any]:
    info = data.info
    agree = info.get("agreement", {})
    figs = {"agreement": figures.agreement(agree.get("methods", []), agree.get("ari", [])),
            "compare_sizes": figures.compare_sizes(data.labels)}
    table = info.get("table", [])
    keys = [k for k in ("k", "criterion", "silhouette", "davies_bouldin", "calinski_harabasz",
                        "noise_share", "acc", "nmi", "ari", "purity", "seconds")
            if any(k in r for r in table)]
    skipped = info.get("skipped", [])
    galleries, gallery_note = _compare_galleries(data, progress)
    return {"kind": "compare", "info": info, "table": table, "keys": keys,
            "galleries": galleries, "gallery_note": gallery_note, "tiles_per": COMPARE_TILES,
            "skipped": skipped[:MAX_SKIPPED_SHOWN], "n_skipped": info.get("n_skipped", len(skipped)),
            "page": {"figs": figs}, "title": f"imgclust compare: {info.get('source')}"}
