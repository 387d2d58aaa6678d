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
    assert dec._jpeg_scan_count(memoryview(p.read_bytes()), 10 ** 6) < 20
    assert decode(p)[1].getpixel((5, 5))[1] > 180


def test_jpeg_far_larger_than_its_pixels_is_refused_without_reading_it(tmp_path):
    p = tmp_path / "sparse.jpg"
    redteam.sparse_jpeg(p, (64, 48), 300 << 20)  # 300 MB of zeros, sparse: no disk space
    reason = refusal(p)
    limit = 64 * 48 * dec.MAX_JPEG_BYTES_PER_PIXEL + dec.JPEG_SLACK_BYTES
    assert reason == (f"decode budget: {300 << 20} bytes for a 64x48 JPEG, more than the "
                      f"{limit} a JPEG of that size can need (not decoded)")


def without_the_jpeg_checks(monkeypatch) -> None:
    monkeypatch.setattr(dec, "MAX_JPEG_BYTES_PER_PIXEL", 10 ** 9)
    monkeypatch.setattr(dec, "_jpeg_scan_count", lambda buf, stop_after: 0)


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

