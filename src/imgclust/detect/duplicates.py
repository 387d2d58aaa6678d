"""Exact and near-duplicate images: content hashes, perceptual hashes, a Hamming radius search.

- **exact**: the same bytes (``hashlib.blake2b`` of the file; of the pixels for array sources).
- **near**: 64-bit perceptual hashes (pHash: the signs of the 8x8 lowest frequencies of the
  32x32 DCT, against their median; or dHash: the signs of horizontal gradients of a 9x8
  thumbnail) within Hamming distance ``radius``, found by faiss' binary index
  (``IndexBinaryFlat.range_search``) where installed, else by multi-index hashing
  (:func:`hamming_pairs`); never an N x N matrix. Each pair found is then checked on the images'
  32x32 grayscale thumbnails (cosine of the centred thumbnails, ``min_similarity``).
- **cosine** (optional): feature vectors (L2-normalised) whose cosine is at least ``cosine``,
  through the neighbour layer (:mod:`imgclust.neighbors`).

The pairs are joined into groups (connected components); one image per group is kept
(``keep``: the largest, the oldest or the first).

Images on a plain background (glyphs, icons, scans: the border pixels nearly one colour) are
first registered: centred on their ink's centre of mass and scaled by its spread, so that a
crop of the margin, a resize or a re-encode gives the same picture. Why the check after the
hash: MNIST digits share their low frequencies, so among 11,000 of them (64 px) 436,204 pairs of
mostly *different* digits lie within 10 bits of pHash, and without the check they join into one
group of 10,814 images; the resized, re-encoded and cropped copies of a digit, once registered,
match their original's thumbnail to cosine >= 0.9997, so the check at 0.99 keeps 999 of the
1,000 planted pairs and 3 false ones. Photos have no plain margin to register on and a 5 % crop
lowers their thumbnail cosine to 0.94 at worst, while pHash alone already tells different photos
apart. Hence ``min_similarity="auto"``: 0.99 for a pair of registered images, 0.9 otherwise
(bench/detect_bench.py; BENCHMARKS.md, issue 14).

Examples
--------
>>> res = find_duplicates("photos/")  # doctest: +SKIP
>>> [[res.ids[i] for i in g] for g in res.groups()]  # doctest: +SKIP
[['a.jpg', 'a_small.jpg', 'copy of a.jpg']]
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from PIL import Image

from imgclust.errors import ConfigError
from imgclust.model import ImageRecord, LoadFailure
from imgclust.sources.base import Source

#: perceptual hashes
HASHES = ("phash", "dhash")
#: which image of a group is kept
KEEP = ("largest", "oldest", "first")
#: bits of a perceptual hash
HASH_BITS = 64
#: side of the grayscale thumbnail that near pairs are checked on
THUMB = 32
#: side of a registered (centred and scaled) plain-background image
REGISTERED = 64
#: ``min_similarity="auto"``: for two registered images, and for any other pair
AUTO_SIMILARITY = (0.99, 0.90)


# --- hashes -----------------------------------------------------------------------------------

def _gray(img: Image.Image) -> np.ndarray:
    """Luminance as float64 (transparency flattened onto white)."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    return np.asarray(img.convert("L"), dtype=np.float64)


def register(g: np.ndarray) -> tuple[np.ndarray, bool]:
    """Centre and scale an image on a plain background by its ink's moments.

    Parameters
    ----------
    g : ndarray of shape (height, width)
        Gray levels 0..255.

    Returns
    -------
    image : ndarray
        ``REGISTERED`` x ``REGISTERED``: a square window of 4.4 ink radii around the ink's
        centre of mass (padded with the background), or ``g`` itself when its border is not
        one colour (9 in 10 border pixels within 8 levels of their median) or it has no ink.
    registered : bool
    """
    h, w = g.shape
    if h < 3 or w < 3:
        return g, False
    frame = np.r_[g[0], g[-1], g[1:-1, 0], g[1:-1, -1]]
    bg = float(np.median(frame))
    if np.percentile(np.abs(frame - bg), 90) > 8:
        return g, False
    ink = np.maximum(np.abs(g - bg) - 16, 0)  # 16 levels: JPEG ringing is not ink
    total = ink.sum()
    if total <= 0:
        return g, False
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    cy, cx = (ink * ys).sum() / total, (ink * xs).sum() / total
    radius = float(np.sqrt((ink * ((ys - cy) ** 2 + (xs - cx) ** 2)).sum() / total))
    half = max(2.2 * radius, 1.0)
    pad = int(np.ceil(half)) + 2
    canvas = Image.new("F", (w + 2 * pad, h + 2 * pad), bg)
    canvas.paste(Image.fromarray(g.astype(np.float32), mode="F"), (pad, pad))
    box = (cx + pad - half, cy + pad - half, cx + pad + half, cy + pad + half)
    out = canvas.resize((REGISTERED, REGISTERED), Image.Resampling.LANCZOS, box=box)
    return np.asarray(out, dtype=np.float64), True


def _resize(g: np.ndarray, w: int, h: int) -> np.ndarray:
    im = Image.fromarray(g.astype(np.float32), mode="F")
    return np.asarray(im.resize((w, h), Image.Resampling.LANCZOS), dtype=np.float64)


def _pack(bits: np.ndarray) -> np.ndarray:
    return np.packbits(bits.ravel().astype(bool))


def phash_bits(g: np.ndarray) -> np.ndarray:
    """pHash of a gray image: 8 bytes (the 64 signs of the lowest 8x8 DCT coefficients of its
    32x32 thumbnail against their median, as imagehash computes it)."""
    from scipy.fft import dctn

    c = dctn(_resize(g, 32, 32), type=2)[:8, :8]
    return _pack(c > np.median(c))


def dhash_bits(g: np.ndarray) -> np.ndarray:
    """dHash of a gray image: 8 bytes (whether each pixel of a 9x8 thumbnail is brighter than
    its left neighbour)."""
    a = _resize(g, 9, 8)
    return _pack(a[:, 1:] > a[:, :-1])


def image_hash(img: Image.Image, kind: str = "phash") -> tuple[np.ndarray, np.ndarray, bool]:
    """Perceptual hash, check thumbnail and whether the image was registered.

    Returns
    -------
    code : ndarray of uint8, shape (8,)
    thumb : ndarray of uint8, shape (THUMB * THUMB,)
        The registered image's grayscale thumbnail.
    registered : bool
    """
    g, reg = register(_gray(img))
    code = phash_bits(g) if kind == "phash" else dhash_bits(g)
    thumb = np.clip(np.rint(_resize(g, THUMB, THUMB)), 0, 255).astype(np.uint8).ravel()
    return code, thumb, reg


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences between rows of packed codes (uint8, shape (..., 8))."""
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=-1)


# --- radius search ----------------------------------------------------------------------------

def _faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def hamming_pairs(codes: np.ndarray, radius: int, backend: str = "auto", batch: int = 16384
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of codes within Hamming distance ``radius``.

    Parameters
    ----------
    codes : ndarray of uint8, shape (n, 8)
        Packed 64-bit hashes.
    radius : int
        Largest distance reported (inclusive), 0..63.
    backend : {"auto", "faiss", "numpy"}
        ``faiss``: ``IndexBinaryFlat.range_search`` (exact, brute force in C++; ``auto`` takes
        it where installed). ``numpy``: multi-index hashing, also exact: split the 64 bits into
        4 blocks of 16; two codes within ``radius`` agree to within ``radius // 4`` bits on at
        least one block (pigeonhole), so only codes whose block lies that close are compared.

    Returns
    -------
    i, j : ndarray of int64
        Row numbers, ``i < j``, sorted.
    distance : ndarray of int64
    """
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if codes.ndim != 2 or codes.shape[1] != HASH_BITS // 8:
        raise ValueError(f"codes must be of shape (n, 8), got {codes.shape}")
    if not 0 <= radius < HASH_BITS:
        raise ConfigError(f"radius={radius} must be in 0..{HASH_BITS - 1}")
    if backend not in ("auto", "faiss", "numpy"):
        raise ConfigError(f"hash search backend {backend!r}; valid: auto, faiss, numpy")
    n = len(codes)
    if n < 2:
        e = np.empty(0, dtype=np.int64)
        return e, e, e
    if backend == "faiss" or (backend == "auto" and _faiss_available()):
        if not _faiss_available():
            from imgclust.errors import MissingExtraError

            raise MissingExtraError("the faiss hash search", "faiss")
        i, j = _faiss_pairs(codes, radius, batch)
    else:
        i, j = _mih_pairs(codes, radius, batch * 8)
    d = hamming(codes[i], codes[j]).astype(np.int64)
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


def _faiss_pairs(codes: np.ndarray, radius: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    index = faiss.IndexBinaryFlat(HASH_BITS)
    index.add(codes)
    iis, jjs = [], []
    for s in range(0, len(codes), batch):
        lims, _, found = index.range_search(codes[s:s + batch], radius + 1)  # strictly below
        rows = np.repeat(np.arange(s, s + len(lims) - 1), np.diff(lims).astype(np.int64))
        keep = found > rows
        iis.append(rows[keep])
        jjs.append(found[keep].astype(np.int64))
    return np.concatenate(iis), np.concatenate(jjs)


def _mih_pairs(codes: np.ndarray, radius: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(codes)
    words = codes.view(">u8").ravel().astype(np.uint64)
    sub = radius // 4
    values = np.arange(1 << 16, dtype=np.int64)
    masks = values[np.bitwise_count(values) <= sub]
    found = []
    for b in range(4):
        keys = ((words >> np.uint64(16 * b)) & np.uint64(0xFFFF)).astype(np.int64)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        for s in range(0, n, batch):
            rows = np.arange(s, min(s + batch, n))
            for m in masks:
                q = keys[rows] ^ m
                lo = np.searchsorted(sorted_keys, q, "left")
                cnt = np.searchsorted(sorted_keys, q, "right") - lo
                total = int(cnt.sum())
                if total == 0:
                    continue
                i = np.repeat(rows, cnt)
                starts = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt)
                j = order[starts + np.arange(total)]
                keep = i < j
                i, j = i[keep], j[keep]
                close = np.bitwise_count(words[i] ^ words[j]) <= radius
                if close.any():
                    found.append(i[close] * n + j[close])
    if not found:
        e = np.empty(0, dtype=np.int64)
        return e, e
    pairs = np.unique(np.concatenate(found))
    return pairs // n, pairs % n


# --- the search -------------------------------------------------------------------------------

@dataclass(frozen=True)
class DuplicateResult:
    """Duplicate groups of one source, one row per image read.

    Attributes
    ----------
    ids : tuple of str
    paths : tuple of (str or None)
        The file of each image (``None`` in an array source).
    group : ndarray of int64, shape (n_images,)
        Group number (0 the largest), ``-1`` for an image with no duplicate.
    kept : ndarray of bool
        The image kept in each group (and every image with no duplicate).
    kind : tuple of str
        ``"exact"`` (same bytes as the kept image) or ``"near"``; for the kept image, the
        group's kind (``"exact"`` when all its members are exact copies); ``""`` outside groups.
    distance : ndarray of int64
        Hamming distance of the perceptual hash to the kept image's (``-1`` outside groups).
    failures : list of LoadFailure
        Files that could not be read (never grouped).
    info : dict
        Radius, hash, similarity check, backend, pair counts, seconds of the hash search.
    """

    ids: tuple[str, ...]
    paths: tuple[str | None, ...]
    group: np.ndarray
    kept: np.ndarray
    kind: tuple[str, ...]
    distance: np.ndarray
    failures: list[LoadFailure] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_groups(self) -> int:
        return int(self.group.max()) + 1 if len(self.group) else 0

    def groups(self) -> list[list[int]]:
        """Rows of each group, the kept image first, then in row order."""
        rows = np.flatnonzero(self.group >= 0)
        rows = rows[np.lexsort((rows, ~self.kept[rows], self.group[rows]))]
        bounds = np.flatnonzero(np.diff(self.group[rows])) + 1
        return [g.tolist() for g in np.split(rows, bounds)] if len(rows) else []

    def dropped(self) -> np.ndarray:
        """Rows of the images a de-duplicated copy leaves out (the non-kept group members)."""
        return np.flatnonzero((self.group >= 0) & ~self.kept)


class PathsSource(Source):
    """A list of image files; each id is the path as given."""

    def __init__(self, paths: Sequence[str | os.PathLike]) -> None:
        super().__init__()
        self.spec = "files"
        self._paths = [str(p) for p in paths]

    def candidates(self) -> list[str]:
        return self._paths

    def read(self, image_id: str) -> tuple[ImageRecord, Image.Image]:
        from imgclust.sources.decode import decode_image

        return decode_image(image_id, image_id)


def _open(paths_or_source: Any) -> Source:
    from imgclust.sources import open_source

    if isinstance(paths_or_source, Source):
        return paths_or_source
    if isinstance(paths_or_source, (str, os.PathLike)):
        return open_source(paths_or_source)
    paths = list(paths_or_source)
    if not paths:
        raise ConfigError("no image files given")
    return PathsSource(paths)


def _content_hash(path: str | None, img: Image.Image) -> bytes:
    if path is None:  # an array source: the pixels are the content
        h = hashlib.blake2b(f"{img.mode} {img.size}".encode(), digest_size=16)
        h.update(img.tobytes())
        return h.digest()
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).digest()


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected components of the pairs; -1 for rows in none, groups numbered 0 the largest."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    group = np.full(n, -1, dtype=np.int64)
    if len(i) == 0:
        return group
    g = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    sizes = np.bincount(comp)
    big = np.flatnonzero(sizes >= 2)
    first = np.full(len(sizes), n)
    np.minimum.at(first, comp, np.arange(n))
    # 0 the largest group; ties in order of their first image
    ranked = big[np.lexsort((first[big], -sizes[big]))]
    new = np.full(len(sizes), -1, dtype=np.int64)
    new[ranked] = np.arange(len(ranked))
    return new[comp]


def _similarity(thumbs: np.ndarray, i: np.ndarray, j: np.ndarray, batch: int = 65536
                ) -> np.ndarray:
    """Cosine of the centred thumbnails of each pair."""
    out = np.empty(len(i))
    for s in range(0, len(i), batch):
        a = thumbs[i[s:s + batch]].astype(np.float32)
        b = thumbs[j[s:s + batch]].astype(np.float32)
        a -= a.mean(axis=1, keepdims=True)
        b -= b.mean(axis=1, keepdims=True)
        num = (a * b).sum(axis=1)
        den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        # two flat images (no variation at all) are alike
        out[s:s + batch] = np.where(den > 0, num / np.maximum(den, 1e-12),
                                    (np.abs(a).sum(axis=1) + np.abs(b).sum(axis=1)) == 0)
    return out


def _cosine_pairs(X: np.ndarray, cosine: float, k: int = 10, backend: str = "auto"
                  ) -> tuple[np.ndarray, np.ndarray]:
    from imgclust.neighbors import make_index, self_knn

    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    Xn = X / np.maximum(norms, 1e-12)
    if len(Xn) < 2:
        e = np.empty(0, dtype=np.int64)
        return e, e
    D, I = self_knn(make_index(Xn, backend=backend), Xn, k)  # noqa: E741
    # unit vectors: |a - b|^2 = 2 - 2 cos
    close = D <= np.sqrt(max(0.0, 2 - 2 * cosine)) + 1e-6
    i = np.repeat(np.arange(len(Xn)), close.sum(axis=1))
    j = I[close]
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    keep = lo != hi
    pairs = np.unique(lo[keep] * len(Xn) + hi[keep])
    return pairs // len(Xn), pairs % len(Xn)


def _check_options(radius: int, hash: str, keep: str, min_similarity: Any,
                   cosine: float | None) -> None:
    if not isinstance(radius, (int, np.integer)) or not 0 <= radius < HASH_BITS:
        raise ConfigError(f"radius={radius} must be an integer in 0..{HASH_BITS - 1}")
    if hash not in HASHES:
        raise ConfigError(f"hash={hash!r}; valid: {', '.join(HASHES)}")
    if keep not in KEEP:
        raise ConfigError(f"keep={keep!r}; valid: {', '.join(KEEP)}")
    if min_similarity not in (None, "auto") and not (
            isinstance(min_similarity, (int, float)) and -1 <= min_similarity <= 1):
        raise ConfigError(f"min_similarity={min_similarity!r} must be 'auto', None or a "
                          "number in -1..1")
    if cosine is not None and not 0 < cosine <= 1:
        raise ConfigError(f"cosine={cosine} must be in (0, 1]")


def find_duplicates(paths_or_source: Any, *, radius: int = 10, hash: str = "phash",
                    keep: str = "largest", min_similarity: float | str | None = "auto",
                    features: np.ndarray | None = None,
                    feature_ids: Sequence[str] | None = None, cosine: float | None = None,
                    backend: str = "auto", batch_size: int = 256, progress: bool = False
                    ) -> DuplicateResult:
    """Group exact copies and near-duplicates.

    Parameters
    ----------
    paths_or_source : str, Path, Source or sequence of paths
        A folder, ``.npz`` file or ``dataset:NAME``; an opened source; or image files.
    radius : int
        Largest Hamming distance between two perceptual hashes (of 64 bits) for a near pair.
    hash : {"phash", "dhash"}
    keep : {"largest", "oldest", "first"}
        Kept image of a group: most pixels (then the larger file, then the first), the oldest
        modification time (then the first), or the first in the source's order.
    min_similarity : "auto", float or None
        Cosine that a near pair's 32x32 thumbnails must reach (``None``: no check; ``auto``:
        0.99 when both images were registered on a plain background, else 0.9).
    features : ndarray of shape (n_rows, n_features), optional
        Feature vectors: one row per image read, in the source's order, or one per
        ``feature_ids``.
    feature_ids : sequence of str, optional
        The image id of each row of ``features`` (images without a row get no cosine pairs).
    cosine : float, optional
        With ``features``: images whose feature cosine reaches this are near pairs too.
    backend : {"auto", "faiss", "numpy"}
        Hash search (see :func:`hamming_pairs`); the cosine search uses the neighbour layer.
    batch_size : int
        Images decoded at a time.
    progress : bool

    Returns
    -------
    DuplicateResult

    Raises
    ------
    ConfigError
        A bad option, or ``features`` with another number of rows than images read.
    SourceError
        The source cannot be opened.
    """
    import time

    from imgclust.progress import progress_bar

    _check_options(radius, hash, keep, min_similarity, cosine)
    if cosine is not None and features is None:
        raise ConfigError("cosine needs features (one row per image)")
    source = _open(paths_or_source)
    n_total = len(source.candidates())
    records: list[ImageRecord] = []
    codes, thumbs, regs, contents = [], [], [], []
    failures: list[LoadFailure] = []
    pb = progress_bar(progress)(total=n_total, desc="hashing", unit="img")
    try:
        for recs, imgs in source.iter_batches(batch_size):
            for rec, img in zip(recs, imgs):
                try:
                    content = _content_hash(rec.path, img)
                except OSError as exc:  # gone or unreadable since it was decoded
                    failures.append(LoadFailure(rec.path or rec.id,
                                                f"cannot read: {exc.strerror or exc}"))
                    continue
                code, thumb, reg = image_hash(img, hash)
                records.append(rec)
                codes.append(code)
                thumbs.append(thumb)
                regs.append(reg)
                contents.append(content)
            pb.update(len(recs))
    finally:
        pb.close()
    failures = list(source.failures) + failures
    n = len(records)
    C = np.array(codes, dtype=np.uint8).reshape(n, 8)
    T = np.array(thumbs, dtype=np.uint8).reshape(n, THUMB * THUMB)
    R = np.array(regs, dtype=bool)

    # exact: same content hash
    by_content: dict[bytes, int] = {}
    ei, ej = [], []
    for r, c in enumerate(contents):
        if c in by_content:
            ei.append(by_content[c])
            ej.append(r)
        else:
            by_content[c] = r
    t0 = time.perf_counter()
    used = "faiss" if backend in ("auto", "faiss") and _faiss_available() else "numpy"
    ni, nj, _ = hamming_pairs(C, radius, backend=backend)
    search_s = time.perf_counter() - t0
    n_hash_pairs = len(ni)
    if min_similarity is not None and len(ni):
        sim = _similarity(T, ni, nj)
        if min_similarity == "auto":
            need = np.where(R[ni] & R[nj], *AUTO_SIMILARITY)
        else:
            need = np.full(len(ni), float(min_similarity))
        ok = sim >= need - 1e-9
        ni, nj = ni[ok], nj[ok]
    ci = cj = np.empty(0, dtype=np.int64)
    if cosine is not None:
        X = np.asarray(features)
        if feature_ids is not None:
            if X.ndim != 2 or X.shape[0] != len(feature_ids):
                raise ConfigError(f"features have {X.shape[0] if X.ndim else 0} rows for "
                                  f"{len(feature_ids)} feature ids")
            row_of = {r.id: k for k, r in enumerate(records)}
            pairs = [(k, row_of[f]) for k, f in enumerate(feature_ids) if f in row_of]
            frows = np.array([p[0] for p in pairs], dtype=np.int64)
            rows = np.array([p[1] for p in pairs], dtype=np.int64)
        elif X.ndim != 2 or X.shape[0] != n:
            raise ConfigError(f"features have {X.shape[0] if X.ndim else 0} rows for the {n} "
                              "images read")
        else:
            frows = rows = np.arange(n)
        ci, cj = _cosine_pairs(X[frows], cosine)
        ci, cj = rows[ci], rows[cj]
    i = np.concatenate([np.array(ei, dtype=np.int64), ni, ci])
    j = np.concatenate([np.array(ej, dtype=np.int64), nj, cj])
    group = _components(n, i, j)

    kept = group < 0
    kind = [""] * n
    distance = np.full(n, -1, dtype=np.int64)
    stats = [_file_stat(rec) for rec in records]
    in_groups = np.flatnonzero(group >= 0)
    in_groups = in_groups[np.argsort(group[in_groups], kind="stable")]
    bounds = np.flatnonzero(np.diff(group[in_groups])) + 1
    for rows in np.split(in_groups, bounds) if len(in_groups) else []:
        k = _choose(rows, records, stats, keep)
        kept[k] = True
        d = hamming(C[rows], C[k])
        distance[rows] = d
        exact = [contents[r] == contents[k] for r in rows]
        for r, e in zip(rows, exact):
            kind[r] = "exact" if e else "near"
        kind[k] = "exact" if all(exact) else "near"
    info = {"radius": int(radius), "hash": hash, "keep": keep, "min_similarity": min_similarity,
            "cosine": cosine, "backend": used, "search_seconds": round(search_s, 3),
            "pairs": {"exact": len(ei), "hash": int(n_hash_pairs), "near": int(len(ni)),
                      "cosine": int(len(ci))},
            "registered": int(R.sum()), "n_candidates": n_total}
    return DuplicateResult(ids=tuple(r.id for r in records), paths=tuple(r.path for r in records),
                           group=group, kept=kept, kind=tuple(kind), distance=distance,
                           failures=failures, info=info)


def _file_stat(rec: ImageRecord) -> tuple[int, float]:
    """(file size, modification time); (0, inf) when there is no file."""
    if rec.path is None:
        return 0, float("inf")
    try:
        st = os.stat(rec.path)
    except OSError:
        return 0, float("inf")
    return st.st_size, st.st_mtime


def _choose(rows: np.ndarray, records: list[ImageRecord], stats: list[tuple[int, float]],
            keep: str) -> int:
    if keep == "first":
        return int(rows[0])
    if keep == "oldest":
        return int(min(rows, key=lambda r: (stats[r][1], r)))
    return int(min(rows, key=lambda r: (-records[r].width * records[r].height, -stats[r][0], r)))

