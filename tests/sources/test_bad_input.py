"""Issue 5's bad-input list: every case is read or listed with its reason, the run goes on and no
file is changed. Committed cases live in tests/data/bad/ (see make_corpus.py there); the ones a
repository cannot hold (permissions, symlinks, odd names, FIFOs, races) are made in tmp_path."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imgclust
from imgclust.errors import DecodeError
from imgclust.sources import FolderSource
from imgclust.sources.decode import decode_image

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"

#: committed file -> None (must read) or a regex its failure reason must match
CORPUS: dict[str, str | None] = {
    "empty.jpg": r"^empty file \(0 bytes\)$",
    "truncated.jpg": r"^corrupt or truncated image",
    "truncated.png": r"^corrupt or truncated image",
    "text.jpg": r"^not an image .*the content is text",
    "page.jpg": r"^not an image .*the content is HTML",
    "bomb_header.png": (r"^image too large: 10000000000 pixels exceeds Pillow's limit of \d+ "
                        r"\(decompression-bomb guard; not decoded\)$"),
    "gif_named.jpg": None,
    "cmyk.jpg": None,
    "gray16.tif": None,
    "float32.tif": None,
    "palette_alpha.png": None,
    "la.png": None,
    "gray16.png": None,
    "1x1.png": None,
    "1x10000.png": None,
    "animated.gif": None,
    "animated.webp": None,
    "exif_rot6.jpg": None,
}
GOOD = {n for n, r in CORPUS.items() if r is None}


def png_bytes(color=(90, 160, 30), size=(12, 10)) -> bytes:
    import io

    b = io.BytesIO()
    Image.new("RGB", size, color).save(b, "PNG")
    return b.getvalue()


def snapshot(root: Path) -> dict[bytes, tuple]:
    """Every entry below root (symlinks not followed): type, size, mtime, content hash or target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if os.path.islink(p):
                extra = os.readlink(p)
            elif os.path.isfile(p) and not name.startswith(b"fifo"):
                with open(p, "rb") as f:
                    extra = hashlib.sha256(f.read()).hexdigest()
            else:
                extra = None
            out[p] = (st.st_mode, st.st_size, st.st_mtime_ns, extra)
    return out


def test_corpus_has_an_expectation_for_every_file():
    files = {p.name for p in BAD.iterdir() if p.name != "make_corpus.py"}
    assert files == set(CORPUS)
    assert sum(p.stat().st_size for p in BAD.iterdir()) < 20_000  # tiny on purpose


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_committed_case(name):
    path = BAD / name
    expected = CORPUS[name]
    if expected is None:
        rec, img = decode_image(str(path), name)
        assert img.mode == "RGB" and min(img.size) >= 1
    else:
        with pytest.raises(DecodeError) as info:
            decode_image(str(path), name)
        assert re.search(expected, info.value.reason), info.value.reason
        assert str(path) in str(info.value)  # the message names the file


def test_committed_cases_read_to_the_right_pixels():
    def read(name):
        return decode_image(str(BAD / name), name)

    rec, img = read("exif_rot6.jpg")  # stored 20x10, left half black, Orientation=6
    assert (rec.width, rec.height) == (10, 20) == img.size
    assert max(img.getpixel((5, 3))) < 40 and min(img.getpixel((5, 16))) > 215
    for name in ("animated.gif", "animated.webp"):
        assert read(name)[1].getpixel((3, 3)) == (255, 0, 0)  # first of red, green, blue
    rec, img = read("1x10000.png")
    assert (rec.width, rec.height) == (1, 10000) and img.size == (1, 512)
    assert img.getpixel((0, 300)) == (77, 77, 77)
    assert read("1x1.png")[1].getpixel((0, 0)) == (10, 20, 30)
    rec, img = read("gif_named.jpg")
    assert rec.mode == "P" and img.size == (24, 16)
    assert read("gray16.png")[0].mode == "I;16" and read("gray16.tif")[0].mode == "I;16"
    assert read("float32.tif")[0].mode == "F" and read("cmyk.jpg")[0].mode == "CMYK"
    # palette with a transparent index: those pixels become white
    with Image.open(BAD / "palette_alpha.png") as im:
        idx = np.asarray(im)
        assert im.info["transparency"] == 0
    a = np.asarray(read("palette_alpha.png")[1])
    assert (idx == 0).any() and (a[idx == 0] == 255).all()


def make_mess(root: Path) -> tuple[dict[str, str], set[str]]:
    """The committed corpus plus every case that cannot be committed.

    Returns (expected failures: file name -> reason regex, ids expected to read).
    """
    shutil.copytree(BAD, root, ignore=shutil.ignore_patterns("make_corpus.py"))
    broot = os.fsencode(root)
    fails = {n: r for n, r in CORPUS.items() if r is not None}
    good = set(GOOD)
    (root / "loop.jpg").symlink_to("loop.jpg")
    fails["loop.jpg"] = r"^symlink loop$"
    (root / "dangling.png").symlink_to("missing.png")
    fails["dangling.png"] = r"^dangling symlink \(target 'missing.png' is missing\)$"
    os.mkfifo(root / "fifo.jpg")
    fails["fifo.jpg"] = r"not a regular file \(named pipe"
    (root / "x.jpg").mkdir()  # a directory named like an image is a folder: walked, not read
    (root / "x.jpg" / "inside.png").write_bytes(png_bytes())
    good.add(os.path.join("x.jpg", "inside.png"))
    long_name = "l" * 251 + ".png"  # 255 bytes, the usual limit
    (root / long_name).write_bytes(png_bytes())
    good.add(long_name)
    try:
        with open(os.path.join(broot, b"caf\xe9.png"), "wb") as f:  # Latin-1, not UTF-8
            f.write(png_bytes((200, 40, 40)))
        with open(os.path.join(broot, b"bad\xff.jpg"), "wb") as f:
            f.write(b"\xff\xd8\xff garbage")
    except OSError:
        pytest.skip("this filesystem refuses non-UTF-8 file names")
    good.add(os.fsdecode(b"caf\xe9.png"))
    fails[os.fsdecode(b"bad\xff.jpg")] = r"^corrupt or truncated image: starts like a JPEG file"
    return fails, good


def test_folder_of_bad_files_runs_lists_every_failure_and_changes_nothing(tmp_path):
    root = tmp_path / "mess"
    fails, good = make_mess(root)
    before = snapshot(root)
    res = imgclust.run(root, tmp_path / "out", features="pixels:8", method="kmeans", k=2)
    assert snapshot(root) == before  # nothing modified, moved or deleted
    assert set(res.ids) == good
    by_name = {os.path.relpath(f.path, root): f.reason for f in res.failures}
    assert set(by_name) == set(fails)
    for name, pattern in fails.items():
        assert re.search(pattern, by_name[name]), (name, by_name[name])
    # summary.json and clusters.csv are valid UTF-8 and give back the exact (non-UTF-8) names
    raw = (tmp_path / "out" / "summary.json").read_bytes()
    summary = json.loads(raw.decode("utf-8"))
    assert summary["n_skipped"] == len(fails) and summary["n_images"] == len(good)
    listed = {os.path.relpath(s["path"], root): s["reason"] for s in summary["skipped"]}
    assert listed == by_name
    assert os.fsencode(next(n for n in listed if n.startswith("bad"))) == b"bad\xff.jpg"
    # clusters.csv is strict UTF-8 (pandas and csv read it): the undecodable byte is shown
    # escaped, as ls -b does; the catalogue (images.csv, read by imgclust.load) keeps the bytes
    with open(tmp_path / "out" / "clusters.csv", newline="", encoding="utf-8") as f:
        ids = [row["id"] for row in csv.DictReader(f)]
    assert "caf\\xe9.png" in ids and len(ids) == len(good)
    back = imgclust.load(tmp_path / "out")
    assert set(back.ids) == good
    assert os.path.exists(os.path.join(os.fsencode(root), os.fsencode(
        next(i for i in back.ids if i.startswith("caf")))))


def test_unreadable_file_is_listed(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root from reading")
    p = tmp_path / "secret.png"
    p.write_bytes(png_bytes())
    p.chmod(0)
    try:
        with pytest.raises(DecodeError, match="permission denied"):
            decode_image(str(p), p.name)
    finally:
        p.chmod(0o644)


def test_unreadable_file_as_root_is_simply_read(tmp_path):
    """The honest other half: as root a chmod 000 file is readable, and is read."""
    if os.geteuid() != 0:
        pytest.skip("only meaningful as root")
    p = tmp_path / "secret.png"
    p.write_bytes(png_bytes())
    p.chmod(0)
    assert decode_image(str(p), p.name)[1].mode == "RGB"


def test_files_that_change_or_vanish_after_the_scan(tmp_path):
    root = tmp_path / "f"
    root.mkdir()
    for name in ("gone.png", "dir_now.png", "halved.png", "replaced.png", "fine.png"):
        (root / name).write_bytes(png_bytes(size=(64, 64)) if name == "halved.png" else png_bytes())
    src = FolderSource(root)
    ids = src.candidates()
    assert len(ids) == 5
    # between the scan and the read
    (root / "gone.png").unlink()
    (root / "dir_now.png").unlink()
    (root / "dir_now.png").mkdir()
    data = (root / "halved.png").read_bytes()
    (root / "halved.png").write_bytes(data[: len(data) // 2])
    (root / "replaced.png").write_bytes(png_bytes((1, 2, 3), size=(5, 7)))
    read = {r.id: r for recs, _ in src.iter_batches(batch_size=2) for r in recs}
    reasons = {Path(f.path).name: f.reason for f in src.failures}
    assert set(read) == {"replaced.png", "fine.png"}
    assert (read["replaced.png"].width, read["replaced.png"].height) == (5, 7)  # what is there now
    assert reasons["gone.png"] == "file vanished since the folder was scanned"
    assert reasons["dir_now.png"] == "is a directory, not a file"
    assert reasons["halved.png"].startswith("corrupt or truncated image")


def test_file_vanishing_inside_the_decoder_is_listed(tmp_path, monkeypatch):
    """The file goes between the stat and the open: still a listed failure, not a crash."""
    import imgclust.sources.decode as dec

    p = tmp_path / "a.png"
    p.write_bytes(png_bytes())
    real_open = os.open

    def open_after_delete(path, *a, **kw):  # the file is deleted just before it is opened
        if os.fspath(path) == str(p) and p.exists():
            p.unlink()
        return real_open(path, *a, **kw)

    # os.open, not Image.open: the decoder opens the file itself and hands Pillow the descriptor
    monkeypatch.setattr(dec.os, "open", open_after_delete)
    with pytest.raises(DecodeError, match="vanished while it was read"):
        decode_image(str(p), "a.png")


def test_unexpected_error_becomes_a_listed_failure_not_an_abort(tmp_path, monkeypatch):
    root = tmp_path / "f"
    root.mkdir()
    for name in ("a.png", "b.png"):
        (root / name).write_bytes(png_bytes())
    src = FolderSource(root)
    real_read = src.read
    monkeypatch.setattr(src, "read", lambda i: (_ for _ in ()).throw(RuntimeError("boom"))
                        if i == "a.png" else real_read(i))
    read = [r.id for recs, _ in src.iter_batches() for r in recs]
    assert read == ["b.png"]
    assert src.failures[0].reason == (
        "unexpected error while reading (please report): RuntimeError: boom")


def _deflate_zeros_png(path: Path, width: int, height: int) -> None:
    """A real, valid, all-black 8-bit grey PNG written row by row (never held in memory)."""
    import struct

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    rows = b"\0" * ((width + 1) * 1000)  # filter byte + pixels, 1000 rows at a time
    idat = bytearray()
    for _ in range(height // 1000):
        idat += comp.compress(rows)
    idat += comp.flush()
    with open(path, "wb") as f:
        ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr))
        f.write(chunk(b"IDAT", bytes(idat)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side, max_pixels", [(20_000, None), (8_000, 10_000_000)])
def test_real_decompression_bomb_is_refused_without_the_memory(tmp_path, side, max_pixels):
    """A valid, highly compressed PNG of side x side pixels (400 MB or 64 MB decoded, < 1 MB on
    disk) is refused from its header: the decoding process never grows by more than 60 MB."""
    p = tmp_path / "bomb.png"
    _deflate_zeros_png(p, side, side)
    assert p.stat().st_size < 1_000_000
    kw = "" if max_pixels is None else f", max_pixels={max_pixels}"
    code = textwrap.dedent(f"""
        import resource, sys
        from imgclust.errors import DecodeError
        from imgclust.sources.decode import decode_image
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            decode_image(sys.argv[1], "bomb.png"{kw})
        except DecodeError as exc:
            print(exc.reason)
        else:
            print("DECODED")
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    assert "too large" in out[0] and "not decoded" in out[0]
    assert f"{side}x{side}" in out[0] or f"{side * side} pixels" in out[0]
    assert int(out[1]) < 60, f"decoding process grew by {out[1]} MB"
