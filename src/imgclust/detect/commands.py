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
    #: whether the run directory's report.html was rebuilt with the outlier gallery
    run_report: bool = False

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
    stats, thumbs, note2 = _pixels(src, ids, methods)
    note = "; ".join(x for x in (note, note2) if x) or None
    result = outlier_scores(X, labels, methods=methods, contamination=contamination,
                            random_state=seed, image_stats=stats, thumbs=thumbs)
    report = OutlierReport(ids=list(ids), result=result, origin=origin, features=spec, out=out,
                           note=note)
    _write_outliers_csv(out / OUTLIERS_CSV, report)
    _write_outliers_html(out / OUTLIERS_HTML, report, src, str(source))
    if origin == "run":  # the gallery joins the run's report (a file its manifest lists)
        from imgclust.report.detect import rebuild_if_present, record_outliers

        if record_outliers(source, report, src, out / OUTLIERS_HTML) is not None:
            report.run_report = rebuild_if_present(source)
    return report


def _pixels(src: Any, ids: Sequence[str], methods: Sequence[str]
            ) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """The images' grey-level statistics and thumbnails (the ``stats`` and ``orient``
    detectors), read again from the source; ``None`` with the reason when it cannot be read."""
    from imgclust.detect.outliers import grey_thumbnails, image_statistics
    from imgclust.detect.output import IMAGE_ERRORS

    if not {"stats", "orient"} & set(methods):
        return None, None, None
    if src is None:
        return None, None, "stats and orient left out (the images cannot be read)"
    stats, thumbs = [], []
    for image_id in ids:
        try:
            _, img = src.read(image_id)
        except IMAGE_ERRORS as exc:
            return None, None, (f"stats and orient left out ({image_id} cannot be read now: "
                                f"{getattr(exc, 'reason', None) or exc})")
        grey = img.convert("L")
        stats.append(image_statistics([grey])[0])
        thumbs.append(grey_thumbnails([grey])[0])
    return np.asarray(stats), np.asarray(thumbs), None


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
    if method == "stats":
        return "grey-level median, spread, 0.5 and 99.5 percentiles"
    if method == "orient":
        return f"rotated and mirrored {info.get('side')} px thumbnails, k={info.get('n_neighbors')}"
    return f"k={info.get('n_neighbors')}"


# --- duplicates -------------------------------------------------------------------------------

DUPLICATES_CSV = "duplicates.csv"
DUPLICATES_HTML = "duplicates.html"
UNIQUE = "unique"
#: groups shown in duplicates.html (all of them are in duplicates.csv)
GROUPS_MAX = 500
#: images shown per group (all of them are in duplicates.csv)
MEMBERS_MAX = 60


@dataclass
class DuplicateReport:
    """What ``imgclust duplicates`` found and wrote.

    Attributes
    ----------
    result : DuplicateResult
    out : Path
    exported : int
        Files copied to ``OUT/unique/`` (0 without ``export``).
    not_exported : list of (str, str)
        Files that could not be copied, with the reason.
    """

    result: Any
    out: Path
    exported: int = 0
    not_exported: list[tuple[str, str]] | None = None
    #: whether the run directory's report.html was rebuilt with the duplicate groups
    run_report: bool = False


def run_duplicates(source: str | Path, out: str | Path, *, radius: int = 10,
                   keep: str = "largest", export: str | None = None, hash: str = "phash",
                   min_similarity: float | str | None = "auto", cosine: float | None = None,
                   features: str | None = None, seed: int = 0, progress: bool = False
                   ) -> DuplicateReport:
    """Find exact and near-duplicate images; write ``duplicates.csv`` and ``duplicates.html``.

    Parameters
    ----------
    source : str or Path
        A folder, ``.npz`` file or ``dataset:NAME``, or a run directory of ``imgclust run``
        (its source is searched, and the groups join the run's report).
    out : str or Path
        Output folder: missing, empty, or written by an earlier ``imgclust duplicates``.
    radius, keep, hash, min_similarity, cosine
        See :func:`~imgclust.detect.duplicates.find_duplicates`.
    export : {None, "copy"}
        ``copy``: a de-duplicated copy of the folder in ``OUT/unique/`` (every file but the
        non-kept members of each group, at its relative path); never overwrites, and refuses a
        ``unique/`` that already holds files.
    features : str, optional
        Feature spec for ``cosine`` (default ``auto``).
    seed : int
    progress : bool
    """
    from imgclust.detect.duplicates import _check_options, find_duplicates
    from imgclust.sources import open_source
    from imgclust.sources.folder import FolderSource

    out = Path(out)
    _check_options(radius, hash, keep, min_similarity, cosine)
    if export not in (None, "copy"):
        raise ConfigError(f"--export {export!r}; valid: copy")
    if features is not None and cosine is None:
        raise ConfigError("--features is used by --cosine only; give --cosine too")
    run_dir = Path(source) if is_run_dir(source) else None
    if run_dir is not None:
        from imgclust.report.rundir import load_run

        summary = load_run(run_dir).summary
        labels = "folders" if summary.get("labels_source") == "folders" else None
        src = open_source(summary.get("source", ""), labels=labels)
    else:
        src = open_source(source)
    if export and not isinstance(src, FolderSource):
        raise ConfigError(f"--export copy needs a folder of files; {source} is an array source")
    unique = out / UNIQUE
    if export and unique.exists() and (not unique.is_dir() or any(unique.iterdir())):
        raise RunDirError(f"{unique}: holds files of an earlier export; remove it or choose "
                          "another --out (an export never overwrites)")
    prepare_out(out, "duplicates", [DUPLICATES_CSV, DUPLICATES_HTML] + ([UNIQUE] if export else []))
    X = feature_ids = None
    if cosine is not None:
        from imgclust.run.extract import extract_features

        feats, _, _, _ = extract_features(src, features or "auto", seed=seed, progress=progress)
        X, feature_ids = feats.X, list(feats.ids)
    res = find_duplicates(src, radius=radius, hash=hash, keep=keep,
                          min_similarity=min_similarity, features=X, feature_ids=feature_ids,
                          cosine=cosine, progress=progress)
    rep = DuplicateReport(result=res, out=out)
    _write_duplicates_csv(out / DUPLICATES_CSV, res)
    _write_duplicates_html(out / DUPLICATES_HTML, res, src, str(source))
    if export:
        rep.exported, rep.not_exported = _export_unique(src, res, unique)
    if run_dir is not None:  # the groups join the run's report (a file its manifest lists)
        from imgclust.report.detect import rebuild_if_present, record_duplicates

        if record_duplicates(run_dir, res, src, out / DUPLICATES_HTML) is not None:
            rep.run_report = rebuild_if_present(run_dir)
    return rep


def _write_duplicates_csv(path: Path, res: Any) -> None:
    rows = []
    for g, members in enumerate(res.groups()):
        for r in members:
            rows.append([g, res.ids[r], res.paths[r] or "", int(res.kept[r]), res.kind[r],
                         int(res.distance[r])])
    atomic_write_csv(path, ["group", "id", "path", "kept", "kind", "distance"], rows)


def _write_duplicates_html(path: Path, res: Any, src: Any, source: str) -> None:
    groups = res.groups()
    blocks = []
    for g, members in enumerate(groups[:GROUPS_MAX]):
        kinds = {res.kind[r] for r in members if not res.kept[r]}
        cards = "".join(
            f'<div class="card{" kept" if res.kept[r] else ""}">{read_thumb(src, res.ids[r])}'
            f"<div>{esc(res.ids[r])}</div><div>"
            + ('<span class="tag">kept</span>' if res.kept[r]
               else f"{esc(res.kind[r])}, distance {int(res.distance[r])}")
            + "</div></div>" for r in members[:MEMBERS_MAX])
        if len(members) > MEMBERS_MAX:
            cards += f"<p>and {len(members) - MEMBERS_MAX} more (see {DUPLICATES_CSV})</p>"
        blocks.append(f'<div class="row"><h2>group {g}: {len(members)} images '
                      f'({esc(", ".join(sorted(kinds)))})</h2>{cards}</div>')
    info = res.info
    n_drop = len(res.dropped())
    body = (f'<p class="meta">{len(res.ids)} images read from {esc(source)}'
            + (f" ({len(res.failures)} could not be read)" if res.failures else "")
            + f": {len(groups)} groups of duplicates, {n_drop} images beyond the one kept in "
            f"each (keep: {esc(info['keep'])}). Near: {esc(info['hash'])} within "
            f"{info['radius']} bits, thumbnail check {esc(info['min_similarity'])}"
            + (f", feature cosine at least {info['cosine']}" if info["cosine"] is not None else "")
            + "." + (f" The first {GROUPS_MAX} groups are shown; all are in {DUPLICATES_CSV}."
                     if len(groups) > GROUPS_MAX else "")
            + "</p>\n" + ("\n".join(blocks) if blocks else "<p>No duplicates found.</p>"))
    write_page(path, "Duplicates", body)


def _copy_new(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temporary name; never replaces an existing ``dst``."""
    import os
    import shutil

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    try:
        shutil.copy2(src, tmp)
        try:
            os.link(tmp, dst)  # fails if dst exists: no overwrite, even in a race
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system
            if dst.exists() or dst.is_symlink():
                raise FileExistsError(17, "destination exists; not overwritten", str(dst))
            os.rename(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def _export_unique(src: Any, res: Any, unique: Path) -> tuple[int, list[tuple[str, str]]]:
    dropped = {res.ids[r] for r in res.dropped()}
    unique.mkdir(parents=True, exist_ok=True)
    copied, failed = 0, []
    for image_id in src.candidates():
        if image_id in dropped:
            continue
        try:
            _copy_new(src.root / image_id, unique / image_id)
            copied += 1
        except OSError as exc:
            failed.append((image_id, exc.strerror or str(exc)))
    return copied, failed
