"""Regenerate the committed bad-input corpus (tiny files, deterministic).

    python tests/data/bad/make_corpus.py

Each file is one case of issue 5; tests/sources/test_bad_input.py says what must happen to it.
Cases that cannot be committed (permissions, symlinks, odd names, FIFOs, files changing during
a scan) are made in tmp_path by the tests.
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width x height`` (8-bit grey), with one tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def main() -> None:
    rng = np.random.default_rng(5)
    rgb = Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    jpeg = encode(rgb, "JPEG", quality=85)
    png = encode(rgb, "PNG")
    files: dict[str, bytes] = {
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) // 2],
        "text.jpg": b"These are my holiday notes, not a picture.\n",
        "page.jpg": b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n",
        "gif_named.jpg": encode(rgb.convert("P"), "GIF"),
        "cmyk.jpg": encode(rgb.convert("CMYK"), "JPEG", quality=90),
        "gray16.tif": encode(Image.fromarray(
            (np.arange(16 * 24).reshape(16, 24) * 170).astype(np.uint16)), "TIFF"),
        "float32.tif": encode(Image.fromarray(
            np.linspace(0, 1, 16 * 24, dtype=np.float32).reshape(16, 24)), "TIFF"),
        "palette_alpha.png": encode(rgb.convert("P"), "PNG", transparency=0),
        "la.png": encode(rgb.convert("LA"), "PNG"),
        "gray16.png": encode(Image.fromarray(
            (np.arange(16 * 24).reshape(16, 24) * 170).astype(np.uint16)), "PNG"),
        "1x1.png": encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"),
        "1x10000.png": encode(Image.new("L", (1, 10000), 77), "PNG"),
        "bomb_header.png": png_header_only(100_000, 100_000),
    }
    frames = [Image.new("RGB", (8, 6), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    files["animated.gif"] = encode(frames[0], "GIF", save_all=True, append_images=frames[1:],
                                   duration=40, loop=0)
    files["animated.webp"] = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:],
                                    duration=40, loop=0, lossless=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    tall = Image.new("RGB", (20, 10), (255, 255, 255))
    tall.paste((0, 0, 0), (0, 0, 10, 10))  # black left half as stored
    files["exif_rot6.jpg"] = encode(tall, "JPEG", quality=95, exif=exif.tobytes())
    for name, data in files.items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
