"""mixed: a real mixed folder like issue 12's (5 kinds, 308 files, 6 formats, up to 5.6k px).

Sources (Debian bookworm): wallpapers from ``gnome-backgrounds`` 43.1-1 (CC-BY-SA-3.0 and
others per image), ``desktop-base`` 12.0.6+nmu1~deb12u1 (GPL/CC-BY-SA) and
``plasma-workspace-wallpapers`` 4:5.27.5-2 (LGPL/CC-BY-SA); clip-art animals from
``openclipart-png`` 1:0.18+dfsg-19 (CC0, ``animals/``); 128 px application icons from
``oxygen-icon-theme`` 5:5.103.0-1 (LGPL-3+); flags from ``freeciv-data`` 3.0.6-1+deb12u1
(``flags/*-large.png``, GPL-2+); unit sprites from ``wesnoth-1.16-data`` 1:1.16.9-1 (GPL-2+).
Class = kind: wallpapers (68: all that qualify, JPEG/PNG/WebP as shipped, 1–23 megapixels, not shrunk),
clipart (70, shrunk to at most 1024 px, rotation PNG/GIF/BMP/PNG), icons (60, PNG/TIFF/GIF),
flags (60, PNG/BMP/WebP), sprites (50, PNG/TIFF/WebP). Selection: sorted, byte duplicates
dropped, wallpapers at least 1000 px on the shorter side, then evenly spaced.
"""
from __future__ import annotations

from pathlib import Path

from bench.sets import cycle, deb, evenly, finish, readable, save, start, unique


def _wallpapers() -> list[Path]:
    files = []
    for pkg in ("gnome-backgrounds", "desktop-base", "plasma-workspace-wallpapers"):
        root = deb(pkg) / "usr/share"
        files += [p for g in ("*.jpg", "*.png", "*.webp") for p in root.rglob(g)
                  if p.is_file() and not p.is_symlink()]
    return readable(unique(files), min_side=1000)


def build(out: Path) -> dict[str, int]:
    start(out)
    lines: list[str] = []
    wes = deb("wesnoth-1.16-data") / "usr/share/games/wesnoth/1.16/data/core/images/units"
    kinds = {
        "wallpapers": (evenly(_wallpapers(), 80), (None,), None),
        "clipart": (evenly(readable(unique(
            (deb("openclipart-png") / "usr/share/openclipart/png/animals").rglob("*.png"))), 70),
            (None, "gif", "bmp", None), 1024),
        "icons": (evenly(unique((deb("oxygen-icon-theme") /
                                 "usr/share/icons/oxygen/base/128x128/apps").glob("*.png")), 60),
                  (None, "tiff", "gif"), None),
        "flags": (evenly(unique(p for p in (deb("freeciv-data") / "usr/share/games/freeciv/flags")
                                .glob("*-large.png") if "shield" not in p.name), 60),
                  (None, "bmp", "webp"), None),
        "sprites": (evenly(unique(p for p in wes.rglob("*.png") if "-" not in p.stem), 50),
                    (None, "tiff", "webp"), None),
    }
    for kind, (files, formats, max_side) in kinds.items():
        for i, p in enumerate(files):
            d = save(p, out / kind / f"{i:03d}_{p.stem}", cycle(i, formats), max_side)
            lines.append(f"{d.relative_to(out)} <- {p}")
    return finish(out, __doc__, lines)
