"""Thumbnails beside the report, under ``DIR/thumbs/``.

Photos: one small JPEG per image (``thumbs/NNN/ROW.jpg``, folders of 1,000), so the browser
loads only what is on screen (the galleries are paged and lazy). Tiny images (digits, at most
32 px): one PNG sheet per 1,000 rows (``thumbs/sheet_NNN.png``) that the page crops with CSS;
100,000 files of 100 bytes would each take a 4 KiB disk block. ``thumbs/manifest.json`` records
what they were made from; a rebuild with the same ``clusters.csv`` and source reuses them.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from imgclust.errors import DecodeError
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
VERSION = 2
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


def _one(source: Any, image_id: str, dest: Path | None, cell: int
         ) -> tuple[Image.Image | None, np.ndarray | None, str | None]:
    """Make one thumbnail: saved to ``dest`` as JPEG, or returned (for a sheet) when ``dest`` is
    None. Returns (thumbnail for a sheet, mean-image contribution, error)."""
    try:
        _, img = source.read(image_id)
        img = _on_white(_display_image(img))
        side = THUMB_SIDE if dest is not None else cell
        if max(img.size) > side:
            img.thumbnail((side, side), Image.Resampling.LANCZOS)
        img = img.convert("RGB")
        if dest is not None:
            img.save(dest, "JPEG", quality=85)
        mean = np.asarray(img.resize((MEAN_SIDE, MEAN_SIDE), Image.Resampling.BILINEAR),
                          dtype=np.float32)
        return (None if dest is not None else img), mean, None
    except DecodeError as exc:
        return None, None, exc.reason
    except _IMAGE_ERRORS as exc:
        return None, None, f"{type(exc).__name__}: {exc}"


def cache_key(run_dir: Path, source_spec: str) -> str:
    """What the thumbnails depend on: the rows of ``clusters.csv``, the source and this code."""
    h = hashlib.sha256(f"v{VERSION}:{THUMB_SIDE}:{MEAN_SIDE}:{source_spec}".encode())
    with open(run_dir / "clusters.csv", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:20]


def load_cached(run_dir: Path, key: str) -> ThumbSet | None:
    """The thumbnails already in ``run_dir/thumbs`` when they were made for ``key``."""
    try:
        m = json.loads((run_dir / "thumbs" / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or m.get("key") != key:
        return None
    try:
        return ThumbSet(mode=m["mode"], cell=int(m["cell"]),
                        missing={int(k): v for k, v in m["missing"].items()},
                        means={int(k): v for k, v in m["means"].items()}, small=bool(m["small"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def make_thumbnails(source: Any, ids: Sequence[str], labels: np.ndarray, run_dir: Path, key: str,
                    progress: bool = False, workers: int | None = None) -> ThumbSet:
    """Write one thumbnail per row and one mean image per cluster under ``run_dir/thumbs``.

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
    if tdir.exists():  # stale: other rows or another source
        shutil.rmtree(tdir)
    tdir.mkdir()
    n = len(ids)
    # one layout for the whole run, from the first image that reads (the page computes names)
    mode, cell = "files", THUMB_SIDE
    for i in ids[:20]:
        try:
            _, img = source.read(i)
        except _IMAGE_ERRORS:
            continue
        if max(img.size) <= SMALL_SIDE:
            mode, cell = "sheet", max(img.size)
        break
    ks = sorted(int(c) for c in np.unique(labels) if c >= 0)
    sums = {c: np.zeros((MEAN_SIDE, MEAN_SIDE, 3), np.float64) for c in ks}
    counts = dict.fromkeys(ks, 0)
    missing: dict[int, str] = {}
    bar = progress_bar(progress)(total=n, desc="report: thumbnails", unit="img")
    workers = workers or min(4, os.cpu_count() or 1)
    # Pillow releases the GIL while decoding, resizing and encoding: threads overlap the I/O
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, n, SHARD):
            rows = range(start, min(n, start + SHARD))
            if mode == "files":
                (tdir / f"{start // SHARD:03d}").mkdir()
            sheet = None
            if mode == "sheet":
                lines = (len(rows) + SHEET_COLS - 1) // SHEET_COLS
                sheet = Image.new("RGB", (SHEET_COLS * cell, lines * cell), PAD)
            results = pool.map(lambda r: _one(source, ids[r], None if sheet else
                                              run_dir / thumb_name(r), cell), rows)
            for r, (img, arr, err) in zip(rows, results):
                if err is not None:
                    missing[r] = err
                    continue
                if sheet is not None:
                    col, line = sheet_cell(r)
                    sheet.paste(img, (col * cell + (cell - img.width) // 2,
                                      line * cell + (cell - img.height) // 2))
                c = int(labels[r])
                if c >= 0:
                    sums[c] += arr
                    counts[c] += 1
            if sheet is not None:
                sheet.save(run_dir / sheet_name(start), "PNG", optimize=False)
            bar.update(len(rows))
    bar.close()
    means: dict[int, str] = {}
    for c in ks:
        if counts[c]:
            name = f"thumbs/mean_{c}.png"
            Image.fromarray(np.clip(sums[c] / counts[c], 0, 255).astype(np.uint8)).save(run_dir / name)
            means[c] = name
    ts = ThumbSet(mode=mode, cell=cell, missing=missing, means=means, small=mode == "sheet")
    atomic_write_json(tdir / "manifest.json", {"key": key, "mode": mode, "cell": cell,
                                               "small": ts.small,
                                               "missing": {str(k): v for k, v in missing.items()},
                                               "means": {str(k): v for k, v in means.items()}})
    return ts
