"""wesnoth: Battle for Wesnoth game art by kind (6 classes; maps are 3 % of the folder).

Source: Debian ``wesnoth-1.16-data`` 1:1.16.9-1, ``data/core/images``; GPL-2+ (art under the
game's licence, ``/usr/share/doc/wesnoth-1.16-data/copyright``). Classes = the image folder:
units (standing sprites, 72 px, on transparency), portraits (painted busts, ~400-500 px),
terrain (base hex tiles, 72 px), attacks (60 px weapon icons), items (map objects), maps
(campaign maps, up to ~1000 px; the small class: 15 images). Selection: files sorted, byte
duplicates dropped; units and terrain only stems without '-' (no animation frames or
transitions); then evenly spaced: units 100, portraits 100, terrain 100, attacks 100, items 60,
maps 15. Formats: PNG/JPEG as shipped, and every 3rd file rewritten as WebP, every 7th as JPEG.
"""
from __future__ import annotations

from pathlib import Path

from bench.sets import deb, evenly, finish, readable, save, start, unique

TAKE = {"units": 100, "portraits": 100, "terrain": 100, "attacks": 100, "items": 60, "maps": 15}
IMG = ("*.png", "*.jpg", "*.webp")


def _fmt(i: int) -> str | None:
    return "webp" if i % 3 == 2 else "jpg" if i % 7 == 6 else None


def build(out: Path) -> dict[str, int]:
    root = deb("wesnoth-1.16-data") / "usr/share/games/wesnoth/1.16/data/core/images"
    start(out)
    lines: list[str] = []
    seen: set[str] = set()
    for cls, n in TAKE.items():
        files = [p for g in IMG for p in (root / cls).rglob(g) if p.is_file()]
        if cls in ("units", "terrain"):
            files = [p for p in files if "-" not in p.stem]
        files = evenly(readable(unique(files, seen), min_side=16), n)
        for i, p in enumerate(files):
            d = save(p, out / cls / f"{i:03d}_{p.stem}", _fmt(i))
            lines.append(f"{d.relative_to(out)} <- {p.relative_to(root)}")
    return finish(out, __doc__, lines)
