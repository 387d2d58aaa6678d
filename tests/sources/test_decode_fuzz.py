"""Fuzzing the decode path: whatever the bytes, ``decode_image`` returns an RGB image or raises
``DecodeError`` - never another exception, never a hang.

300 derandomized examples per test by default (a few seconds). For a longer, random run:
``IMGCLUST_FUZZ_EXAMPLES=20000 python -m pytest -q tests/sources/test_decode_fuzz.py``.
"""
from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imgclust.errors import DecodeError
from imgclust.sources.decode import decode_image

N_EXAMPLES = int(os.environ.get("IMGCLUST_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=N_EXAMPLES, deadline=None, database=None,
                derandomize="IMGCLUST_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: Pillow warns about some corrupt metadata on its way to failing; the outcome is what counts here
QUIET = pytest.mark.filterwarnings("ignore::UserWarning",
                                   "ignore::PIL.Image.DecompressionBombWarning")
HANG_S = 10  # one decode of a file under 1 kB taking this long is a hang


class Hang(BaseException):
    """Raised by the alarm; a BaseException so that no ``except`` in the decoder swallows it."""


def _seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    out = {}
    for fmt, img, kw in [
        ("PNG", Image.fromarray(rgb), {}),
        ("JPEG", Image.fromarray(rgb), {"quality": 80}),
        ("JPEG-PROG", Image.fromarray(rgb), {"quality": 80, "progressive": True}),  # scan count
        ("PNG-P", Image.fromarray(rgb).convert("P"), {"transparency": 3}),
        ("PNG-16", Image.fromarray(rng.integers(0, 65535, (9, 7), dtype=np.uint16)), {}),
        ("BMP", Image.fromarray(rgb), {}),
        ("TIFF", Image.fromarray(rgb), {"compression": "tiff_lzw"}),
        ("TIFF-F", Image.fromarray(rng.random((6, 5), dtype=np.float32)), {}),
        ("WEBP", Image.fromarray(rgb), {"quality": 50}),
        ("ICO", Image.fromarray(rgb), {}),
    ]:
        b = io.BytesIO()
        img.save(b, fmt.split("-")[0], **kw)
        out[fmt] = b.getvalue()
    exif = Image.Exif()
    exif[0x0112] = 6
    b = io.BytesIO()
    Image.fromarray(rgb).save(b, "JPEG", exif=exif.tobytes())
    out["JPEG-EXIF"] = b.getvalue()
    frames = [Image.fromarray(np.full((8, 8, 3), c, np.uint8)).convert("P") for c in (0, 128, 255)]
    b = io.BytesIO()
    frames[0].save(b, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    out["GIF"] = b.getvalue()
    return out


SEEDS = _seeds()


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "f.img"


def _alarm(signum, frame):
    raise Hang(f"decode_image took more than {HANG_S} s")


def check_decodes_or_refuses(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_S)
    try:
        rec, img = decode_image(str(path), "f.img")
    except DecodeError as exc:
        assert exc.reason and str(path) in str(exc)
        return
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert img.mode == "RGB" and img.width >= 1 and img.height >= 1
    assert np.asarray(img).shape == (img.height, img.width, 3)
    assert rec.width >= 1 and rec.height >= 1


@QUIET
@FUZZ
@given(data=st.binary(min_size=1, max_size=2048))
def test_random_bytes(fuzz_file, data):
    check_decodes_or_refuses(fuzz_file, data)


@st.composite
def mutated(draw) -> bytes:
    """A valid file with a few bytes flipped, a slice cut out or repeated, or its tail cut off."""
    seed = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    n = len(seed)
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, n - 1))
        seed[i] = draw(st.integers(0, 255))
    edit = draw(st.sampled_from(["none", "truncate", "cut", "repeat", "insert"]))
    i = draw(st.integers(0, n - 1))
    j = draw(st.integers(i, min(n, i + 64)))
    if edit == "truncate":
        seed = seed[:i]
    elif edit == "cut":
        del seed[i:j]
    elif edit == "repeat":
        seed[j:j] = seed[i:j] * draw(st.integers(1, 4))
    elif edit == "insert":
        seed[i:i] = draw(st.binary(min_size=1, max_size=16))
    return bytes(seed)


@QUIET
@FUZZ
@given(data=mutated())
def test_mutated_valid_files(fuzz_file, data):
    check_decodes_or_refuses(fuzz_file, data)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_unmutated_seeds_decode(fuzz_file, name):
    """The fuzz seeds themselves are good files, so the mutations start from a real decode."""
    fuzz_file.write_bytes(SEEDS[name])
    rec, img = decode_image(str(fuzz_file), "f.img")
    assert img.mode == "RGB" and min(img.size) >= 1
