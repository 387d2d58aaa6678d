"""``imgclust segment``: colour segmentation of one image by k-means over its pixels.

k-means is fitted on a random sample of the pixels (:data:`SAMPLE_PIXELS`) and every pixel is
then given its nearest centre, so a 12-megapixel photo costs a fit on 20,000 points and one
prediction pass. The palette is ordered by share of pixels, largest first. Huge images are
decoded to a copy of at most :data:`MAX_SIDE` pixels a side by the safe decoder (which also
refuses decompression bombs before decoding them).

Output folders follow the rule for every folder imgclust writes: only what imgclust wrote
there may be replaced. :func:`claim_out_dir` keeps a marker file listing those files.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from imgclust._version import __version__
from imgclust.errors import ConfigError
from imgclust.outdir import claim_out_dir, write_owned

#: pixels sampled to fit k-means (all of them when the image has fewer)
SAMPLE_PIXELS = 20_000
#: longer side of the decoded copy that is segmented (the original file is never changed)
MAX_SIDE = 2048
#: the marker file of a segment output folder: what segment wrote there
MARKER = "segment.json"
#: side of one colour swatch in palette-{k}.png
SWATCH = 48


def segment_image(image: Image.Image | np.ndarray, n_colors: int, random_state: int = 0,
                  sample: int = SAMPLE_PIXELS
                  ) -> tuple[np.ndarray, np.ndarray, Image.Image]:
    """Segment an image into ``n_colors`` colours by k-means over its pixels.

    Parameters
    ----------
    image : PIL.Image.Image or ndarray of shape (H, W, 3) or (H, W)
        Any Pillow mode (converted to RGB, transparency onto white) or an 8-bit array.
    n_colors : int
        Number of colours (k-means clusters), at least 1.
    random_state : int
        Seeds the pixel sample and k-means.
    sample : int
        Pixels sampled to fit k-means; every pixel is then assigned to its nearest centre.

    Returns
    -------
    labels : ndarray of shape (H, W), int
        The palette index of each pixel; index 0 is the colour with the most pixels.
    palette : ndarray of shape (n_colors, 3), uint8
        The cluster centres, rounded to RGB.
    segmented : PIL.Image.Image
        Mode ``"RGB"``: each pixel replaced by its palette colour.

    Raises
    ------
    ConfigError
        ``n_colors`` is not a positive integer or exceeds the distinct colours in the sample.

    Examples
    --------
    >>> img = Image.new("RGB", (4, 2), (255, 0, 0))
    >>> labels, palette, seg = segment_image(img, 1)
    >>> palette.tolist(), labels.shape
    ([[255, 0, 0]], (2, 4))
    """
    from sklearn.cluster import KMeans

    from imgclust.sources.decode import to_rgb

    if isinstance(n_colors, bool) or not isinstance(n_colors, (int, np.integer)) or n_colors < 1:
        raise ConfigError(f"n_colors={n_colors!r} must be a positive integer")
    if isinstance(image, np.ndarray):
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise ConfigError(f"an image array must be (H, W) or (H, W, 3), got {image.shape}")
        image = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    rgb = np.asarray(to_rgb(image), dtype=np.uint8)
    h, w = rgb.shape[:2]
    pixels = rgb.reshape(-1, 3)
    rng = np.random.default_rng(random_state)
    fit_on = pixels if len(pixels) <= sample else pixels[rng.choice(len(pixels), sample,
                                                                    replace=False)]
    distinct = len(np.unique(fit_on, axis=0))
    if n_colors > distinct:
        raise ConfigError(f"n_colors={n_colors} is more than the {distinct} distinct colours "
                          f"of the image" + (" (in a sample of its pixels)"
                                             if len(fit_on) < len(pixels) else ""))
    km = KMeans(n_clusters=int(n_colors), n_init=4, random_state=random_state)
    km.fit(fit_on.astype(np.float32))
    raw = km.predict(pixels.astype(np.float32))
    # palette ordered by share of pixels (largest first), so output is stable and readable
    order = np.argsort(-np.bincount(raw, minlength=n_colors), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(n_colors)
    labels = rank[raw].reshape(h, w)
    palette = np.clip(np.rint(km.cluster_centers_[order]), 0, 255).astype(np.uint8)
    return labels, palette, Image.fromarray(palette[labels], "RGB")


def palette_entries(labels: np.ndarray, palette: np.ndarray) -> list[dict[str, Any]]:
    """Each palette colour as ``{"rgb", "hex", "share"}`` (share of the image's pixels)."""
    counts = np.bincount(labels.ravel(), minlength=len(palette))
    return [{"rgb": [int(v) for v in c], "hex": "#%02x%02x%02x" % tuple(int(v) for v in c),
             "share": round(float(n) / labels.size, 6)} for c, n in zip(palette, counts)]


def palette_image(palette: np.ndarray, swatch: int = SWATCH) -> Image.Image:
    """A strip of square swatches, one per palette colour, in palette order."""
    strip = np.repeat(np.repeat(palette[None, :, :], swatch, axis=0), swatch, axis=1)
    return Image.fromarray(strip.astype(np.uint8), "RGB")


def _png(img: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=False)
    return buf.getvalue()


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="generator" content="imgclust {{ version }}">
<title>Colour segmentation of {{ name }}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #222; }
.row { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
figure { margin: 0; max-width: {{ show }}px; }
figure > img { display: block; max-width: {{ show }}px; height: auto; border: 1px solid #ddd; }
.palette img { display: block; margin-top: .4em; max-width: 100%; }
table { border-collapse: collapse; margin-top: .4em; font-size: 12px; }
td { padding: 1px .5em 1px 0; } .sw { display: inline-block; width: 1em; height: 1em;
  border: 1px solid #999; vertical-align: middle; }
.note { color: #666; }
</style></head><body>
<h1>Colour segmentation of {{ name }}</h1>
<p class="note">k-means over the pixels ({{ fit_pixels }} sampled of {{ width }}x{{ height }}
{%- if scaled %}, a copy downscaled from {{ orig_width }}x{{ orig_height }}{% endif %}), seed {{ seed }}.
Palettes in order of share of pixels.</p>
<div class="row">
<figure><img src="original.png" alt="original"><figcaption>original</figcaption></figure>
{% for s in segs %}
<figure><img src="{{ s.image }}" alt="{{ s.k }} colours">
<figcaption>{{ s.k }} colour{{ "s" if s.k != 1 }}</figcaption>
<div class="palette"><img src="{{ s.palette_image }}" alt="palette of {{ s.k }}">
<table>{% for c in s.colors %}<tr><td><span class="sw" style="background: {{ c.hex }}"></span></td>
<td>{{ c.hex }}</td><td>rgb({{ c.rgb | join(", ") }})</td><td>{{ "%.1f" | format(100 * c.share) }} %</td></tr>{% endfor %}</table>
</div></figure>
{% endfor %}
</div>
<p class="note">Written by imgclust {{ version }} (<code>imgclust segment</code>).</p>
</body></html>
"""


def segment_file(path: str | Path, n_colors: Sequence[int], out: str | Path,
                 random_state: int = 0, max_side: int = MAX_SIDE) -> dict[str, Any]:
    """Segment one image file for each ``n_colors`` and write the results into ``out``.

    Writes ``original.png`` (the decoded copy that was segmented), and for each k
    ``segmented-{k}.png``, ``palette-{k}.png`` and ``palette-{k}.json`` (RGB, hex and share of
    pixels per colour), then ``segment.html`` (all side by side) and the marker
    ``segment.json``. ``out`` must be new, empty or written by an earlier ``segment``
    (see :func:`claim_out_dir`); everything is computed before anything is written.

    Parameters
    ----------
    path : str or Path
        The image file (read by the safe decoder; never modified).
    n_colors : sequence of int
        One segmentation per value (duplicates ignored).
    out : str or Path
    random_state : int
    max_side : int
        Images with a longer side are segmented on a copy downscaled to it.

    Returns
    -------
    dict
        ``files`` (paths written) and, per k, its ``palette`` entries.

    Raises
    ------
    ConfigError
        No or a non-positive number of colours, or ``max_side`` below 1.
    DecodeError
        The file cannot be read as an image (with the reason).
    RunDirError
        ``out`` holds files that segment did not write.
    """
    import jinja2

    from imgclust.sources.decode import decode_image

    ks = list(dict.fromkeys(n_colors))
    if not ks:
        raise ConfigError("give at least one number of colours (--colors 8)")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"--colors {k!r} must be a positive integer")
    if max_side < 1:
        raise ConfigError(f"max_side={max_side} must be at least 1")
    names = ["original.png", "segment.html"] + [f"{stem}-{k}.{ext}" for k in ks for stem, ext in
                                                (("segmented", "png"), ("palette", "png"),
                                                 ("palette", "json"))]
    claim_out_dir(out, MARKER, "imgclust segment", names)  # refuse before the work
    rec, img = decode_image(str(path), Path(path).name, max_side=max_side)
    files: dict[str, bytes | str] = {"original.png": _png(img)}
    segs, info = [], {}
    for k in ks:
        labels, palette, seg = segment_image(img, k, random_state=random_state)
        colors = palette_entries(labels, palette)
        files[f"segmented-{k}.png"] = _png(seg)
        files[f"palette-{k}.png"] = _png(palette_image(palette))
        files[f"palette-{k}.json"] = json.dumps({"n_colors": k, "colors": colors}, indent=1)
        segs.append({"k": k, "image": f"segmented-{k}.png", "palette_image": f"palette-{k}.png",
                     "colors": colors})
        info[str(k)] = colors
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    files["segment.html"] = env.from_string(_PAGE).render(
        version=__version__, name=Path(path).name, segs=segs, seed=random_state,
        width=img.width, height=img.height, orig_width=rec.width, orig_height=rec.height,
        scaled=img.size != (rec.width, rec.height), show=min(480, max(img.size)),
        fit_pixels=min(SAMPLE_PIXELS, img.width * img.height))
    written = write_owned(out, MARKER, "imgclust segment", files, {
        "image": str(Path(path).resolve()), "size": [rec.width, rec.height],
        "segmented_size": list(img.size), "seed": random_state, "palettes": info})
    return {"files": written, "palettes": info, "size": (rec.width, rec.height),
            "segmented_size": img.size}
