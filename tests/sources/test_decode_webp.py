"""Still WebPs go through libwebp's simple decoder (the ``webp`` package): the same pixels as
Pillow's, EXIF orientation applied, animations left to Pillow."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imgclust.sources import decode
from imgclust.sources.decode import decode_image

pytest.importorskip("webp")


def _both(path, **kw):
    fast = decode_image(str(path), "x", **kw)
    decode._WEBP[:] = [None]  # as if the webp package were not installed: Pillow decodes
    try:
        slow = decode_image(str(path), "x", **kw)
    finally:
        decode._WEBP.clear()
    return fast, slow


@pytest.mark.parametrize("mode,lossless", [("RGB", False), ("RGB", True), ("RGBA", True),
                                           ("RGBA", False)])
def test_same_pixels_as_pillow(tmp_path, mode, lossless):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (300, 500, len(mode)), np.uint8)
    if mode == "RGBA":
        a[:100, :, 3] = 0  # a transparent band: flattened onto white
    p = tmp_path / "a.webp"
    Image.fromarray(a, mode).save(p, lossless=lossless, quality=80)
    (rf, f), (rs, s) = _both(p, min_side=64)
    assert (rf.width, rf.height, rf.mode) == (rs.width, rs.height, rs.mode) == (500, 300, mode)
    assert f.mode == s.mode == "RGB" and f.size == s.size
    assert np.array_equal(np.asarray(f), np.asarray(s))


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((40, 100, 3), np.uint8)
    a[:, :10] = 255  # a white bar on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    p = tmp_path / "o.webp"
    Image.fromarray(a).save(p, lossless=True, exif=exif.tobytes())
    (rf, f), (rs, s) = _both(p)
    assert (rf.width, rf.height) == (rs.width, rs.height) == (40, 100)
    assert f.size == s.size == (40, 100)
    assert np.array_equal(np.asarray(f), np.asarray(s))
    assert np.asarray(f)[:10].mean() > 200  # the bar is now along the top


def test_animation_first_frame_by_pillow(tmp_path, monkeypatch):
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    p = tmp_path / "anim.webp"
    frames[0].save(p, save_all=True, append_images=frames[1:], lossless=True)
    called = []
    monkeypatch.setattr(decode, "_decode_webp", lambda *a: called.append(a))
    _, img = decode_image(str(p), "x")
    assert called == [] and img.getpixel((5, 5)) == (255, 0, 0)


def test_corrupt_webp_is_a_decode_error(tmp_path):
    p = tmp_path / "c.webp"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 200, 3), np.uint8)).save(
        p, quality=90)
    b = bytearray(p.read_bytes())
    b[36] ^= 0xFF  # a byte of the VP8 frame header: Pillow opens it, libwebp refuses it
    p.write_bytes(bytes(b))
    with pytest.raises(decode.DecodeError, match="corrupt"):
        decode_image(str(p), "x")
