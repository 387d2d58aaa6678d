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
import time

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imgclust.errors import DecodeError
from imgclust.model import ImageRecord

#: Default pixel limit (width x height) above which a file is refused before decoding.
MAX_PIXELS = 89_478_485  # Pillow's own default, about 9459 x 9459

#: Decoded images are shrunk to at most this side, keeping memory bounded.
MAX_SIDE = 512

# The per-file decode budget (issue 11). A file over it is refused with a reason starting
# "decode budget:"; the two JPEG checks cost a look at the file's size and markers, no decoding.

#: A JPEG may hold this many bytes per pixel of its image, plus JPEG_SLACK_BYTES. The densest
#: real JPEGs are noise at quality 100 without chroma subsampling: 4.1 B/px in RGB, 6.4 in CMYK
#: (measured with Pillow); anything bigger is data the decoder would read for nothing (a 64x48
#: header followed by 1 GB of zeros is read to the end).
MAX_JPEG_BYTES_PER_PIXEL = 8

#: Room for metadata (EXIF with its thumbnail, ICC profiles, XMP) and data after the image
#: (a short motion-photo video), on top of MAX_JPEG_BYTES_PER_PIXEL.
JPEG_SLACK_BYTES = 4 << 20

#: Most scans a progressive JPEG may have: each one is a pass over the whole image (20,000
#: copies of one tiny scan in a 3000x2000 JPEG cost minutes). libjpeg's standard progression
#: writes 10 (6 for grey); NVIDIA's nvImageCodec refuses more than 256 by default.
MAX_JPEG_SCANS = 100

#: Most memory one image may take as decoded (at the scale it is decoded: JPEGs at their draft
#: scale), in Pillow's storage: 4 bytes per pixel for RGB, RGBA, CMYK, 32-bit integer and
#: float, 2 for 16-bit, 1 for L, P and 1-bit. 256 MiB is 67 MP of RGB (a 24 MP PNG photo takes
#: 92 MiB), and refuses a 9400x9400 float TIFF (337 MiB, 630 kB on disk) from its header.
#: A progressive JPEG adds its coefficients at full size (2 bytes each, 64 per 8x8 block of
#: each component: 3 bytes a pixel in 4:2:0), which libjpeg holds whatever the draft scale.
#: Conversion to RGB then takes little more: images are shrunk before they are widened.
MAX_DECODED_BYTES = 256 << 20

#: Memory that the decodes running at once on a process's threads may take together, by their
#: estimated peak (:data:`_PEAK_FACTOR` times the decoded size). Small images decode side by side;
#: a large one waits for room, and one larger than the whole budget decodes alone. Measured on a
#: folder of wallpapers (issue 12): a 4096x4096 WebP peaks at ~270 MB while it decodes, so two at
#: once on two threads took a run to 1.1 GB; icons and thumbnails are never slowed by it.
#: libwebp's simple decoder (the ``webp`` package) takes 166 MB for such a file, in 0.5 s.
DECODE_MEMORY_BUDGET = 256 << 20

#: Peak memory while decoding, as a multiple of the decoded size (Pillow 13, measured with
#: ru_maxrss): WebP goes through libwebp's animation decoder (its canvas, the previous canvas and
#: the copy into Pillow: 4.2x for a 4096x4096 RGB file); PNG and others ~1.1x for RGB, ~2x for RGBA
#: (flattened onto white). Rounded up.
_PEAK_FACTOR = {"WEBP": 4.5}
_DEFAULT_PEAK_FACTOR = 2.0
#: a still WebP through libwebp's simple decoder (:func:`_decode_webp`): one RGBA buffer that
#: Pillow shares, the file's bytes and the shrinking (measured: 166 MB for 4096x4096, 2.6x)
_SIMPLE_WEBP_FACTOR = 2.6


class _MemoryGate:
    """Admit work while its estimated bytes fit in a shared budget (one item larger than the
    budget runs alone). Hand-written: a ``threading.Semaphore`` counts slots, not sizes, and no
    library in our stack bounds concurrent work by bytes."""

    def __init__(self, budget: int) -> None:
        self.budget = int(budget)
        self.used = 0
        self._cond = threading.Condition()

    def acquire(self, n: int) -> int:
        """Wait until ``n`` bytes fit (or nothing else holds any); return what was taken."""
        n = max(0, min(int(n), self.budget))
        with self._cond:
            while self.used and self.used + n > self.budget:
                self._cond.wait()
            self.used += n
        return n

    def release(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()


#: the process-wide gate every decode goes through (module level: threads share one memory)
_GATE = _MemoryGate(DECODE_MEMORY_BUDGET)


#: Seconds one file may take to decode. Checked each time the decoder reads more of the file,
#: so it is a backstop for what the checks above do not foresee, not an exact limit.
DECODE_TIME_BUDGET_S = 30.0

#: Formats never opened: Pillow's EPS plug-in runs Ghostscript (an external program) on load,
#: which no folder of photos should be able to trigger.
REFUSED_FORMATS = frozenset({"EPS"})

#: What Pillow's plug-ins raise on corrupt data: the types ``Image.open`` itself treats as "not
#: this format" plus those its decoders raise while loading. The fuzz test
#: (tests/sources/test_decode_fuzz.py, 40,000 random and mutated files) found no other type;
#: anything else would be a bug and is left to surface.
_DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                   ZeroDivisionError, MemoryError, struct.error)

#: Modes Pillow resizes with a filter and that :func:`to_rgb` does not widen much: shrunk first.
_FILTERED_MODES = frozenset({"L", "RGB", "RGBA", "LA", "CMYK", "YCbCr"})

#: Other modes (palette, 1-bit, 16/32-bit, float) are first sampled (nearest) down to this
#: many times ``max_side``, converted, then shrunk with a filter: a palette's transparency is
#: kept exactly, a float image's range is read from the sample, at a bounded size.
_SAMPLE_FACTOR = 4

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
    # one float32 copy, changed in place (no float64 temporaries: they took 40 bytes a pixel)
    if mode.startswith("I;16"):
        a = np.asarray(img, dtype=np.float32)
        a *= 255.0 / 65535.0
        return _gray_to_rgb(a)
    if mode in ("I", "F"):
        a = np.array(img, dtype=np.float32)
        a[~np.isfinite(a)] = 0.0
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if mode == "F" and lo >= 0.0 and hi <= 1.0:
            a *= 255.0
        elif lo >= 0.0 and hi <= 255.0:
            pass
        elif lo >= 0.0 and hi <= 65535.0:
            a *= 255.0 / 65535.0
        elif hi > lo:
            a -= lo
            a *= 255.0 / (hi - lo)
        else:
            a[:] = 0.0
        return _gray_to_rgb(a)
    if mode == "P" and "transparency" in img.info and img.palette is not None:
        return _palette_on(img, background)
    if mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, background + (255,))
        return Image.alpha_composite(base, rgba).convert("RGB")
    return img.convert("RGB")


def _gray_to_rgb(a: np.ndarray) -> Image.Image:
    """float32 grey levels (changed in place) to an RGB image, rounded and clipped to 0..255."""
    a += 0.5
    np.clip(a, 0, 255, out=a)
    return Image.fromarray(a.astype(np.uint8), "L").convert("RGB")


def _palette_on(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """A palette image with transparent entries, composited onto ``background``.

    Transparency belongs to palette entries, so compositing each entry once gives the same
    pixels as compositing every pixel (to rounding), with one RGB copy instead of three RGBA.
    """
    pal = np.array(img.getpalette("RGB"), dtype=np.float64).reshape(-1, 3)
    alpha = np.full(len(pal), 255.0)
    t = img.info["transparency"]
    if isinstance(t, int):
        if t < len(alpha):
            alpha[t] = 0.0
    else:
        k = min(len(t), len(alpha))
        alpha[:k] = np.frombuffer(bytes(t), dtype=np.uint8)[:k]
    w = alpha[:, None] / 255.0
    flat = np.rint(pal * w + np.asarray(background, np.float64) * (1.0 - w)).astype(np.uint8)
    out = img.copy()
    out.info.pop("transparency", None)
    out.putpalette(flat.tobytes(), "RGB")
    return out.convert("RGB")


def target_side(size: tuple[int, int], max_side: int | None, min_side: int | None) -> int | None:
    """The longer side an image of ``size`` is shrunk to (``None``: kept).

    Without ``min_side`` it is ``max_side``. With it, the image is shrunk only as far as its
    shorter side stays at ``min_side`` (what a step that resizes to ``min_side`` x ``min_side``
    needs, so nothing is enlarged again), and its longer side never above ``max_side``.

    Examples
    --------
    >>> target_side((5640, 3172), 512, 224)  # a 16:9 photo for a 224-px CNN: 399 x 224
    399
    >>> target_side((300, 300), 512, 224), target_side((4000, 1000), 512, 224)
    (224, 512)
    """
    if not min_side:
        return max_side
    w, h = size
    need = -(-min_side * max(w, h) // max(1, min(w, h)))  # ceil: the shorter side >= min_side
    return need if not max_side else min(max_side, need)


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    """``size`` scaled so that its longer side is ``side`` (each side at least 1)."""
    w, h = size
    scale = side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _jpeg_coefficient_bytes(im: Image.Image) -> int:
    """Memory libjpeg holds for a progressive JPEG's coefficients (0 for any other image).

    A progressive JPEG is decoded from a buffer of every block's 64 DCT coefficients (2 bytes
    each) at full size, whatever the draft scale; blocks fill whole MCUs. Call before ``draft``.
    """
    layers = getattr(im, "layer", None)
    if im.format not in ("JPEG", "MPO") or not im.info.get("progressive") or not layers:
        return 0
    hmax = max(max(1, h) for _, h, _, _ in layers)
    vmax = max(max(1, v) for _, _, v, _ in layers)
    mcus_x = -(-im.size[0] // (8 * hmax))
    mcus_y = -(-im.size[1] // (8 * vmax))
    return sum(mcus_x * max(1, h) * mcus_y * max(1, v) for _, h, v, _ in layers) * 64 * 2


def _decoded_bytes(mode: str, size: tuple[int, int]) -> int:
    """What Pillow allocates for an image of this mode and size."""
    per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    return size[0] * size[1] * per_pixel


def decode_image(path: str, image_id: str, *, max_side: int | None = MAX_SIDE,
                 max_pixels: int = MAX_PIXELS, max_decoded_bytes: int = MAX_DECODED_BYTES,
                 time_budget_s: float | None = DECODE_TIME_BUDGET_S,
                 min_side: int | None = None) -> tuple[ImageRecord, Image.Image]:
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
    min_side : int or None
        The size the features need: shrink further, to where the shorter side is this (still
        within ``max_side``; see :func:`target_side`). A JPEG is then decoded at the smallest
        of its 1/2, 1/4 and 1/8 scales that covers it (``draft``): a 5640x3172 wallpaper for a
        224-px CNN is decoded at 705x397, not in full.
    max_pixels : int
        Refuse images with more pixels than this before decoding them.
    max_decoded_bytes : int
        Refuse images that would take more memory than this once decoded (after a JPEG's
        draft scale), from their header; see :data:`MAX_DECODED_BYTES`.
    time_budget_s : float or None
        Give up on a file still decoding after this many seconds (``None``: no limit). A file
        refused so is refused again at once, unchanged, for the rest of the process. JPEGs far
        larger than their pixels need, or with more than :data:`MAX_JPEG_SCANS` scans, are
        refused before any decoding whatever this is.

    Returns
    -------
    record : ImageRecord
        Size as displayed (EXIF orientation applied) before shrinking, and the stored mode.
    image : PIL.Image.Image
        Mode ``"RGB"``.

    Raises
    ------
    DecodeError
        With the reason (empty file, not an image, truncated, too large, over the decode
        budget, unreadable…).

    Examples
    --------
    >>> rec, img = decode_image("photo.jpg", "photo.jpg")  # doctest: +SKIP
    >>> img.mode
    'RGB'
    """
    _enable_heif()
    _stat_regular(path)  # the reasons for links, folders and pipes, without opening them
    f, st = _open_regular(path)  # the file may have been swapped since: checked on the descriptor
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, time_budget_s)
    try:
        if st.st_size == 0:
            raise DecodeError(path, "empty file (0 bytes)")
        if identity in _OVER_TIME:
            raise DecodeError(path, _OVER_TIME[identity])
        if time_budget_s is not None:
            f.deadline = time.monotonic() + time_budget_s
        with Image.open(f, formats=_formats()) as im:
            width, height = im.size
            mode = im.mode
            if width < 1 or height < 1:
                raise DecodeError(path, f"image has no pixels ({width}x{height})")
            if width * height > max_pixels:
                raise DecodeError(
                    path, f"image too large: {width}x{height} = {width * height} pixels "
                    f"exceeds the limit of {max_pixels} (decompression-bomb guard; not decoded)")
            if im.format in ("JPEG", "MPO"):
                _check_jpeg_budget(path, im, f.fileno(), st.st_size)
            # the first frame is the current one after open(); no need to seek or count frames
            stored, coefficients = im.size, _jpeg_coefficient_bytes(im)
            max_side = target_side(im.size, max_side, min_side)
            if max_side and im.format in ("JPEG", "MPO") and max(im.size) > max_side:
                # decoded at 1/2, 1/4 or 1/8 scale, the smallest that still covers max_side
                im.draft("RGB", _fit(im.size, max_side))
            need = _decoded_bytes(im.mode, im.size) + coefficients
            if coefficients and need > max_decoded_bytes:
                raise DecodeError(
                    path, f"decode budget: a {stored[0]}x{stored[1]} progressive JPEG takes "
                    f"{need} bytes to decode (its coefficients are kept at full size whatever "
                    f"the scale), more than the limit of {max_decoded_bytes} (not decoded)")
            if need > max_decoded_bytes:
                raise DecodeError(
                    path, f"decode budget: a {im.size[0]}x{im.size[1]} {im.mode} image takes "
                    f"{need} bytes decoded, more than the limit of {max_decoded_bytes} "
                    "(not decoded)")
            simple_webp = (im.format == "WEBP" and not getattr(im, "is_animated", False)
                           and _webp_module() is not None)
            factor = (_SIMPLE_WEBP_FACTOR if simple_webp
                      else _PEAK_FACTOR.get(im.format, _DEFAULT_PEAK_FACTOR))
            held = _GATE.acquire(need * factor)
            try:
                if time_budget_s is not None:  # the time waiting for memory is not decoding
                    f.deadline = time.monotonic() + time_budget_s
                if simple_webp:
                    img = _decode_webp(f, path)
                    if "exif" in im.info:  # a WebP's EXIF is in its header: given to the pixels
                        img.info["exif"] = im.info["exif"]
                else:
                    # load() first: a PNG's getexif() loads the whole image to find an eXIf
                    # chunk after the pixels, which must happen under the gate
                    im.load()
                    img = im
                orientation = img.getexif().get(0x0112)
                ImageOps.exif_transpose(img, in_place=True)  # in memory: saves a full copy
                if isinstance(orientation, int) and orientation in _SWAPS_AXES:
                    width, height = height, width
                if max_side and max(img.size) > max_side:  # shrink before widening to RGB
                    if img.mode in _FILTERED_MODES:
                        img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
                    elif max(img.size) > _SAMPLE_FACTOR * max_side:
                        img = img.resize(_fit(img.size, _SAMPLE_FACTOR * max_side),
                                         Image.Resampling.NEAREST)
                img = to_rgb(img)
                if img is im:  # a plain image, not the file's object: Pillow's WebP file object
                    img = im.copy()  # keeps its decoder and the full-size frame (150 MB at 4096²)
            finally:
                _GATE.release(held)
    except DecodeError:
        raise
    except _OverBudget:
        reason = (f"decode budget: still decoding after {time_budget_s:g} s "
                  "(time budget; not decoded)")
        with _OVER_TIME_LOCK:  # decoding runs on several threads
            if len(_OVER_TIME) >= 4096:
                _OVER_TIME.pop(next(iter(_OVER_TIME)))
            _OVER_TIME[identity] = reason
        raise DecodeError(path, reason) from None
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


_WEBP: list = []


def _webp_module():
    """The ``webp`` package (libwebp's own decoder through cffi), or ``None`` without it."""
    if not _WEBP:
        try:
            import webp
        except ImportError:  # optional: Pillow's decoder is used instead
            webp = None
        _WEBP.append(webp)
    return _WEBP[0]


def _decode_webp(f: "_BudgetedFile", path: str) -> Image.Image:
    """A still WebP decoded by libwebp's simple decoder into one RGBA buffer that Pillow then
    shares (``frombuffer``): ~1x the image's size, where Pillow 13's own WebP plug-in (libwebp's
    animation decoder, its canvases and a copy) peaks at ~4.2x (286 MB for 4096x4096)."""
    webp = _webp_module()
    f.seek(0)
    data = webp.WebPData.from_buffer(f.read())
    cfg = webp.WebPDecoderConfig.new()
    cfg.read_features(data)
    w, h = int(cfg.input.width), int(cfg.input.height)
    arr = np.empty((h, w, 4), dtype=np.uint8)
    cfg.output.colorspace = webp.WebPColorMode.RGBA.value
    cfg.output.u.RGBA.rgba = webp.ffi.cast("uint8_t*", webp.ffi.from_buffer(arr))
    cfg.output.u.RGBA.size = arr.size
    cfg.output.u.RGBA.stride = w * 4
    cfg.output.is_external_memory = 1
    status = webp.lib.WebPDecode(data.ptr.bytes, data.size, cfg.ptr)
    webp.lib.WebPFreeDecBuffer(webp.ffi.addressof(cfg.ptr, "output"))
    if status != webp.lib.VP8_STATUS_OK:
        raise DecodeError(path, f"corrupt or truncated image: WebP decoder status {status}")
    # an opaque file gets alpha 255 everywhere: flattened onto white, the same pixels as RGB
    return Image.frombuffer("RGBA", (w, h), arr, "raw", "RGBA", 0, 1)


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


def _check_jpeg_budget(path: str, im: Image.Image, fd: int, size: int) -> None:
    """Refuse a JPEG bigger than its pixels can need, or progressive with too many scans."""
    w, h = im.size
    frames = getattr(im, "n_frames", 1) if im.format == "MPO" else 1  # MPO: several JPEGs
    limit = frames * w * h * MAX_JPEG_BYTES_PER_PIXEL + JPEG_SLACK_BYTES
    if size > limit:
        raise DecodeError(path, f"decode budget: {size} bytes for a {w}x{h} {im.format}, more "
                          f"than the {limit} a {im.format} of that size can need (not decoded)")
    if im.info.get("progressive") and _jpeg_scan_count(fd, MAX_JPEG_SCANS) > MAX_JPEG_SCANS:
        raise DecodeError(path, f"decode budget: progressive JPEG with more than "
                          f"{MAX_JPEG_SCANS} scans (not decoded)")


#: In entropy-coded data an 0xFF is followed by 0x00 (a stuffed byte), a restart marker
#: 0xD0-0xD7 or another 0xFF (fill): anything else is the next marker.
_NEXT_MARKER = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")
_BLOCK = 1 << 20


def _jpeg_scan_count(fd: int, stop_after: int) -> int:
    """Scans (SOS segments) of the first image in a JPEG file, counted up to ``stop_after + 1``.

    Walks the marker segments by their lengths, so JPEGs inside metadata (an EXIF thumbnail)
    are skipped, and jumps over each scan's entropy-coded data with a regular-expression search
    a block at a time. Stops at the first EOI, at the end of the file or at anything that is
    not a marker (left to the decoder to call corrupt). Reads with ``pread`` (no memory map: a
    file truncated meanwhile would kill the process with SIGBUS).
    """
    i, scans = 2, 0
    while True:
        head = os.pread(fd, 4, i)
        if len(head) < 4 or head[0] != 0xFF:
            break
        marker = head[1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == 0xD9:  # EOI
            break
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xD8):  # markers without a length
            i += 2
            continue
        i += 2 + ((head[2] << 8) | head[3])
        if marker == 0xDA:
            scans += 1
            if scans > stop_after:
                break
            i = _next_marker(fd, i)
            if i < 0:
                break
    return scans


def _next_marker(fd: int, i: int) -> int:
    """Offset of the first marker at or after ``i`` in entropy-coded data, or -1."""
    while True:
        block = os.pread(fd, _BLOCK + 1, i)
        m = _NEXT_MARKER.search(block)
        if m:
            return i + m.start()
        if len(block) <= _BLOCK:  # the end of the file
            return -1
        i += _BLOCK  # the block's last byte is read again, with the byte that follows it


class _OverBudget(Exception):
    """Raised by :class:`_BudgetedFile` once the decode has run past its time budget."""


class _BudgetedFile(io.BufferedReader):
    """A file whose reads fail with :class:`_OverBudget` once ``deadline`` has passed.

    Pillow's decoders are fed from ``read`` a block at a time, so a decode that keeps reading
    stops soon after its deadline. Work done inside one block (or by a library that reads the
    descriptor itself, as libtiff does) is not interrupted.
    """

    deadline: float | None = None

    def read(self, size: int | None = -1, /) -> bytes:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _OverBudget
        return super().read(size)


#: Files refused for time, by (device, inode, size, mtime, budget): refused again at once.
_OVER_TIME: dict[tuple, str] = {}
_OVER_TIME_LOCK = threading.Lock()


def _open_regular(path: str) -> tuple[_BudgetedFile, os.stat_result]:
    """Open ``path`` for reading without ever blocking, and only if it is a regular file.

    Returns the open file and the ``fstat`` of its descriptor.

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
        return _BudgetedFile(io.FileIO(fd, "r", closefd=True)), st
    except BaseException:
        os.close(fd)
        raise


def _kind(st: os.stat_result) -> str:
    return ("named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else
            "socket" if stat.S_ISSOCK(st.st_mode) else "device file")


_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"),
          (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


def _not_an_image(f: _BudgetedFile) -> str:
    """Why Pillow did not recognise a file, from its first bytes (cheap, for the message)."""
    f.deadline = None
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
