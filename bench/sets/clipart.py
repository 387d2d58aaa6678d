"""clip-art: 8 Open Clip Art categories, 50 images each (the issue's 8-class clip-art set).

Source: Debian ``openclipart-png`` 1:0.18+dfsg-19 (Open Clip Art Library 0.18), public domain
(CC0; ``/usr/share/doc/openclipart-png/copyright``). Classes: the library's own category
folders birds, bugs, mammals, fruit, beverages, vehicles, music, computer hardware. Selection and
format: exactly :mod:`bench.make_clipart` (sorted, byte duplicates dropped, > 40 MP skipped,
50 evenly spaced per class, each shrunk and centred on a transparent 224 px square). All PNG
and one size: kept so, because the issue's bar (0.49 ± 0.04) was measured on this very folder;
the other sets carry the mixed sizes and formats.
"""
from __future__ import annotations

from pathlib import Path

from bench import make_clipart
from bench.sets import MARKER, deb, start


def build(out: Path) -> dict[str, int]:
    src = deb("openclipart-png") / "usr/share/openclipart/png"
    start(out)
    (out / MARKER).unlink()  # make_clipart writes its own SOURCE.txt at the end
    counts = make_clipart.build(src, out, per_class=50, canvas=224)
    return counts
