"""The command line: thin; every command is a call into the Python API.

Errors of imgclust become one line on stderr and exit code 1 (usage errors: 2).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from imgclust.errors import ConfigError, ImgclustError

# rich_markup_mode=None: click's plain help (typer's rich panels print '<bool>' beside every flag)
app = typer.Typer(add_completion=False, no_args_is_help=False, rich_markup_mode=None,
                  help="Unsupervised image classification: group similar images.")
# emoji=False: a file named ':thumbs_up:.png' is printed as named, not as an emoji;
# soft_wrap: a plain line is never broken at 80 columns on a pipe (tables still fit the width)
console = Console(emoji=False, soft_wrap=True)
err = Console(stderr=True, soft_wrap=True, emoji=False)


@contextmanager
def _marks_interrupted(out: Path) -> Iterator[None]:
    """Ctrl-C inside: ``OUT/run.json`` left ``running`` is rewritten ``interrupted`` (the run
    resumes as a killed one does); the KeyboardInterrupt goes on, and :func:`main` exits 130."""
    try:
        yield
    except KeyboardInterrupt:
        from imgclust.io import atomic_write_json

        try:
            data = json.loads((out / "run.json").read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("state") == "running":
                atomic_write_json(out / "run.json", {**data, "state": "interrupted"})
        except (OSError, ValueError):
            pass  # no run.json yet (or unreadable): nothing of ours to mark
        raise


def _criterion_help() -> str:
    """--criterion's help, from the criteria registry (imgclust.cluster.criteria)."""
    from imgclust.cluster import criteria

    return ("How auto chooses k: " + ", ".join(criteria.selectable()) + " (graph, modularity "
            "and eigengap: knn-spectral's own graph). Default: the method's first: silhouette for "
            "kmeans, agglomerative and spectral, bic for gmm, graph for knn-spectral; 'imgclust "
            "methods METHOD' lists each method's criteria and what they mean.")


#: --criterion's help
CRITERION_HELP = _criterion_help()


def _k_range(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in text.split(":"))
    except ValueError:
        raise ConfigError(f"--k-range {text!r} must look like 2:15") from None
    if lo < 2 or hi < lo:  # checked here: before the run folder is made
        raise ConfigError(f"--k-range {text!r}: need 2 <= LOW <= HIGH")
    return lo, hi


def _k(text: str) -> str:
    """``-k``: 'auto' or a whole number of at least 1, checked before anything runs."""
    if text != "auto" and not (text.isdigit() and int(text) >= 1):
        raise ConfigError(f"k={text!r} must be 'auto' or a positive integer")
    return text


def _out_dir(text: str) -> Path:
    """``--out``: an empty string is refused (``Path("")`` is the working directory)."""
    if not text:
        raise typer.BadParameter("is empty (''); name the run directory to write")
    return Path(text)


#: a seed scikit-learn and numpy accept (RandomState: 0 .. 2**32 - 1)
SEED_MAX = 2**32 - 1


def safe_text(text: str) -> str:
    """A user-controlled string (path, file name, id) safe to print: control characters and
    undecodable bytes shown escaped (as ``ls -b`` does); print it with ``markup=False``."""
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif "\udc80" <= ch <= "\udcff":  # an undecodable byte (surrogateescape)
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def _cell(text: Any) -> Text:
    """A table cell holding a user-controlled string (table cells are read as markup)."""
    return Text(safe_text(str(text)))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _k_story(s: dict[str, Any]) -> str:
    """Where the number of clusters came from, in words (summary.json's "k")."""
    from imgclust.cluster import criteria

    return criteria.short(s)


def _print_run(res: Any) -> None:
    s = res.summary
    # every path, name and id goes through safe_text; lines with markup escape them too
    console.print(f"[bold]{s['n_images']}[/] images from {escape(safe_text(str(s['source'])))}"
                  + (f", [yellow]{s['n_skipped']} skipped[/]" if s["n_skipped"] else ""))
    for f in s["skipped"][:10]:
        console.print(f"  skipped {safe_text(f['path'])}: {safe_text(f['reason'])}", markup=False)
    if s["n_skipped"] > 10:
        console.print(f"  … and {s['n_skipped'] - 10} more (see summary.json)")
    console.print(f"features: {safe_text(s['features']['spec'])} -> {s['features']['dim']} dims",
                  markup=False)
    console.print(f"method: {safe_text(s['method']['name'])}, clusters: {s['n_clusters']} "
                  f"({safe_text(_k_story(s))})", markup=False)
    t = Table(title="clusters")
    t.add_column("cluster", justify="right")
    t.add_column("size", justify="right")
    t.add_column("representative", overflow="fold")  # a long path folds, never cut with …
    for c, n in s["cluster_sizes"].items():
        t.add_row("noise" if c == "-1" else c, str(n), _cell(s["representatives"].get(c, "-")))
    console.print(t)
    m = res.metrics
    t = Table(title="scores")
    for key in ("silhouette", "davies_bouldin", "calinski_harabasz", "acc", "nmi", "ari", "purity"):
        if key in m:
            t.add_column(key, justify="right")
    t.add_row(*[_fmt(m[key]) for key in ("silhouette", "davies_bouldin", "calinski_harabasz",
                                         "acc", "nmi", "ari", "purity") if key in m])
    console.print(t)
    console.print(f"time: {s['timings_s'].get('total', 0):.1f} s")
    if res.run_dir:
        console.print(f"written to {safe_text(str(res.run_dir))}", markup=False)


@app.command()
def run(
    source: str = typer.Argument("dataset:digits", metavar="SOURCE",
                                 help="Folder, .npz file or dataset:NAME."),
    out: Path = typer.Option(..., "--out", "-o", metavar="DIR", parser=_out_dir,
                             help="Run directory to write."),
    features: str = typer.Option("auto", "--features", "-f", metavar="STEPS",
                                 help="Feature steps, e.g. pixels, pixels:32,pca:50, cnn,umap:10, auto."),
    method: str = typer.Option("auto", "--method", "-m", metavar="METHOD",
                               help="Clustering method (see 'imgclust methods')."),
    k: str = typer.Option("auto", "--k", "-k", metavar="K", help="Number of clusters or 'auto'."),
    criterion: Optional[str] = typer.Option(None, metavar="NAME", help=CRITERION_HELP),
    k_range: str = typer.Option("2:15", metavar="LOW:HIGH", help="Range of k tried by auto."),
    labels: Optional[str] = typer.Option(None, metavar="folders",
                                         help="'folders': class subfolders, for evaluation only."),
    export: Optional[str] = typer.Option(None, metavar="MODE",
                                         help="Per-cluster folders: copy, link or move."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier run in --out."),
    seed: int = typer.Option(0, min=0, max=SEED_MAX, metavar="N", help="Random seed."),
    batch_size: int = typer.Option(256, min=1, metavar="N",
                                   help="Images decoded per batch (bounds memory)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write OUT/report.html."),
    map_method: str = typer.Option("auto", "--map", metavar="NAME", help="The report's 2-D map: auto (t-SNE; PCA under 30 images), tsne, umap or pca."),
    workers: Optional[int] = typer.Option(None, min=1, metavar="N", help="Decode + features of a folder on a local Dask cluster of N worker processes (imgclust[distributed])."),
    scheduler: Optional[str] = typer.Option(None, metavar="ADDRESS", help="The same on a running Dask cluster, e.g. tcp://HOST:8786 (workers: same install, folder at the same path)."),
) -> None:
    """Cluster images and write clusters.csv, summary.json, report.html (and folders with --export)."""
    from imgclust.pipeline import run as run_api

    k = _k(k)
    with _marks_interrupted(out):
        res = run_api(source, out, features=features, method=method, k=k, criterion=criterion,
                      k_range=_k_range(k_range), labels=labels, seed=seed, export=export,
                      overwrite=overwrite, batch_size=batch_size, progress=not quiet,
                      workers=workers, scheduler=scheduler)
    _print_run(res)
    _print_k_hint(res.summary, out)
    if report:
        _write_report(out, quiet, map_method)


def _print_k_hint(summary: dict[str, Any], out: Path) -> None:
    """Where the k criteria disagreed, say so and give the command that tries the other k; what
    was sampled on a large run."""
    note = summary.get("k", {}).get("note")
    if note:
        console.print(f"note: {note}", markup=False, soft_wrap=True)
    dis = summary.get("k", {}).get("disagreement")
    if not dis:
        return
    picks = ", ".join(f"{name} says {k}" for name, k in dis["picks"].items())
    console.print(f"note: the k criteria disagree ({picks}); k = {dis['chosen']} was chosen by "
                  f"{dis['criterion']}. To try another: imgclust recluster {safe_text(str(out))} "
                  f"-k {dis['others'][0]}", markup=False, soft_wrap=True)


@app.command()
def compare(
    source: str = typer.Argument("dataset:digits", metavar="SOURCE",
                                 help="Folder, .npz file or dataset:NAME."),
    out: Path = typer.Option(..., "--out", "-o", metavar="DIR", parser=_out_dir,
                             help="Run directory to write (compare.json, compare.csv)."),
    method: List[str] = typer.Option(["kmeans", "agglomerative", "gmm", "hdbscan"], "--method", "-m",
                                     metavar="METHOD",
                                     help="Repeat for each method to compare, each once."),
    features: str = typer.Option("auto", "--features", "-f", metavar="STEPS",
                                 help="Feature steps shared by every method (as for run)."),
    k: str = typer.Option("auto", "--k", "-k", metavar="K",
                          help="Number of clusters or 'auto' (each method chooses with its "
                               "first criterion; methods that find k ignore it)."),
    k_range: str = typer.Option("2:15", metavar="LOW:HIGH", help="Range of k tried by auto."),
    labels: Optional[str] = typer.Option(None, metavar="folders",
                                         help="'folders': class subfolders, for evaluation only."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier run in --out."),
    seed: int = typer.Option(0, min=0, max=SEED_MAX, metavar="N", help="Random seed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write OUT/report.html."),
) -> None:
    """Several methods on the same features: metrics table and pairwise ARI agreement."""
    from imgclust.pipeline import compare as compare_api

    k = _k(k)
    twice = sorted({m for m in method if method.count(m) > 1})
    if twice:  # each method is a column of compare.csv and a row of the agreement matrix
        raise ConfigError(f"method {', '.join(map(repr, twice))} is given twice; "
                          "name each method once")
    with _marks_interrupted(out):
        res = compare_api(source, out, methods=method, features=features, k=k,
                          k_range=_k_range(k_range), labels=labels, seed=seed,
                          overwrite=overwrite, progress=not quiet)
    keys = ["k", "criterion", "silhouette", "davies_bouldin", "acc", "nmi", "ari", "seconds"]
    keys = [kk for kk in keys if any(kk in r for r in res.table)]
    t = Table(title="methods")
    t.add_column("method")
    for kk in keys:
        t.add_column(kk, justify="right")
    for r in res.table:
        t.add_row(_cell(r["method"]), *[_fmt(r.get(kk)) for kk in keys])
    console.print(t)
    t = Table(title="agreement (ARI)")
    t.add_column("")
    for m in res.methods:
        t.add_column(_cell(m), justify="right")
    for i, m in enumerate(res.methods):
        t.add_row(_cell(m), *[f"{v:.2f}" for v in res.agreement[i]])
    console.print(t)
    console.print(f"written to {safe_text(str(out))}", markup=False)
    if report:
        _write_report(out, quiet)


def _write_report(run_dir: Path, quiet: bool, map_method: str = "auto") -> None:
    import time

    from imgclust.report import build_report

    t = time.perf_counter()
    path = build_report(run_dir, progress=not quiet, map_method=map_method)
    size = path.stat().st_size
    console.print(f"report: {safe_text(str(path))} ({size / 1e6:.1f} MB, "
                  f"{time.perf_counter() - t:.1f} s)", markup=False)


@app.command("report")
def report_cmd(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR",
                                   help="Run directory of 'imgclust run' or 'imgclust compare'."),
    map_method: str = typer.Option("auto", "--map", metavar="NAME", help="2-D map: auto (t-SNE; PCA under 30 images), tsne, umap or pca."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """(Re)build RUN_DIR/report.html from a finished run; opens offline in a browser."""
    _write_report(run_dir, quiet, map_method)


@app.command()
def bench(
    source: List[str] = typer.Argument(None, metavar="SOURCE",
                                       help="Labelled sources (default: dataset:digits); "
                                       "folders:PATH for class subfolders."),
    features: List[str] = typer.Option(None, "--features", "-f", metavar="STEPS",
                                       help="Repeat; default pixels and pixels,pca:50."),
    method: List[str] = typer.Option(None, "--method", "-m", metavar="METHOD",
                                     help="Repeat; default: every method."),
    k: str = typer.Option("true", "--k", "-k", metavar="K",
                          help="'true' (number of classes), 'auto' or N."),
    seeds: int = typer.Option(1, min=1, metavar="N", help="Repeat every row over this many seeds."),
    default: bool = typer.Option(True, "--default/--no-default",
                                 help="Include the auto/auto default row."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines, one per row."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the summary as a Markdown table."),
    memory: bool = typer.Option(False, "--memory", help="Also trace peak memory (tracemalloc; slows "
                                "Python-heavy steps, so seconds are not comparable)."),
    supervised: bool = typer.Option(False, "--supervised", help="Also an SVM and a random forest on "
                                    "a stratified 75/25 split of the same features (default: no -f, "
                                    "i.e. the auto default's features, and -m kmeans)."),
    cluster_feats: bool = typer.Option(False, "--cluster-features", help="Instead of the matrix: "
                                       "logistic regression on k-means distances (k by 3-fold grid "
                                       "search) against one on the plain features (-f, default "
                                       "pixels)."),
    k_grid: str = typer.Option("100:200:50", metavar="LOW:HIGH:STEP",
                               help="The k's of --cluster-features' grid search (each with "
                               "C in 1, 10, 100)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="DIR", parser=_out_dir,
                                       help="Folder for bench.json (and "
                                       "supervised.html with --supervised): new, empty or an "
                                       "earlier bench's."),
) -> None:
    """Score the feature x method matrix against labels: ACC, NMI, ARI, seconds (and peak memory)."""
    from imgclust.bench import DEFAULT_FEATURES, DEFAULT_METHODS, aggregate, check_bench_out
    from imgclust.bench import bench as bench_api

    if k not in ("true", "auto") and not (k.isdigit() and int(k) >= 1):
        raise ConfigError(f"-k {k!r} must be 'true', 'auto' or a positive integer")
    kk: Any = k if k in ("true", "auto") else int(k)
    keys = ["data", "features", "method", "seed", "k", "criterion", "acc", "nmi", "ari",
            "noise", "test_acc", "seconds", "peak_mb"]
    if cluster_feats:
        _k_grid(k_grid)  # a usage mistake fails before any work
    if out is not None:
        check_bench_out(out, supervised)  # refuse a user's folder before the first image is read

    def show(row: dict[str, Any]) -> None:
        if as_json:
            print(json.dumps(row), flush=True)
        else:
            err.print(safe_text("  ".join(f"{kx}={_fmt(row.get(kx))}" for kx in keys if kx in row)
                                + (f"  error={row['error']}" if "error" in row else "")),
                      markup=False)

    sources = source or ["dataset:digits"]
    rows: list[dict[str, Any]] = []
    if cluster_feats:
        from imgclust.bench import CLUSTER_FEATURES_DEFAULT, clusters_as_features

        rows += clusters_as_features(sources, features or CLUSTER_FEATURES_DEFAULT,
                                     seeds=range(seeds), k_grid=_k_grid(k_grid), on_row=show)
    if supervised or not cluster_feats:
        default_f, default_m = ((), ("kmeans",)) if supervised else (DEFAULT_FEATURES, DEFAULT_METHODS)
        rows += bench_api(sources, features or default_f, method or default_m, k=kk,
                          seeds=range(seeds), include_default=default, on_row=show,
                          memory=memory, supervised=supervised)
    if out is not None:
        from imgclust.bench import write_bench_out

        write_bench_out(rows, out, config={"sources": sources, "features": features,
                                           "methods": method, "k": k, "seeds": seeds,
                                           "supervised": supervised,
                                           "cluster_features": cluster_feats})
        if not as_json:  # on stderr under --markdown: stdout holds only the tables
            (err if markdown else console).print(f"written to {safe_text(str(out))}",
                                                 markup=False)
    if as_json:
        return
    agg = aggregate(rows)
    if markdown:
        if agg:
            print(_markdown_table(agg, seeds))
        _print_bench_extras(rows, markdown=True)
        return
    if not agg:
        _print_bench_extras(rows, markdown=False)
        return
    t = Table(title="bench (mean ± sd over seeds)")
    for col in ("data", "features", "method", "k", "acc", "nmi", "ari", "seconds", "peak MB"):
        t.add_column(col)
    for r in agg:
        pm = lambda key: (f"{r[key]:.3f} ± {r[key + '_sd']:.3f}" if key in r else "error")  # noqa: E731
        t.add_row(_cell(r["data"]), _cell(r["features"]), _cell(r["method"]), _fmt(r.get("k")),
                  pm("acc"), pm("nmi"),
                  pm("ari"), f"{r.get('seconds', 0):.2f}", _mb(r))
    console.print(t)
    _print_bench_extras(rows, markdown=False)


def _mb(r: dict[str, Any]) -> str:
    return "–" if r.get("peak_mb") is None else f"{r['peak_mb']:.0f}"


def _markdown_table(agg: list[dict[str, Any]], seeds: int) -> str:
    """Aggregated bench rows as a Markdown table (mean ± sd when more than one seed)."""
    def cell(r: dict[str, Any], key: str, digits: int = 3) -> str:
        if key not in r:
            return "error"
        return f"{r[key]:.{digits}f}" + (f" ± {r[key + '_sd']:.{digits}f}" if seeds > 1 else "")

    def k_cell(r: dict[str, Any]) -> str:
        if "k" not in r:
            return "error"
        k = (f"{r['k']:.0f}" if float(r["k"]).is_integer() else f"{r['k']:.1f}") \
            + (f" ± {r['k_sd']:.1f}" if r.get("k_sd") else "")
        return f"{k} ({r['k_from']})"

    lines = ["| data | features | method | k | ACC | NMI | ARI | noise | seconds | peak MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in agg:
        noise = f"{100 * r['noise']:.0f}%" if "noise" in r else "error"
        data, feats, meth = (safe_text(str(v)).replace("|", "\\|") for v in
                             (Path(r["data"]).name, r["features"], r["method"]))
        lines.append(f"| {data} | {feats} | {meth} | {k_cell(r)} | "
                     f"{cell(r, 'acc')} | {cell(r, 'nmi')} | {cell(r, 'ari')} | {noise} | "
                     f"{cell(r, 'seconds', 1)} | {_mb(r)} |")
    return "\n".join(lines)


@app.command()
def undo(out: Path = typer.Argument(..., help="Run directory of an --export move.")) -> None:
    """Put every file moved by --export move back where it was."""
    from imgclust.export import undo as undo_api

    stats = undo_api(out)
    console.print(f"restored {stats['restored']} files, {stats['already_in_place']} already in "
                  f"place, {stats['missing']} missing")
    if stats["missing"]:  # exit 1 with one 'error:' line that says what is missing
        raise ImgclustError(f"undo: {stats['missing']} moved file(s) are missing from both their "
                            f"original path and {out / 'clusters'}; the journal is kept: put them "
                            f"back and run 'imgclust undo {out}' again (or delete "
                            f"{out / 'export-journal.jsonl'} if they are lost)")


@app.command()
def methods(name: Optional[str] = typer.Argument(
        None, help="A feature step or clustering method to describe.")) -> None:
    """List the feature steps and clustering methods, or describe one (NAME)."""
    from rich.text import Text

    from imgclust.cluster import registry as creg
    from imgclust.features import registry as freg

    freg.load_builtins()
    creg.load_builtins()
    regs = (("feature steps (-f)", freg), ("clustering methods (-m)", creg))
    if name is None:
        for title, reg in regs:
            table = Table(title=title, title_justify="left", show_header=False, box=None)
            table.add_column(no_wrap=True)
            table.add_column()
            for n in reg.names():
                table.add_row(Text(n), Text(reg.describe(n)["summary"]))
            console.print(table)
        console.print("imgclust methods NAME describes one and lists its parameters.")
        return
    found = [reg.describe(name) for _, reg in regs if name in reg.names()]
    if not found:
        raise ConfigError(f"unknown feature step or method {name!r}; valid names: "
                          f"{', '.join(freg.names() + creg.names())}")
    for d in found:
        console.print(Text(f"{d['name']} ({d['kind']})", style="bold"))
        console.print(Text(d["description"]))
        for c in d.get("criteria", []):
            console.print(Text(f"  k auto by {c['name']}: {c['meaning']}"))
        table = Table(title="parameters", title_justify="left")
        for col in ("name", "type", "default"):
            table.add_column(col)
        for p in d["parameters"]:
            pos = " (positional)" if p["name"] == d["primary"] else ""
            table.add_row(Text(p["name"] + pos), Text(p["type"]), Text(repr(p["default"])))
        console.print(table)


@app.command()
def recluster(
    run_dir: Path = typer.Argument(..., help="Run directory of 'imgclust run'."),
    k: str = typer.Option("auto", "--k", "-k", help="Number of clusters or 'auto'."),
    method: Optional[str] = typer.Option(None, "--method", "-m", help="Clustering method (default: the run's; see 'imgclust methods')."),
    criterion: Optional[str] = typer.Option(None, help="How auto chooses k (default: the method's first, e.g. silhouette for kmeans)."),
    k_range: str = typer.Option("2:15", help="Range of k tried by auto, LOW:HIGH."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    report: bool = typer.Option(True, "--report/--no-report", help="Rewrite RUN_DIR/report.html."),
) -> None:
    """A new k or method on the run's cached features, in seconds (nothing is decoded again)."""
    from imgclust.run.reclustering import recluster as recluster_api

    lo_hi = _k_range(k_range)
    res = recluster_api(run_dir, k=k, method=method, criterion=criterion, k_range=lo_hi,
                        progress=not quiet)
    _print_run(res)
    _print_k_hint(res.summary, run_dir)
    if report:
        _write_report(run_dir, quiet)


@app.command()
def assign(
    run_dir: Path = typer.Argument(..., help="Run directory of 'imgclust run'."),
    images: str = typer.Argument(..., help="New images: a folder, an .npz file or dataset:NAME."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for assignments.csv (new or empty)."),
    batch_size: int = typer.Option(256, min=1, help="Images decoded per batch (bounds memory)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Give each new image the run's cluster (numbered as clusters.csv) or -1 'unknown'."""
    from imgclust.run.assign_cli import assign_to_folder

    stats = assign_to_folder(run_dir, images, out, batch_size=batch_size, progress=not quiet)
    console.print(f"{stats['n']} images assigned: {stats['known']} to clusters, "
                  f"{stats['unknown']} unknown"
                  + (f", {stats['skipped']} skipped" if stats["skipped"] else ""), markup=False)
    console.print(f"written to {safe_text(str(stats['file']))}", markup=False)


@app.command()
def segment(
    image: Path = typer.Argument(..., metavar="IMAGE", help="The image file to segment (never modified)."),
    colors: List[int] = typer.Option([8], "--colors", "-c", metavar="K", help="Number of colours; repeat for several segmentations."),
    out: Path = typer.Option(..., "--out", "-o", metavar="DIR", parser=_out_dir, help="Folder to write (new, empty or an earlier segment's)."),
    seed: int = typer.Option(0, min=0, max=SEED_MAX, metavar="N", help="Random seed (pixel sample and k-means)."),
    max_side: int = typer.Option(2048, min=1, metavar="N", help="Segment a copy downscaled to this longer side."),
) -> None:
    """Colour segmentation by k-means over the pixels: segmented-K.png, palette-K.png/.json, segment.html."""
    from imgclust.segment import segment_file

    res = segment_file(image, colors, out, random_state=seed, max_side=max_side)
    for k, cols in res["palettes"].items():
        console.print(f"{k} colours: " + "  ".join(f"{c['hex']} {100 * c['share']:.1f}%"
                                                 for c in cols), markup=False)
    console.print(f"written to {safe_text(str(Path(out) / 'segment.html'))}", markup=False)


def _k_grid(text: str) -> list[int]:
    try:
        lo, hi, step = (int(x) for x in text.split(":"))
    except ValueError:
        raise ConfigError(f"--k-grid {text!r} must look like 50:150:10") from None
    if lo < 1 or hi < lo or step < 1:
        raise ConfigError(f"--k-grid {text!r}: need 1 <= LOW <= HIGH and STEP >= 1")
    return list(range(lo, hi + 1, step))


def _bench_extra_tables(rows: list[dict[str, Any]]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, cells) of the supervised and clusters-as-features summaries of a bench."""
    from imgclust.bench import cluster_features_summary, supervised_summary

    def pm(d: dict[str, Any] | None, key: str = "acc") -> str:
        return f"{d[key]:.3f} ± {d[key + '_sd']:.3f}" if d and key in d else "–"

    tables = []
    sup = supervised_summary(rows)
    if sup:
        models = list(dict.fromkeys(m for s in sup for m in s["models"]))
        tables.append(("supervised baselines (test accuracy, stratified 75/25; mean ± sd over seeds)",
                       ["data", "features", "unsupervised ACC", *models],
                       [[Path(s["data"]).name, s["features"] if s["features"] == s["spec"]
                         else f"{s['features']} ({s['spec']})",
                         "; ".join(f"{u['method']} {pm(u)}" for u in s["unsupervised"]) or "–",
                         *[pm(s["models"].get(m)) for m in models]] for s in sup]))
    cf = cluster_features_summary(rows)
    if cf:
        tables.append(("k-means distances as features (test accuracy, stratified 75/25)",
                       ["data", "features", "logistic regression", "k-means distances + LR",
                        "k (grid search)", "error rate"],
                       [[Path(c["data"]).name, c["features"], pm(c["plain"]), pm(c["clustered"]),
                         ", ".join(str(k) for k in c["k"]),
                         f"{100 * c['plain_error']:.1f} % -> {100 * c['clustered_error']:.1f} % "
                         f"({100 * c['error_change']:+.0f} %)"] for c in cf]))
    return tables


def _print_bench_extras(rows: list[dict[str, Any]], markdown: bool) -> None:
    for title, header, cells in _bench_extra_tables(rows):
        if markdown:
            print(f"\n{title}\n")
            print("| " + " | ".join(header) + " |")
            print("|" + "---|" * len(header))
            for c in cells:
                print("| " + " | ".join(safe_text(v).replace("|", "\\|") for v in c) + " |")
            continue
        t = Table(title=title)
        for col in header:
            t.add_column(col)
        for c in cells:
            t.add_row(*[_cell(v) for v in c])
        console.print(t)


@app.command()
def outliers(
    source: str = typer.Argument(..., help="Run directory of 'imgclust run' (its features and clusters), or a folder, .npz file or dataset:NAME."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for outliers.csv and outliers.html (new, empty or an earlier outliers')."),
    contamination: float = typer.Option(0.04, help="Share of images flagged."),
    features: Optional[str] = typer.Option(None, "--features", "-f", help="Feature steps for a source (default auto); a run directory's own are used."),
    method: List[str] = typer.Option(None, "--method", "-m", help="Detectors, repeat: gmm, pca, centre, lof, knn, stats, orient (default: pca, centre, lof, stats, orient)."),
    seed: int = typer.Option(0, help="Random seed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Score every image by how little it fits the others; flag the top share and say why."""
    from imgclust.detect.commands import OUTLIERS_CSV, OUTLIERS_HTML, run_outliers
    from imgclust.detect.outliers import DEFAULT_METHODS

    rep = run_outliers(source, out, contamination=contamination, features=features,
                       methods=method or DEFAULT_METHODS, seed=seed, progress=not quiet)
    r = rep.result
    console.print(f"{int(r.flagged.sum())} of {len(rep.ids)} images flagged (contamination "
                  f"{contamination:g}); features: {safe_text(rep.features)}", markup=False)
    for i, score, reason in rep.top(10):
        console.print(f"  {score:8.2f}  {safe_text(i)}  ({reason})", markup=False)
    console.print(f"written to {safe_text(str(out / OUTLIERS_CSV))} and {OUTLIERS_HTML}",
                  markup=False)
    if rep.run_report:
        console.print(f"gallery added to {safe_text(str(Path(source) / 'report.html'))}",
                      markup=False)


def _similarity_option(text: str) -> float | str | None:
    if text in ("auto", "none"):
        return None if text == "none" else "auto"
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--min-similarity {text!r} must be auto, none or a number") from None


@app.command()
def duplicates(
    source: str = typer.Argument(..., help="Folder, .npz file or dataset:NAME, or a run directory (its source; the groups join its report.html)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for duplicates.csv and duplicates.html (new, empty or an earlier duplicates')."),
    radius: int = typer.Option(10, help="Largest Hamming distance of two 64-bit perceptual hashes."),
    keep: str = typer.Option("largest", help="Image kept in a group: largest, oldest or first."),
    export: Optional[str] = typer.Option(None, help="'copy': a de-duplicated copy of the folder in OUT/unique/ (never overwrites)."),
    hash_kind: str = typer.Option("phash", "--hash", help="Perceptual hash: phash or dhash."),
    min_similarity: str = typer.Option("auto", help="Thumbnail cosine a near pair must reach: auto (0.99 for images on a plain background, else 0.9), none or a number."),
    cosine: Optional[float] = typer.Option(None, help="Also pair images whose feature cosine reaches this."),
    features: Optional[str] = typer.Option(None, "--features", "-f", help="Feature steps for --cosine (default auto)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Exact copies (same bytes) and near-duplicates (perceptual hash); keep one per group."""
    from imgclust.detect.commands import DUPLICATES_CSV, DUPLICATES_HTML, UNIQUE, run_duplicates

    rep = run_duplicates(source, out, radius=radius, keep=keep, export=export, hash=hash_kind,
                         min_similarity=_similarity_option(min_similarity), cosine=cosine,
                         features=features, progress=not quiet)
    res = rep.result
    groups = res.groups()
    n_exact = sum(1 for g in groups if res.kind[g[0]] == "exact")
    console.print(f"{len(res.ids)} images read"
                  + (f", {len(res.failures)} could not be read" if res.failures else "")
                  + f": {len(groups)} groups ({n_exact} exact, {len(groups) - n_exact} near), "
                  f"{len(res.dropped())} duplicates beyond the kept image of each", markup=False)
    for f in res.failures[:5]:
        console.print(f"  skipped {safe_text(f.path)}: {safe_text(f.reason)}", markup=False)
    if export:
        console.print(f"copied {rep.exported} files to {safe_text(str(out / UNIQUE))}",
                      markup=False)
        for i, why in (rep.not_exported or [])[:10]:
            err.print(f"  not copied {safe_text(i)}: {safe_text(why)}", markup=False)
    console.print(f"written to {safe_text(str(out / DUPLICATES_CSV))} and {DUPLICATES_HTML}",
                  markup=False)
    if rep.run_report:
        console.print(f"groups added to {safe_text(str(Path(source) / 'report.html'))}",
                      markup=False)
    if rep.not_exported:
        raise ImgclustError(f"{len(rep.not_exported)} files could not be copied to "
                            f"{out / UNIQUE} (listed above)")


@app.command()
def serve(
    run_dir: Path = typer.Argument(..., help="Run directory of 'imgclust run'."),
    port: int = typer.Option(8765, help="Port to listen on (0: any free one)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; anything but loopback lets other computers in."),
) -> None:
    """The local labelling web app: name, label, move, merge, split, propagate, export."""
    try:
        from imgclust.app.server import serve as serve_app
    except ImportError as exc:
        from imgclust.errors import MissingExtraError

        raise MissingExtraError(f"imgclust serve ({exc.name} is missing)", "app") from None
    serve_app(run_dir, host=host, port=port,
              say=lambda m: console.print(safe_text(m), markup=False),
              warn=lambda m: err.print(safe_text(m), markup=False))


label_app = typer.Typer(help="Label a run: propagate, suggest, train, import, show, export, undo.",
                        no_args_is_help=True)
app.add_typer(label_app, name="label")


@label_app.command("propagate")
def label_propagate(
    run_dir: Path = typer.Argument(..., help="Run directory of 'imgclust run'."),
    mode: str = typer.Option("cluster", "--mode", help="cluster, nearest:P% (e.g. nearest:20%) or spread."),
) -> None:
    """Spread the labels a person gave to the other images (one undoable batch)."""
    from imgclust.label.propagate import propagate_run

    res = propagate_run(run_dir, mode)
    console.print(f"{res['labelled']} images carry a propagated label ({res['changed']} new or "
                  f"changed, {res['cleared']} taken back)", markup=False)
    for lab, n in res["by_label"].items():
        console.print(f"  {safe_text(lab)}: {n}", markup=False)
    if res["batch"]:
        console.print(f"batch {res['batch']} (imgclust label undo {safe_text(str(run_dir))} "
                      f"--batch {res['batch']})", markup=False)


@label_app.command("next")
def label_next(
    run_dir: Path = typer.Argument(..., help="Run directory of 'imgclust run'."),
    n: int = typer.Option(20, "-n", help="How many images to suggest."),
    model: str = typer.Option("spread", help="Margins from spread (LabelSpreading) or logreg."),
) -> None:
    """The images to label next: one per unlabelled cluster, then the least certain."""
    from imgclust.label.active import suggest_run

    t = Table(title="label next")
    for col in ("id", "cluster", "why", "margin"):
        t.add_column(col)
    for s in suggest_run(run_dir, n, model):
        t.add_row(safe_text(s["id"]), str(s["cluster"]), s["reason"], _fmt(s["margin"]))
    console.print(t)


@label_app.command("train")
def label_train(
    run_dir: Path = typer.Argument(..., help="Run directory of 'imgclust run'."),
    include_propagated: bool = typer.Option(False, help="Also learn from propagated labels."),
    write: bool = typer.Option(False, help="Record the predictions as 'model' labels for the images without a person's label."),
) -> None:
    """Logistic regression on the features and the labels so far; cross-validated accuracy."""
    from imgclust.label.train import train_run

    sources = ("human", "import") + (("propagated",) if include_propagated else ())
    res, batch = train_run(run_dir, sources, write=write)
    console.print(f"{res.n_labels} labels, {len(res.classes)} classes", markup=False)
    if res.cv_accuracy is None:
        console.print(f"cross-validated accuracy: none ({safe_text(res.why_no_cv or '')})",
                      markup=False)
    else:
        console.print(f"cross-validated accuracy: {res.cv_accuracy:.3f} ± {res.cv_sd:.3f} "
                      f"({res.n_folds} folds)")
    if batch:
        console.print(f"model labels written: batch {batch}")


@label_app.command("import")
def label_import(
    run_dir: Path = typer.Argument(..., help="Run directory of 'imgclust run'."),
    csv_file: Path = typer.Argument(..., help="CSV with the columns id and label."),
) -> None:
    """Record the labels of a CSV file (id,label) as a person's labels (one batch)."""
    from imgclust.label.export import import_labels

    res = import_labels(run_dir, csv_file)
    console.print(f"imported {res['labels']} labels ({len(res['by_label'])} classes): batch "
                  f"{res['batch']}")


@label_app.command("show")
def label_show(run_dir: Path = typer.Argument(..., help="Run directory of 'imgclust run'.")) -> None:
    """How many images carry each label, by source."""
    from imgclust.label.store import LabelStore

    SOURCES = ("human", "import", "propagated", "model")  # noqa: N806 (people's first)
    store = LabelStore(run_dir)
    counts = store.counts()
    t = Table(title="labels")
    for col in ("label", *SOURCES, "total"):
        t.add_column(col, justify="left" if col == "label" else "right")
    totals = dict.fromkeys(SOURCES, 0)
    for lab, by in counts.items():
        for s in SOURCES:
            totals[s] += by.get(s, 0)
        t.add_row(safe_text(lab), *[str(by.get(s, 0)) for s in SOURCES], str(sum(by.values())))
    t.add_row("all", *[str(totals[s]) for s in SOURCES], str(sum(totals.values())))
    console.print(t)
    console.print(f"{sum(totals.values())} of {len(store.ids)} images labelled, "
                  f"{len(store.not_of_interest())} not of interest, "
                  f"{len(store.cluster_names())} clusters named")


@label_app.command("export")
def label_export(
    run_dir: Path = typer.Argument(..., help="Run directory of 'imgclust run'."),
    out: Path = typer.Option(..., "--out", "-o", help="CSV file, or a new or empty folder."),
    format: str = typer.Option("csv", "--format", help="csv, folders or imagefolder (torchvision layout)."),  # noqa: A002
    min_confidence: Optional[float] = typer.Option(None, help="Leave out labels below this confidence (a person's count as 1)."),
    include_propagated: bool = typer.Option(False, help="Also the propagated labels."),
    include_model: bool = typer.Option(False, help="Also the labels of 'label train --write'."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write the labels: a CSV (id,path,label,source,confidence) or one folder per label."""
    from imgclust.label.export import export_labels

    sources = ("human", "import") + (("propagated",) if include_propagated else ()) \
        + (("model",) if include_model else ())
    res = export_labels(run_dir, out, format=format, min_confidence=min_confidence,
                        sources=sources, progress=not quiet)
    what = f"{res['files']} files" if format != "csv" else f"{res['labels']} labels"
    console.print(f"{what} in {len(res['by_label'])} classes written to {safe_text(str(out))}",
                  markup=False)
    for i, reason in res["failed"][:10]:
        err.print(f"  not copied: {safe_text(i)}: {safe_text(reason)}", markup=False)
    if res["failed"]:  # an error (exit 1), not typer.Exit: main() would end with 0
        from imgclust.label.store import LabelError

        raise LabelError(f"{len(res['failed'])} of {res['labels']} files could not be copied")


@label_app.command("undo")
def label_undo(
    run_dir: Path = typer.Argument(..., help="Run directory of 'imgclust run'."),
    batch: Optional[str] = typer.Option(None, help="The batch to take back (default: the latest)."),
) -> None:
    """Take back one labelling action (a batch)."""
    from imgclust.label.store import LabelStore

    store = LabelStore(run_dir)
    if batch is None:
        done = store.undo_last()
        console.print(f"undone: {done}" if done else "nothing to undo")
    else:
        n = store.undo(batch)
        console.print(f"undone: {batch} ({n} events)")


@app.command()
def generate(
    run_dir: Path = typer.Argument(..., metavar="DIR", help="Run directory of 'imgclust run'."),
    n: int = typer.Option(20, "-n", min=1, max=10_000, help="How many images to generate."),
    out: Path = typer.Option(..., "--out", "-o", metavar="DIR", help="Folder for generated.png and generated.npy (new or empty)."),
    seed: int = typer.Option(0, min=0, help="Random seed."),
    space: str = typer.Option("auto", "--from", help="Where the mixture is fitted: pca (the run's pixels), decoder (the run's autoencoder codes, decoded) or auto (decoder when the run has an autoencoder)."),
) -> None:
    """New images: a Gaussian mixture in the PCA space of the run's pixels (or its autoencoder's code space), sampled and mapped back."""
    from imgclust.generate import generate as generate_api

    info = generate_api(run_dir, out, n=n, seed=seed, space=space)
    where = (f"{info['pca_dims']} PCA dimensions" if info["space"] == "pca"
             else f"the autoencoder's {info['code_dims']}-dimensional codes, decoded")
    console.print(f"{info['n']} images generated ({info['side']} px, mixture of "
                  f"{info['components']} in {where}, from "
                  f"{info['images_read']} images): {safe_text(str(info['files'][0]))}",
                  markup=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning imgclust errors into one-line messages."""
    from imgclust.runtime import tune_process

    tune_process()  # before scikit-learn, numpy's BLAS or OpenMP are loaded
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    # Pillow warns (a raw Python warning on the terminal) on opening any image over its pixel
    # limit; decode_image then refuses that file itself and it is listed with the reason
    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    try:
        # without standalone mode typer returns the code of a typer.Exit (and turns Ctrl-C
        # into Exit(130)) instead of exiting: pass it on to the shell
        code = app(args=argv, standalone_mode=False)
    except KeyboardInterrupt:
        code = 130
    except ConfigError as exc:
        err.print(f"error: {safe_text(str(exc))}", markup=False)
        sys.exit(2)
    except ImgclustError as exc:
        err.print(f"error: {safe_text(str(exc))}", markup=False)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except OSError as exc:
        # the system refused a read or write (a full disk, no permission, a folder gone):
        # one line naming the file (atomic writes name it), exit 1
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(f"error: {safe_text(where + (exc.strerror or str(exc)))}", markup=False)
        sys.exit(1)
    except Exception as exc:
        # usage errors are click's ClickException (vendored as typer._click by typer >= 0.2x,
        # so there may be no 'click' to import): one line and their exit code (2)
        fmt = getattr(exc, "format_message", None)
        if callable(fmt) and isinstance(getattr(exc, "exit_code", None), int):
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            err.print(f"error: {safe_text(fmt())}{hint}", markup=False)
            sys.exit(exc.exit_code)
        # the last line of defence: a bug or a library's refusal (a mixture on degenerate
        # features…) is one line, not a traceback; IMGCLUST_DEBUG=1 shows the traceback
        if os.environ.get("IMGCLUST_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        err.print(f"error: {type(exc).__name__}: {safe_text(first)}"
                  " (an unexpected failure; IMGCLUST_DEBUG=1 shows where)", markup=False)
        sys.exit(1)
    if code == 130:
        err.print("interrupted")
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
