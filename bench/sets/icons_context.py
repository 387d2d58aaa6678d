"""icons-context: Oxygen 128 px icons by icon context (6 classes, up to 60 each).

Source: Debian ``oxygen-icon-theme`` 5:5.103.0-1, ``usr/share/icons/oxygen/base/128x128``;
LGPL-3+ (``/usr/share/doc/oxygen-icon-theme/copyright``). Class = the freedesktop icon context
folder: actions, apps, devices, mimetypes (document pages), places (folders), status.
Selection: sorted, byte duplicates dropped, 60 evenly spaced per context (status has 48).
Formats: PNG in; rotation PNG, PNG, WebP, TIFF, GIF, BMP (on white).
"""
from __future__ import annotations

from pathlib import Path

from bench.sets import cycle, deb, evenly, finish, save, start, unique

CONTEXTS = ("actions", "apps", "devices", "mimetypes", "places", "status")
FORMATS = (None, None, "webp", "tiff", "gif", "bmp")


def build(out: Path) -> dict[str, int]:
    root = deb("oxygen-icon-theme") / "usr/share/icons/oxygen/base/128x128"
    start(out)
    lines: list[str] = []
    seen: set[str] = set()
    for ctx in CONTEXTS:
        files = evenly(unique((root / ctx).glob("*.png"), seen), 60)
        for i, p in enumerate(files):
            d = save(p, out / ctx / f"{i:03d}_{p.stem}", cycle(i, FORMATS))
            lines.append(f"{d.relative_to(out)} <- {p.relative_to(root)}")
    return finish(out, __doc__, lines)
