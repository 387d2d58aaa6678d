"""icon-themes: the same kinds of icon drawn by four themes; class = theme (4 classes).

Sources (Debian bookworm): ``oxygen-icon-theme`` 5:5.103.0-1 (LGPL-3+), ``tango-icon-theme``
0.8.90-11 (public domain), ``gnome-icon-theme`` 3.12.0-5 (GPL-3 / CC-BY-SA-3.0),
``adwaita-icon-theme`` 43-1 (LGPL-3 / CC-BY-SA-3.0). Class = theme: each has its own drawing
style (Oxygen glossy, Tango flat-outlined, GNOME 2 shaded, Adwaita 3's full-colour). Selection:
the 32x32 PNGs of the contexts apps, devices, mimetypes, places, actions, no ``symbolic``
(monochrome) icons, sorted, byte duplicates dropped, 80 evenly spaced per theme (Adwaita has
58 such icons). Formats: PNG in; every 4th file WebP, every 5th GIF.
"""
from __future__ import annotations

from pathlib import Path

from bench.sets import deb, evenly, finish, save, start, unique

CONTEXTS = ("apps", "devices", "mimetypes", "places", "actions")
THEMES = {
    "oxygen": ("oxygen-icon-theme", "usr/share/icons/oxygen/base/32x32", CONTEXTS),
    "tango": ("tango-icon-theme", "usr/share/icons/Tango/32x32", CONTEXTS),
    "gnome": ("gnome-icon-theme", "usr/share/icons/gnome/32x32", CONTEXTS),
    "adwaita": ("adwaita-icon-theme", "usr/share/icons/Adwaita/32x32", CONTEXTS),
}


def build(out: Path) -> dict[str, int]:
    start(out)
    lines: list[str] = []
    seen: set[str] = set()
    for theme, (pkg, rel, contexts) in THEMES.items():
        root = deb(pkg) / rel
        files = [p for c in contexts for p in (root / c).glob("*.png") 
                 if not p.is_symlink() and "symbolic" not in p.name]
        files = evenly(unique(files, seen), 80)
        for i, p in enumerate(files):
            fmt = "webp" if i % 4 == 3 else "gif" if i % 5 == 4 else None
            d = save(p, out / theme / f"{i:03d}_{p.stem}", fmt)
            lines.append(f"{d.relative_to(out)} <- {pkg}:{p.relative_to(root)}")
    return finish(out, __doc__, lines)
