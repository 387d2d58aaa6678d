"""Safe decoding of one image file with Pillow.

Every way a file can fail becomes a :class:`~imgclust.errors.DecodeError` with a reason a person
can act on; nothing here ever writes to the file. The file's content decides its format, never
its name (a GIF named ``.jpg`` reads as a GIF).
"""
from __future__ import annotations

import errno
import io
import os
import re
import stat
import struct
import threading

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imgclust.errors import DecodeError
from imgclust.model import ImageRecord

#: Default pixel limit (width x height) above which a file is refused before decoding.
MAX_PIXELS = 89_478_485  # Pillow's own default, about 9459 x 9459

#: Decoded images are shrunk to at most this side, keeping memory bounded.
MAX_SIDE = 512

#: Formats never opened: Pillow's EPS plug-in runs Ghostscript (an external program) on load,
#: which no folder of photos should be able to trigger.
REFUSED_FORMATS = frozenset({"EPS"})

#: What Pillow's plug-ins raise on corrupt data: the types ``Image.open`` itself treats as "not
#: this format" plus those its decoders raise while loading. The fuzz test
#: (tests/sources/test_decode_fuzz.py, 40,000 random and mutated files) found no other type;
#: anything else would be a bug and is left to surface.
_DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                   ZeroDivisionError, MemoryError, struct.error)

#: EXIF orientations that swap width and height (rotations by 90 or 270 degrees).
_SWAPS_AXES = {5, 6, 7, 8}

_HEIF_LOCK = threading.Lock()
_HEIF_TRIED = False


def _enable_heif() -> None:
    """Register pillow-heif's opener when it is installed (``imgclust[heif]``)."""
    global _HEIF_TRIED
    with _HEIF_LOCK:
        if _HEIF_TRIED:
            return
        try:
            from pillow_heif import register_heif_opener
        except ImportError:
            pass
        else:
            register_heif_opener()
        _HEIF_TRIED = True


def _formats() -> list[str]:
    Image.init()
    return [f for f in Image.OPEN if f not in REFUSED_FORMATS]


def to_rgb(img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Any Pillow mode to 8-bit RGB.

    Transparency (alpha, a palette's transparent entry or a ``tRNS`` colour) is composited onto
    ``background``. 16-bit integer images are scaled by 255/65535 (Pillow's own ``convert``
    clips them at 255 instead). 32-bit integer and float images are kept as they are when their
    values lie in 0..255, scaled from 0..1 (float) or 0..65535, and otherwise stretched from
    their own minimum to maximum; NaN and infinities become 0.

    Parameters
    ----------
    img : PIL.Image.Image
    background : (int, int, int)

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"``, same size.
    """
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    if mode.startswith("I;16"):
        a = np.asarray(img, dtype=np.float32) * (255.0 / 65535.0)
        return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode in ("I", "F"):
        a = np.asarray(img, dtype=np.float64)
        a = np.where(np.isfinite(a), a, 0.0)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if mode == "F" and lo >= 0.0 and hi <= 1.0:
            a = a * 255.0
        elif lo >= 0.0 and hi <= 255.0:
            pass
        elif lo >= 0.0 and hi <= 65535.0:
            a = a * (255.0 / 65535.0)
        else:
            a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, background + (255,))
        return Image.alpha_composite(base, rgba).convert("RGB")
    return img.convert("RGB")


def decode_image(path: str, image_id: str, *, max_side: int | None = MAX_SIDE,
                 max_pixels: int = MAX_PIXELS) -> tuple[ImageRecord, Image.Image]:
    """Read one image file into an RGB Pillow image.

    The first frame of animations is used, EXIF orientation is applied, transparency is
    flattened onto white and high-bit-depth images are scaled to 8 bits (see :func:`to_rgb`).
    Only the header is read before the pixel limit is checked, so a decompression bomb costs
    no memory. Pillow's own guard applies as well: it refuses images above twice
    ``PIL.Image.MAX_IMAGE_PIXELS`` (which is also our default ``max_pixels``) inside ``open``.

    Parameters
    ----------
    path : str
        The file to read.
    image_id : str
        The id recorded for it (its path relative to the source).
    max_side : int or None
        Shrink the decoded image so that its longer side is at most this (``None``: keep).
    max_pixels : int
        Refuse images with more pixels than this before decoding them.

    Returns
    -------
    record : ImageRecord
        Size as displayed (EXIF orientation applied) before shrinking, and the stored mode.
    image : PIL.Image.Image
        Mode ``"RGB"``.

    Raises
    ------
    DecodeError
        With the reason (empty file, not an image, truncated, too large, unreadable…).

    Examples
    --------
    >>> rec, img = decode_image("photo.jpg", "photo.jpg")  # doctest: +SKIP
    >>> img.mode
    'RGB'
    """
    _enable_heif()
    _stat_regular(path)  # the reasons for links, folders and pipes, without opening them
    f = _open_regular(path)  # the file may have been swapped since: checked on the descriptor
    try:
        if os.fstat(f.fileno()).st_size == 0:
            raise DecodeError(path, "empty file (0 bytes)")
        with Image.open(f, formats=_formats()) as im:
            width, height = im.size
            mode = im.mode
            if width < 1 or height < 1:
                raise DecodeError(path, f"image has no pixels ({width}x{height})")
            if width * height > max_pixels:
                raise DecodeError(
                    path, f"image too large: {width}x{height} = {width * height} pixels "
                    f"exceeds the limit of {max_pixels} (decompression-bomb guard; not decoded)")
            # the first frame is the current one after open(); no need to seek or count frames
            orientation = im.getexif().get(0x0112)
            if isinstance(orientation, int) and orientation in _SWAPS_AXES:
                width, height = height, width
            if max_side and im.format in ("JPEG", "MPO"):
                im.draft("RGB", (max_side, max_side))  # decode JPEGs at reduced scale
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # in memory only; saves a full copy
            img = im
            if max_side and max(img.size) > max_side and img.mode in ("RGB", "L", "RGBA", "LA"):
                img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)  # before widening
            img = to_rgb(img)
    except DecodeError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own limit, checked inside open()
        m = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(exc))
        raise DecodeError(path, f"image too large: {m[1]} pixels exceeds Pillow's limit of {m[2]} "
                          "(decompression-bomb guard; not decoded)" if m else
                          f"image too large (decompression-bomb guard; not decoded): {exc}"
                          ) from None
    except UnidentifiedImageError:
        raise DecodeError(path, _not_an_image(f)) from None
    except FileNotFoundError:
        raise DecodeError(path, "file vanished while it was read") from None
    except PermissionError:
        raise DecodeError(path, "permission denied") from None
    except _DECODER_ERRORS as exc:
        raise DecodeError(path, f"corrupt or truncated image: {type(exc).__name__}: {exc}"
                          ) from None
    finally:
        f.close()
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return ImageRecord(id=image_id, path=path, width=width, height=height, mode=mode), img


def _stat_regular(path: str) -> os.stat_result:
    """``os.stat`` that refuses anything but a regular file (a FIFO would block ``open``)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise DecodeError(path, f"dangling symlink (target {os.readlink(path)!r} is missing)"
                              ) from None
        raise DecodeError(path, "file vanished since the folder was scanned") from None
    except OSError as exc:
        raise DecodeError(path, _os_reason(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise DecodeError(path, "is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise DecodeError(path, f"not a regular file ({_kind(st)}); not read")
    return st


def _open_regular(path: str) -> io.BufferedReader:
    """Open ``path`` for reading without ever blocking, and only if it is a regular file.

    ``O_NONBLOCK`` makes opening a named pipe return at once instead of waiting for a writer
    (on a regular file the flag does nothing); ``fstat`` of the opened descriptor then tells
    what was really opened, whatever the path pointed to when it was stat'ed.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise DecodeError(path, "file vanished while it was read") from None
    except OSError as exc:
        raise DecodeError(path, _os_reason(exc)) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise DecodeError(path, "is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise DecodeError(path, f"not a regular file ({_kind(st)}); not read")
        return io.BufferedReader(io.FileIO(fd, "r", closefd=True))
    except BaseException:
        os.close(fd)
        raise


def _kind(st: os.stat_result) -> str:
    return ("named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else
            "socket" if stat.S_ISSOCK(st.st_mode) else "device file")


_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"),
          (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


def _not_an_image(f: io.BufferedReader) -> str:
    """Why Pillow did not recognise a file, from its first bytes (cheap, for the message)."""
    try:
        f.seek(0)
        head = f.read(512)
    except (OSError, ValueError):
        head = b""
    what = "unknown or unsupported format"
    low = head.lstrip().lower()
    fmt = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    if fmt is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        fmt = "WebP"
    if fmt:
        return f"corrupt or truncated image: starts like a {fmt} file but its header is unreadable"
    if low.startswith((b"<!doctype html", b"<html")) or b"<html" in low[:200]:
        what = "the content is HTML"
    elif head.startswith(b"%!PS") or head.startswith(b"\xc5\xd0\xd3\xc6"):
        what = "PostScript/EPS is not read (Pillow would run Ghostscript)"
    elif head.startswith(b"%PDF"):
        what = "the content is a PDF"
    elif head and b"\x00" not in head:
        try:
            head.decode("utf-8")
            what = "the content is text"
        except UnicodeDecodeError:
            pass
    return f"not an image Pillow can read ({what})"


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.EACCES:
        return "permission denied"
    if exc.errno == errno.ENAMETOOLONG:
        return "file name too long"
    return f"cannot read: {exc.strerror or exc}"
