"""decode_image's per-file budget (issues 11 and 12): hostile files that cost minutes or
gigabytes are refused with a "decode budget: ..." reason, cheaply, and big images are decoded
only to the size asked for. The hostile files come from bench/redteam_decode.py's builders, at
sizes that keep each test to a second or two."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PIL import Image, ImageFile

import imgclust.sources.decode as dec
from imgclust.errors import DecodeError
from imgclust.sources import FolderSource
from imgclust.sources.decode import decode_image

_BENCH = Path(__file__).resolve().parents[2] / "bench" / "redteam_decode.py"
_spec = importlib.util.spec_from_file_location("redteam_decode", _BENCH)
redteam = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(redteam)


def decode(path: Path, **kw):
    return decode_image(str(path), path.name, **kw)


def refusal(path: Path, **kw) -> str:
    with pytest.raises(DecodeError) as info:
        decode(path, **kw)
    assert str(path) in str(info.value)
    return info.value.reason


# --- decode time -------------------------------------------------------------------------------

def test_progressive_jpeg_with_thousands_of_scans_is_refused_before_decoding(tmp_path, monkeypatch):
    p = tmp_path / "scans.jpg"
    n = redteam.repeated_scan_jpeg(p, (64, 48), 2000)  # each scan costs a pass over the image
    assert n == 2010
    with Image.open(p) as im:
        im.load()  # a valid file Pillow decodes (small here; 3000x2000 with 20000 scans: minutes)
    loads = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(1))
    reason = refusal(p)
    assert reason == (f"decode budget: progressive JPEG with more than {dec.MAX_JPEG_SCANS} scans "
                      "(not decoded)")
    assert loads == []  # refused from a scan of the markers, nothing was decoded


def test_progressive_jpeg_with_a_normal_number_of_scans_reads(tmp_path):
    p = tmp_path / "prog.jpg"
    n = redteam.repeated_scan_jpeg(p, (64, 48), 0)
    assert 1 < n <= dec.MAX_JPEG_SCANS
    rec, img = decode(p)
    assert (rec.width, rec.height) == (64, 48) and img.mode == "RGB"


def test_scans_are_counted_in_the_image_not_in_its_metadata(tmp_path):
    """An EXIF thumbnail is a JPEG inside an APP1 segment: its scans are not the image's."""
    thumb = tmp_path / "thumb.jpg"
    redteam.repeated_scan_jpeg(thumb, (16, 16), dec.MAX_JPEG_SCANS)  # too many scans itself
    data = thumb.read_bytes()
    assert len(data) < 60_000
    exif = Image.Exif()
    exif[0x0112] = 1
    p = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (20, 200, 20)).save(p, progressive=True, exif=exif.tobytes())
    raw = p.read_bytes()
    app1 = b"\xff\xe1" + (len(data) + 2).to_bytes(2, "big") + data  # a segment holding a JPEG
    p.write_bytes(raw[:2] + app1 + raw[2:])
    with open(p, "rb") as f:
        assert 1 < dec._jpeg_scan_count(f.fileno(), 10 ** 6) < 20
    assert decode(p)[1].getpixel((5, 5))[1] > 180


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64, 1 << 20])
def test_scan_count_is_the_same_whatever_the_read_block(tmp_path, monkeypatch, block):
    """Entropy-coded data is searched a block at a time: a marker split over two blocks counts."""
    import numpy as np

    p = tmp_path / "noise.jpg"
    rng = np.random.default_rng(1)  # noise: many stuffed 0xFF 0x00 pairs in the scans
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(p, progressive=True)
    monkeypatch.setattr(dec, "_BLOCK", block)
    with open(p, "rb") as f:
        assert dec._jpeg_scan_count(f.fileno(), 10 ** 6) == p.read_bytes().count(b"\xff\xda")


def test_jpeg_far_larger_than_its_pixels_is_refused_without_reading_it(tmp_path):
    p = tmp_path / "sparse.jpg"
    redteam.sparse_jpeg(p, (64, 48), 300 << 20)  # 300 MB of zeros, sparse: no disk space
    reason = refusal(p)
    limit = 64 * 48 * dec.MAX_JPEG_BYTES_PER_PIXEL + dec.JPEG_SLACK_BYTES
    assert reason == (f"decode budget: {300 << 20} bytes for a 64x48 JPEG, more than the "
                      f"{limit} a JPEG of that size can need (not decoded)")


def without_the_jpeg_checks(monkeypatch) -> None:
    monkeypatch.setattr(dec, "MAX_JPEG_BYTES_PER_PIXEL", 10 ** 9)
    monkeypatch.setattr(dec, "_jpeg_scan_count", lambda fd, stop_after: 0)


def test_time_budget_stops_a_decode_that_keeps_reading(tmp_path, monkeypatch):
    """The time budget is the backstop for what the two checks above do not foresee: here they
    are switched off, and the decoder reads zeros until the budget is spent."""
    without_the_jpeg_checks(monkeypatch)
    p = tmp_path / "sparse.jpg"
    redteam.sparse_jpeg(p, (64, 48), 1 << 30)  # 1 GB of zeros: seconds to read through
    reason = refusal(p, time_budget_s=0.2)
    assert reason == "decode budget: still decoding after 0.2 s (time budget; not decoded)"


def test_a_file_over_its_time_budget_is_refused_at_once_the_second_time(tmp_path, monkeypatch):
    without_the_jpeg_checks(monkeypatch)
    p = tmp_path / "sparse.jpg"
    redteam.sparse_jpeg(p, (64, 48), 1 << 30)
    first = refusal(p, time_budget_s=0.2)
    opened = []
    real_open = dec.Image.open
    monkeypatch.setattr(dec.Image, "open", lambda *a, **kw: opened.append(1) or real_open(*a, **kw))
    assert refusal(p, time_budget_s=0.2) == first
    assert opened == []  # not decoded again (the run and then the report ask for it)
    with open(p, "r+b") as f:  # the file changes: it is tried again
        f.write(b"\xff")
    refusal(p, time_budget_s=0.2)
    assert opened == [1]


def test_folder_source_skips_the_hostile_files_with_their_reasons_and_reads_the_rest(tmp_path):
    root = tmp_path / "f"
    root.mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(root / "good.png")
    redteam.repeated_scan_jpeg(root / "scans.jpg", (64, 48), 2000)
    redteam.sparse_jpeg(root / "sparse.jpg", (64, 48), 300 << 20)
    src = FolderSource(root)
    read = [r.id for recs, _ in src.iter_batches() for r in recs]
    assert read == ["good.png"]
    reasons = {Path(f.path).name: f.reason for f in src.failures}
    assert set(reasons) == {"scans.jpg", "sparse.jpg"}
    assert all(r.startswith("decode budget: ") for r in reasons.values())



# --- decoded memory ----------------------------------------------------------------------------

# The peak is the child's VmHWM: its ru_maxrss starts at the parent's peak (Linux carries
# it over fork and exec), so under pytest it would hide any peak below pytest's own.
_PEAK = """
import sys
from imgclust.errors import DecodeError
from imgclust.sources.decode import decode_image

def peak_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

base = peak_kb()
try:
    rec, img = decode_image(sys.argv[1], "x", **eval(sys.argv[2]))
    print(f"read {rec.width}x{rec.height} {rec.mode} -> {img.size[0]}x{img.size[1]} {img.mode}")
except DecodeError as exc:
    print(exc.reason)
print((peak_kb() - base) // 1024)
"""


def peak_growth(path: Path, **kw) -> tuple[str, int]:
    """Decode in a fresh interpreter: (outcome, growth of its peak RSS in MB)."""
    if not Path("/proc/self/status").exists():
        pytest.skip("peak memory is read from /proc/self/status (Linux)")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _PEAK, str(path), repr(kw)], capture_output=True,
                         text=True, timeout=120, check=True).stdout.splitlines()
    return out[0], int(out[1])


def test_image_over_the_decoded_memory_limit_is_refused_before_decoding(tmp_path):
    p = tmp_path / "f32.tif"
    redteam.float_tiff(p, 1000)  # 4 MB once decoded, 10 kB on disk
    assert p.stat().st_size < 50_000
    reason = refusal(p, max_decoded_bytes=3_000_000)
    assert reason == ("decode budget: a 1000x1000 F image takes 4000000 bytes decoded, more than "
                      "the limit of 3000000 (not decoded)")
    assert decode(p, max_decoded_bytes=4_000_000)[1].size == (512, 512)


def test_default_memory_limit_refuses_the_9400_pixel_float_tiff_from_its_header(tmp_path):
    """9400x9400 float32 (630 kB on disk) took 2.4 GB to read; 337 MiB decoded is over the
    default limit, so only its header is read."""
    p = tmp_path / "f32.tif"
    with open(p, "wb") as f:  # a header that claims 9400x9400 float32, and no data
        Image.new("F", (1, 1)).save(f, "TIFF")
    with Image.open(p) as im:
        tags = dict(im.tag_v2)
    tags[256], tags[257], tags[278] = 9400, 9400, 9400
    Image.new("F", (1, 1)).save(p, "TIFF", tiffinfo=tags)
    with Image.open(p) as im:
        assert im.size == (9400, 9400) and im.mode == "F"
    assert refusal(p).startswith("decode budget: a 9400x9400 F image takes 353440000 bytes")


@pytest.mark.parametrize("make, limit_mb", [
    # 9 MP palette GIF, left half transparent: to RGBA, a background and the composite at full
    # size took 154 MB; sampled first (nearest, to 4 x max_side), then converted: 19 MB
    (lambda p: redteam.palette_gif(p, 3000), 40),
    # 6 MP float TIFF (25 MB decoded): float64 copies at full size took 181 MB; now 41 MB
    (lambda p: redteam.float_tiff(p, 2500), 60),
])
def test_converting_to_rgb_takes_little_more_than_the_decoded_image(tmp_path, make, limit_mb):
    p = tmp_path / "big"
    make(p)
    outcome, grew = peak_growth(p, max_side=224)
    assert outcome.endswith("-> 224x224 RGB"), outcome
    assert grew < limit_mb, f"{outcome}: the decoding process grew by {grew} MB"


def test_transparent_palette_image_is_shrunk_with_the_right_colours(tmp_path):
    p = tmp_path / "t.gif"
    redteam.palette_gif(p, 3000)  # left half transparent (white), right half blue
    _, img = decode(p, max_side=100)
    assert img.size == (100, 100)
    assert img.getpixel((10, 50)) == (255, 255, 255) and img.getpixel((90, 50)) == (0, 0, 255)


def test_jpeg_is_decoded_at_the_smallest_draft_scale_that_covers_max_side(tmp_path, monkeypatch):
    """A 5640x3172 wallpaper for max_side=512 decodes at 1/8 (705x397), not 1/4 (1410x793):
    the draft size keeps the image's aspect, as the final shrink does."""
    p = tmp_path / "wall.jpg"
    Image.new("RGB", (5640, 3172), (30, 90, 150)).save(p, quality=80)
    sizes = []
    real_load = ImageFile.ImageFile.load

    def load(self):
        sizes.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    rec, img = decode(p, max_side=512)
    assert sizes[0] == (705, 397)  # the size it was decoded at
    assert (rec.width, rec.height) == (5640, 3172) and img.size == (512, 288)
    assert max(abs(a - b) for a, b in zip(img.getpixel((200, 100)), (30, 90, 150))) <= 3


def test_progressive_jpeg_counts_its_full_size_coefficients_against_the_memory_limit(tmp_path):
    """libjpeg keeps a progressive JPEG's DCT coefficients for the whole image at full size
    (2 bytes each, 64 per 8x8 block) whatever the draft scale: an 8000x8000 one read at 224 px
    took 194 MB, a baseline one 12 MB."""
    img = Image.new("RGB", (1000, 1000), (20, 90, 200))
    img.save(tmp_path / "base.jpg", quality=90)
    img.save(tmp_path / "prog.jpg", quality=90, progressive=True)  # 4:2:0
    # blocks padded to whole 16x16 MCUs: 63x63 of them; Y 126x126 blocks, Cb and Cr 63x63 each
    coefficients = (126 * 126 + 2 * 63 * 63) * 64 * 2
    decoded = 125 * 125 * 4  # at 1/8 scale
    assert decode(tmp_path / "base.jpg", max_side=100, max_decoded_bytes=2_000_000)[1].size == (
        100, 100)
    reason = refusal(tmp_path / "prog.jpg", max_side=100, max_decoded_bytes=2_000_000)
    assert reason == (f"decode budget: a 1000x1000 progressive JPEG takes {coefficients + decoded}"
                      " bytes to decode (its coefficients are kept at full size whatever the "
                      "scale), more than the limit of 2000000 (not decoded)")
    assert decode(tmp_path / "prog.jpg", max_side=100,
                  max_decoded_bytes=coefficients + decoded)[1].size == (100, 100)
