"""emoji: Noto Color Emoji images by Unicode emoji category (9 classes, up to 60 each).

Source: npm ``emoji-datasource-google`` 16.0.0 (``img/google/64/*.png``, 64 px, from Google's
Noto Color Emoji, Apache-2.0; the package's data MIT). Class: the entry's ``category`` in the
package's ``emoji.json`` (Smileys & Emotion, People & Body, Animals & Nature, Food & Drink,
Travel & Places, Activities, Objects, Symbols, Flags; ``Component`` left out). Selection: base
entries only (no skin-tone variants), in ``sort_order``, byte duplicates dropped, 60 evenly
spaced per category. Formats: PNG in, written in the rotation PNG, JPEG (on white), WebP, GIF,
so the folder holds four formats.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench.sets import cycle, evenly, finish, npm, save, start, unique

PER_CLASS = 60
FORMATS = (None, "jpg", "webp", "gif")


def build(out: Path) -> dict[str, int]:
    pkg = npm("emoji-datasource-google")
    entries = json.loads((pkg / "emoji.json").read_text())
    img = pkg / "img/google/64"
    start(out)
    lines: list[str] = []
    by_cat: dict[str, list[Path]] = {}
    for e in sorted(entries, key=lambda e: e["sort_order"]):
        if e["category"] == "Component" or not e.get("has_img_google"):
            continue
        p = img / e["image"]
        if p.is_file():
            by_cat.setdefault(e["category"], []).append(p)
    seen: set[str] = set()
    for cat in sorted(by_cat):
        name = cat.lower().replace(" & ", "_").replace(" ", "_")
        # unique() sorts by path; keep sort_order instead
        kept = set(unique(by_cat[cat], seen))
        files = evenly([p for p in by_cat[cat] if p in kept], PER_CLASS)
        for i, p in enumerate(files):
            d = save(p, out / name / f"{i:03d}_{p.stem}", cycle(i, FORMATS))
            lines.append(f"{d.relative_to(out)} <- {p.relative_to(pkg)}")
    return finish(out, __doc__, lines)
