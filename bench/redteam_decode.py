"""Hostile image files against ``decode_image``'s per-file budget (issues 11 and 12).

Builds each hostile file in a temporary folder, decodes each in its own subprocess and prints a
Markdown table: the decode's time, the peak RSS of that subprocess (``VmHWM``) and the
outcome (the reason of the refusal, or the decoded size).

    python bench/redteam_decode.py                 # the decoder in this tree
    python bench/redteam_decode.py --rev 6c8991a   # decode.py as it was at a git revision
    python bench/redteam_decode.py --only scans    # cases whose name contains "scans"

The builders are imported by tests/sources/test_decode_budget.py, at small sizes.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

# --- builders ----------------------------------------------------------------------------------


def repeated_scan_jpeg(path: Path, size: tuple[int, int], repeats: int) -> int:
    """A valid progressive JPEG of a flat colour whose last scan is repeated ``repeats`` times.

    Each copy of that (tiny) refinement scan makes libjpeg pass over every block of the image
    again. Returns the number of scans in the file.
    """
    b = io.BytesIO()
    Image.new("RGB", size, (90, 120, 30)).save(b, "JPEG", progressive=True, quality=90)
    d = b.getvalue()
    assert d.endswith(b"\xff\xd9")
    # 0xFF 0xDA cannot occur inside entropy-coded data (an 0xFF there is followed by 0x00), and
    # Pillow writes no metadata: the last one starts the last scan, which runs to the EOI
    last = d.rindex(b"\xff\xda")
    path.write_bytes(d[:-2] + d[last:-2] * repeats + d[-2:])
    return d.count(b"\xff\xda") + repeats


def sparse_jpeg(path: Path, size: tuple[int, int], total_bytes: int) -> None:
    """A progressive JPEG header and first scan header followed by zeros up to ``total_bytes``.

    The file is sparse (``truncate``): it takes no disk space, but the decoder reads every zero
    as scan data, since no marker ever ends the scan.
    """
    b = io.BytesIO()
    Image.new("RGB", size, (90, 120, 30)).save(b, "JPEG", progressive=True, quality=90)
    d = b.getvalue()
    sos = d.index(b"\xff\xda")
    header_end = sos + 2 + int.from_bytes(d[sos + 2:sos + 4], "big")
    with open(path, "wb") as f:
        f.write(d[:header_end])
        f.truncate(total_bytes)


def float_tiff(path: Path, side: int) -> None:
    """A deflate-compressed 32-bit float TIFF of side x side, almost all zeros (small on disk)."""
    a = np.zeros((side, side), np.float32)
    a[::97, ::89] = 0.7
    Image.fromarray(a).save(path, "TIFF", compression="tiff_adobe_deflate")


def palette_gif(path: Path, side: int) -> None:
    """A two-colour palette GIF of side x side whose left half is the transparent index."""
    im = Image.new("P", (side, side), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste(1, (side // 2, 0, side, side))
    im.save(path, "GIF", transparency=0)


def big_jpeg(path: Path, size: tuple[int, int], seed: int = 0) -> None:
    """A noisy photo-sized JPEG (smooth gradients plus noise, quality 90)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.stack([x / w * 255, y / h * 255, (x + y) / (w + h) * 255], axis=2)
    a += rng.normal(0, 20, a.shape).astype(np.float32)
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path, quality=90)


# --- one decode in a child process -------------------------------------------------------------

_CHILD = r"""
import importlib.util, json, sys, time
spec = json.loads(sys.argv[1])
if spec["module"]:
    m = importlib.util.spec_from_file_location("decode_under_test", spec["module"])
    dec = importlib.util.module_from_spec(m)
    m.loader.exec_module(dec)
else:
    import imgclust.sources.decode as dec
from imgclust.errors import DecodeError
t = time.perf_counter()
try:
    rec, img = dec.decode_image(spec["path"], "x", **spec["kw"])
    out = f"read: {rec.width}x{rec.height} {rec.mode} -> {img.size[0]}x{img.size[1]}"
except DecodeError as exc:
    out = exc.reason
with open("/proc/self/status") as f:
    rss = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print(json.dumps({"s": time.perf_counter() - t, "outcome": out, "rss": rss}))
"""


def decode_in_child(path: Path, kw: dict, module: str | None, timeout: float) -> dict:
    """Decode ``path`` in a fresh interpreter: wall time, the child's peak RSS, the outcome.

    The peak is the child's ``VmHWM`` (Linux): ``ru_maxrss``, of the child itself or as
    ``RUSAGE_CHILDREN`` here, starts from this process's peak (Linux carries it over fork and
    exec) and would hide any smaller peak.
    """
    spec = json.dumps({"path": str(path), "kw": kw, "module": module})
    t = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-c", _CHILD, spec], capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"wall": time.perf_counter() - t, "rss": None,
                "outcome": f"killed after {timeout:g} s (still decoding)"}
    wall = time.perf_counter() - t
    if p.returncode != 0:
        return {"wall": wall, "rss": None, "outcome": f"crashed: {p.stderr.strip()[-200:]}"}
    res = json.loads(p.stdout.strip().splitlines()[-1])
    return {"wall": wall, "decode": res["s"], "rss": res["rss"] / 1024, "outcome": res["outcome"]}


CASES = [
    # name, builder, what it is
    ("baseline", lambda p: Image.new("RGB", (64, 64), (1, 2, 3)).save(p, "JPEG"),
     "64x64 JPEG (the interpreter and imports alone)"),
    ("scans-20000", lambda p: repeated_scan_jpeg(p, (3000, 2000), 20_000),
     "progressive 3000x2000 JPEG, last scan repeated 20,000 times"),
    ("sparse-1GB", lambda p: sparse_jpeg(p, (640, 480), 1 << 30),
     "640x480 progressive JPEG header + 1 GiB of (sparse) zeros"),
    ("float-tiff-9400", lambda p: float_tiff(p, 9400), "9400x9400 float32 TIFF (deflate)"),
    ("palette-gif-9400", lambda p: palette_gif(p, 9400),
     "9400x9400 palette GIF with a transparent index"),
    ("jpeg-6000x4000", lambda p: big_jpeg(p, (6000, 4000)), "6000x4000 photo-like JPEG"),
    ("jpeg-5640x3172", lambda p: big_jpeg(p, (5640, 3172)), "5640x3172 wallpaper JPEG"),
]


def _module_at(rev: str, tmp: Path) -> str:
    src = subprocess.run(["git", "show", f"{rev}:src/imgclust/sources/decode.py"], check=True,
                         capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    path = tmp / f"decode_{rev}.py"
    path.write_text(src)
    return str(path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", help="decode.py from this git revision instead of the tree's")
    ap.add_argument("--only", default="", help="only cases whose name contains this")
    ap.add_argument("--skip", default="", help="leave out cases whose name contains this")
    ap.add_argument("--max-side", type=int, default=224, help="max_side passed to decode_image")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds before a child is killed")
    ap.add_argument("--build", nargs=2, metavar=("CASE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.build:
        dict((c[0], c[1]) for c in CASES)[args.build[0]](Path(args.build[1]))
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        module = _module_at(args.rev, tmp) if args.rev else None
        print(f"decoder: {'decode.py at ' + args.rev if args.rev else 'this tree'}; "
              f"max_side={args.max_side}\n")
        print("| case | file | on disk | decode s | peak RSS MB | outcome |")
        print("|------|------|--------:|-------:|------------:|---------|")
        for name, _, what in CASES:
            if args.only not in name or (args.skip and args.skip in name):
                continue
            path = tmp / (name + (".tif" if "tiff" in name else ".gif" if "gif" in name
                                  else ".jpg"))
            # built in a child too, so that this process stays small: the big arrays of a
            # builder are gone when the next decode starts
            subprocess.run([sys.executable, __file__, "--build", name, str(path)], check=True)
            disk = os.stat(path).st_blocks * 512
            r = decode_in_child(path, {"max_side": args.max_side}, module, args.timeout)
            rss = "-" if r["rss"] is None else f"{r['rss']:.0f}"
            secs = r.get("decode", r["wall"])
            print(f"| {name} | {what} | {disk / 1e3:,.0f} kB | {secs:.2f} | {rss} | "
                  f"{r['outcome']} |", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
