"""Build a labelled clip-art folder, ``<out>/<class>/*.png``, from Debian's ``openclipart-png``.

Source: the Debian package ``openclipart-png`` (version 1:0.18+dfsg-19 was used for
bench/results/cnn.md), the Open Clip Art Library 0.18 (http://www.openclipart.org) rendered as
PNG. Licence: every image is released under the Creative Commons Public Domain Dedication
(``/usr/share/doc/openclipart-png/copyright``), so the folder may be built and shared freely.
The images are not committed to this repository; this script rebuilds the same folder.

Classes are the library's own category folders (all PNGs below each folder, sub-folders
included), chosen to be semantic classes rather than shapes: birds, bugs, mammals, fruit,
beverages, vehicles, music and computer hardware. The curators' categories are noisy (a
road sign among the vehicles, a composer's portrait among the music), as real labels are.

Selection is deterministic: files sorted by path, exact byte duplicates dropped (first path
wins, across classes), images over 40 megapixels skipped (a few 10561 x 16000 renders), then
``--per-class`` files taken evenly spaced over the sorted list. Each is shrunk so its longer
side is at most ``--canvas`` pixels (Lanczos, aspect kept) and centred on a transparent
``--canvas`` x ``--canvas`` square (default 224, the CNN's input size), like the fixed-size
benchmark sets (CIFAR, STL-10), so every feature step, raw pixels included, sees one size.
``--canvas 0`` keeps each image's own shrunk size instead.

Get the package without installing it system-wide::

    apt-get update && apt-get download openclipart-png
    dpkg -x openclipart-png_*.deb /tmp/openclipart
    python bench/make_clipart.py --source /tmp/openclipart/usr/share/openclipart/png

(``apt-get install openclipart-png`` puts the same files in /usr/share/openclipart/png, the
default ``--source``.)
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

#: class name -> category folder of openclipart-png
CLASSES = {
    "birds": "animals/birds",
    "bugs": "animals/bugs",
    "mammals": "animals/mammals",
    "fruit": "food/fruit",
    "beverages": "food/beverages",
    "vehicles": "transportation/vehicles",
    "music": "recreation/music",
    "hardware": "computer/hardware",
}
MAX_PIXELS = 40_000_000
MARKER = "SOURCE.txt"


def build(source: Path, out: Path, per_class: int, canvas: int) -> dict[str, int]:
    """Write the folder; returns the number of images per class."""
    seen: set[str] = set()
    counts: dict[str, int] = {}
    lines = [__doc__.strip().splitlines()[0], f"source: {source}", ""]
    for name, rel in CLASSES.items():
        folder = source / rel
        files = sorted(p for p in folder.rglob("*.png") if p.is_file())
        if not files:
            raise SystemExit(f"{folder}: no PNG files; is openclipart-png unpacked there?")
        keep = []
        for p in files:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    with Image.open(p) as im:
                        too_big = im.width * im.height > MAX_PIXELS
            except Image.DecompressionBombError:
                too_big = True
            if not too_big:
                keep.append(p)
        if len(keep) > per_class:
            idx = np.linspace(0, len(keep) - 1, per_class).round().astype(int)
            keep = [keep[i] for i in idx]
        dest = out / name
        dest.mkdir(parents=True)
        for i, p in enumerate(keep):
            with Image.open(p) as im:
                im.load()
                side = canvas or 256
                im.thumbnail((side, side), Image.Resampling.LANCZOS)
                if canvas:
                    sq = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
                    sq.paste(im.convert("RGBA"), ((canvas - im.width) // 2,
                                                  (canvas - im.height) // 2))
                    im = sq
                im.save(dest / f"{i:03d}_{p.stem}.png")
            lines.append(f"{name}/{i:03d}_{p.stem}.png <- {p.relative_to(source)}")
        counts[name] = len(keep)
    (out / MARKER).write_text("\n".join(lines) + "\n")
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=Path("/usr/share/openclipart/png"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/imgclust-clipart"))
    ap.add_argument("--per-class", type=int, default=50)
    ap.add_argument("--canvas", type=int, default=224,
                    help="square canvas side; 0: keep sizes (longer side at most 256)")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace an output folder that this script made before")
    args = ap.parse_args()
    if not args.source.is_dir():
        sys.exit(f"{args.source}: not found; see the docstring for how to unpack openclipart-png")
    if args.out.exists() and any(args.out.iterdir()):
        if not (args.overwrite and (args.out / MARKER).is_file()):
            sys.exit(f"{args.out}: exists and is not empty; --overwrite replaces it only if this "
                     f"script made it ({MARKER} present)")
        shutil.rmtree(args.out)
    counts = build(args.source, args.out, args.per_class, args.canvas)
    print(f"{args.out}: {sum(counts.values())} images in {len(counts)} classes: "
          + ", ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
