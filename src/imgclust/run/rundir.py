"""``RunDir``: the one owner of a run directory's layout, manifest, resume and overwrite.

Every file imgclust writes into a run directory goes through :meth:`RunDir.write_bytes` (or the
json/csv/npy helpers on top of it), which first records the file's name in ``run.json``
(``"written"``). Only names listed there may ever be removed or replaced by imgclust: a
summary.json, report.html or thumbs/ file of the user's own is never touched, whatever its name.

Layout (names relative to the directory)::

    run.json              format, version, command, configuration, inputs, state, written files
    summary.json          counts, skipped files, k sweep, sizes, scores, timings, versions
    clusters.csv          id, cluster, distance, is_representative (same order as features.npy)
    images.csv            the catalogue: id, absolute path, width, height, mode
    features.npy          the matrix the clusters were found in
    assign-features.npy   the matrix new images are assigned in (when it differs: UMAP, t-SNE)
    model.npz             fitted feature steps + clusterer (data only: loading runs no code)
    cache/                images-step features per batch (resume after a kill); for a folder,
                          features-KEY/catalog.sqlite + store.f32: its files and their
                          features by content hash (incremental reruns, kept by --overwrite)
    report.html, plotly.min.js, thumbs/     the report (imgclust report)
    export.csv, clusters/, export-journal.jsonl   per-cluster folders (--export)
"""
from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from imgclust._version import __version__
from imgclust.errors import RunDirError
from imgclust.io import (atomic_save_npy, atomic_write_bytes, atomic_writer, is_temp_leftover,
                         kill_point, to_json)

log = logging.getLogger(__name__)

RUN_JSON = "run.json"
SUMMARY = "summary.json"
CLUSTERS = "clusters.csv"
IMAGES = "images.csv"
FEATURES = "features.npy"
ASSIGN_FEATURES = "assign-features.npy"
MODEL = "model.npz"
CACHE = "cache"
#: kept by --overwrite (see RunDir.prepare)
KEEP_ON_OVERWRITE = (CACHE,)
REPORT = "report.html"
COMPARE_JSON = "compare.json"
COMPARE_CSV = "compare.csv"
JOURNAL = "export-journal.jsonl"
#: run directories written before the manifest (format 1) are refused, not guessed at
RUN_FORMAT = 2
#: the keys a run.json of imgclust always has (a user's own run.json lacks them)
_MARKER_KEYS = ("format", "imgclust_version", "inputs")


def _escape(text: str) -> str:
    """A file name as valid UTF-8 text: undecodable bytes (lone surrogates from
    ``surrogateescape``) written as ``\\xNN``, as ``ls -b`` shows them."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_csv(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a CSV that imgclust wrote (one error if missing or empty).

    Files written before names were escaped hold undecodable bytes raw: they are read back as
    the same bytes (``surrogateescape``).
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise RunDirError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not rows:
        raise RunDirError(f"{path}: empty file")
    return rows[0], rows[1:]


class RunDir:
    """A run directory: its file names, its manifest, and which files are imgclust's.

    Parameters
    ----------
    path : str or Path
        The directory (need not exist yet).

    Examples
    --------
    >>> rd = RunDir("runs/digits")  # doctest: +SKIP
    >>> rd.prepare(manifest, overwrite=False)  # doctest: +SKIP
    >>> rd.write_json("summary.json", {...})  # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).absolute()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # -- reading ---------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any] | None:
        """``run.json`` when it is imgclust's (has the marker keys), else ``None``.

        Raises
        ------
        RunDirError
            ``run.json`` exists but cannot be read as JSON.
        """
        p = self.path / RUN_JSON
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RunDirError(f"{p}: cannot read: {exc}") from None
        if not isinstance(data, dict) or not all(k in data for k in _MARKER_KEYS):
            return None
        return data

    def holds_run(self) -> bool:
        """Whether the folder holds an imgclust run (its run.json), not merely a summary.json."""
        try:
            return self.manifest() is not None
        except RunDirError:
            return False

    def written(self) -> list[str]:
        """Names (relative paths) that imgclust wrote here, per the manifest."""
        m = self.manifest()
        return list(m.get("written", [])) if m else []

    def check_format(self) -> dict[str, Any]:
        """The manifest of a finished or resumable run of this format.

        Raises
        ------
        RunDirError
            No run here, or one of another format (with what to do about it).
        """
        if not self.path.is_dir():
            raise RunDirError(f"{self.path}: no such run directory")
        m = self.manifest()
        if m is None:
            raise RunDirError(f"{self.path}: holds no imgclust run ({RUN_JSON} missing or not "
                              "imgclust's)")
        if m.get("format") != RUN_FORMAT:
            raise RunDirError(
                f"{self.path}: run directory format {m.get('format')} (imgclust "
                f"{m.get('imgclust_version')}); this imgclust {__version__} reads format "
                f"{RUN_FORMAT}: run 'imgclust run' again into a new --out")
        if m.get("imgclust_version") != __version__:
            log.warning("%s was written by imgclust %s; this is %s", self.path,
                        m.get("imgclust_version"), __version__)
        return m

    # -- writing ---------------------------------------------------------------------------
    def _write_manifest(self, m: dict[str, Any]) -> None:
        # lone surrogates of undecodable names become \udcXX escapes: valid UTF-8 JSON
        atomic_write_bytes(self.path / RUN_JSON,
                           (to_json(m) + "\n").encode("utf-8", "backslashreplace"))

    def _record(self, names: Iterable[str]) -> None:
        m = self.manifest()
        if m is None:
            raise RunDirError(f"{self.path}: {RUN_JSON} must be written before any output")
        have = list(m.get("written", []))
        new = [n for n in names if n not in have]
        if new:
            m["written"] = have + new
            self._write_manifest(m)

    def write_bytes(self, name: str, data: bytes) -> Path:
        """Write ``name`` atomically, recorded in the manifest first."""
        self._record([name])
        path = self.path / name
        atomic_write_bytes(path, data)
        return path

    def write_text(self, name: str, text: str) -> Path:
        # lone surrogates of undecodable file names become \\xNN-style escapes: valid UTF-8
        return self.write_bytes(name, text.encode("utf-8", "backslashreplace"))

    def write_json(self, name: str, obj: Any) -> Path:
        return self.write_text(name, to_json(obj) + "\n")

    def write_csv(self, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
        """A CSV in valid UTF-8: undecodable bytes of file names escaped (``ls -b`` style).

        Written atomically, recorded in the manifest first, and streamed: ``rows`` (any
        iterable) is consumed a row at a time, never held as one text in memory.
        """
        self._record([name])
        path = self.path / name
        with atomic_writer(path) as f:
            text = io.TextIOWrapper(f, encoding="utf-8", errors="backslashreplace", newline="")
            try:
                w = csv.writer(text, lineterminator="\n")
                w.writerow(header)
                w.writerows([_escape(v) if isinstance(v, str) else v for v in row]
                            for row in rows)
                text.flush()
            finally:
                text.detach()  # atomic_writer flushes, syncs and closes the file itself
        return path

    def save_npy(self, name: str, array: np.ndarray) -> Path:
        """Write an array atomically as ``.npy``, recorded in the manifest first; streamed, so
        a memory-mapped matrix is not copied into memory."""
        self._record([name])
        path = self.path / name
        atomic_save_npy(path, array)
        return path

    def own(self, name: str) -> Path:
        """Record ``name`` (a file or folder another module writes itself) as imgclust's."""
        self._record([name])
        return self.path / name

    def update_manifest(self, **changes: Any) -> None:
        """Set keys of ``run.json`` (``state``, ``config``…), keeping the written list."""
        m = self.manifest()
        if m is None:
            raise RunDirError(f"{self.path}: no {RUN_JSON} to update")
        m.update(changes)
        self._write_manifest(m)

    # -- create, resume, replace -----------------------------------------------------------
    def check_no_pending_move(self) -> None:
        """Refuse a run folder that is a file, or holds the journal of a move not undone."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{self.path}: exists and is not a folder")
        if (self.path / JOURNAL).exists():
            raise RunDirError(f"{self.path}: holds files moved by an earlier --export move "
                              f"({JOURNAL}); run 'imgclust undo {self.path}' first, or choose "
                              "another --out")

    def _remove_temp_leftovers(self) -> None:
        """Temporary files a killed atomic write left beside imgclust's own files."""
        own = set(self.written()) | {RUN_JSON}
        folders = [self.path, self.path / CACHE, *(self.path / CACHE).glob("features-*")]
        for folder in folders:
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                if not (is_temp_leftover(p.name) and p.is_file()):
                    continue
                if folder != self.path or any(p.name.startswith(f".{n}.") for n in own):
                    p.unlink()

    def remove_owned(self, keep: Sequence[str] = ()) -> int:
        """Remove every file the manifest lists (and the export's copies, per export.csv);
        nothing else, and nothing named in ``keep``. Folders are removed only when that
        leaves them empty.

        Returns
        -------
        int
            Number of files removed.
        """
        from imgclust.export import remove_export  # export knows what its plan wrote

        removed = remove_export(self.path)
        for name in sorted(self.written(), key=len, reverse=True):
            if name in keep:
                continue
            p = self.path / name
            if name == CACHE and p.is_dir():
                shutil.rmtree(p)  # features-* batches: imgclust's alone
                continue
            if p.is_dir() and not p.is_symlink():
                _remove_thumbs(p)
                continue
            if p.is_file() or p.is_symlink():
                p.unlink()
                removed += 1
        return removed

    def prepare(self, manifest: dict[str, Any], overwrite: bool) -> "RunDir":
        """Create, resume or replace the run directory, then write ``run.json`` first.

        - missing or empty (temporary files of a killed write aside): a new run;
        - holds a run of the same inputs and settings: resumed (the feature cache is reused,
          the outputs rewritten);
        - holds a run of other inputs or settings: refused unless ``overwrite``, which removes
          only what the manifest lists;
        - holds files but no run of imgclust's, a run of an older format, or the journal of an
          ``--export move`` not undone: refused.

        Raises
        ------
        RunDirError
        """
        self.check_no_pending_move()
        out = self.path
        old = None
        if out.is_dir():
            entries = [p for p in out.iterdir() if not is_temp_leftover(p.name)]
            old = self.manifest()
            if old is None and entries:
                why = ("not empty and holds no imgclust run"
                       + (f" ({RUN_JSON} missing)" if not (out / RUN_JSON).exists() else
                          f" ({RUN_JSON} is not imgclust's)"))
                raise RunDirError(f"{out}: {why}; choose a new or empty --out"
                                  + ("; refusing to overwrite it" if overwrite else ""))
            if old is not None and old.get("format") != RUN_FORMAT:
                raise RunDirError(
                    f"{out}: holds a run of an older imgclust (format {old.get('format')}, "
                    f"{old.get('imgclust_version')}) that lists no files it wrote; remove it "
                    "yourself or choose another --out")
            if old is not None or not entries:
                self._remove_temp_leftovers()
        written: list[str] = []
        if old is not None:
            why = _difference(old, manifest)
            if why is not None and not overwrite:
                raise RunDirError(f"{out}: holds {why}; pass --overwrite to replace it, "
                                  "or choose another --out")
            if old.get("imgclust_version") != __version__:
                log.warning("%s was written by imgclust %s; this is %s: features are recomputed",
                            out, old.get("imgclust_version"), __version__)
            from imgclust.export import remove_export

            # resume or replace: the files an export wrote are removed and written again, so a
            # half-done export leaves no name_1 duplicates; files the user put there stay
            remove_export(out)
            written = [n for n in old.get("written", []) if n != "export.csv"]
            if why is not None:  # overwrite: remove exactly what the manifest lists
                # except cache/: a folder's feature store and catalogue are keyed by content
                # hash and feature configuration, so an overwrite of a changed folder decodes
                # only its new files (imgclust.run.catalog); other caches are keyed by inputs
                self.remove_owned(keep=KEEP_ON_OVERWRITE)
                written = [n for n in written if n in KEEP_ON_OVERWRITE]
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"{out}: cannot create the run directory: "
                              f"{exc.strerror or exc}") from None
        self._write_manifest({**manifest, "state": "running",
                              "written": [RUN_JSON, *[n for n in written if n != RUN_JSON]]})
        kill_point("run-json")
        return self

    def finish(self) -> None:
        """Mark the run finished (``state: done``), once every output is written."""
        if self.manifest() is not None:
            self.update_manifest(state="done")


def _remove_thumbs(folder: Path) -> None:
    """A folder listed in the manifest (thumbs/): only the thumbnails the report's own
    manifest lists are removed (see imgclust.report.thumbs); the folder goes if left empty."""
    try:
        from imgclust.report.thumbs import remove_own_thumbs
    except ImportError:  # pragma: no cover - older report module
        return
    remove_own_thumbs(folder)


def _difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why an earlier run in the folder is not the one asked for, or ``None`` if it is."""
    o_in, n_in = old.get("inputs", {}), new["inputs"]
    if o_in.get("fingerprint") != n_in["fingerprint"]:
        return (f"a run of other inputs ({o_in.get('source')}, fingerprint "
                f"{o_in.get('fingerprint')}; now {n_in['source']}, {n_in['fingerprint']})")
    o_cfg = {"command": old.get("command"), **old.get("config", {})}
    n_cfg = {"command": new["command"], **new["config"]}
    diffs = [f"{k} {o_cfg.get(k)!r} -> {n_cfg.get(k)!r}" for k in sorted(set(o_cfg) | set(n_cfg))
             if o_cfg.get(k) != n_cfg.get(k)]
    return f"a run with other settings ({', '.join(diffs)})" if diffs else None
