"""What ``imgclust outliers`` and ``imgclust duplicates`` write: the output folder (with its
marker), inline thumbnails and a small self-contained HTML page.

An output folder is used only when it is missing, empty, or holds the marker that the same
command wrote there (``.imgclust-outliers.json``, ``.imgclust-duplicates.json``): a folder of the
user's is never written into. The marker is written before anything else, and lists the files the
command writes, which are the only ones it ever replaces.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any, Iterable

from PIL import Image

from imgclust._version import __version__
from imgclust.errors import DecodeError, RunDirError
from imgclust.io import atomic_write_json, atomic_write_text, is_temp_leftover

#: longest side of an inline thumbnail, in pixels (smaller images keep their size)
THUMB_SIDE = 96
#: Pillow errors on a damaged or unusual image (the source's read already vetted the file)
IMAGE_ERRORS = (DecodeError, OSError, ValueError, SyntaxError, EOFError, MemoryError)


def marker_name(command: str) -> str:
    return f".imgclust-{command}.json"


def prepare_out(out: str | Path, command: str, files: Iterable[str]) -> Path:
    """Create or reuse the output folder ``out`` of ``command``, and write its marker first.

    Raises
    ------
    RunDirError
        ``out`` is a file, or a non-empty folder without this command's marker.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out}: exists and is not a folder")
    marker = out / marker_name(command)
    if out.is_dir() and not marker.exists():
        entries = [p for p in out.iterdir() if not is_temp_leftover(p.name)]
        if entries:
            raise RunDirError(f"{out}: folder is not empty and was not written by 'imgclust "
                              f"{command}' ({marker.name} missing); choose a new or empty --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(marker, {"command": command, "imgclust_version": __version__,
                               "files": sorted(files)})
    return out


def thumb_uri(img: Image.Image, side: int = THUMB_SIDE) -> str:
    """A ``data:image/png;base64,...`` thumbnail of ``img`` (longest side at most ``side``)."""
    im = img.copy()
    if im.mode not in ("RGB", "RGBA", "L", "LA"):
        im = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB")
    im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def read_thumb(source: Any, image_id: str, side: int = THUMB_SIDE) -> str:
    """An ``<img>`` of the image (upscaled without smoothing when tiny), or a placeholder
    naming why it cannot be read now."""
    if source is None:
        return thumb_html(None, "source not available")
    try:
        _, img = source.read(image_id)
        return thumb_html(thumb_uri(img, side), None, small=max(img.size) <= 32)
    except IMAGE_ERRORS as exc:
        return thumb_html(None, getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}")


def read_thumb_uri(source: Any, image_id: str, side: int = THUMB_SIDE) -> str | None:
    """The image's ``data:`` thumbnail, or ``None`` when it cannot be read now."""
    if source is None:
        return None
    try:
        return thumb_uri(source.read(image_id)[1], side)
    except IMAGE_ERRORS:
        return None


def esc(v: Any) -> str:
    # non-UTF-8 file names arrive as lone surrogates: show them as escapes, never fail
    return html.escape(str(v).encode("utf-8", "backslashreplace").decode("utf-8"), quote=True)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d2330; background: #fff; }}
h1 {{ font-size: 1.4rem; }} p.meta {{ color: #555; }}
.grid {{ display: flex; flex-wrap: wrap; gap: .6rem; }}
.card {{ width: 11rem; border: 1px solid #dde1e7; border-radius: 6px; padding: .4rem;
        font-size: .8rem; overflow-wrap: anywhere; background: #fafbfc; }}
.card img, .thumb img {{ display: block; margin: 0 auto .3rem; width: 96px; height: 96px;
        object-fit: contain; background: #eef0f3; }}
img.small {{ image-rendering: pixelated; }}
.missing {{ width: 96px; height: 96px; margin: 0 auto .3rem; background: #eef0f3; color: #888;
        display: flex; align-items: center; justify-content: center; text-align: center; }}
.row {{ display: flex; flex-wrap: wrap; gap: .6rem; padding: .6rem 0;
        border-top: 1px solid #dde1e7; }}
.row h2 {{ width: 100%; font-size: 1rem; margin: 0; }}
.kept {{ border-color: #2b8a3e; background: #ebfbee; }}
.tag {{ font-weight: 600; }}
</style></head>
<body>
<h1>{title}</h1>
{body}
<p class="meta">imgclust {version}</p>
</body></html>
"""


def page(title: str, body: str) -> str:
    """A whole HTML page around ``body`` (already escaped HTML)."""
    return _PAGE.format(title=esc(title), body=body, version=esc(__version__))


def thumb_html(uri: str | None, why: str | None, small: bool = False) -> str:
    if uri is None:
        return f'<div class="missing" title="{esc(why)}">no image</div>'
    cls = ' class="small"' if small else ""
    return f'<img src="{uri}" alt=""{cls}>'


def write_page(path: Path, title: str, body: str) -> None:
    atomic_write_text(path, page(title, body), errors="backslashreplace")
