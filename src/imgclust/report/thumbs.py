"""Thumbnails beside the report, under ``DIR/thumbs/``.

Photos: one small JPEG per image (``thumbs/NNN/ROW.jpg``, folders of 1,000), so the browser
loads only what is on screen (the galleries are paged and lazy). Tiny images (digits, at most
32 px): one PNG sheet per 1,000 rows (``thumbs/sheet_NNN.png``) that the page crops with CSS;
100,000 files of 100 bytes would each take a 4 KiB disk block. ``thumbs/manifest.json`` records
what they were made from and which files were written. The thumbnails are keyed on the images
only (their ids and the source), so a new k (``imgclust recluster``) reuses them: only the
per-cluster mean images are made again, from the thumbnails already there.

``thumbs/`` may hold files of the user's: only files imgclust wrote (named as this module names
them *and* listed by its manifest, which is written before the first thumbnail) are ever
removed or replaced. An image whose file was not found (moved by ``--export move``, or away for
a while) is not cached as missing: the next report looks for it again, at its source path and at
the place ``--export move`` put it (``export.csv``).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from imgclust.errors import DecodeError, ImgclustError
from imgclust.io import atomic_write_json

#: longest side of a thumbnail, in pixels (smaller images keep their size)
THUMB_SIDE = 64
#: side of the per-cluster mean image
MEAN_SIDE = 48
#: images at most this side go to lossless PNG sheets (digits stay crisp); others to JPEG files
SMALL_SIDE = 32
#: rows per thumbnail folder or sheet
SHARD = 1000
#: cells per row of a sheet
SHEET_COLS = 40
#: the page's thumbnail background, used to pad sheet cells
PAD = (238, 240, 243)
#: bump when thumbnails are made differently, so old caches are rebuilt
VERSION = 4
#: the manifest beside the thumbnails (what they were made for, which files were written)
MANIFEST = "manifest.json"
#: the names this module gives its files, relative to the run directory
_OWN_NAME = re.compile(r"thumbs/(?:(?P<shard>\d{3})/(?P<row>\d+)\.jpg|sheet_\d{3}\.png|"
                       r"mean_-?\d+\.png)")
#: Pillow errors on a damaged or unusual image (the source's read already vetted the file)
_IMAGE_ERRORS = (DecodeError, OSError, ValueError, SyntaxError, EOFError, MemoryError)


def thumb_name(row: int) -> str:
    """Path of a row's thumbnail file (``files`` mode), relative to the run directory."""
    return f"thumbs/{row // SHARD:03d}/{row}.jpg"


def sheet_name(row: int) -> str:
    """Path of the sheet holding a row's thumbnail (``sheet`` mode)."""
    return f"thumbs/sheet_{row // SHARD:03d}.png"


def sheet_cell(row: int) -> tuple[int, int]:
    """(column, line) of a row's cell in its sheet."""
    i = row % SHARD
    return i % SHEET_COLS, i // SHEET_COLS


@dataclass
class ThumbSet:
    """The thumbnails of one run.

    Attributes
    ----------
    mode : {"files", "sheet"}
        One JPEG per image, or PNG sheets of ``cell``-pixel cells (tiny images).
    cell : int
        Side of a sheet cell, in pixels.
    missing : dict of int to str
        Rows without a thumbnail, with the reason.
    means : dict of int to str
        Cluster -> path of its mean image (relative to the run directory).
    small : bool
        The images are tiny (digits): the page scales them up without smoothing.
    available : bool
        False when the source could not be opened at all.
    note : str or None
        Why thumbnails are missing or may not match, for the report's header.
    """

    mode: str = "files"
    cell: int = THUMB_SIDE
    missing: dict[int, str] = field(default_factory=dict)
    means: dict[int, str] = field(default_factory=dict)
    small: bool = False
    available: bool = True
    note: str | None = None


def _display_image(img: Image.Image) -> Image.Image:
    """An 8-bit L, RGB or RGBA copy of any Pillow mode (16-bit and float scaled to 0-255)."""
    if img.mode in ("L", "RGB", "RGBA"):
        return img
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(img, dtype=np.float64)
        lo, hi = (float(np.nanmin(a)), float(np.nanmax(a))) if a.size else (0.0, 1.0)
        a = (np.nan_to_num(a, nan=lo) - lo) * (255.0 / (hi - lo or 1.0))
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    if img.mode in ("LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        return img.convert("RGBA")
    return img.convert("RGB")


def _on_white(img: Image.Image) -> Image.Image:
    if img.mode != "RGBA":
        return img
    bg = Image.new("RGB", img.size, (255, 255, 255))
    bg.paste(img, mask=img.getchannel("A"))
    return bg


def _gone(exc: DecodeError) -> bool:
    """Whether a read failed because the file is not there (it may come back: not cached)."""
    return bool(exc.path) and not os.path.exists(exc.path)


def _reader(source: Any, run_dir: Path) -> Callable[[str], Image.Image]:
    """``source.read``, falling back to where ``--export move`` put a file gone from its source
    path (``export.csv``), so a report made after a move still shows the images."""
    import copy

    from imgclust.export import moved_files

    moved = moved_files(run_dir)
    previews = None
    if hasattr(source, "set_decode_side"):  # a folder: decode no larger than a thumbnail needs
        source = copy.copy(source)  # (JPEGs at 1/8 scale), without changing the caller's
        source.set_decode_side(THUMB_SIDE)
        from imgclust.run.thumbstore import ThumbStore

        # the previews the run made from the images it decoded (not read again)
        previews = ThumbStore.of_run(run_dir)

    def read(image_id: str) -> Image.Image:
        if previews is not None:
            try:
                st = os.stat(source.describe(image_id))
            except OSError:
                pass
            else:
                got = previews.get(image_id, st.st_size, st.st_mtime_ns)
                if got is not None:
                    return got
        try:
            return source.read(image_id)[1]
        except DecodeError as exc:
            there = moved.get(image_id)
            if not _gone(exc) or there is None or not there.exists():
                raise
        from imgclust.sources.decode import MAX_PIXELS, MAX_SIDE, decode_image

        return decode_image(str(there), image_id, max_side=getattr(source, "max_side", MAX_SIDE),
                            max_pixels=getattr(source, "max_pixels", MAX_PIXELS),
                            min_side=THUMB_SIDE)[1]

    return read


def _one(read: Callable[[str], Image.Image], image_id: str, dest: Path | None, cell: int
         ) -> tuple[Image.Image | None, np.ndarray | None, str | None, bool]:
    """Make one thumbnail: saved to ``dest`` as JPEG, or returned (for a sheet) when ``dest`` is
    None. Returns (thumbnail for a sheet, mean-image contribution, error, file not found)."""
    try:
        img = _on_white(_display_image(read(image_id)))
        side = THUMB_SIDE if dest is not None else cell
        if max(img.size) > side:
            img.thumbnail((side, side), Image.Resampling.LANCZOS)
        img = img.convert("RGB")
        if dest is not None:
            try:
                img.save(dest, "JPEG", quality=85)
            except BaseException:
                dest.unlink(missing_ok=True)  # the name was free (checked): a half file is ours
                raise
        mean = np.asarray(img.resize((MEAN_SIDE, MEAN_SIDE), Image.Resampling.BILINEAR),
                          dtype=np.float32)
        return (None if dest is not None else img), mean, None, False
    except DecodeError as exc:
        return None, None, exc.reason, _gone(exc)
    except _IMAGE_ERRORS as exc:
        return None, None, f"{type(exc).__name__}: {exc}", False


def cache_key(run_dir: Path, source_spec: str) -> str:
    """What the thumbnails depend on: the image ids of ``clusters.csv`` in their order, the
    source and this code — not the clusters (a new k keeps the thumbnails)."""
    h = hashlib.sha256(f"v{VERSION}:{THUMB_SIDE}:{source_spec}".encode())
    for image_id in _csv_column(run_dir / "clusters.csv", "id"):
        h.update(image_id.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()[:20]


def _csv_column(path: Path, name: str) -> list[str]:
    import csv

    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        if name not in header:
            return []
        i = header.index(name)
        return [row[i] for row in reader if len(row) > i]


def labels_key(labels: np.ndarray) -> str:
    """What the mean images depend on: the cluster of every row (and their size)."""
    a = np.ascontiguousarray(np.asarray(labels, dtype=np.int64))
    return hashlib.sha256(f"m{MEAN_SIDE}:".encode() + a.tobytes()).hexdigest()[:20]


def _run_labels(run_dir: Path) -> np.ndarray | None:
    """The cluster column of ``clusters.csv`` (None when there is none to read)."""
    try:
        col = _csv_column(run_dir / "clusters.csv", "cluster")
        return np.array([int(float(c)) for c in col], dtype=np.int64) if col else None
    except (OSError, ValueError):
        return None


def _own_name(name: str) -> bool:
    """Whether ``name`` (relative to the run directory) is named as this module names files."""
    m = _OWN_NAME.fullmatch(name)
    return m is not None and (m["shard"] is None or int(m["row"]) // SHARD == int(m["shard"]))


def _files_below(run_dir: Path) -> Iterable[str]:
    """Every file (or link) under ``run_dir/thumbs``, relative to ``run_dir``; links not followed."""
    for dirpath, dirnames, filenames in os.walk(run_dir / "thumbs"):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            yield Path(os.path.relpath(os.path.join(dirpath, name), run_dir)).as_posix()


def _read_manifest(tdir: Path) -> dict[str, Any] | None:
    """The thumbnail manifest in ``tdir``, or None if there is none.

    Raises
    ------
    ImgclustError
        A file by that name is there that imgclust did not write (it is not replaced).
    """
    p = tdir / MANIFEST
    if not os.path.lexists(p):
        return None
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        m = None
    if not isinstance(m, dict) or not isinstance(m.get("key"), str) or \
            m.get("mode") not in ("files", "sheet"):
        raise ImgclustError(f"{p}: not a thumbnail manifest imgclust wrote (not replaced); move it "
                            "away and build the report again")
    return m


def _listed(run_dir: Path, m: dict[str, Any]) -> Iterable[str]:
    """The files a manifest says were written (all planned ones while it was ``writing``)."""
    rows = m.get("rows")
    if not isinstance(rows, int):  # a manifest of imgclust < 0.2 lists no files: its names
        yield from (n for n in _files_below(run_dir) if _own_name(n))
        return
    done = m.get("state") == "done"
    missing = {int(k) for k in m.get("missing", {})} if done else set()
    if m["mode"] == "files":
        yield from (thumb_name(r) for r in range(rows) if r not in missing)
    else:
        yield from (sheet_name(s) for s in range(0, rows, SHARD))
    if done:
        yield from (str(v) for v in m.get("means", {}).values())
    else:
        yield from (f"thumbs/mean_{int(c)}.png" for c in m.get("clusters", []))


def _remove_listed(run_dir: Path, m: dict[str, Any]) -> int:
    """Remove the files of an earlier set of thumbnails (only names of ours that it lists), then
    its shard folders if left empty and its manifest."""
    removed = 0
    for name in _listed(run_dir, m):
        p = run_dir / name
        if _own_name(name) and p.is_file() and not p.is_symlink():
            p.unlink()
            removed += 1
    tdir = run_dir / "thumbs"
    for d in tdir.iterdir():
        if re.fullmatch(r"\d{3}", d.name) and d.is_dir() and not d.is_symlink() \
                and not any(d.iterdir()):
            d.rmdir()
    (tdir / MANIFEST).unlink(missing_ok=True)
    return removed


def _check_free(run_dir: Path, names: set[str]) -> None:
    """Refuse to write over a file of the user's at a thumbnail's name."""
    clash = sorted(names.intersection(_files_below(run_dir)))
    if clash:
        raise ImgclustError(f"{run_dir / clash[0]}: a file imgclust did not write is where a "
                            f"thumbnail goes" + (f" ({len(clash)} such files)" if len(clash) > 1
                                                 else "")
                            + "; not replaced: move it away and build the report again")


def remove_own_thumbs(tdir: Path) -> int:
    """Remove the thumbnails imgclust wrote in ``tdir`` (per its manifest) and the report's map
    cache; every other file stays. The folder goes if that leaves it empty.

    Returns
    -------
    int
        Number of files removed.
    """
    tdir = Path(tdir)
    if not tdir.is_dir() or tdir.is_symlink():
        return 0
    try:
        m = _read_manifest(tdir)
    except ImgclustError:  # a manifest.json of the user's: nothing here is known to be ours
        m = None
    removed = _remove_listed(tdir.parent, m) if m is not None else 0
    cache = tdir / "map.npz"  # imgclust.report.embed's, recognised by its content
    try:
        with np.load(cache, allow_pickle=False) as z:
            ours = set(z.files) == {"key", "rows", "xy", "method"}
    except (OSError, ValueError):
        ours = False
    if ours and not cache.is_symlink():
        cache.unlink()
        removed += 1
    if not any(tdir.iterdir()):
        tdir.rmdir()
    return removed


def load_cached(run_dir: Path, key: str, labels: np.ndarray | None = None) -> ThumbSet | None:
    """The thumbnails already in ``run_dir/thumbs`` when they were made for ``key``, complete,
    every missing image's file was there (unreadable), and the mean images are those of
    ``labels`` (default: the clusters of ``run_dir/clusters.csv``); None otherwise (then
    :func:`make_thumbnails` reuses what it can)."""
    try:
        m = _read_manifest(run_dir / "thumbs")
    except ImgclustError:
        return None
    if m is None or m.get("key") != key or m.get("state") != "done" or m.get("absent"):
        return None
    labels = _run_labels(run_dir) if labels is None else labels
    if labels is not None and len(labels) == m.get("rows") and \
            m.get("labels_key") != labels_key(labels):
        return None
    try:
        return ThumbSet(mode=m["mode"], cell=int(m["cell"]),
                        missing={int(k): v for k, v in m["missing"].items()},
                        means={int(k): v for k, v in m["means"].items()}, small=bool(m["small"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _probe(read: Callable[[str], Image.Image], ids: Sequence[str]) -> tuple[str, int]:
    """One layout for the whole run, from the first image that reads (the page computes names)."""
    for i in ids[:20]:
        try:
            img = read(i)
        except _IMAGE_ERRORS:
            continue
        if max(img.size) <= SMALL_SIDE:
            return "sheet", max(img.size)
        break
    return "files", THUMB_SIDE


def _write_means(run_dir: Path, sums: dict[int, np.ndarray], counts: dict[int, int]
                 ) -> dict[int, str]:
    means: dict[int, str] = {}
    for c in sorted(sums):
        if counts.get(c):
            name = f"thumbs/mean_{c}.png"
            Image.fromarray(np.clip(sums[c] / counts[c], 0, 255).astype(np.uint8)).save(run_dir / name)
            means[c] = name
    return means


def _thumb_means(run_dir: Path, m: dict[str, Any], rows: Sequence[int], pool: ThreadPoolExecutor
                 ) -> dict[int, np.ndarray] | None:
    """Each row's mean-image contribution (MEAN_SIDE square, float32), read back from its
    thumbnail; None when a thumbnail file the manifest lists is not there."""
    cell = int(m["cell"])
    out: dict[int, np.ndarray] = {}
    if m["mode"] == "files":
        def one(r: int) -> tuple[int, np.ndarray | None]:
            p = run_dir / thumb_name(r)
            if not p.is_file() or p.is_symlink():
                return r, None
            with Image.open(p) as im:
                small = im.convert("RGB").resize((MEAN_SIDE, MEAN_SIDE), Image.Resampling.BILINEAR)
            return r, np.asarray(small, dtype=np.float32)

        for r, arr in pool.map(one, rows):
            if arr is None:
                return None
            out[r] = arr
        return out
    sizes = m.get("sizes") or {}
    by_sheet: dict[str, list[int]] = {}
    for r in rows:
        by_sheet.setdefault(sheet_name(r), []).append(r)
    for name, rs in by_sheet.items():
        p = run_dir / name
        if not p.is_file() or p.is_symlink():
            return None
        with Image.open(p) as im:
            sheet = im.convert("RGB")
        for r in rs:
            w, h = sizes.get(str(r), (cell, cell))
            col, line = sheet_cell(r)
            x, y = col * cell + (cell - w) // 2, line * cell + (cell - h) // 2
            tile = sheet.crop((x, y, x + w, y + h))
            out[r] = np.asarray(tile.resize((MEAN_SIDE, MEAN_SIDE), Image.Resampling.BILINEAR),
                                dtype=np.float32)
    return out


def _remean(run_dir: Path, labels: np.ndarray, m: dict[str, Any], pool: ThreadPoolExecutor
            ) -> ThumbSet | None:
    """New clusters for the same images: the mean images made again from the thumbnails.

    The manifest lists the old and the new mean images (state ``writing``) before any is
    removed or written; only mean images it listed are removed. None when the thumbnails are
    incomplete (then everything is made again)."""
    tdir = run_dir / "thumbs"
    try:
        missing = {int(k): str(v) for k, v in m["missing"].items()}
        old_means = {int(k): str(v) for k, v in m["means"].items()}
        absent = {int(r) for r in m["absent"]}
        rows = [r for r in range(int(m["rows"])) if r not in missing]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if len(labels) != int(m["rows"]):
        return None
    arrs = _thumb_means(run_dir, m, rows, pool)
    if arrs is None:
        return None
    ks = sorted(int(c) for c in np.unique(labels) if c >= 0)
    _check_free(run_dir, {f"thumbs/mean_{c}.png" for c in ks} - set(old_means.values()))
    every = sorted(set(ks) | set(old_means) | {int(c) for c in m.get("clusters", [])})
    atomic_write_json(tdir / MANIFEST, {**m, "state": "writing", "clusters": every})
    for name in old_means.values():
        p = run_dir / name
        if _own_name(name) and p.is_file() and not p.is_symlink():
            p.unlink()
    sums = {c: np.zeros((MEAN_SIDE, MEAN_SIDE, 3), np.float64) for c in ks}
    counts = dict.fromkeys(ks, 0)
    for r, arr in arrs.items():
        c = int(labels[r])
        if c >= 0:
            sums[c] += arr
            counts[c] += 1
    base = {k: m[k] for k in ("key", "mode", "cell", "small", "rows") if k in m}
    base.update(clusters=ks, labels_key=labels_key(labels), sizes=m.get("sizes") or {})
    return _finish(tdir, base, missing, absent, _write_means(run_dir, sums, counts), counts)


def _finish(tdir: Path, base: dict[str, Any], missing: dict[int, str], absent: set[int],
            means: dict[int, str], counts: dict[int, int]) -> ThumbSet:
    atomic_write_json(tdir / MANIFEST, {**base, "state": "done",
                                        "missing": {str(k): v for k, v in missing.items()},
                                        "absent": sorted(absent),
                                        "means": {str(k): v for k, v in means.items()},
                                        "counts": {str(k): v for k, v in counts.items()}})
    return ThumbSet(mode=base["mode"], cell=base["cell"], missing=missing, means=means,
                    small=base["small"])


def _recheck(read: Callable[[str], Image.Image], ids: Sequence[str], labels: np.ndarray,
             run_dir: Path, m: dict[str, Any], pool: ThreadPoolExecutor) -> ThumbSet | None:
    """Try again the images whose file was not found last time; None if the earlier set is
    incomplete (then everything is made again)."""
    tdir = run_dir / "thumbs"
    try:
        base = {k: m[k] for k in ("key", "mode", "cell", "small", "rows", "clusters")}
        base.update(labels_key=m.get("labels_key"), sizes=m.get("sizes") or {})
        rows = sorted(int(r) for r in m["absent"])
        missing = {int(k): str(v) for k, v in m["missing"].items()}
        counts = {int(k): int(v) for k, v in m["counts"].items()}
        means = {int(k): str(v) for k, v in m["means"].items()}
        cell = int(base["cell"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    files = base["mode"] == "files"
    if not files and not all((run_dir / sheet_name(r)).is_file() for r in rows):
        return None
    if not all(_own_name(v) and (run_dir / v).is_file() for v in means.values()):
        return None
    _check_free(run_dir, {thumb_name(r) for r in rows} if files else set())
    # from here a kill leaves a "writing" manifest that lists every name: the next report
    # removes them all and starts over
    atomic_write_json(tdir / MANIFEST, {**m, "state": "writing"})
    for r in rows:
        if files:
            (run_dir / thumb_name(r)).parent.mkdir(exist_ok=True)
    results = pool.map(lambda r: _one(read, ids[r], run_dir / thumb_name(r) if files else None,
                                      cell), rows)
    sums: dict[int, np.ndarray] = {}
    sheets: dict[str, Image.Image] = {}
    absent: set[int] = set()
    for r, (img, arr, err, gone) in zip(rows, results):
        if err is not None:
            missing[r] = err
            if gone:
                absent.add(r)
            continue
        missing.pop(r, None)
        if not files:
            name = sheet_name(r)
            if name not in sheets:
                with Image.open(run_dir / name) as im:
                    sheets[name] = im.convert("RGB")
            col, line = sheet_cell(r)
            sheets[name].paste(img, (col * cell + (cell - img.width) // 2,
                                     line * cell + (cell - img.height) // 2))
        c = int(labels[r])
        if c >= 0:
            if c not in sums:  # the mean so far, weighted by its count (within rounding)
                sums[c] = np.zeros((MEAN_SIDE, MEAN_SIDE, 3), np.float64)
                if counts.get(c) and c in means:
                    with Image.open(run_dir / means[c]) as im:
                        sums[c] += np.asarray(im.convert("RGB"), np.float64) * counts[c]
            sums[c] += arr
            counts[c] = counts.get(c, 0) + 1
    for name, sheet in sheets.items():
        sheet.save(run_dir / name, "PNG", optimize=False)
    means.update(_write_means(run_dir, sums, counts))
    return _finish(tdir, base, missing, absent, means, counts)


def make_thumbnails(source: Any, ids: Sequence[str], labels: np.ndarray, run_dir: Path, key: str,
                    progress: bool = False, workers: int | None = None) -> ThumbSet:
    """Write one thumbnail per row and one mean image per cluster under ``run_dir/thumbs``.

    Only thumbnails this module wrote are removed or replaced: a set made for another ``key``
    is removed file by file as its manifest lists them; a set made for this ``key`` in which
    some images' files were not found is completed (those images only). A file that imgclust
    did not write, at a name a thumbnail needs, is refused (:class:`ImgclustError`).

    Parameters
    ----------
    source : Source
        The reopened source of the run; ``source.read(id)`` gives each image.
    ids : sequence of str
        Image ids in ``clusters.csv`` order (the row number names the thumbnail).
    labels : ndarray of shape (n_images,)
        Clusters, for the mean images (noise, -1, gets none).
    key : str
        :func:`cache_key`, stored in ``thumbs/manifest.json``.
    """
    from imgclust.progress import progress_bar

    tdir = run_dir / "thumbs"
    if os.path.lexists(tdir) and (tdir.is_symlink() or not tdir.is_dir()):
        raise ImgclustError(f"{tdir}: is not a folder imgclust made (not replaced); move it away "
                            "and build the report again")
    old = _read_manifest(tdir)
    read = _reader(source, run_dir)
    n = len(ids)
    workers = workers or min(4, os.cpu_count() or 1)
    # Pillow releases the GIL while decoding, resizing and encoding: threads overlap the I/O
    with ThreadPoolExecutor(max_workers=workers) as pool:
        if old is not None and old.get("key") == key and old.get("state") == "done" \
                and old.get("rows") == n:
            ts = _recheck(read, ids, labels, run_dir, old, pool) if old.get("absent") else \
                load_cached(run_dir, key, labels)
            if ts is not None and old.get("labels_key") == labels_key(labels):
                return ts
            old = _read_manifest(tdir)
            if old is not None and old.get("key") == key and old.get("state") == "done":
                ts = _remean(run_dir, labels, old, pool)  # a new k: the same thumbnails
                if ts is not None:
                    return ts
                old = _read_manifest(tdir)
        if old is not None:  # stale: other rows or another source
            _remove_listed(run_dir, old)
        mode, cell = _probe(read, ids)
        ks = sorted(int(c) for c in np.unique(labels) if c >= 0)
        base = {"key": key, "mode": mode, "cell": cell, "small": mode == "sheet", "rows": n,
                "clusters": ks}
        # the names first: a kill part-way leaves a manifest that lists every file it may have made
        _check_free(run_dir, set(_listed(run_dir, {**base, "state": "writing"})))
        tdir.mkdir(exist_ok=True)
        atomic_write_json(tdir / MANIFEST, {**base, "state": "writing"})
        sums = {c: np.zeros((MEAN_SIDE, MEAN_SIDE, 3), np.float64) for c in ks}
        counts = dict.fromkeys(ks, 0)
        missing: dict[int, str] = {}
        absent: set[int] = set()
        sizes: dict[str, list[int]] = {}
        base["labels_key"] = labels_key(labels)
        bar = progress_bar(progress)(total=n, desc="report: thumbnails", unit="img")
        for start in range(0, n, SHARD):
            rows = range(start, min(n, start + SHARD))
            if mode == "files":
                (tdir / f"{start // SHARD:03d}").mkdir(exist_ok=True)
            sheet = None
            if mode == "sheet":
                lines = (len(rows) + SHEET_COLS - 1) // SHEET_COLS
                sheet = Image.new("RGB", (SHEET_COLS * cell, lines * cell), PAD)
            results = pool.map(lambda r: _one(read, ids[r], None if sheet else
                                              run_dir / thumb_name(r), cell), rows)
            for r, (img, arr, err, gone) in zip(rows, results):
                if err is not None:
                    missing[r] = err
                    if gone:
                        absent.add(r)
                    continue
                if sheet is not None:
                    col, line = sheet_cell(r)
                    sheet.paste(img, (col * cell + (cell - img.width) // 2,
                                      line * cell + (cell - img.height) // 2))
                    if img.size != (cell, cell):
                        sizes[str(r)] = list(img.size)
                c = int(labels[r])
                if c >= 0:
                    sums[c] += arr
                    counts[c] += 1
            if sheet is not None:
                sheet.save(run_dir / sheet_name(start), "PNG", optimize=False)
            bar.update(len(rows))
        bar.close()
    base["sizes"] = sizes
    return _finish(tdir, base, missing, absent, _write_means(run_dir, sums, counts), counts)
