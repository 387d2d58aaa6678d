"""decode_image: every listed format and Pillow mode comes back as RGB with the right pixels."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclust.errors import DecodeError
from imgclust.sources.decode import decode_image, to_rgb

RED, BLUE, WHITE, BLACK = (200, 10, 10), (10, 10, 200), (255, 255, 255), (0, 0, 0)


def halves(left, right, size=(8, 6), mode="RGB") -> Image.Image:
    """An image whose left half is ``left`` and right half ``right``."""
    img = Image.new(mode, size, left)
    img.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return img


def decode(path: Path, **kw):
    return decode_image(str(path), path.name, **kw)


def assert_halves(img: Image.Image, left, right, tol: int = 0) -> None:
    assert img.mode == "RGB"
    a = np.asarray(img).astype(int)
    h, w = a.shape[:2]
    np.testing.assert_allclose(a[h // 2, 1], left, atol=tol)
    np.testing.assert_allclose(a[h // 2, w - 2], right, atol=tol)


# --- formats -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, ext, kw, tol", [
    ("JPEG", "jpg", {"quality": 95}, 12),
    ("PNG", "png", {}, 0),
    ("GIF", "gif", {}, 0),
    ("BMP", "bmp", {}, 0),
    ("TIFF", "tif", {}, 0),
    ("TIFF", "tiff", {"compression": "tiff_lzw"}, 0),
    ("WEBP", "webp", {"lossless": True}, 0),
    ("WEBP", "webp", {"quality": 90}, 12),
])
def test_every_format_reads_to_rgb(tmp_path, fmt, ext, kw, tol):
    p = tmp_path / f"img.{ext}"
    halves(RED, BLUE, size=(16, 12)).save(p, fmt, **kw)
    rec, img = decode(p)
    assert (rec.width, rec.height) == (16, 12) == img.size
    assert_halves(img, RED, BLUE, tol)


@pytest.mark.parametrize("fmt, ext", [("GIF", "gif"), ("WEBP", "webp")])
def test_animation_gives_first_frame(tmp_path, fmt, ext):
    frames = [Image.new("RGB", (10, 8), c) for c in (RED, (10, 200, 10), BLUE)]
    p = tmp_path / f"anim.{ext}"
    frames[0].save(p, fmt, save_all=True, append_images=frames[1:], duration=40, loop=0,
                   **({"lossless": True} if fmt == "WEBP" else {}))
    with Image.open(p) as check:
        assert check.n_frames == 3  # really animated
    _, img = decode(p)
    assert_halves(img, RED, RED)


@pytest.mark.skipif(importlib.util.find_spec("pillow_heif") is None,
                    reason='HEIC needs the optional extra: pip install "imgclust[heif]"')
def test_heic(tmp_path):
    from pillow_heif import register_heif_opener

    register_heif_opener()
    p = tmp_path / "img.heic"
    halves(RED, BLUE, size=(64, 32)).save(p, "HEIF", quality=95)
    rec, img = decode(p)
    assert (rec.width, rec.height) == (64, 32)
    assert_halves(img, RED, BLUE, tol=20)


def test_content_decides_the_format_not_the_name(tmp_path):
    p = tmp_path / "really_a_gif.jpg"
    halves(RED, BLUE).save(p, "GIF")
    _, img = decode(p)
    assert_halves(img, RED, BLUE)


# --- modes -------------------------------------------------------------------------------------

def _palette(transparent: bool) -> Image.Image:
    img = Image.new("P", (8, 6), 0)
    img.putpalette([*RED, *BLUE] + [0] * (256 * 3 - 6))
    img.paste(1, (4, 0, 8, 6))
    if transparent:
        img.info["transparency"] = 0
    return img


@pytest.mark.parametrize("name, make, left, right", [
    ("RGB", lambda: halves(RED, BLUE), RED, BLUE),
    ("L", lambda: halves(30, 220, mode="L"), (30,) * 3, (220,) * 3),
    ("1", lambda: halves(0, 1, mode="1"), BLACK, WHITE),
    ("P", lambda: _palette(False), RED, BLUE),
    ("P+transparency", lambda: _palette(True), WHITE, BLUE),
    ("RGBA", lambda: halves((0, 0, 0, 0), (0, 0, 0, 128), mode="RGBA"), WHITE, (127,) * 3),
    ("LA", lambda: halves((0, 255), (0, 0), mode="LA"), BLACK, WHITE),
])
def test_png_modes(tmp_path, name, make, left, right):
    src = make()
    p = tmp_path / "m.png"
    kw = {"transparency": src.info["transparency"]} if "transparency" in src.info else {}
    src.save(p, **kw)
    rec, img = decode(p)
    assert rec.mode == name.split("+")[0]
    assert_halves(img, left, right, tol=1)


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    a = np.zeros((6, 8), np.uint16)
    a[:, 4:] = 65535
    a[0, 0] = 32896  # half scale -> 128
    p = tmp_path / "g16.png"
    Image.fromarray(a).save(p)
    rec, img = decode(p)
    assert rec.mode == "I;16"
    assert_halves(img, BLACK, WHITE)
    assert img.getpixel((0, 0)) == (128, 128, 128)  # Pillow's convert("L") would clip it to 255


def test_16_bit_uses_a_fixed_scale_so_brightness_compares_across_images(tmp_path):
    a = np.full((6, 8), 4112, np.uint16)  # a dark 16-bit image: 4112/65535*255 = 16
    p = tmp_path / "dark16.png"
    Image.fromarray(a).save(p)
    _, img = decode(p)
    assert img.getpixel((3, 3)) == (16, 16, 16)  # not stretched to white or zeroed


@pytest.mark.parametrize("values, expect", [
    ((100, 200), (100, 200)),         # already in 0..255: kept
    ((0, 65535), (0, 255)),           # 16-bit range
    ((-1000, 3_000_000), (0, 255)),   # anything else: stretched min..max
])
def test_32_bit_integer_tiff(tmp_path, values, expect):
    a = np.full((6, 8), values[0], np.int32)
    a[:, 4:] = values[1]
    p = tmp_path / "i32.tif"
    Image.fromarray(a).save(p)
    rec, img = decode(p)
    assert rec.mode == "I"
    assert_halves(img, (expect[0],) * 3, (expect[1],) * 3)


def test_32_bit_float_tiff_with_nan(tmp_path):
    a = np.zeros((6, 8), np.float32)
    a[:, 4:] = 1.0
    a[0, 0] = np.nan
    a[0, 1] = 0.5
    p = tmp_path / "f32.tif"
    Image.fromarray(a).save(p)
    rec, img = decode(p)
    assert rec.mode == "F"
    assert_halves(img, BLACK, WHITE)
    assert img.getpixel((0, 0)) == BLACK and img.getpixel((1, 0)) == (128, 128, 128)


def test_cmyk_jpeg(tmp_path):
    p = tmp_path / "cmyk.jpg"
    halves((0, 0, 0, 0), (0, 255, 255, 0), size=(16, 16), mode="CMYK").save(p, quality=95)
    rec, img = decode(p)
    assert rec.mode == "CMYK"
    assert_halves(img, WHITE, (255, 0, 0), tol=12)


def test_to_rgb_keeps_rgb_as_is():
    img = halves(RED, BLUE)
    assert to_rgb(img) is img


# --- orientation, size limits ------------------------------------------------------------------

def test_exif_orientation_is_applied(tmp_path):
    stored = Image.new("RGB", (40, 20), WHITE)
    stored.paste(BLACK, (0, 0, 20, 20))  # left half black as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    p = tmp_path / "rot6.jpg"
    stored.save(p, quality=95, exif=exif.tobytes())
    rec, img = decode(p)
    assert (rec.width, rec.height) == (20, 40) == img.size  # swapped
    a = np.asarray(img).astype(int)
    assert a[5, 10].max() < 30 and a[34, 10].min() > 225  # stored left half is now on top


def test_large_images_are_shrunk_but_record_the_stored_size(tmp_path):
    for fmt in ("PNG", "JPEG"):
        p = tmp_path / f"big.{fmt.lower()}"
        halves(RED, BLUE, size=(2000, 1000)).save(p, fmt)
        rec, img = decode(p, max_side=256)
        assert (rec.width, rec.height) == (2000, 1000)
        assert img.size == (256, 128)
        assert_halves(img, RED, BLUE, tol=12)
    _, img = decode(p, max_side=None)
    assert img.size == (2000, 1000)


def test_pixel_limit_refuses_before_decoding(tmp_path):
    p = tmp_path / "big.png"
    Image.new("L", (300, 200)).save(p)
    with pytest.raises(DecodeError, match=r"300x200 = 60000 pixels exceeds the limit of 50000"):
        decode(p, max_pixels=50_000)
    rec, _ = decode(p, max_pixels=60_000)
    assert rec.width == 300


# --- a file swapped for a FIFO between the stat and the open -----------------------------------

_SWAP_TO_FIFO = """
import os, sys
from imgclust.sources import FolderSource

root, victim = sys.argv[1], os.path.join(sys.argv[1], "b.png")
real_stat = os.stat

def stat_then_swap(p, *a, **kw):
    st = real_stat(p, *a, **kw)
    if os.fspath(p) == victim and not os.path.exists(victim + ".swapped"):
        os.unlink(victim)  # the regular file stat saw is now a named pipe
        os.mkfifo(victim)
        open(victim + ".swapped", "w").close()
    return st

os.stat = stat_then_swap
src = FolderSource(root)
src.candidates()  # the scan (no stat of the files themselves)
read = [r.id for recs, _ in src.iter_batches() for r in recs]
print(read)
print([(os.path.basename(f.path), f.reason) for f in src.failures])
"""


def test_file_swapped_for_a_fifo_after_the_stat_is_skipped_not_waited_on(tmp_path):
    """A regular file replaced by a named pipe between ``stat`` and ``open`` used to block the
    reader forever (opening a FIFO waits for a writer). The run goes in a subprocess so that a
    hang fails the test instead of hanging it; the timeout is a guard, not a timing assert."""
    import subprocess
    import sys

    root = tmp_path / "f"
    root.mkdir()
    for name in ("a.png", "b.png"):
        halves(RED, BLUE).save(root / name)
    try:
        out = subprocess.run([sys.executable, "-c", _SWAP_TO_FIFO, str(root)], capture_output=True,
                             text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("decoding blocked on a file swapped for a FIFO")
    assert out.returncode == 0, out.stderr
    read, failures = out.stdout.splitlines()
    assert read == "['a.png']"
    assert failures == "[('b.png', 'not a regular file (named pipe (FIFO)); not read')]"
    assert stat_is_fifo(root / "b.png")


def stat_is_fifo(p: Path) -> bool:
    import stat

    return stat.S_ISFIFO(p.lstat().st_mode)


def test_file_deleted_between_the_stat_and_the_open_is_listed(tmp_path, monkeypatch):
    p = tmp_path / "a.png"
    halves(RED, BLUE).save(p)
    real_stat = os.stat

    def stat_then_delete(path, *a, **kw):
        st = real_stat(path, *a, **kw)
        if os.fspath(path) == str(p):
            os.unlink(p)
        return st

    monkeypatch.setattr(os, "stat", stat_then_delete)
    with pytest.raises(DecodeError, match="^.*: file vanished while it was read$"):
        decode(p)


def test_file_deleted_once_opened_is_still_read_from_its_descriptor(tmp_path, monkeypatch):
    """Pillow reads the descriptor opened (and checked) before, not the path again."""
    import imgclust.sources.decode as dec

    p = tmp_path / "a.png"
    halves(RED, BLUE).save(p)
    real_open = dec.Image.open

    def delete_then_open(fp, *a, **kw):
        os.unlink(p)
        return real_open(fp, *a, **kw)

    monkeypatch.setattr(dec.Image, "open", delete_then_open)
    _, img = decode(p)
    assert_halves(img, RED, BLUE)
    assert not p.exists()


def test_palette_with_partial_alpha_matches_compositing_every_pixel():
    """to_rgb composites each palette entry once; the pixels are those of an RGBA composite."""
    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 6, (9, 11), dtype=np.uint8), "P")
    img.putpalette(rng.integers(0, 256, 18, dtype=np.uint8).tobytes())
    img.info["transparency"] = bytes([0, 40, 128, 200, 255])  # entry 5 has none: opaque
    rgba = img.convert("RGBA")
    expected = Image.alpha_composite(Image.new("RGBA", img.size, WHITE + (255,)), rgba)
    got = np.asarray(to_rgb(img)).astype(int)
    assert np.abs(got - np.asarray(expected.convert("RGB")).astype(int)).max() <= 1
    assert "transparency" in img.info  # the input is left as it was
