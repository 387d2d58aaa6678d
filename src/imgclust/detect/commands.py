"""The Python API behind ``imgclust outliers`` and ``imgclust duplicates``: read, detect, write.

The CLI only parses options and prints; everything a command does happens here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from imgclust.detect.outliers import DEFAULT_METHODS, OutlierResult, outlier_scores
from imgclust.detect.output import esc, prepare_out, read_thumb, write_page
from imgclust.errors import ConfigError, ImgclustError, RunDirError
from imgclust.io import atomic_write_csv

OUTLIERS_CSV = "outliers.csv"
OUTLIERS_HTML = "outliers.html"
#: flagged images shown in outliers.html (all of them are in outliers.csv)
GALLERY_MAX = 300


@dataclass
class OutlierReport:
    """What ``imgclust outliers`` found and wrote.

    Attributes
    ----------
    ids : list of str
        Image ids, in the order of ``result``'s rows.
    result : OutlierResult
    origin : str
        ``"run"`` (a run directory's features and clusters) or ``"source"`` (features computed).
    features : str
        The feature spec the scores were computed on.
    out : Path
    note : str or None
        Why thumbnails are missing, if they are.
    """

    ids: list[str]
    result: OutlierResult
    origin: str
    features: str
    out: Path
    note: str | None = None

    def top(self, n: int = 10) -> list[tuple[str, float, str]]:
        """``(id, score, reason)`` of the ``n`` most outlying images."""
        r = self.result
        return [(self.ids[i], float(r.score[i]), r.reason[i]) for i in r.ranking()[:n]]


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a finished run directory of ``imgclust run``."""
    from imgclust.report.rundir import SUMMARY

    p = Path(path)
    return p.is_dir() and (p / SUMMARY).is_file()


def _from_run(run_dir: Path) -> tuple[list[str], np.ndarray, np.ndarray, str, Any, str | None]:
    from imgclust.report.rundir import load_run
    from imgclust.sources import open_source

    data = load_run(run_dir)
    if data.X is None:
        raise RunDirError(f"{run_dir}: holds no features.npy; rerun 'imgclust run' to write it")
    spec = str(data.summary.get("features", {}).get("spec", "?")) \
        if isinstance(data.summary.get("features"), dict) else "?"
    src, note = None, None
    try:
        labels = "folders" if data.summary.get("labels_source") == "folders" else None
        src = open_source(data.summary.get("source", ""), labels=labels)
    except ImgclustError as exc:
        note = f"the images cannot be shown: {exc}"
    return data.ids, np.asarray(data.X), data.labels, spec, src, note


def run_outliers(source: str | Path, out: str | Path, *, contamination: float = 0.04,
                 features: str | None = None, methods: Sequence[str] = DEFAULT_METHODS,
                 seed: int = 0, progress: bool = False) -> OutlierReport:
    """Score the images of a run directory or a source; write ``outliers.csv`` and ``.html``.

    Parameters
    ----------
    source : str or Path
        A run directory of ``imgclust run`` (its ``features.npy`` and ``clusters.csv`` are
        used), or a folder, ``.npz`` file or ``dataset:NAME`` (features by ``features``,
        clusters by k-means with k chosen by silhouette).
    out : str or Path
        Output folder: missing, empty, or written by an earlier ``imgclust outliers``.
    contamination : float
        Share of images flagged.
    features : str, optional
        Feature spec for a source (default ``auto``); refused with a run directory.
    methods : sequence of str
        Detectors (see :func:`~imgclust.detect.outliers.outlier_scores`).
    seed : int
    progress : bool

    Returns
    -------
    OutlierReport
    """
    out = Path(out)
    if not 0 < contamination <= 0.5:  # checked before any work
        raise ConfigError(f"--contamination {contamination} must be in (0, 0.5]")
    if is_run_dir(source):
        if features is not None:
            raise ConfigError(f"--features applies to a source; {source} is a run directory "
                              "whose features are used")
        prepare_out(out, "outliers", [OUTLIERS_CSV, OUTLIERS_HTML])
        ids, X, labels, spec, src, note = _from_run(Path(source))
        origin = "run"
    else:
        from imgclust.run.pipeline import run as run_pipeline

        prepare_out(out, "outliers", [OUTLIERS_CSV, OUTLIERS_HTML])
        res = run_pipeline(source, features=features or "auto", method="kmeans", k="auto",
                           seed=seed, progress=progress)
        ids, X, labels = list(res.ids), res.features_.X, res.labels_
        spec = str(res.summary.get("features", {}).get("spec", features or "auto"))
        src, note, origin = res.source, None, "source"
    result = outlier_scores(X, labels, methods=methods, contamination=contamination,
                            random_state=seed)
    report = OutlierReport(ids=list(ids), result=result, origin=origin, features=spec, out=out,
                           note=note)
    _write_outliers_csv(out / OUTLIERS_CSV, report)
    _write_outliers_html(out / OUTLIERS_HTML, report, src, str(source))
    return report


def _g(v: float) -> str:
    return f"{v:.6g}"


def _write_outliers_csv(path: Path, rep: OutlierReport) -> None:
    r = rep.result
    methods = list(r.methods)
    header = ["rank", "id", "score", "flagged", "reason"] + methods
    rows = ([rank, rep.ids[i], _g(r.score[i]), int(r.flagged[i]), r.reason[i]]
            + [_g(r.method_scores[m][i]) for m in methods]
            for rank, i in enumerate(r.ranking(), start=1))
    atomic_write_csv(path, header, rows)


def _write_outliers_html(path: Path, rep: OutlierReport, src: Any, source: str) -> None:
    r = rep.result
    order = [i for i in r.ranking() if r.flagged[i]][:GALLERY_MAX]
    info = r.info
    what = ", ".join(f"{m} ({_describe(m, info.get(m, {}))})" for m in r.methods)
    skipped = "".join(f" {esc(m)} left out: {esc(why)}." for m, why in info["skipped"].items())
    cards = []
    for rank, i in enumerate(order, start=1):
        cards.append(f'<div class="card">{read_thumb(src, rep.ids[i])}'
                     f'<div><span class="tag">#{rank}</span> {esc(rep.ids[i])}</div>'
                     f'<div>score {r.score[i]:.2f}</div><div>{esc(r.reason[i])}</div></div>')
    body = (f'<p class="meta">{int(r.flagged.sum())} of {len(rep.ids)} images flagged '
            f"(contamination {r.contamination:g}) in {esc(source)}; features {esc(rep.features)}"
            f" ({'from the run directory' if rep.origin == 'run' else 'computed'}). "
            f"Detectors: {esc(what)}; combined by {esc(r.combine)}.{skipped}"
            + (f" Note: {esc(rep.note)}." if rep.note else "")
            + (f" The first {GALLERY_MAX} are shown; all are in {OUTLIERS_CSV}."
               if r.flagged.sum() > GALLERY_MAX else "")
            + f'</p>\n<div class="grid">{"".join(cards)}</div>')
    write_page(path, "Outliers", body)


def _describe(method: str, info: dict[str, Any]) -> str:
    if method == "gmm":
        return f"{info.get('n_components')} components, {info.get('components_from')}"
    if method == "pca":
        return f"{info.get('dims')} dims"
    if method == "centre":
        return f"{info.get('clusters')} clusters"
    return f"k={info.get('n_neighbors')}"
